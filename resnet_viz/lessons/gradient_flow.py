"""Lesson 4: gradient flow — per-layer gradient norms, plain vs residual, BN, He vs Xavier.

- He et al. 2016 (arXiv:1512.03385) §1: vanishing/exploding gradients "hamper convergence
  from the beginning"; normalised initialisation and BN largely address them, yet deep plain
  nets still degrade. Identity shortcuts give the gradient a direct path to every layer.
- Yang et al. 2019 (A Mean Field Theory of Batch Normalization, ICLR): a deep plain net with
  BN has gradients that *explode* towards the input at initialisation.
- Glorot & Bengio 2010 (Xavier init) and He et al. 2015 (arXiv:1502.01852, He init): for
  ReLU nets without BN, Xavier's variance 1/fan shrinks the signal by 2 per layer; He's 2/fan
  keeps it (their Fig. 3: a 30-layer ReLU net with Xavier init stalls).

The trainer logs ‖∂L/∂W‖ of every main-path weight layer (``resnet_viz.train.probes``) from step 0.
"""
from __future__ import annotations

import math
from typing import Any

from resnet_viz.figures.training import grad_norm_by_depth, grad_norm_heatmap, loss_curves
from resnet_viz.lessons.base import (Claim, Lesson, Param, Prediction, Runs, digits_mlp, fmt, mean, run_of,
                   specs_cost_s)

# (shortcut, norm, init) of every net the lesson trains
VARIANTS = tuple((k, n, i) for n in ("batch", "none") for i in ("he", "xavier")
                 for k in ("none", "identity"))


def _spec(p: dict[str, Any], variant: tuple[str, str, str], seed: int):
    kind, norm, init = variant
    return digits_mlp(depth=p["depth"], width=p["width"], shortcut=kind, norm=norm, init=init,
                      steps=p["steps"], lr=p["lr"], seed=seed)


def specs(p: dict[str, Any]) -> list:
    return [_spec(p, v, s) for v in VARIANTS for s in p["seeds"]]


def _log_ratio(snapshot: dict[str, Any], row: int = 0) -> float:
    """log10(‖∂L/∂W_first‖ / ‖∂L/∂W_last‖) at probe ``row`` (0 = initialisation)."""
    rows = snapshot.get("grad_norms") or []
    if not rows or len(rows[row]) < 2 or not rows[row][-1] > 0 or not rows[row][0] > 0:
        return math.nan
    return math.log10(rows[row][0] / rows[row][-1])


def _median_log(snapshot: dict[str, Any]) -> float:
    rows = snapshot.get("grad_norms") or []
    vals = sorted(v for v in (rows[0] if rows else []) if v > 0)
    return math.log10(vals[len(vals) // 2]) if vals else math.nan


def _label(v: tuple[str, str, str]) -> str:
    kind, norm, init = v
    return f"{'plain' if kind == 'none' else 'residual'}, {'BN' if norm == 'batch' else 'no BN'}, {init}"


def analyse(p: dict[str, Any], runs: Runs, progress=None) -> dict[str, Any]:
    variants, shown = [], []
    keep = ("spec", "status", "step", "history", "layer_names", "grad_norms", "probe_step", "final")
    for v in VARIANTS:
        snaps = [run_of(runs, _spec(p, v, s))[0] for s in p["seeds"]]
        variants.append({"label": _label(v), "shortcut": v[0], "norm": v[1], "init": v[2],
                         "log_first_last_init": mean([_log_ratio(s) for s in snaps]),
                         "log_median_init": mean([_median_log(s) for s in snaps]),
                         "status": [s.get("status") for s in snaps]})
        shown.append({**{k: snaps[0].get(k) for k in keep}, "label": _label(v)})
    return {"variants": variants, "runs": shown, "depth": p["depth"]}


def _pick(result: dict[str, Any], norm: str, init: str | None = None) -> list[dict[str, Any]]:
    return [r for r in result["runs"] if r["spec"]["norm"] == norm
            and (init is None or r["spec"]["init"] == init)]


def figures(result: dict[str, Any]) -> list:
    return [
        grad_norm_by_depth(_pick(result, "batch"), at="first",
                           title="At initialisation, with BN: gradient norm of every layer"),
        grad_norm_by_depth(_pick(result, "none"), at="first",
                           title="At initialisation, without BN: He vs Xavier"),
        *[grad_norm_heatmap(r, title=f"During training: {r['label']}")
          for r in _pick(result, "batch", "he")],
        loss_curves(_pick(result, "batch", "he") + _pick(result, "none", "he"), splits=("train",),
                    log_y=True, title="Training loss (He init; with and without BN)"),
    ]


def _v(result: dict[str, Any], kind: str, norm: str = "batch", init: str = "he") -> dict[str, Any]:
    return next(v for v in result["variants"]
                if (v["shortcut"], v["norm"], v["init"]) == (kind, norm, init))


def _verdict(result: dict[str, Any]) -> tuple[float, float, bool]:
    plain = _v(result, "none")["log_first_last_init"]
    res = _v(result, "identity")["log_first_last_init"]
    # Exploding towards the input in the plain BN net (>10x), nearly flat with shortcuts.
    return plain, res, plain > 1.0 and abs(res) < 0.7 and plain - res > 0.8


def claim(result: dict[str, Any]) -> Claim:
    plain, res, holds = _verdict(result)
    he = _v(result, "none", "none", "he")["log_median_init"]
    xa = _v(result, "none", "none", "xavier")["log_median_init"]
    d = result["depth"]
    return Claim(
        holds=holds,
        text=("At initialisation a deep plain BN net's gradient grows from the last layer back to "
              "the first; with identity shortcuts it stays nearly flat."),
        ours=(f"depth {d}, first-layer / last-layer gradient norm at init (mean of log10 over seeds): "
              f"plain ×{fmt(10 ** plain)}, residual ×{fmt(10 ** res)}. Without BN, median layer "
              f"gradient He {fmt(10 ** he)} vs Xavier {fmt(10 ** xa)} (plain)."),
        paper=("He et al. 2016 §1 (vanishing/exploding gradients); Yang et al. 2019: BN makes deep "
               "plain nets' gradients explode at init; He et al. 2015 Fig. 3: a 30-layer ReLU net "
               "with Xavier init stalls, with He init it trains."),
        note="" if holds else "Not visible at this depth: try a deeper net.")


def outcome(result: dict[str, Any]) -> int:
    plain, res, holds = _verdict(result)
    if holds:
        return 0
    return 1 if plain < -1.0 else 2


LESSON = Lesson(
    name="gradient_flow",
    title="Gradient flow: vanishing, exploding, and the shortcut",
    papers=("He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016 (arXiv:1512.03385)",
            "He, Zhang, Ren, Sun. Delving Deep into Rectifiers. ICCV 2015 (arXiv:1502.01852)",
            "Glorot, Bengio. Understanding the difficulty of training deep feedforward neural networks. AISTATS 2010",
            "Yang, Pennington, Rao, Sohl-Dickstein, Schoenholz. A Mean Field Theory of Batch Normalization. ICLR 2019"),
    paper_figures=("He et al. 2016, §1", "He et al. 2015, Fig. 3", "Yang et al. 2019 (gradient explosion with BN)"),
    text=("Backpropagation multiplies the gradient by one Jacobian per layer on its way to the "
          "input, so in a deep net it can shrink (vanish) or grow (explode) geometrically. Careful "
          "initialisation (Xavier, He) and BN were the fixes before ResNets.\n\n"
          "We train eight nets of the same depth: plain or residual, with or without BN, He or "
          "Xavier init, and plot the gradient norm of every weight layer on a **log scale**, at "
          "initialisation and during training. Runs that blow up are marked *diverged*."),
    prediction=Prediction(
        question="In a deep *plain* net with BN, at initialisation, how does the first layer's "
                 "gradient compare with the last layer's?",
        options=("Much larger: it explodes towards the input; the residual net stays flat",
                 "Much smaller: it vanishes towards the input",
                 "About the same: BN fixes gradient flow"),
        expected=0),
    params=(Param("depth", 30, "hidden layers of every net", 2, 110),
            Param("seeds", (0, 1), "random seeds", 0, 10_000, 5),
            Param("steps", 100, "SGD steps per run (the init is step 0)", 1, 5000),
            Param("lr", 0.1, "learning rate (nets without BN may diverge at 0.1)", 1e-4, 1.0),
            Param("width", 32, "units per hidden layer", 8, 256)),
    specs=specs, analyse=analyse, figures=figures, claim=claim, outcome=outcome,
    estimate_s=lambda p: specs_cost_s(specs(p)) + 0.5,
)
