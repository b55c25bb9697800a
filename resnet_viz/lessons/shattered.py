"""Lesson 5: shattered gradients — df/dx of deep plain nets is white noise, of ResNets brown.

Balduzzi et al. 2017 (arXiv:1702.08591): feed a 1-D input grid (256 points in [−2, 2]) to a
width-200 ReLU net with BN and look at the gradient of the output with respect to the input.
Theorem 1: in a plain net the correlation between the gradients at nearby points decays like
2^−L with depth L (white noise: their Fig. 1, 24 layers). Theorem 3: with skip connections
and BN, only like 1/(β·√L) (brown noise: their Fig. 1, 50-layer ResNet); a small branch scale
β keeps gradients smoother still. Their Fig. 2: autocorrelation for several depths.

No training: the nets are analysed at initialisation (``resnet_viz.analysis.shatter``: BN statistics computed
on the grid, then frozen, so each point is an independent input). Pitfall (science.md):
without normalisation the effect disappears — the ``norm`` setting lets students see that.
The "looks linear" extra (Balduzzi et al. §5): CReLU units with mirrored weights [W, −W]
make the net exactly linear at init, so df/dx is constant at any depth.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from resnet_viz.analysis import shatter
from resnet_viz.figures.shatter import autocorrelation_figure, correlation_heatmap, gradient_figure, lag1_depth_figure
from resnet_viz.spec import ExperimentSpec
from resnet_viz.lessons.base import Claim, Lesson, Param, Prediction, Runs, fmt

FLAT_REL = 1e-6   # a gradient whose relative variation is below this is constant: lag-1 = 1


def _spec(p: dict[str, Any], depth: int, kind: str, beta: float, seed: int) -> ExperimentSpec:
    return ExperimentSpec(model="mlp", dataset="grid1d", width=p["width"], depth=depth,
                          shortcut=kind, residual_scale=beta, norm=p["norm"], seed=seed)


def specs(p: dict[str, Any]) -> list[ExperimentSpec]:
    return []   # analysed at initialisation: nothing to train


def lag1_table(p: dict[str, Any], progress=None) -> dict[str, Any]:
    """``shatter.lag1_vs_depth`` for this lesson's ``norm`` and β values: the page, the
    lesson and the CLI draw the same curves and the same theory rates."""
    return shatter.lag1_vs_depth(p["depths"], betas=p["betas"], seeds=p["seeds"], width=p["width"],
                                 n=p["points"], norm=p["norm"], progress=progress)


class LooksLinear(nn.Module):
    """1-D input, ``depth`` layers of BN → CReLU → Linear(2w, w) with weights [W, −W].

    W·relu(z) − W·relu(−z) = W·z, so at initialisation the whole net is linear (Balduzzi et
    al. 2017 §5, "looks linear" initialisation) and its gradient is the same everywhere.
    """

    def __init__(self, width: int, depth: int, seed: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.inp = nn.Linear(1, width)
        self.norms = nn.ModuleList(nn.BatchNorm1d(width) for _ in range(depth))
        self.lins = nn.ModuleList(nn.Linear(2 * width, width) for _ in range(depth))
        self.out = nn.Linear(width, 2)
        with torch.no_grad():
            for lin in [self.inp, *self.lins, self.out]:
                lin.bias.zero_()
            self.inp.weight.normal_(0, 1, generator=gen)
            self.out.weight.normal_(0, width ** -0.5, generator=gen)
            for lin in self.lins:
                w0 = torch.randn(width, width, generator=gen) * width ** -0.5
                lin.weight.copy_(torch.cat([w0, -w0], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for norm, lin in zip(self.norms, self.lins):
            z = norm(h)
            h = lin(torch.cat([torch.relu(z), torch.relu(-z)], dim=1))   # CReLU
        return self.out(h)


def looks_linear_lag1(width: int, depth: int, seed: int, n: int) -> float:
    g = shatter.input_gradients(LooksLinear(width, depth, seed), shatter.make_grid(n)).double().numpy()
    if g.std() <= FLAT_REL * max(abs(g.mean()), 1e-30):
        return 1.0   # constant up to round-off: perfectly correlated, not noise
    return float(shatter.autocorrelation(g, 1)[1])


def _slim(report: dict[str, Any], keep_corr: bool) -> dict[str, Any]:
    drop = () if keep_corr else ("corr_matrix", "corr_x")
    return {k: v for k, v in report.items() if k not in drop}


def analyse(p: dict[str, Any], runs: Runs, progress=None) -> dict[str, Any]:
    table = lag1_table(p, progress)
    lo, hi, s0, n = min(p["depths"]), max(p["depths"]), p["seeds"][0], p["points"]
    examples = [(lo, "none", 1.0, False), (p["plain_depth"], "none", 1.0, True),
                (hi, "identity", 1.0, True), (hi, "identity", float(min(p["betas"])), False)]
    reports = [_slim(shatter.shatter_report(_spec(p, d, k, b, s0), n=n), corr)
               for d, k, b, corr in examples]
    ll = [looks_linear_lag1(p["width"], hi, s, n) for s in p["seeds"]]
    return {"table": table, "examples": reports, "plain_depth": p["plain_depth"],
            "looks_linear": {"depth": hi, "lag1": ll, "mean": float(np.mean(ll))}}


def figures(result: dict[str, Any]) -> list:
    ex = result["examples"]
    refs = shatter.noise_references(len(ex[0]["gradients"]))
    return [gradient_figure(ex, references=refs), autocorrelation_figure(ex, references=refs, max_lag=40),
            lag1_depth_figure(result["table"]),
            correlation_heatmap(ex[1]["corr_matrix"], ex[1]["corr_x"], label="plain"),
            correlation_heatmap(ex[2]["corr_matrix"], ex[2]["corr_x"], label="ResNet")]


def _numbers(result: dict[str, Any]) -> dict[str, float]:
    r = result["examples"]
    return {"plain_shallow": r[0]["lag1"], "plain_deep": r[1]["lag1"], "resnet": r[2]["lag1"],
            "scaled": r[3]["lag1"], **_means(result)}


def _means(result: dict[str, Any]) -> dict[str, float]:
    t = result["table"]
    deep = t["depths"].index(max(t["depths"]))
    pd = min(range(len(t["depths"])), key=lambda i: abs(t["depths"][i] - result["plain_depth"]))
    plain = next(c for c in t["curves"] if c["kind"] == "none")
    res = [c for c in t["curves"] if c["kind"] == "identity"]
    one = next((c for c in res if c["beta"] == 1.0), res[0])
    small = min(res, key=lambda c: c["beta"])
    return {"m_plain_deep": plain["mean"][pd], "m_resnet": one["mean"][deep],
            "m_scaled": small["mean"][deep], "beta": small["beta"]}


def _verdict(result: dict[str, Any]) -> bool:
    m = _means(result)
    # Thresholds from science.md's measurements: plain-24 ≈ 0 (white), ResNet-50 > 0.5.
    return m["m_plain_deep"] < 0.2 and m["m_resnet"] > 0.5 and m["m_scaled"] >= m["m_resnet"]


def claim(result: dict[str, Any]) -> Claim:
    m, t = _means(result), result["table"]
    return Claim(
        holds=_verdict(result),
        text=("Deep plain nets' input gradients are white noise; ResNets' stay correlated (brown), "
              "more so with a small branch scale β."),
        ours=(f"lag-1 autocorrelation of df/dx, mean over {len(t['seeds'])} seeds (white noise ≈ 0 "
              f"± {t['noise_floor']:.2f}, brown ≈ 1): plain depth {result['plain_depth']} "
              f"{fmt(m['m_plain_deep'], 2)}; ResNet depth {max(t['depths'])} {fmt(m['m_resnet'], 2)}; "
              f"β={m['beta']:g} {fmt(m['m_scaled'], 2)}; looks-linear depth "
              f"{result['looks_linear']['depth']} {fmt(result['looks_linear']['mean'], 2)}"),
        paper=("Balduzzi et al. 2017 Fig. 1-2: 24-layer plain ≈ white noise, 50-layer ResNet ≈ brown "
               "noise; Theorem 1: correlation ~2^-L (plain), Theorem 3: ~1/(β√L) (ResNet + BN)."),
        note=("" if _verdict(result) else
              "Not seen with these settings. Without normalisation (norm = none) the net is "
              "positively homogeneous and does not shatter (science.md)."))


def outcome(result: dict[str, Any]) -> int:
    m = _means(result)
    if _verdict(result):
        return 0
    return 1 if m["m_plain_deep"] >= 0.2 and m["m_resnet"] > 0.5 else 2


LESSON = Lesson(
    name="shattered",
    title="Shattered gradients: white noise vs brown noise",
    papers=("Balduzzi, Frean, Leary, Lewis, Ma, McWilliams. The Shattered Gradients Problem: If "
            "resnets are the answer, then what is the question? ICML 2017 (arXiv:1702.08591)",),
    paper_figures=("Balduzzi et al. 2017, Fig. 1", "Balduzzi et al. 2017, Fig. 2",
                   "Balduzzi et al. 2017, Theorems 1 and 3"),
    text=("Give a net a single number x as input and plot how its output changes with x: the "
          "gradient df/dx over 256 points in [−2, 2]. Training relies on gradients at nearby "
          "inputs being similar. In a shallow net they are: the curve is smooth.\n\n"
          "Balduzzi et al. showed that in deep **plain** nets (ReLU + BN) the gradient becomes "
          "**white noise** — neighbouring points are uncorrelated — while **ResNets** keep it like "
          "**brown noise** (a random walk, correlated), and scaling each branch by a small β keeps "
          "it smoother still. We measure the lag-1 autocorrelation (1 = smooth, 0 = white noise) "
          "at initialisation over several depths and seeds, beside the theory's 2^−L and 1/(β√L)."),
    prediction=Prediction(
        question="At depth 24 (plain) and 50 (ResNet), what do the input gradients look like?",
        options=("Plain: white noise; ResNet: still correlated (brown)",
                 "Both still smooth",
                 "Both white noise"),
        expected=0),
    params=(Param("depths", (1, 4, 12, 24, 50), "depths (hidden layers)", 1, 200, 8),
            Param("betas", (1.0, 0.1), "branch scales β of the ResNets", 0.01, 2.0, 3),
            Param("seeds", (0, 1, 2), "random seeds (the expectation over weights)", 0, 10_000, 8),
            Param("width", 200, "units per layer (Balduzzi et al.: 200)", 8, 512),
            Param("points", 256, "grid points in [-2, 2]", 32, 1024),
            Param("plain_depth", 24, "plain depth shown as an example (paper: 24)", 1, 200),
            Param("norm", "batch", "batch, or none to see the pitfall", choices=("batch", "none"))),
    specs=specs, analyse=analyse, figures=figures, claim=claim, outcome=outcome,
    # ~2.5 ms per layer of a width-200 net on 256 points, per seed and curve (measured).
    estimate_s=lambda p: 1.0 + 2.5e-3 * (p["width"] / 200) ** 2 * (p["points"] / 256) * (
        sum(p["depths"]) * len(p["seeds"]) * (1 + len(p["betas"])) + 3 * max(p["depths"])),
)
