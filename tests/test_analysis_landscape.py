"""Loss landscapes (Li et al. 2018): filter normalisation, exact restore, plain vs residual."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from resnet_viz.analysis.landscape import (convexity_ratio, curvature_ratio_map, estimate_seconds,
                                           loss_surface_1d, loss_surface_2d, random_direction,
                                           slice_sharpness)
from helpers import flat_digits, sgd_train
from resnet_viz.nets.models import build_model
from resnet_viz.spec import ExperimentSpec


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    return flat_digits()


train = sgd_train


def small_mlp(**kw) -> nn.Module:
    return build_model(ExperimentSpec(depth=3, width=8, **kw))


def test_direction_is_filter_normalised_mlp_and_cnn():
    for net in (small_mlp(), build_model(ExperimentSpec(model="cnn", depth=8, width=4))):
        bn = {id(p) for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
              for p in m.parameters()}
        d = random_direction(net, seed=3)
        assert len(d) == len(list(net.parameters()))
        for p, dp in zip(net.parameters(), d):
            assert dp.shape == p.shape
            if p.dim() <= 1 or id(p) in bn:
                assert torch.count_nonzero(dp) == 0
            else:
                want = p.detach().flatten(1).norm(dim=1)       # one norm per filter
                torch.testing.assert_close(dp.flatten(1).norm(dim=1), want, rtol=1e-5, atol=1e-7)
                assert not torch.allclose(dp, p.detach())


def test_direction_seeded_and_leaves_global_rng_alone():
    net = small_mlp()
    state = torch.get_rng_state()
    a, b, c = random_direction(net, 1), random_direction(net, 1), random_direction(net, 2)
    assert torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not all(torch.equal(u, v) for u, v in zip(a, c))


def test_centre_is_the_models_own_loss(digits):
    x, y = digits[0][:200], digits[1][:200]
    net = train(ExperimentSpec(depth=3, width=8), x, y, steps=20)
    with torch.no_grad():
        direct = F.cross_entropy(net(x), y).item()
    s1 = loss_surface_1d(net, x, y, steps=5)
    s2 = loss_surface_2d(net, x, y, steps=5)
    assert s1["alpha"][2] == 0.0 and s2["beta"][2] == 0.0
    for got in (s1["loss"][2], s2["loss"][2][2], s1["center_loss"], s2["center_loss"]):
        assert math.isclose(got, direct, rel_tol=1e-6)
    assert s1["complete"] and s2["complete"] and len(s2["loss"]) == 5 and len(s2["loss"][0]) == 5
    # Away from θ the loss differs: the direction really moves the weights.
    assert s1["loss"][0] != s1["loss"][2]


def test_parameters_buffers_and_mode_restored_exactly(digits):
    x, y = digits[0][:64], digits[1][:64]
    net = small_mlp().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    loss_surface_2d(net, x, y, steps=3)
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())

    def boom(done, total):
        raise RuntimeError("cancelled by the page")
    net.eval()
    with pytest.raises(RuntimeError):
        loss_surface_1d(net, x, y, steps=5, progress=boom)   # fails mid-grid, off θ
    assert not net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_progress_and_cancel(digits):
    x, y = digits[0][:64], digits[1][:64]
    net = small_mlp()
    calls = []
    loss_surface_2d(net, x, y, steps=4, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 16) for i in range(1, 17)]
    calls.clear()
    s = loss_surface_2d(net, x, y, steps=4, progress=lambda d, t: calls.append(d),
                        should_stop=lambda: len(calls) >= 5)
    assert not s["complete"] and len(calls) == 5
    flat = [v for row in s["loss"] for v in row]
    assert all(v is not None for v in flat[:5]) and all(v is None for v in flat[5:])


def test_bad_grid_is_a_value_error(digits):
    with pytest.raises(ValueError, match="at least 2 steps"):
        loss_surface_1d(small_mlp(), digits[0][:8], digits[1][:8], steps=1)


def test_estimate_seconds(digits):
    est = estimate_seconds(small_mlp(), digits[0][:64], 21)
    assert 0 < est < 60 and math.isfinite(est)


def _analytic(f, steps=11):
    a = np.linspace(-1, 1, steps)
    return {"alpha": list(a), "beta": list(a), "center_loss": f(0.0, 0.0),
            "loss": [[f(ai, bj) for ai in a] for bj in a]}


def test_convexity_ratio_on_known_surfaces():
    assert convexity_ratio(_analytic(lambda a, b: a * a + 2 * b * b)) == 0.0
    assert convexity_ratio(_analytic(lambda a, b: a * a - b * b)) == 1.0
    assert convexity_ratio(_analytic(lambda a, b: 1.0)) == 0.0           # flat: not non-convex
    assert convexity_ratio(_analytic(lambda a, b: math.cos(3 * a))) > 0.3
    ratio = curvature_ratio_map(_analytic(lambda a, b: a * a - 0.5 * b * b))
    np.testing.assert_allclose(ratio, -0.5, atol=1e-9)                   # λ_min/λ_max = −1/2
    with pytest.raises(ValueError):
        convexity_ratio({"alpha": [0, 1], "beta": [0, 1], "loss": [[1, None], [1, 1]]})


def test_slice_sharpness_on_a_parabola():
    a = np.linspace(-1, 1, 41)
    s = {"alpha": list(a), "loss": list(2 * a ** 2), "center_loss": 0.0}
    near = a[(np.abs(a) <= 0.25) & (a != 0)]
    assert math.isclose(slice_sharpness(s, 0.25), float(np.mean(2 * near ** 2)))


def test_plain_surface_less_convex_than_residual(digits):
    """Li et al. Fig. 5 at digits scale: depth-20 width-16 MLP, 300 SGD steps, 11x11 grid.

    Measured over seeds 0-5: non-convex fraction plain 0.51-0.65, residual 0.00-0.05.
    """
    x, y = digits
    for seed in range(3):
        fractions = {}
        for kind in ("none", "identity"):
            net = train(ExperimentSpec(depth=20, width=16, shortcut=kind, seed=seed), x, y)
            fractions[kind] = convexity_ratio(loss_surface_2d(net, x, y, steps=11, seed=seed))
        assert fractions["none"] > 0.3, fractions
        assert fractions["identity"] < 0.15, fractions
        assert fractions["none"] > fractions["identity"] + 0.25, fractions
