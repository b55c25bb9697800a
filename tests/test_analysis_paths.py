"""Paths through a ResNet (Veit et al. 2016, §3 and §6), checked against torch.autograd.

Calibration (digits, depth-20 width-32 residual MLP, 400 SGD steps, seeds 0-2): the gradient
through one path falls ~e^-1.15 (x0.32) per residual branch on the path (log-linear slope
-1.13 to -1.19); the effective contribution peaks at length 5-6 of 20. Untrained, the
gradient is nearly flat in length (1.3 at k=0, 0.9 at k=20).
"""
import itertools
import math

import numpy as np
import pytest
import torch

from helpers import quick_train
from resnet_viz.analysis.paths import (gradient_by_path_length, path_gradient,
                                       path_length_distribution, route_backward)
from resnet_viz.nets.models import build_model
from resnet_viz.spec import ExperimentSpec

SEEDS = (0, 1, 2)
MLP = ExperimentSpec(model="mlp", dataset="digits", depth=20, width=32, lr=0.1)


def _data(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def _eval_net(spec):
    """An untrained net with non-trivial BN running statistics, in eval mode."""
    model = build_model(spec)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _full_grad(model, x, y):
    """Ordinary backward to the stem output: the reference for the path decomposition."""
    h = model.stem(x.flatten(1) if model.family == "mlp" else x).detach().requires_grad_(True)
    out = h
    for block in model.blocks:
        out = block(out)
    loss = torch.nn.functional.cross_entropy(model.head(out), y, reduction="sum")
    return torch.autograd.grad(loss, h)[0]


# --- the binomial distribution of path lengths -------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 5, 20, 54])
def test_distribution_is_binomial(n):
    dist = path_length_distribution(n)
    assert len(dist) == n + 1
    assert sum(dist) == pytest.approx(1.0)
    assert dist == pytest.approx([math.comb(n, k) * 0.5 ** n for k in range(n + 1)], rel=1e-12)
    if n >= 2:
        assert int(np.argmax(dist)) == n // 2


def test_distribution_rejects_bad_input():
    assert sum(path_length_distribution(1000)) == pytest.approx(1.0)  # no float overflow
    for bad in (-1, 2.5, "3", True):
        with pytest.raises(ValueError, match="whole number"):
            path_length_distribution(bad)


# --- routing, against autograd -----------------------------------------------------------

def test_all_branch_path_matches_a_hand_chained_vjp():
    """k = n on a 2-block MLP: J_f1ᵀ J_f2ᵀ ∂L/∂y2, with forward values of the intact net."""
    model = _eval_net(MLP.replace(depth=2, width=8, seed=3))
    x, y = _data()
    got = path_gradient(model, x, y, [0, 1])
    b1, b2 = model.blocks
    with torch.no_grad():
        h = model.stem(x.flatten(1))
        y1 = b1(h)
        y2 = b2(y1)
    y2r = y2.clone().requires_grad_(True)
    g2 = torch.autograd.grad(torch.nn.functional.cross_entropy(model.head(y2r), y, reduction="sum"), y2r)[0]
    y1r = y1.clone().requires_grad_(True)
    g1 = torch.autograd.grad(b2.alpha * b2.branch(y1r), y1r, g2)[0]
    hr = h.clone().requires_grad_(True)
    g0 = torch.autograd.grad(b1.alpha * b1.branch(hr), hr, g1)[0]
    torch.testing.assert_close(got, g0)
    # k = 0: identity skips only, so the head's gradient arrives untouched.
    torch.testing.assert_close(path_gradient(model, x, y, []), g2)


@pytest.mark.parametrize("spec", [
    MLP.replace(depth=3, width=8, seed=1),
    MLP.replace(depth=3, width=8, seed=2, shortcut="gated"),
    MLP.replace(depth=3, width=8, seed=2, residual_scale=0.5, norm="none", activation="tanh"),
    ExperimentSpec(model="cnn", dataset="digits", depth=8, width=4, shortcut="projection", seed=0),
], ids=["mlp", "highway", "scaled-tanh", "cnn-projection"])
def test_paths_sum_to_the_full_gradient(spec):
    """Backprop is linear: the 2^n single-path gradients add up to the ordinary gradient."""
    model = _eval_net(spec)
    x, y = _data()
    n = len(model.blocks)
    total = sum(path_gradient(model, x, y, chosen)
                for k in range(n + 1) for chosen in itertools.combinations(range(n), k))
    torch.testing.assert_close(total, _full_grad(model, x, y), rtol=1e-4, atol=1e-6)


def test_plain_nets_are_refused():
    x, y = _data()
    for spec in (MLP.replace(depth=3, shortcut="none"), MLP.replace(depth=3, shortcut_mask="101")):
        model = build_model(spec)
        with pytest.raises(ValueError, match="every block has a shortcut"):
            gradient_by_path_length(model, x, y, samples=1)
        with pytest.raises(ValueError, match="blocks without a shortcut"):
            path_gradient(model, x, y, [0])


def test_bad_lengths_are_refused():
    model, (x, y) = build_model(MLP.replace(depth=3)), _data()
    with pytest.raises(ValueError, match="between 0 and 3"):
        gradient_by_path_length(model, x, y, lengths=[4])
    with pytest.raises(ValueError, match="at least one sample"):
        gradient_by_path_length(model, x, y, samples=0)


def _hooks(model):
    return sum(len(m._forward_hooks) for m in model.modules())


@pytest.mark.parametrize("train_mode", [True, False])
def test_model_left_exactly_as_it_was(train_mode):
    model = build_model(MLP.replace(depth=4, width=8))
    model.train(train_mode)
    model.lesion = frozenset({1})
    x, y = _data()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = _hooks(model)
    res = gradient_by_path_length(model, x, y, samples=2, batch_size=8)
    with pytest.raises(Exception):
        path_gradient(model, x, y[:3], [0])                   # fails after the forward: still restored
    assert model.training is train_mode and model.lesion == frozenset({1})
    assert all(p.grad is None for p in model.parameters())
    assert _hooks(model) == hooks
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not x.requires_grad
    assert res == gradient_by_path_length(model, x, y, samples=2, batch_size=8)  # seeded


def test_route_backward_removes_its_hooks_on_error():
    model = build_model(MLP.replace(depth=2, width=8))
    with pytest.raises(RuntimeError):
        with route_backward(model, [0]):
            assert _hooks(model) == 2
            raise RuntimeError("boom")
    assert _hooks(model) == 0


# --- the scientific claim ----------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_paths():
    out = []
    for seed in SEEDS:
        model, x, y = quick_train(MLP.replace(seed=seed), 400)
        out.append(gradient_by_path_length(model, x, y, samples=5, batch_size=64, seed=seed))
    return out


def test_gradient_falls_with_path_length_in_a_trained_resnet(trained_paths):
    slopes = []
    for res in trained_paths:
        g = np.array(res["grad_norm"])
        slopes.append(np.polyfit(res["lengths"], np.log(g), 1)[0])
        assert g[0] > g[5] > g[10] > g[20]
    print("log-gradient slope per branch", slopes)
    assert np.mean(slopes) < -0.6 and max(slopes) < -0.3


def test_effective_paths_are_short(trained_paths):
    peaks = []
    for res in trained_paths:
        n, eff = res["n_blocks"], np.array(res["effective"])
        assert eff == pytest.approx(np.array(res["distribution"]) * np.array(res["grad_norm"]))
        peaks.append(int(np.argmax(eff)))
        assert eff[: n // 2].sum() / eff.sum() > 0.8          # half the lengths, most of the gradient
    print("effective peak length", peaks)
    assert max(peaks) < 10                                    # mean path length is n/2 = 10
