"""Checkpoints: the CIFAR-ResNet layout loads into our net and gives the same logits as an
independent implementation of that layout; our own saves round-trip; a mismatch is named;
``predict`` writes the logits. The reference below is written from the published
architecture (He et al. 2016 §4.2, option A with the new channels padded evenly on both
sides), not from our code."""
from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from resnet_viz.cli.main import main
from resnet_viz.nets.checkpoints import CheckpointError, load_weights, read_state_dict
from resnet_viz.nets.models import build_model
from resnet_viz.spec import ExperimentSpec


class RefBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pad = (cout - cin) // 2 if stride != 1 or cin != cout else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + short)


class RefResNet(nn.Module):
    def __init__(self, n: int, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            stages.append(nn.Sequential(*[RefBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
                                          for i in range(n)]))
            cin = cout
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(64, classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(F.avg_pool2d(out, out.size()[3]).flatten(1))


def reference(n: int = 3, seed: int = 0) -> RefResNet:
    torch.manual_seed(seed)
    ref = RefResNet(n)
    with torch.no_grad():                  # trained-looking BN statistics, not the defaults
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return ref.eval()


CIFAR20 = ExperimentSpec(model="cnn", depth=20, width=16, shortcut="identity", dataset="cifar10")


def saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize("wrap", ["plain", "dataparallel"])
def test_a_cifar_resnet_checkpoint_gives_the_same_logits(wrap):
    ref = reference()
    state = ref.state_dict()
    if wrap == "dataparallel":
        state = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 200}
    ours = build_model(CIFAR20)
    assert load_weights(ours, saved(state)) == "cifar-resnet"
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        diff = (ours.eval()(x) - ref(x)).abs().max().item()
    assert diff < 1e-5


def test_our_own_save_round_trips():
    a, b = build_model(CIFAR20), build_model(CIFAR20.replace(seed=5))
    assert load_weights(b, saved(a.state_dict())) == "ours"
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_a_mismatch_names_the_first_key_or_shape():
    ref = reference(n=3).state_dict()
    # depth 32 has 5 blocks a stage: our block 3 is still stage 1 (16 ch), the file's is stage 2
    with pytest.raises(CheckpointError, match=r"'blocks.3.branch.conv1.weight' has shape \(32, 16, 3, 3\)"):
        load_weights(build_model(CIFAR20.replace(depth=32)), ref)
    with pytest.raises(CheckpointError, match=r"stem.conv.weight.*shape \(16, 3, 3, 3\).*\(32, 3, 3, 3\)"):
        load_weights(build_model(CIFAR20.replace(width=32)), ref)
    with pytest.raises(CheckpointError, match="does not have"):
        load_weights(build_model(CIFAR20), {**ref, "extra.weight": torch.zeros(1)})


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_untrusted_files_never_run_code(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))
    with pytest.raises(CheckpointError, match="not a weights-only"):
        read_state_dict(pickle.dumps({"conv1.weight": Boom()}))
    with pytest.raises(CheckpointError, match="not a weights-only"):
        read_state_dict(b"garbage")
    with pytest.raises(CheckpointError, match="more than"):
        read_state_dict(b"x" * 2000, max_bytes=1000)
    with pytest.raises(CheckpointError, match="not a tensor"):
        read_state_dict(saved({"conv1.weight": "text"}))


def test_predict_round_trips_a_cifar_layout_checkpoint(tmp_path, capsys):
    ref = reference(seed=3)
    ckpt, images, out = tmp_path / "ref.th", tmp_path / "x.npy", tmp_path / "logits.json"
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}}, ckpt)
    x = np.random.default_rng(0).standard_normal((5, 3, 32, 32)).astype(np.float32)
    np.save(images, x)
    code = main(["predict", "--init-from", str(ckpt), "--model", "cnn", "--depth", "20", "--width", "16",
                 "--shortcut", "identity", "--dataset", "cifar10", "--images", str(images), "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    got = np.asarray(json.loads(out.read_text())["logits"])
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    assert got.shape == (5, 10) and np.abs(got - want).max() < 1e-5
    np.save(images, x.astype(np.float64))
    assert main(["predict", "--init-from", str(ckpt), "--model", "cnn", "--depth", "20", "--width", "16",
                 "--dataset", "cifar10", "--images", str(images), "--json", str(out)]) == 2
    assert "float32" in capsys.readouterr().err


def test_every_view_works_on_a_loaded_net():
    """A CIFAR-layout checkpoint loaded into our net: lesion, attribution, landscape and the
    trainer's probes all run on it (the loaded blocks are ours, with their taps)."""
    from resnet_viz.analysis.attribution import block_attribution, integrated_gradients, saliency
    from resnet_viz.analysis.landscape import loss_surface_1d
    from resnet_viz.analysis.lesion import lesion_study
    from resnet_viz.train.probes import ProbeSet

    net = build_model(CIFAR20)
    load_weights(net, reference().state_dict())
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    study = lesion_study(net, x, y)
    assert len(study["acc"]) == 9 and study["downsampling"].count(True) == 2   # stages 2 and 3 start
    assert saliency(net, x[:2], 1).shape == (2, 3, 32, 32)
    attr, delta = integrated_gradients(net, x[:1], 1, n_steps=8)
    assert attr.shape == (1, 3, 32, 32) and torch.isfinite(delta).all()
    assert len(block_attribution(net, x[:2], 1)) == 9
    surface = loss_surface_1d(net, x, y, steps=5)
    assert len(surface["loss"]) == 5 and all(np.isfinite(surface["loss"]))
    probes = ProbeSet(net)
    probes.arm()
    net.train()
    F.cross_entropy(net(x), y).backward()
    probes.disarm()
    rec = probes.collect()
    assert len(rec["branch_ratio"]) == 9 and all(np.isfinite(rec["grad_norms"]))
