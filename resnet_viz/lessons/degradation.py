"""Lesson 1: degradation — deeper plain nets train *worse*; their residual twins do not.

He et al. 2016 (arXiv:1512.03385) §1 and Fig. 1 / Fig. 6: on CIFAR-10 the training error of
plain nets rises from 20 to 56 layers, which is not overfitting (it is the *training*
error) and not vanishing gradients alone (BN is on); the ResNet twins, identical but for
the identity shortcuts, improve with depth.
"""
from __future__ import annotations

from typing import Any

from resnet_viz.figures.training import depth_sweep, loss_curves
from resnet_viz.lessons.base import (Claim, Lesson, Param, Prediction, Runs, digits_mlp, final, fmt, mean,
                   run_of, specs_cost_s, std)

KINDS = ("none", "identity")


def specs(p: dict[str, Any]) -> list:
    return [digits_mlp(depth=d, width=p["width"], shortcut=k, steps=p["steps"], seed=s)
            for d in p["depths"] for k in KINDS for s in p["seeds"]]


def analyse(p: dict[str, Any], runs: Runs, progress=None) -> dict[str, Any]:
    """Final training loss per (depth, kind, seed), and its mean and spread over seeds."""
    rows = []
    for spec in specs(p):
        snap, _ = run_of(runs, spec)
        rows.append({"depth": spec.depth, "shortcut": spec.shortcut, "seed": spec.seed,
                     "train_loss": final(snap), "train_acc": final(snap, "train_acc"),
                     "val_acc": final(snap, "val_acc"), "status": snap.get("status")})
    summary = {k: {"depth": list(p["depths"]),
                   "mean": [mean([r["train_loss"] for r in rows if r["shortcut"] == k and r["depth"] == d])
                            for d in p["depths"]],
                   "std": [std([r["train_loss"] for r in rows if r["shortcut"] == k and r["depth"] == d])
                           for d in p["depths"]]} for k in KINDS}
    deep, seed = max(p["depths"]), p["seeds"][0]
    curves = [run_of(runs, digits_mlp(depth=deep, width=p["width"], shortcut=k, steps=p["steps"],
                                      seed=seed))[0] for k in KINDS]
    return {"rows": rows, "summary": summary,
            "curves": [{k: c[k] for k in ("spec", "history", "status", "step")} for c in curves]}


def figures(result: dict[str, Any]) -> list:
    return [depth_sweep(result["rows"], log_y=True),
            loss_curves(result["curves"], log_y=True,
                        title="The deepest pair, step by step (solid: train, dashed: validation)")]


def _ends(result: dict[str, Any], kind: str) -> tuple[float, float]:
    m = result["summary"][kind]["mean"]
    return m[0], m[-1]


def claim(result: dict[str, Any]) -> Claim:
    depths = result["summary"]["none"]["depth"]
    p0, p1 = _ends(result, "none")
    r0, r1 = _ends(result, "identity")
    # Degradation: the plain loss grows by a real margin (2x and 0.05 nats) with depth,
    # while the residual twin at the same depth stays well below it.
    degrades = p1 > 2 * p0 and p1 - p0 > 0.05
    holds = degrades and r1 < 0.5 * p1
    return Claim(
        holds=holds,
        text="Deeper plain nets reach a higher training loss; residual twins of the same depth do not.",
        ours=(f"final training loss, mean over seeds: plain {fmt(p0)} (depth {depths[0]}) → "
              f"{fmt(p1)} (depth {depths[-1]}); residual {fmt(r0)} → {fmt(r1)}"),
        paper=("He et al. 2016 Fig. 6 (CIFAR-10): plain-56 trains worse than plain-20, ResNet-56 better "
               "than ResNet-20; ImageNet top-1 val error plain-18 27.94% vs plain-34 28.54%, "
               "ResNet-18 27.88% vs ResNet-34 25.03% (Table 2)."),
        note="" if holds else "Not visible at these settings: try deeper plain nets or more steps.")


def outcome(result: dict[str, Any]) -> int:
    p0, p1 = _ends(result, "none")
    r0, r1 = _ends(result, "identity")
    if p1 > 2 * p0 and p1 - p0 > 0.05:
        return 0 if r1 < 0.5 * p1 else 1
    return 2


LESSON = Lesson(
    name="degradation",
    title="Degradation: deeper plain nets train worse",
    papers=("He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016 "
            "(arXiv:1512.03385)",),
    paper_figures=("He et al. 2016, Fig. 1", "He et al. 2016, Fig. 6", "He et al. 2016, Table 2"),
    text=("Adding layers should never hurt *training*: the extra layers could just copy their "
          "input. Yet He et al. found that deeper **plain** nets reach a *higher training "
          "loss* — not overfitting, an optimisation failure they called **degradation**.\n\n"
          "Here we train plain MLPs (with BN) of growing depth on 8×8 digits, each beside its "
          "**residual twin**: the same layers, the same initial weights, the same batches, plus "
          "identity shortcuts. Each point is the mean over seeds, the bar their spread."),
    prediction=Prediction(
        question="As the nets get deeper, what happens to the final *training* loss?",
        options=("Plain nets get worse with depth; residual nets do not",
                 "Both get worse with depth",
                 "Neither gets worse: more layers never hurt training"),
        expected=0),
    params=(Param("depths", (4, 16, 32), "hidden layers of each net", 1, 110, 6),
            Param("seeds", (0, 1, 2), "random seeds (the spread shows seed noise)", 0, 10_000, 5),
            Param("steps", 300, "SGD steps per run", 1, 5000),
            Param("width", 32, "units per hidden layer", 8, 256)),
    specs=specs, analyse=analyse, figures=figures, claim=claim, outcome=outcome,
    estimate_s=lambda p: specs_cost_s(specs(p)) + 1.0,
)
