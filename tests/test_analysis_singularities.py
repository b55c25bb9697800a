"""Singularity signatures (Orhan & Pitkow 2018) against direct numpy / autograd answers."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from resnet_viz.analysis.singularities import (collect_activations, dead_unit_fraction,
                                               hessian_matrix, hessian_spectrum,
                                               near_zero_fraction, overlap, participation_ratio,
                                               singularity_report)
from helpers import flat_digits, sgd_train
from resnet_viz.nets.models import build_model
from resnet_viz.spec import ExperimentSpec


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    return flat_digits()


train = sgd_train


def hand_net() -> nn.Sequential:
    """3 -> 4 -> 3 -> 2 with ReLUs; unit 3 of layer 1 is dead by construction, and
    units 0 and 1 of layer 1 share their incoming weights up to scale (an overlap)."""
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1., 2., 0.], [2., 4., 0.], [0., 1., -1.], [0., 0., 0.]]))
        net[0].bias.copy_(torch.tensor([0.1, 0.0, 0.2, -1.0]))
        net[2].weight.copy_(torch.tensor([[1., -1., 0.5, 0.], [-1., -1., -1., 0.],
                                          [0.3, 0.2, 1., 2.]]))
        net[2].bias.copy_(torch.tensor([0.0, -0.5, 0.1]))
        net[4].weight.copy_(torch.tensor([[1., 0., -1.], [0.5, 1., 0.]]))
    return net


def numpy_acts(net: nn.Sequential, x: np.ndarray) -> list[np.ndarray]:
    ws = [(m.weight.detach().double().numpy(), m.bias.detach().double().numpy())
          for m in net if isinstance(m, nn.Linear)]
    h1 = np.maximum(x @ ws[0][0].T + ws[0][1], 0)
    h2 = np.maximum(h1 @ ws[1][0].T + ws[1][1], 0)
    return [h1, h2]


X = torch.tensor(np.random.default_rng(0).normal(size=(50, 3)), dtype=torch.float32)


def test_dead_units_match_numpy():
    net = hand_net()
    got = dead_unit_fraction(net, X)
    want = [float((a <= 1e-8).all(axis=0).mean()) for a in numpy_acts(net, X.double().numpy())]
    assert got["layers"] == ["1", "3"]
    np.testing.assert_allclose(got["fraction"], want)
    assert got["fraction"][0] == 0.25


def test_overlap_matches_numpy():
    net = hand_net()
    got = overlap(net)
    assert got["layers"] == ["0", "2"]
    for k, m in enumerate((net[0], net[2])):
        w = m.weight.detach().double().numpy()
        norms = np.linalg.norm(w, axis=1)
        wn = w / np.where(norms > 0, norms, 1)[:, None]
        c = np.abs(wn @ wn.T)
        n = len(w)
        maxes = [max(c[i, j] for j in range(n) if j != i) for i in range(n)]
        pairs = [c[i, j] > 0.95 for i in range(n) for j in range(i + 1, n)]
        assert np.isclose(got["mean_max_cos"][k], np.mean(maxes))
        assert np.isclose(got["frac_pairs_above"][k], np.mean(pairs))
    assert got["frac_pairs_above"][0] == pytest.approx(1 / 6)   # the one parallel pair


def test_participation_ratio_matches_numpy():
    net = hand_net()
    got = participation_ratio(net, X)
    for a, pr, sv in zip(numpy_acts(net, X.double().numpy()), got["ratio"], got["singular_values"]):
        lam = np.linalg.eigvalsh(np.cov(a, rowvar=False))
        assert np.isclose(pr, lam.sum() ** 2 / (lam ** 2).sum() / a.shape[1], rtol=1e-5)
        s = np.linalg.svd(a - a.mean(0), compute_uv=False)
        np.testing.assert_allclose(sv, s, rtol=1e-4, atol=1e-5)
    # Layer 1 has a dead unit and a unit that is a multiple of another: rank ≤ 2 of 4.
    assert got["ratio"][0] <= 0.5


def test_hooks_removed_and_mode_restored():
    net = build_model(ExperimentSpec(depth=4, width=8)).train()
    x = torch.randn(16, 1, 8, 8)
    d, p, o = dead_unit_fraction(net, x), participation_ratio(net, x), overlap(net)
    assert net.training
    assert all(not m._forward_hooks for m in net.modules())
    # MLP: one activation per block plus the head's; one weight layer each feeding them.
    assert len(d["layers"]) == len(p["layers"]) == len(o["layers"]) == 5
    assert d["layers"][0] == "blocks.0.branch.act1" and d["layers"][-1] == "head.act"
    assert o["layers"][0] == "stem.fc" and o["layers"][-1] == "blocks.3.branch.fc1"


def test_cnn_units_are_channels():
    net = build_model(ExperimentSpec(model="cnn", depth=8, width=4))
    x = torch.randn(6, 1, 8, 8)
    acts = collect_activations(net, x)
    assert len(acts) == 7                        # stem + (branch act1, post) per block
    for (_, a), sv in zip(acts, participation_ratio(net, x)["singular_values"]):
        channels = a.shape[1]
        assert len(sv) == channels
    assert [a.shape[1] for _, a in acts] == [4, 4, 4, 8, 8, 16, 16]
    assert [a.shape[0] for _, a in acts] == [6 * 64] * 3 + [6 * 16] * 2 + [6 * 4] * 2
    assert all(0 <= f <= 1 for f in dead_unit_fraction(net, x)["fraction"])


def test_hessian_matches_autograd_and_is_symmetric():
    torch.manual_seed(1)
    net = build_model(ExperimentSpec(depth=2, width=3), input_shape=(2,), n_classes=3)
    x, y = torch.randn(20, 2), torch.randint(0, 3, (20,))
    net.train()
    net(x)                                   # non-trivial BN running statistics; stays in train mode
    h = hessian_matrix(net, x, y, chunk=7)
    assert net.training
    params = list(net.parameters())
    shapes, sizes = [p.shape for p in params], [p.numel() for p in params]
    net.eval()

    def loss(flat):
        parts = [t.view(s) for t, s in zip(torch.split(flat, sizes), shapes)]
        out = torch.func.functional_call(net, {n: t for (n, _), t in
                                               zip(net.named_parameters(), parts)}, (x,))
        return F.cross_entropy(out, y)
    flat = torch.cat([p.detach().flatten() for p in params])
    want = torch.autograd.functional.hessian(loss, flat)
    torch.testing.assert_close(h, want, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(h, h.T, rtol=1e-4, atol=1e-6)
    eigs = hessian_spectrum(net, x, y)
    np.testing.assert_allclose(eigs, np.linalg.eigvalsh(((want + want.T) / 2).double().numpy()),
                               atol=1e-5)


def test_hessian_refuses_big_nets_with_a_sentence():
    net = build_model(ExperimentSpec(depth=4, width=32))
    with pytest.raises(ValueError, match="parameters, more than the limit of 100"):
        hessian_matrix(net, torch.randn(4, 64), torch.zeros(4, dtype=torch.long), max_params=100)


def test_near_zero_fraction():
    assert near_zero_fraction([10.0, -5.0, 1e-3, -1e-4, 0.0]) == 0.6
    assert near_zero_fraction([10.0, 0.5], tol=0.1) == 0.5
    assert near_zero_fraction([]) == 0.0 and near_zero_fraction([0.0, 0.0]) == 1.0


def test_report_is_json_safe(digits):
    x, y = digits[0][:400], digits[1][:400]
    small = build_model(ExperimentSpec(depth=2, width=4))
    n_params = sum(p.numel() for p in small.parameters())           # 374
    rep = singularity_report(small, x, y)
    json.dumps(rep)
    assert rep["hessian"]["n_params"] == n_params and rep["hessian"]["examples"] == 256
    # Never fewer than 2P/(classes-1) examples: the Gauss-Newton rank could fake zeros.
    few = singularity_report(small, x, y, hessian_examples=10)
    assert few["hessian"]["examples"] == -(-2 * n_params // 9)
    big = singularity_report(build_model(ExperimentSpec(depth=2, width=64)), x[:64], y[:64],
                             max_params=500)
    assert big["hessian"] is None and "limit of 500" in big["hessian_error"]
    json.dumps(big)


def test_plain_net_shows_more_singularity_signatures(digits):
    """Orhan & Pitkow at digits scale: depth-16 width-6 MLP (1336 params), 300 SGD steps.

    Measured over seeds 0-5 (Hessian on 256 examples): dead units plain 8-13% vs residual 0;
    mean participation ratio plain 0.24-0.27 vs 0.58-0.71; near-zero Hessian eigenvalues
    (|λ| ≤ 1e-3 max) plain 0.84-1.00 vs 0.61-0.70; mean max |cos| of incoming weights plain
    0.62-0.72 vs 0.58-0.64 (the weakest: smallest gap 0.03; reversed once at depth 12).
    """
    x, y = digits
    for seed in range(3):
        m = {}
        for kind in ("none", "identity"):
            net = train(ExperimentSpec(depth=16, width=6, shortcut=kind, seed=seed), x, y)
            m[kind] = (np.mean(dead_unit_fraction(net, x)["fraction"]),
                       np.mean(participation_ratio(net, x)["ratio"]),
                       np.mean(overlap(net)["mean_max_cos"]),
                       near_zero_fraction(hessian_spectrum(net, x[:256], y[:256])))
        (pd, pp, po, ph), (rd, rp, ro, rh) = m["none"], m["identity"]
        assert pd > 0.03 and rd == 0.0, m
        assert pp < rp - 0.2, m
        assert ph > rh + 0.1, m
        assert po > ro + 0.01, m
