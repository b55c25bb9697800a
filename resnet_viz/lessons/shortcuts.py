"""Lesson 10: option A vs option B shortcuts (zero-padding vs projection).

He et al. 2016 (arXiv:1512.03385) §3.3 and Table 3: where a block changes shape (stride 2,
twice the channels) the shortcut must change shape too. Option A: identity, subsampled, with
zero-padded extra channels — no parameters, so the ResNet has exactly its plain twin's
parameters. Option B: a 1×1 projection (+BN) there only. ImageNet top-1 error (10-crop),
34 layers: plain 28.54%, A 25.03%, B 24.52%, C (all projections) 24.19%: "B is slightly
better than A ... projection shortcuts are not essential for addressing the degradation problem".

This is the one lesson that needs the CNN (the MLP never changes shape): He et al.'s §4.2
CIFAR net, small, on 8×8 digits.
"""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from resnet_viz.figures import style
from resnet_viz.figures.style import base_layout, colour_for, label_for
from resnet_viz.figures.training import loss_curves
from resnet_viz.nets.models import build_model, count_params
from resnet_viz.spec import ExperimentSpec
from resnet_viz.lessons.base import Claim, Lesson, Param, Prediction, Runs, final, fmt, mean, run_of, specs_cost_s, std

KINDS = ("none", "identity", "projection")


def _spec(p: dict[str, Any], kind: str, seed: int) -> ExperimentSpec:
    return ExperimentSpec(model="cnn", dataset="digits", depth=p["depth"], width=p["width"],
                          shortcut=kind, steps=p["steps"], seed=seed)


def specs(p: dict[str, Any]) -> list[ExperimentSpec]:
    return [_spec(p, k, s) for s in p["seeds"] for k in KINDS]


def analyse(p: dict[str, Any], runs: Runs, progress=None) -> dict[str, Any]:
    rows = {k: [run_of(runs, _spec(p, k, s))[0] for s in p["seeds"]] for k in KINDS}
    out = {k: {m: [final(r, m) for r in v] for m in ("train_loss", "train_acc", "val_acc")}
           for k, v in rows.items()}
    params = {k: count_params(build_model(_spec(p, k, p["seeds"][0]))) for k in KINDS}
    keep = ("spec", "status", "step", "history")
    return {"per_seed": out, "params": params, "depth": p["depth"],
            "mean": {k: {m: mean(v) for m, v in d.items()} for k, d in out.items()},
            "std": {k: {m: std(v) for m, v in d.items()} for k, d in out.items()},
            "curves": [{k: rows[kind][0].get(k) for k in keep} for kind in KINDS]}


def _bars(result: dict[str, Any], metric: str, title: str, y: str, log: bool) -> go.Figure:
    fig = go.Figure(go.Bar(
        x=[f"{label_for(k)}<br>{result['params'][k]:,} params" for k in KINDS],
        y=[result["mean"][k][metric] * (1 if log else 100) for k in KINDS],
        error_y=dict(type="data", array=[result["std"][k][metric] * (1 if log else 100) for k in KINDS]),
        marker_color=[colour_for(k) for k in KINDS]))
    base_layout(fig, title, "", y)
    return style.log_axis(fig) if log else fig


def figures(result: dict[str, Any]) -> list[go.Figure]:
    return [_bars(result, "train_loss", "Final training loss (mean ± std over seeds)",
                  "training loss (nats, log scale)", True),
            _bars(result, "val_acc", "Validation accuracy (mean ± std over seeds)", "accuracy (%)", False),
            loss_curves(result["curves"], splits=("train",), log_y=True)]


def _verdict(result: dict[str, Any]) -> tuple[bool, bool]:
    m = {k: result["mean"][k]["train_loss"] for k in KINDS}
    both_better = max(m["identity"], m["projection"]) < 0.5 * m["none"]
    alike = max(m["identity"], m["projection"]) < 3 * min(m["identity"], m["projection"])
    return both_better, alike


def claim(result: dict[str, Any]) -> Claim:
    m, pc = result["mean"], result["params"]
    both_better, alike = _verdict(result)
    b_better = m["projection"]["train_loss"] < m["identity"]["train_loss"]
    return Claim(
        holds=both_better and alike and pc["identity"] == pc["none"],
        text=("Both shortcut options fix the plain net's optimisation; A and B end close, B (extra "
              "parameters) at most slightly better."),
        ours=(f"CNN depth {result['depth']}, final training loss (mean over seeds): plain "
              f"{fmt(m['none']['train_loss'])}, A {fmt(m['identity']['train_loss'])}, B "
              f"{fmt(m['projection']['train_loss'])}; validation accuracy "
              f"{100 * m['none']['val_acc']:.1f} / {100 * m['identity']['val_acc']:.1f} / "
              f"{100 * m['projection']['val_acc']:.1f}%; parameters {pc['none']:,} / "
              f"{pc['identity']:,} / {pc['projection']:,}"),
        paper=("He et al. 2016 Table 3 (ImageNet, 34 layers, top-1 error): plain 28.54%, A 25.03%, "
               "B 24.52%, C 24.19%: projections are 'not essential'."),
        note=("B ends lower than A here too, but by little: a trend at this scale." if b_better else
              "B does not beat A here: the paper's 0.5-point gap is below our seed noise."))


def outcome(result: dict[str, Any]) -> int:
    both_better, alike = _verdict(result)
    return 0 if both_better and alike else 1 if both_better else 2


LESSON = Lesson(
    name="shortcuts",
    title="Option A vs option B: zero-padding or projection?",
    papers=("He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016 (arXiv:1512.03385)",),
    paper_figures=("He et al. 2016, Table 3", "He et al. 2016, §3.3"),
    text=("A CNN halves its feature maps and doubles its channels between stages, so there the "
          "input x no longer matches F(x) and the shortcut must change shape. **Option A** keeps "
          "it parameter-free: subsample x and pad the new channels with zeros. **Option B** "
          "learns a 1×1 projection there (and only there).\n\n"
          "We train a small CNN three ways — plain, option A, option B — with the same initial "
          "weights and batches, and count the parameters each option costs."),
    prediction=Prediction(
        question="How do the two shortcut options compare?",
        options=("Both beat plain by far; A and B end close",
                 "Only B (with its projection) beats plain",
                 "Neither beats plain at this depth"),
        expected=0),
    params=(Param("depth", 20, "CNN depth 6n+2 (8, 14, 20, 26, ...)", 8, 56),
            Param("width", 8, "stage-1 filters (then 2x, 4x)", 4, 32),
            Param("seeds", (0, 1), "random seeds", 0, 10_000, 4),
            Param("steps", 200, "SGD steps per run", 1, 5000)),
    specs=specs, analyse=analyse, figures=figures, claim=claim, outcome=outcome,
    estimate_s=lambda p: specs_cost_s(specs(p)) + 0.5,
)
