"""Lesson 9: the loss landscape with and without shortcuts (filter-normalised slices).

Li, Xu, Taylor, Studer, Goldstein 2018 (arXiv:1712.09913): L(θ + αδ + βη) around trained
weights θ, along random Gaussian directions rescaled filter by filter to θ's norms (§4), so
nets of different weight scales are comparable. ResNet-56 without skip connections has a
chaotic, non-convex surface; with them it is smooth and nearly convex (their Fig. 5; test
error 56 layers: 5.89% with skips, 13.31% without).

Analysis: ``analysis/landscape.py`` on the training split (Li et al. plot the training loss),
BN in eval mode. The 2-D grid is the slow part: the page shows an estimate first and a progress
bar while it runs.
"""
from __future__ import annotations

from typing import Any

from resnet_viz.analysis.landscape import convexity_ratio, loss_surface_1d, loss_surface_2d, slice_sharpness
from resnet_viz.figures.landscape import loss_contour_figure, loss_slice_figure, loss_surface_figure
from resnet_viz.lessons.base import (Claim, Lesson, Param, Prediction, Runs, digits_mlp, fmt, mean, run_of,
                   specs_cost_s, split)

KINDS = ("none", "identity")
SECONDS_PER_POINT_LAYER = 1.3e-4   # one full-train-set evaluation per grid point (measured)


def _spec(p: dict[str, Any], kind: str, seed: int):
    return digits_mlp(depth=p["depth"], shortcut=kind, steps=p["steps"], seed=seed)


def specs(p: dict[str, Any]) -> list:
    return [_spec(p, k, s) for s in p["seeds"] for k in KINDS]


def sharpness_radius(p: dict[str, Any]) -> float:
    """A quarter of the span, but at least one step of the 1-D slice."""
    return max(p["span"] / 4, 2 * p["span"] / (p["slice_points"] - 1))


def _points(p: dict[str, Any]) -> int:
    return p["grid"] ** 2 + p["slice_points"]


def analyse(p: dict[str, Any], runs: Runs, progress=None) -> dict[str, Any]:
    jobs = [(s, k) for s in p["seeds"] for k in KINDS]
    per_seed: dict[str, list[dict[str, float]]] = {k: [] for k in KINDS}
    shown: dict[str, dict[str, Any]] = {}
    for j, (seed, kind) in enumerate(jobs):
        model = run_of(runs, _spec(p, kind, seed))[1]
        x, y = split(_spec(p, kind, seed))

        def tick(done: int, total: int, j: int = j, kind: str = kind) -> None:
            if progress:
                progress((j + done / total) / len(jobs), f"{kind} seed {jobs[j][0]}: point {done}/{total}")

        one = loss_surface_1d(model, x, y, steps=p["slice_points"], span=p["span"], seed=seed)
        two = loss_surface_2d(model, x, y, steps=p["grid"], span=p["span"], seed=seed, progress=tick)
        per_seed[kind].append({"seed": seed, "sharpness": slice_sharpness(one, sharpness_radius(p)),
                               "nonconvex": convexity_ratio(two), "center_loss": two["center_loss"]})
        if seed == p["seeds"][0]:
            shown[kind] = {"slice": one, "surface": two}
    summary = {k: {m: mean([r[m] for r in v]) for m in ("sharpness", "nonconvex", "center_loss")}
               for k, v in per_seed.items()}
    return {"per_seed": per_seed, "summary": summary, "shown": shown, "depth": p["depth"],
            "grid": p["grid"], "span": p["span"], "radius": sharpness_radius(p)}


def figures(result: dict[str, Any]) -> list:
    shown = result["shown"]
    figs = [loss_slice_figure({k: v["slice"] for k, v in shown.items()})]
    for k in KINDS:
        figs += [loss_surface_figure(shown[k]["surface"], kind=k),
                 loss_contour_figure(shown[k]["surface"], kind=k)]
    return figs


def _verdict(result: dict[str, Any]) -> bool:
    s = result["summary"]
    return (s["none"]["nonconvex"] > s["identity"]["nonconvex"] + 0.05
            and s["none"]["sharpness"] > 2 * s["identity"]["sharpness"])


def claim(result: dict[str, Any]) -> Claim:
    s, d = result["summary"], result["depth"]
    return Claim(
        holds=_verdict(result),
        text="Without shortcuts the loss surface is sharper and less convex; with them, smooth and nearly convex.",
        ours=(f"depth {d}, {result['grid']}×{result['grid']} grid, mean over seeds: share of non-convex "
              f"points plain {100 * s['none']['nonconvex']:.0f}% vs residual "
              f"{100 * s['identity']['nonconvex']:.0f}%; loss rise within |α| ≤ {result['radius']:.2g} "
              f"plain {fmt(s['none']['sharpness'])} vs residual {fmt(s['identity']['sharpness'])} nats "
              f"(training loss at θ: {fmt(s['none']['center_loss'])} vs {fmt(s['identity']['center_loss'])})"),
        paper=("Li et al. 2018 Fig. 5: ResNet-56 without skips chaotic and non-convex, with skips "
               "smooth and nearly convex; test error with/without skips 20 layers 7.37/8.18%, "
               "56: 5.89/13.31%, 110: 5.79/16.44%."),
        note="Non-convexity is measured on the 2-D slice only (a negative eigenvalue of its 2×2 "
             "Hessian), a conservative summary of Li et al.'s |λmin/λmax| curvature maps.")


def outcome(result: dict[str, Any]) -> int:
    if _verdict(result):
        return 0
    s = result["summary"]
    return 1 if abs(s["none"]["nonconvex"] - s["identity"]["nonconvex"]) <= 0.05 else 2


LESSON = Lesson(
    name="landscape",
    title="The loss landscape: chaotic without shortcuts",
    papers=("Li, Xu, Taylor, Studer, Goldstein. Visualizing the Loss Landscape of Neural Nets. "
            "NeurIPS 2018 (arXiv:1712.09913)",),
    paper_figures=("Li et al. 2018, Fig. 5", "Li et al. 2018, §4 (filter normalisation)"),
    text=("A net has thousands of weights, so its loss 'landscape' cannot be drawn directly. Li "
          "et al. walk away from the trained weights θ along two random directions δ and η and "
          "plot the training loss L(θ + αδ + βη). Each direction is **filter-normalised**: scaled, "
          "filter by filter, to the size of θ's own filters, so different nets are compared fairly.\n\n"
          "We train a plain and a residual net of the same depth and compute a 1-D slice and a "
          "2-D surface around each. Bigger grids look smoother but take longer: the page shows "
          "an estimate first."),
    prediction=Prediction(
        question="Around its trained weights, which net's loss surface is smoother and more bowl-like?",
        options=("The residual net's", "They look alike", "The plain net's"),
        expected=0),
    params=(Param("depth", 20, "hidden layers", 2, 110),
            Param("seeds", (0, 1), "random seeds (nets and directions)", 0, 10_000, 4),
            Param("steps", 300, "SGD steps per run", 1, 5000),
            Param("grid", 21, "points per axis of the 2-D surface", 5, 61),
            Param("span", 1.0, "the grid covers α, β in [-span, span]", 0.05, 5.0),
            Param("slice_points", 41, "points of the 1-D slice", 5, 201)),
    specs=specs, analyse=analyse, figures=figures, claim=claim, outcome=outcome,
    estimate_s=lambda p: specs_cost_s(specs(p)) + len(p["seeds"]) * len(KINDS) * _points(p)
    * (6e-4 + SECONDS_PER_POINT_LAYER * p["depth"]),
)
