"""Precise BN (Wu & Johnson 2021): re-estimated statistics, checked against a hand-written
population estimate, and the training model left exactly as it was."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from resnet_viz.nets.models import build_model
from resnet_viz.spec import ExperimentSpec
from resnet_viz.train.precise_bn import bn_layers, calibration_batches, precise_bn


def test_statistics_are_the_average_of_the_per_batch_statistics():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    x = torch.randn(64, 3) * 5 + 2
    batches = calibration_batches(x, 16)
    assert [len(b) for b in batches] == [16, 16, 16, 16]
    with torch.no_grad():
        h = [net[0](b) for b in batches]
    mean = torch.stack([b.mean(0) for b in h]).mean(0)
    var = torch.stack([b.var(0, unbiased=True) for b in h]).mean(0)   # what BN's running_var holds
    with precise_bn(net, batches):
        assert torch.allclose(net[1].running_mean, mean, atol=1e-5)
        assert torch.allclose(net[1].running_var, var, atol=1e-4)
    assert torch.equal(net[1].running_mean, torch.zeros(4))          # restored: the defaults again
    assert torch.equal(net[1].running_var, torch.ones(4))
    assert int(net[1].num_batches_tracked) == 0 and net[1].momentum == 0.1


def test_training_is_unaffected_and_the_mode_is_kept():
    spec = ExperimentSpec(model="cnn", depth=8, width=4, dataset="digits")
    net = build_model(spec, (1, 8, 8), 10)
    x = torch.randn(256, 1, 8, 8)
    net.train()
    net(x[:32])                                                      # some EMA history
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with precise_bn(net, calibration_batches(x, 64)):
        changed = any(not torch.equal(m.running_mean, before[n + ".running_mean"])
                      for n, m in net.named_modules() if m in bn_layers(net))
    assert changed
    assert net.training
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_eval_on_precise_statistics_matches_a_train_mode_pass_on_the_same_images():
    """An independent reference: with one calibration batch, precise statistics are that
    batch's own, so eval mode reproduces the train-mode (batch-statistics) loss, up to BN
    storing the unbiased variance (n/(n-1) = 1.008 here) where train mode uses the biased one."""
    torch.manual_seed(1)
    spec = ExperimentSpec(model="mlp", depth=8, width=16, dataset="digits")
    net = build_model(spec, (1, 8, 8), 10)
    x, y = torch.randn(128, 1, 8, 8), torch.randint(0, 10, (128,))
    with torch.no_grad():
        batch_mode = F.cross_entropy(net.train()(x), y)
        stale = F.cross_entropy(net.eval()(x), y)
        with precise_bn(net, [x]):
            precise = F.cross_entropy(net.eval()(x), y)
    assert torch.allclose(precise, batch_mode, rtol=5e-3)
    assert not torch.allclose(stale, batch_mode, rtol=5e-2)       # the lagging EMA is far off


def test_a_net_without_bn_is_left_alone():
    net = nn.Linear(2, 2)
    with precise_bn(net, [torch.randn(4, 2)]) as same:
        assert same is net
