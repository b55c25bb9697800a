"""Lesson 6: skip connections eliminate singularities (Orhan & Pitkow 2018).

Orhan, Pitkow 2018 (ICLR, arXiv:1701.09175): three singularities make the loss landscape
degenerate and slow learning — elimination (a unit that is never active), overlap (two units
with the same incoming weights) and linear dependence (units whose activities are linearly
dependent). Each gives the Hessian zero eigenvalues; skip connections break them, and trained
residual nets have fewer degenerate directions than plain ones (their Fig. 1 illustrates
the singularities; their experiments train fully connected nets on CIFAR-10/100).

Small nets (width 8, ~2000 parameters) so the *exact* Hessian fits in seconds; measures
from ``analysis/singularities.py`` on training examples, BN in eval mode.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from resnet_viz.analysis.singularities import singularity_report
from resnet_viz.figures.landscape import singularity_figures
from resnet_viz.lessons.base import (Claim, Lesson, Param, Prediction, Runs, digits_mlp, fmt, mean, run_of,
                   specs_cost_s, split)

KINDS = ("none", "identity")


def _spec(p: dict[str, Any], kind: str, seed: int):
    return digits_mlp(depth=p["depth"], width=p["width"], shortcut=kind, steps=p["steps"], seed=seed)


def specs(p: dict[str, Any]) -> list:
    return [_spec(p, k, s) for s in p["seeds"] for k in KINDS]


def _scalars(report: dict[str, Any]) -> dict[str, float]:
    h = report["hessian"] or {}
    return {"dead": float(np.mean(report["dead"]["fraction"])),
            "overlap": float(np.mean(report["overlap"]["mean_max_cos"])),
            "participation": float(np.mean(report["participation"]["ratio"])),
            "near_zero": float(h.get("near_zero_fraction", float("nan")))}


def analyse(p: dict[str, Any], runs: Runs, progress=None) -> dict[str, Any]:
    per_seed: dict[str, list[dict[str, float]]] = {k: [] for k in KINDS}
    shown: dict[str, Any] = {}
    jobs = [(s, k) for s in p["seeds"] for k in KINDS]
    for j, (seed, kind) in enumerate(jobs):
        if progress:
            progress(j / len(jobs), f"Hessian of the {'plain' if kind == 'none' else 'residual'} net, seed {seed}")
        x, y = split(_spec(p, kind, seed))
        report = singularity_report(run_of(runs, _spec(p, kind, seed))[1], x[:p["examples"]],
                                    y[:p["examples"]], max_params=p["max_params"])
        per_seed[kind].append({"seed": seed, **_scalars(report)})
        if seed == p["seeds"][0]:
            shown[kind] = report
    summary = {k: {m: mean([r[m] for r in v]) for m in ("dead", "overlap", "participation", "near_zero")}
               for k, v in per_seed.items()}
    return {"per_seed": per_seed, "summary": summary, "reports": shown,
            "depth": p["depth"], "width": p["width"]}


def figures(result: dict[str, Any]) -> list:
    return list(singularity_figures(result["reports"]).values())


def _verdict(result: dict[str, Any]) -> tuple[bool, bool]:
    s = result["summary"]
    plain, res = s["none"], s["identity"]
    cheap = res["dead"] <= plain["dead"] and res["participation"] > plain["participation"] + 0.1
    hessian = res["near_zero"] < plain["near_zero"]
    return cheap, hessian


def claim(result: dict[str, Any]) -> Claim:
    s = result["summary"]
    plain, res = s["none"], s["identity"]
    cheap, hessian = _verdict(result)
    weak = hessian and plain["near_zero"] - res["near_zero"] < 0.05
    return Claim(
        holds=cheap and hessian,
        text=("Skip connections remove singularities: fewer dead units, less linear dependence "
              "and fewer degenerate Hessian directions than the plain net."),
        ours=(f"depth {result['depth']}, width {result['width']}, mean over seeds, plain vs residual: "
              f"dead units {100 * plain['dead']:.1f}% vs {100 * res['dead']:.1f}%; participation ratio "
              f"{fmt(plain['participation'], 2)} vs {fmt(res['participation'], 2)}; near-zero Hessian "
              f"eigenvalues {100 * plain['near_zero']:.0f}% vs {100 * res['near_zero']:.0f}%; "
              f"weight overlap (max |cos|) {fmt(plain['overlap'], 2)} vs {fmt(res['overlap'], 2)}"),
        paper=("Orhan & Pitkow 2018: plain nets suffer elimination, overlap and linear-dependence "
               "singularities; skip connections break them and reduce the degeneracy of the "
               "Hessian (fully connected nets on CIFAR-10/100)."),
        note=("The Hessian difference is small at this scale (and a net at lower loss has a flatter "
              "Hessian, which works against the residual net here)." if weak or not hessian else ""))


def outcome(result: dict[str, Any]) -> int:
    cheap, hessian = _verdict(result)
    return 0 if cheap and hessian else 1 if cheap or hessian else 2


LESSON = Lesson(
    name="singularities",
    title="Skip connections eliminate singularities",
    papers=("Orhan, Pitkow. Skip Connections Eliminate Singularities. ICLR 2018 (arXiv:1701.09175)",),
    paper_figures=("Orhan & Pitkow 2018, Fig. 1 (the singularities)",
                   "Orhan & Pitkow 2018, experiments on CIFAR-10/100 (plain vs residual degeneracy)"),
    text=("Some directions in weight space change nothing: a unit that never fires "
          "(**elimination**), two units with the same incoming weights (**overlap**), units whose "
          "activities are linear combinations of each other (**linear dependence**). Along such "
          "directions the loss is flat, the Hessian has zero eigenvalues, and learning crawls.\n\n"
          "We train narrow plain and residual nets (small enough for the exact Hessian) and "
          "measure all four signatures: dead units, weight overlap, the participation ratio of "
          "each layer's activations (1 = all units independent) and the share of near-zero "
          "Hessian eigenvalues."),
    prediction=Prediction(
        question="Which trained net has more degenerate (flat) directions?",
        options=("The plain net", "About the same", "The residual net"),
        expected=0),
    params=(Param("depth", 16, "hidden layers", 2, 40),
            Param("width", 8, "units per layer (the Hessian grows as parameters²)", 4, 24),
            Param("seeds", (0, 1), "random seeds", 0, 10_000, 4),
            Param("steps", 300, "SGD steps per run", 1, 5000),
            Param("examples", 256, "training examples for the measures and the Hessian", 32, 1438),
            Param("max_params", 5000, "largest net for the exact Hessian", 100, 8000)),
    specs=specs, analyse=analyse, figures=figures, claim=claim, outcome=outcome,
    # The exact Hessian: ~P HVPs (linear in P each) plus an eigendecomposition (P³).
    estimate_s=lambda p: specs_cost_s(specs(p)) + len(p["seeds"]) * len(KINDS) * (
        1.0 + 3e-7 * (p["depth"] * (p["width"] ** 2 + 2 * p["width"]) + 74 * p["width"] + 10) ** 2),
)
