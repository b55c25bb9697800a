"""Lesson 3: residual functions are small — layer responses of plain vs residual nets.

He et al. 2016 (arXiv:1512.03385) Fig. 7: the std of each 3×3 layer's output "after BN and
before other nonlinearity (ReLU/addition)", by layer and sorted. "ResNets have generally
smaller responses than their plain counterparts", supporting the idea that residual
functions are closer to zero than non-residual ones; deeper ResNets respond less.

What we measure is the trainer's Fig. 7 probe (``resnet_viz.train.probes``): on the training batch of the
last logged step, in train mode (batch statistics). In the CNN that is after BN, as in the
paper, so the std is close to the BN scale |γ|; the MLP block has no BN after its linear
layer, so there it is the linear layer's output.
"""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from resnet_viz.figures import style
from resnet_viz.figures.style import base_layout, colour_for, label_for
from resnet_viz.figures.responses import response_std
from resnet_viz.spec import ExperimentSpec
from resnet_viz.lessons.base import (Claim, Lesson, Param, Prediction, Runs, fmt, mean, run_of, specs_cost_s, std)

KINDS = ("none", "identity")


def _spec(p: dict[str, Any], depth: int, kind: str, seed: int) -> ExperimentSpec:
    return ExperimentSpec(model=p["model"], dataset="digits", depth=depth, width=p["width"],
                          shortcut=kind, steps=p["steps"], seed=seed)


def specs(p: dict[str, Any]) -> list[ExperimentSpec]:
    return [_spec(p, d, k, s) for d in p["depths"] for k in KINDS for s in p["seeds"]]


def block_responses(snapshot: dict[str, Any]) -> list[float]:
    """Fig. 7 stds of the residual-block layers at the last probe (the stem is shared)."""
    rows = snapshot.get("response_std") or []
    names = snapshot.get("response_names") or []
    if not rows:
        return []
    return [v for n, v in zip(names, rows[-1]) if n.startswith("blocks.")]


def analyse(p: dict[str, Any], runs: Runs, progress=None) -> dict[str, Any]:
    table = []
    for d in p["depths"]:
        for k in KINDS:
            per_seed = [mean(block_responses(run_of(runs, _spec(p, d, k, s))[0])) for s in p["seeds"]]
            table.append({"depth": d, "shortcut": k, "per_seed": per_seed,
                          "mean": mean(per_seed), "std": std(per_seed)})
    seed = p["seeds"][0]
    shown = [run_of(runs, _spec(p, d, k, seed))[0] for d in p["depths"] for k in KINDS]
    keep = ("spec", "status", "step", "response_names", "response_std", "probe_step")
    return {"table": table, "model": p["model"],
            "runs": [{k: r.get(k) for k in keep} for r in shown]}


def _bars(result: dict[str, Any]) -> go.Figure:
    fig = go.Figure()
    for k in KINDS:
        rows = [r for r in result["table"] if r["shortcut"] == k]
        fig.add_trace(go.Bar(x=[f"depth {r['depth']}" for r in rows], y=[r["mean"] for r in rows],
                             error_y=dict(type="data", array=[r["std"] for r in rows]),
                             name=label_for(k), marker_color=colour_for(k)))
    base_layout(fig, "Mean response std of the block layers (mean ± std over seeds)",
                "", "std of layer response (log scale)")
    style.log_axis(fig)
    return fig


def figures(result: dict[str, Any]) -> list[go.Figure]:
    by_layer = response_std(result["runs"])
    style.log_axis(by_layer)
    ranked = response_std(result["runs"], sort=True)
    style.log_axis(ranked)
    return [_bars(result), by_layer, ranked]


def _means(result: dict[str, Any], kind: str) -> list[float]:
    return [r["mean"] for r in result["table"] if r["shortcut"] == kind]


def claim(result: dict[str, Any]) -> Claim:
    plain, res = _means(result, "none"), _means(result, "identity")
    depths = sorted({r["depth"] for r in result["table"]})
    smaller = all(r < pl for r, pl in zip(res, plain))
    deeper_less = len(res) > 1 and res[-1] < res[0]
    where = "after BN" if result["model"] == "cnn" else "at each hidden linear layer's output"
    return Claim(
        holds=smaller,
        text="Residual nets' layer responses are smaller than their plain twins' (He et al. Fig. 7).",
        ours=("mean response std " + ", ".join(
            f"depth {d}: plain {fmt(pl)} vs residual {fmt(r)}" for d, pl, r in zip(depths, plain, res))
            + f" (measured {where}, batch statistics)"),
        paper=("He et al. 2016 Fig. 7 (CIFAR-10, after BN): ResNet-20/56/110 respond less than "
               "plain-20/56, and deeper ResNets respond less."),
        note=("Deeper ResNets responding less: " + ("seen here, but weak at this scale." if deeper_less
              else "not seen at this scale (science.md: a weak effect on small nets).")))


def outcome(result: dict[str, Any]) -> int:
    plain, res = _means(result, "none"), _means(result, "identity")
    if all(r < pl for r, pl in zip(res, plain)):
        return 0
    return 1 if all(r > pl for r, pl in zip(res, plain)) else 2


LESSON = Lesson(
    name="responses",
    title="Residual responses are small",
    papers=("He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016 "
            "(arXiv:1512.03385)",),
    paper_figures=("He et al. 2016, Fig. 7",),
    text=("If the best a block can do is close to the identity, a residual block only has to "
          "learn a **small correction** F(x), while a plain block must rebuild its whole input. "
          "He et al. checked this by measuring how strongly each layer responds: the standard "
          "deviation of its output.\n\n"
          "We train plain and residual nets of two depths and read the same Fig. 7 probe from "
          "each. In the CNN it is measured after BN, as in the paper (so it is close to the BN "
          "scale |γ| and the gap is small); in the MLP (the fast default) at each hidden linear "
          "layer's output. There a plain layer feeds the next BN, so nothing stops its scale from "
          "drifting up, while a residual branch is added to x and must stay small. Both use the "
          "training batch's statistics."),
    prediction=Prediction(
        question="Which net's layers respond more strongly (larger output std)?",
        options=("The plain net's", "The residual net's", "About the same"),
        expected=0),
    params=(Param("depths", (20, 32), "depths to compare (CNN: 6n+2, e.g. 8, 14, 20)", 1, 110, 4),
            Param("seeds", (0, 1), "random seeds", 0, 10_000, 5),
            Param("steps", 300, "SGD steps per run", 1, 5000),
            Param("model", "mlp", "mlp (fast) or cnn (after BN, as the paper)", choices=("mlp", "cnn")),
            Param("width", 32, "MLP units / CNN stage-1 filters", 4, 128)),
    specs=specs, analyse=analyse, figures=figures, claim=claim, outcome=outcome,
    estimate_s=lambda p: specs_cost_s(specs(p)) + 0.5,
)
