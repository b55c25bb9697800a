"""Every probe against a direct torch.autograd / plain-forward computation."""
import copy

import pytest
import torch
import torch.nn.functional as F

from resnet_viz.nets.models import build_model
from resnet_viz.train.probes import ProbeSet, count_hooks
from resnet_viz.spec import DATASET_SHAPES, ExperimentSpec

SPECS = [
    ExperimentSpec(model="mlp", dataset="moons", depth=4, width=8, shortcut="identity", residual_scale=0.5),
    ExperimentSpec(model="mlp", dataset="digits", depth=4, width=8, mlp_block_layers=2, shortcut="none"),
    ExperimentSpec(model="cnn", dataset="digits", depth=8, width=4, shortcut="projection"),
    ExperimentSpec(model="cnn", dataset="digits", depth=8, width=4, shortcut="gated", norm="none"),
]


def _batch(spec, n=16):
    shape, classes = DATASET_SHAPES[spec.dataset]
    g = torch.Generator().manual_seed(2)
    return torch.randn(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g)


def _manual_walk(model, x):
    """Forward by hand (no hooks): returns response stds and per-block ‖αF(x)‖/‖x‖."""
    stds, ratios = [], []
    h = x.flatten(1) if model.family == "mlp" else x
    for name, mod in model.stem.named_children():
        h = mod(h)
        if name in model.stem_response:
            stds.append(float(h.std()))
    for block in model.blocks:
        inp, f = h, h
        for name, mod in block.branch.named_children():
            f = mod(f)
            if name in block.response_names:
                stds.append(float(f.std()))
        ratios.append(float((block.alpha * f).norm() / inp.norm()))
        h = block(inp)
    return stds, ratios


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.model}-{s.shortcut}-{s.norm}")
def test_probes_match_autograd_and_manual_forward(spec):
    model = build_model(spec)
    ref = copy.deepcopy(model)
    x, y = _batch(spec)
    probes = ProbeSet(model)
    probes.arm()
    F.cross_entropy(model(x), y).backward()
    rec = probes.collect()
    # Reference: torch.autograd.grad on an identical copy, no hooks anywhere.
    weights = [m.weight for _, m in ref.weight_layers()]
    grads = torch.autograd.grad(F.cross_entropy(ref(x), y), weights)
    assert rec["grad_norms"] == pytest.approx([float(g.norm()) for g in grads], rel=1e-5, abs=1e-8)
    ref2 = copy.deepcopy(model)
    with torch.no_grad():
        stds, ratios = _manual_walk(ref2, x)
    assert rec["response_std"] == pytest.approx(stds, rel=1e-4)
    assert rec["branch_ratio"] == pytest.approx(ratios, rel=1e-4)
    assert len(rec["grad_norms"]) == len(probes.layer_names)
    assert count_hooks(model) == 0


def test_no_hooks_between_logged_steps():
    model = build_model(SPECS[0])
    probes = ProbeSet(model)
    for _ in range(3):
        probes.arm()
        assert count_hooks(model) > 0
        model(_batch(SPECS[0])[0])
        probes.collect()
        assert count_hooks(model) == 0


def test_residual_responses_smaller_than_plain_at_init():
    # He et al. Fig. 7 compares trained nets; the training test covers that. Here: the ratio
    # probe sees the alpha scaling exactly.
    spec = SPECS[0]
    x, _ = _batch(spec)
    r = {}
    for alpha in (1.0, 0.1):
        model = build_model(spec.replace(residual_scale=alpha))
        p = ProbeSet(model)
        p.arm()
        model(x)
        r[alpha] = p.collect()["branch_ratio"]
    assert r[0.1][0] == pytest.approx(0.1 * r[1.0][0], rel=1e-4)
