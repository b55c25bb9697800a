"""Lesson 7: highway (gated) vs identity shortcuts vs plain, and what the gates learn.

Srivastava, Greff, Schmidhuber 2015 (Highway networks, arXiv:1505.00387 / 1507.06228):
y = T(x)·H(x) + (1 − T(x))·x with a learned gate T = σ(W_T x + b_T), b_T negative at init so
blocks start by carrying their input. He et al. 2016 (arXiv:1512.03385) §2 and Table 6 argue
that parameter-free identity shortcuts are never closed and do better (CIFAR-10: Highway-19
7.54% vs ResNet-110 6.43% test error).

Gate values are read through each block's ``gate_out`` tap (``resnet_viz.nets.blocks``) on training data,
in eval mode. "Over training" uses runs of the same spec stopped early: with the constant
learning rate, a run of k steps is exactly the first k steps of the full run (same seed, same
batches), and each is shared through the job queue like any other run.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from resnet_viz.figures import style
from resnet_viz.figures.style import GATED, base_layout, colour_for, label_for
from resnet_viz.figures.training import loss_curves
from resnet_viz.nets.models import build_model
from resnet_viz.lessons.base import (Claim, Lesson, Param, Prediction, Runs, digits_mlp, final, fmt, mean, run_of,
                   specs_cost_s, split, std)

KINDS = ("none", "identity", "gated")
BINS = np.linspace(0.0, 1.0, 21)
N_READ = 512   # training examples the gates are read on


def _spec(p: dict[str, Any], kind: str, seed: int, steps: int | None = None):
    return digits_mlp(depth=p["depth"], shortcut=kind, gate_bias=p["gate_bias"],
                      steps=steps or p["steps"], seed=seed)


def _checkpoints(p: dict[str, Any]) -> list[int]:
    return sorted({c for c in p["checkpoints"] if 0 <= c < p["steps"]} | {p["steps"]})


def specs(p: dict[str, Any]) -> list:
    main = [_spec(p, k, s) for s in p["seeds"] for k in KINDS]
    early = [_spec(p, "gated", p["seeds"][0], c) for c in _checkpoints(p) if 0 < c < p["steps"]]
    return main + early


@torch.no_grad()
def gate_values(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """T(x) of every block, via the ``gate_out`` taps: one (N, width) tensor per block."""
    seen: list[torch.Tensor] = []
    hooks = [b.gate_out.register_forward_hook(lambda m, i, o: seen.append(o.detach().cpu()))
             for b in model.blocks]
    was = model.training
    model.eval()
    try:
        model(x.to(next(model.parameters()).device))
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return seen


def gate_summary(model: torch.nn.Module, x: torch.Tensor) -> dict[str, Any]:
    gates = gate_values(model, x)
    flat = torch.cat([g.flatten() for g in gates]).double().numpy()
    hist, _ = np.histogram(flat, bins=BINS)
    return {"mean": float(flat.mean()), "per_block": [float(g.mean()) for g in gates],
            "saturated": float(((flat < 0.05) | (flat > 0.95)).mean()),
            "hist": (hist / max(1, flat.size)).tolist()}


def analyse(p: dict[str, Any], runs: Runs, progress=None) -> dict[str, Any]:
    seed = p["seeds"][0]
    x = split(_spec(p, "gated", seed))[0][:N_READ]
    over_training = []
    for c in _checkpoints(p):
        model = build_model(_spec(p, "gated", seed)) if c == 0 else run_of(runs, _spec(p, "gated", seed, c))[1]
        over_training.append({"step": c, **gate_summary(model, x)})
    losses = {k: [final(run_of(runs, _spec(p, k, s))[0]) for s in p["seeds"]] for k in KINDS}
    keep = ("spec", "status", "step", "history")
    curves = [{k: run_of(runs, _spec(p, kind, seed))[0].get(k) for k in keep} for kind in KINDS]
    return {"losses": losses, "mean": {k: mean(v) for k, v in losses.items()},
            "std": {k: std(v) for k, v in losses.items()}, "gates": over_training,
            "bins": BINS.tolist(), "curves": curves, "depth": p["depth"], "gate_bias": p["gate_bias"]}


def _shade(i: int, n: int) -> dict[str, Any]:
    """Highway green throughout; later checkpoints thicker and more opaque."""
    t = i / max(1, n - 1)
    return {"line": dict(color=GATED, width=1 + 2 * t), "opacity": 0.35 + 0.65 * t}


def _gate_histograms(result: dict[str, Any]) -> go.Figure:
    centres = [(a + b) / 2 for a, b in zip(result["bins"][:-1], result["bins"][1:])]
    gates = result["gates"]
    fig = go.Figure([go.Scatter(x=centres, y=[100 * h for h in g["hist"]], mode="lines+markers",
                                name=f"step {g['step']} (mean {g['mean']:.2f})", **_shade(i, len(gates)))
                     for i, g in enumerate(gates)])
    return base_layout(fig, "Highway gate values T(x) over training (darker = later)",
                       "gate value T (0 = carry x, 1 = transform)", "share of gate values (%)")


def _per_block(result: dict[str, Any]) -> go.Figure:
    gates = result["gates"]
    fig = go.Figure([go.Scatter(y=g["per_block"], mode="lines+markers", name=f"step {g['step']}",
                                **_shade(i, len(gates))) for i, g in enumerate(gates)])
    return base_layout(fig, "Mean gate value of each block (darker = later)", "block (0 = input side)",
                       "mean T(x) over units and examples")


def _final_losses(result: dict[str, Any]) -> go.Figure:
    fig = go.Figure(go.Bar(x=[label_for(k) for k in KINDS], y=[result["mean"][k] for k in KINDS],
                           error_y=dict(type="data", array=[result["std"][k] for k in KINDS]),
                           marker_color=[colour_for(k) for k in KINDS]))
    base_layout(fig, f"Final training loss at depth {result['depth']} (mean ± std over seeds)",
                "", "training loss (cross-entropy, nats, log scale)")
    return style.log_axis(fig)


def figures(result: dict[str, Any]) -> list[go.Figure]:
    return [_final_losses(result), loss_curves(result["curves"], splits=("train",), log_y=True),
            _gate_histograms(result), _per_block(result)]


def claim(result: dict[str, Any]) -> Claim:
    m, g = result["mean"], result["gates"]
    holds = m["identity"] <= m["gated"]
    close = holds and m["gated"] < 2 * m["identity"] + 0.01
    return Claim(
        holds=holds,
        text="Parameter-free identity shortcuts train at least as well as learned (highway) gates.",
        ours=(f"depth {result['depth']}, gate bias {result['gate_bias']:g}: final training loss plain "
              f"{fmt(m['none'])}, identity {fmt(m['identity'])}, highway {fmt(m['gated'])} (mean over "
              f"seeds); mean gate {g[0]['mean']:.2f} at step {g[0]['step']} → {g[-1]['mean']:.2f} at "
              f"step {g[-1]['step']}, {100 * g[-1]['saturated']:.0f}% of gates saturated (<0.05 or >0.95)"),
        paper=("He et al. 2016 Table 6 (CIFAR-10 test error): Highway-19 7.54% vs ResNet-110 6.43%; "
               "Srivastava et al. 2015 train highway nets with gate bias -1 to -3."),
        note="The two are close at this gate bias: weak at this scale." if close else "")


def outcome(result: dict[str, Any]) -> int:
    m = result["mean"]
    if m["identity"] <= m["gated"]:
        return 0 if m["gated"] >= 2 * m["identity"] + 0.01 else 1
    return 2


LESSON = Lesson(
    name="highway",
    title="Highway vs identity: do shortcuts need gates?",
    papers=("Srivastava, Greff, Schmidhuber. Training Very Deep Networks (Highway networks). "
            "NeurIPS 2015 (arXiv:1507.06228)",
            "He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016 (arXiv:1512.03385)"),
    paper_figures=("He et al. 2016, Table 6", "Srivastava et al. 2015, Fig. 2"),
    text=("Highway networks came first: each block mixes its transform H(x) and its input x with "
          "a learned gate, y = T(x)·H(x) + (1 − T(x))·x. The gate starts mostly closed "
          "(negative bias: carry x) and is learned. ResNets drop the gate: y = F(x) + x, "
          "a shortcut that is never closed and has no parameters.\n\n"
          "We train plain, identity (ResNet) and gated (Highway) nets of the same depth, and read "
          "every gate value T(x) at several points of training. Try other gate biases: "
          "Srivastava et al. used −1 to −3."),
    prediction=Prediction(
        question="Which shortcut reaches the lower training loss?",
        options=("Identity: clearly lower than highway", "About the same", "Highway: its gates help"),
        expected=0),
    params=(Param("depth", 24, "hidden layers", 2, 110),
            Param("seeds", (0, 1), "random seeds", 0, 10_000, 5),
            Param("steps", 300, "SGD steps per run", 1, 5000),
            Param("gate_bias", -1.0, "gate bias at init (negative = carry)", -10.0, 10.0),
            Param("checkpoints", (0, 30, 100), "steps at which the gates are also read", 0, 5000, 6)),
    specs=specs, analyse=analyse, figures=figures, claim=claim, outcome=outcome,
    estimate_s=lambda p: specs_cost_s(specs(p)) + 0.5,
)
