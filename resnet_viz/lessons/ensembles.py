"""Lesson 8: ResNets behave like ensembles of relatively shallow paths.

Veit, Wilber, Belongie 2016 (arXiv:1605.06431): deleting one block of a trained ResNet at test
time barely changes its error, except the downsampling blocks, while deleting a layer of a
plain (VGG) net is catastrophic (their Fig. 3); removing several blocks degrades a ResNet
smoothly (Fig. 5a). n blocks give 2^n paths with binomially distributed lengths; the gradient
through a path falls exponentially with its length, so the paths that carry the gradient are
short (Fig. 6; ResNet-110: lengths 5-17, 0.45% of all paths).

Analyses: ``analysis/lesion.py`` and ``analysis/paths.py``, on the held-out split.
"""
from __future__ import annotations

from typing import Any

from resnet_viz.analysis.lesion import lesion_random_k, lesion_study
from resnet_viz.analysis.paths import gradient_by_path_length
from resnet_viz.figures.lesion import lesion_figure, lesion_k_figure, paths_figure
from resnet_viz.lessons.base import (Claim, Lesson, Param, Prediction, Runs, digits_mlp, fmt, mean, run_of,
                   specs_cost_s, split)

KINDS = ("none", "identity")


def _spec(p: dict[str, Any], kind: str, seed: int):
    return digits_mlp(depth=p["depth"], shortcut=kind, steps=p["steps"], seed=seed)


def specs(p: dict[str, Any]) -> list:
    return [_spec(p, k, s) for s in p["seeds"] for k in KINDS]


def effective_lengths(paths: dict[str, Any], share: float = 0.9) -> list[int]:
    """Shortest range of path lengths around the peak carrying ``share`` of the gradient."""
    eff = paths["effective"]
    total = sum(eff) or 1.0
    lo = hi = max(range(len(eff)), key=eff.__getitem__)
    while sum(eff[lo:hi + 1]) / total < share:
        left = eff[lo - 1] if lo > 0 else -1.0
        right = eff[hi + 1] if hi + 1 < len(eff) else -1.0
        lo, hi = (lo - 1, hi) if left >= right else (lo, hi + 1)
    return [paths["lengths"][lo], paths["lengths"][hi]]


def analyse(p: dict[str, Any], runs: Runs, progress=None) -> dict[str, Any]:
    lesions: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for seed in p["seeds"]:
        x, y = split(_spec(p, "none", seed), "val")
        for k in KINDS:
            lesions[k].append(lesion_study(run_of(runs, _spec(p, k, seed))[1], x, y))
    seed = p["seeds"][0]
    x, y = split(_spec(p, "none", seed), "val")
    models = {k: run_of(runs, _spec(p, k, seed))[1] for k in KINDS}
    random_k = {k: lesion_random_k(m, x, y, max_k=min(p["max_deleted"], p["depth"] - 1),
                                   trials=5, exclude=(0,)) for k, m in models.items()}
    xt, yt = split(_spec(p, "identity", seed))
    paths = gradient_by_path_length(models["identity"], xt, yt, samples=p["path_samples"])
    drops = {k: mean([mean(r["acc_drop"][1:]) for r in v]) for k, v in lesions.items()}
    first = {k: mean([r["acc_drop"][0] for r in v]) for k, v in lesions.items()}
    return {"lesion": lesions, "random_k": random_k, "paths": paths, "mean_drop": drops,
            "first_block_drop": first, "effective_lengths": effective_lengths(paths),
            "depth": p["depth"]}


def figures(result: dict[str, Any]) -> list:
    first = {k: v[0] for k, v in result["lesion"].items()}
    return [lesion_figure(first, chance=0.1), lesion_k_figure(result["random_k"], chance=0.1),
            paths_figure(result["paths"])]


def _decay(result: dict[str, Any]) -> float:
    """Gradient through one path of length n/2 relative to length 1 (Veit et al. Fig. 6b)."""
    g, n = result["paths"]["grad_norm"], result["paths"]["n_blocks"]
    return g[n // 2] / g[1] if len(g) > n // 2 and g[1] > 0 else float("nan")


def _verdict(result: dict[str, Any]) -> bool:
    d = result["mean_drop"]
    return d["identity"] < 0.03 and d["none"] > 0.3 and _decay(result) < 1e-2


def claim(result: dict[str, Any]) -> Claim:
    d, f, lo_hi = result["mean_drop"], result["first_block_drop"], result["effective_lengths"]
    n = result["paths"]["n_blocks"]
    return Claim(
        holds=_verdict(result),
        text=("Deleting one block barely hurts a ResNet but ruins a plain net; the gradient comes "
              "from short paths."),
        ours=(f"depth {result['depth']}, mean test-accuracy drop from deleting one block (blocks 1-"
              f"{n - 1}, mean over seeds): residual {100 * d['identity']:.1f} points, plain "
              f"{100 * d['none']:.1f} points (first block: {100 * f['identity']:.1f} vs "
              f"{100 * f['none']:.1f}); gradient through a path of length {n // 2} is "
              f"{fmt(_decay(result), 2)}× that of length 1; 90% of the gradient comes from paths of "
              f"length {lo_hi[0]}-{lo_hi[1]} of {n}"),
        paper=("Veit et al. 2016 Fig. 3 (CIFAR-10): deleting one block of ResNet-110 barely changes "
               "the error, except downsampling blocks; a VGG net drops to chance. Fig. 6: the "
               "effective paths of ResNet-110 are 5-17 blocks long, 0.45% of all paths."),
        note="Our MLP has no downsampling blocks; its first block, which maps the stem's output, "
             "plays that role.")


def outcome(result: dict[str, Any]) -> int:
    d = result["mean_drop"]
    if d["identity"] < 0.03 and d["none"] > 0.3:
        return 0
    return 1 if d["identity"] >= 0.03 and d["none"] > 0.3 else 2


LESSON = Lesson(
    name="ensembles",
    title="Ensembles of shallow paths: the lesion study",
    papers=("Veit, Wilber, Belongie. Residual Networks Behave Like Ensembles of Relatively Shallow "
            "Networks. NeurIPS 2016 (arXiv:1605.06431)",),
    paper_figures=("Veit et al. 2016, Fig. 3", "Veit et al. 2016, Fig. 5a", "Veit et al. 2016, Fig. 6"),
    text=("Unroll a ResNet: each block is either taken (its branch F) or skipped (the shortcut), "
          "so n blocks give 2^n paths from input to output, most of them of middle length. If a "
          "ResNet is an **ensemble** of these paths, deleting one block only removes some "
          "members, and it should barely hurt. In a plain net there is one path: delete a layer "
          "and it breaks.\n\n"
          "We train a plain and a residual net, then delete each block at test time (y = x), "
          "then several at once, and measure how much gradient flows through paths of each length."),
    prediction=Prediction(
        question="Delete one block of a trained net at test time. What happens to its accuracy?",
        options=("ResNet: barely changes; plain net: falls to chance",
                 "Both fall to chance", "Both barely change"),
        expected=0),
    params=(Param("depth", 20, "hidden layers (= blocks)", 3, 110),
            Param("seeds", (0, 1), "random seeds", 0, 10_000, 5),
            Param("steps", 300, "SGD steps per run", 1, 5000),
            Param("max_deleted", 10, "most blocks deleted at once", 1, 100),
            Param("path_samples", 5, "sampled paths per length (gradient study)", 1, 50)),
    specs=specs, analyse=analyse, figures=figures, claim=claim, outcome=outcome,
    estimate_s=lambda p: specs_cost_s(specs(p)) + 0.5 + 0.02 * p["path_samples"] * p["depth"],
)
