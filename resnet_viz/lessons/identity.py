"""Lesson 2: the identity argument — a deeper net can always do as well as a shallower one.

He et al. 2016 (arXiv:1512.03385) §1: "there exists a solution by construction to the
deeper model: the added layers are identity mapping, and the other layers are copied from
the learned shallower model. The existence of this constructed solution indicates that a
deeper model should produce no higher training error than its shallower counterpart."
We build that solution — a trained shallow plain net plus residual blocks whose branch is
zero (F = 0, so each block is exactly the identity) — and measure it, then train both deep
nets from scratch: SGD finds no such solution for the plain net, and does for the ResNet.
"""
from __future__ import annotations

from typing import Any

import torch

from resnet_viz.figures import style
from resnet_viz.figures.style import PLAIN, REFERENCE, RESIDUAL, base_layout
from resnet_viz.nets.models import build_model
from resnet_viz.lessons.base import (Claim, Lesson, Param, Prediction, Runs, digits_mlp, final, fmt, loss_acc, mean,
                   run_of, specs_cost_s, split)

EXACT_TOL = 1e-6   # relative; appending x + 0 is exact in floating point, so this is generous


def _shallow(p: dict[str, Any], seed: int):
    return digits_mlp(depth=p["shallow_depth"], shortcut="none", steps=p["steps"], seed=seed)


def _deep(p: dict[str, Any], kind: str, seed: int):
    return digits_mlp(depth=p["shallow_depth"] + p["extra_blocks"], shortcut=kind,
                      steps=p["steps"], seed=seed)


def specs(p: dict[str, Any]) -> list:
    return [s for seed in p["seeds"]
            for s in (_shallow(p, seed), _deep(p, "none", seed), _deep(p, "identity", seed))]


def constructed_net(shallow_spec, shallow_model: torch.nn.Module, extra: int) -> torch.nn.Module:
    """The shallow net's layers, then ``extra`` residual blocks with F = 0 (He et al. §1).

    The first blocks keep no shortcut (``shortcut_mask`` 0: they are the plain shallow
    blocks); the appended ones are identity-shortcut blocks whose last linear layer is zero
    (``init="zero_last_bn"``), so each computes x + 0 = x exactly.
    """
    depth = shallow_spec.depth
    spec = shallow_spec.replace(depth=depth + extra, shortcut="identity", init="zero_last_bn",
                                shortcut_mask="0" * depth + "1" * extra)
    net = build_model(spec)
    state = {k: v for k, v in shallow_model.state_dict().items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("blocks.") for k in missing), (missing, unexpected)
    for block in net.blocks[depth:]:
        assert float(block.branch.fc1.weight.detach().abs().max()) == 0.0   # F = 0: the identity
    return net.eval()


def analyse(p: dict[str, Any], runs: Runs, progress=None) -> dict[str, Any]:
    rows = []
    for seed in p["seeds"]:
        sspec = _shallow(p, seed)
        snap, model = run_of(runs, sspec)
        x, y = split(sspec)
        shallow_loss, shallow_acc = loss_acc(model, x, y)
        deep = constructed_net(sspec, model, p["extra_blocks"])
        built_loss, built_acc = loss_acc(deep, x, y)
        with torch.no_grad():
            gap = float((deep(x) - model.eval()(x)).abs().max())
        rows.append({"seed": seed, "shallow_loss": shallow_loss, "shallow_acc": shallow_acc,
                     "constructed_loss": built_loss, "constructed_acc": built_acc,
                     "max_logit_gap": gap,
                     "plain_deep_loss": final(run_of(runs, _deep(p, "none", seed))[0]),
                     "residual_deep_loss": final(run_of(runs, _deep(p, "identity", seed))[0])})
    keys = ("shallow_loss", "constructed_loss", "plain_deep_loss", "residual_deep_loss")
    return {"rows": rows, "mean": {k: mean([r[k] for r in rows]) for k in keys},
            "shallow_depth": p["shallow_depth"], "deep_depth": p["shallow_depth"] + p["extra_blocks"]}


def figures(result: dict[str, Any]) -> list:
    import plotly.graph_objects as go
    m, s, d = result["mean"], result["shallow_depth"], result["deep_depth"]
    bars = [(f"shallow plain-{s}, trained", m["shallow_loss"], REFERENCE),
            (f"plain-{s} + {d - s} identity blocks (no training)", m["constructed_loss"], RESIDUAL),
            (f"plain-{d} from scratch", m["plain_deep_loss"], PLAIN),
            (f"residual-{d} from scratch", m["residual_deep_loss"], RESIDUAL)]
    fig = go.Figure(go.Bar(x=[b[0] for b in bars], y=[b[1] for b in bars],
                           marker_color=[b[2] for b in bars],
                           text=[fmt(b[1]) for b in bars], textposition="outside"))
    base_layout(fig, "Training loss: the constructed deep net equals the shallow one "
                "(mean over seeds)", "", "training loss (cross-entropy, nats, log scale)")
    style.log_axis(fig)
    return [fig]


def _verdicts(result: dict[str, Any]) -> tuple[bool, bool, bool]:
    m, rows = result["mean"], result["rows"]
    exact = all(abs(r["constructed_loss"] - r["shallow_loss"]) <= EXACT_TOL * max(1.0, r["shallow_loss"])
                for r in rows)
    plain_worse = m["plain_deep_loss"] > 2 * m["shallow_loss"] and m["plain_deep_loss"] - m["shallow_loss"] > 0.05
    res_fine = m["residual_deep_loss"] < 0.5 * m["plain_deep_loss"] and \
        m["residual_deep_loss"] <= m["shallow_loss"] + 0.02
    return exact, plain_worse, res_fine


def claim(result: dict[str, Any]) -> Claim:
    exact, plain_worse, res_fine = _verdicts(result)
    m, s, d = result["mean"], result["shallow_depth"], result["deep_depth"]
    gap = max(r["max_logit_gap"] for r in result["rows"])
    return Claim(
        holds=exact and plain_worse and res_fine,
        text=(f"A {d}-layer net built from a trained {s}-layer net plus identity blocks has exactly "
              "its training loss, yet SGD from scratch finds a worse plain deep net; the residual "
              "deep net is not worse."),
        ours=(f"training loss (mean over seeds): shallow {fmt(m['shallow_loss'], 4)}, constructed "
              f"{fmt(m['constructed_loss'], 4)} (largest logit difference {gap:.1g}); from scratch: "
              f"plain-{d} {fmt(m['plain_deep_loss'])}, residual-{d} {fmt(m['residual_deep_loss'])}"),
        paper=("He et al. 2016 §1: the constructed solution shows a deeper model 'should produce no "
               "higher training error', but plain solvers do not find it (plain-34 vs plain-18, Fig. 4)."),
        note="" if exact else "The constructed net did not reproduce the shallow loss: a shortcut or "
                               "the zero-initialised branch is broken.")


def outcome(result: dict[str, Any]) -> int:
    exact, plain_worse, res_fine = _verdicts(result)
    if not exact:
        return 2
    return 0 if plain_worse and res_fine else 1


LESSON = Lesson(
    name="identity",
    title="The identity argument: depth cannot hurt, in principle",
    papers=("He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016 "
            "(arXiv:1512.03385)",),
    paper_figures=("He et al. 2016, §1 (the constructed solution)", "He et al. 2016, Fig. 4"),
    text=("Take a trained shallow net and append blocks that do nothing — residual blocks whose "
          "branch F is exactly zero, so each computes x + 0 = x. The deep net computes the same "
          "function, so it has **exactly** the shallow net's training loss: a deeper net can "
          "always do at least as well.\n\n"
          "So why does a deep plain net trained from scratch do worse (lesson *Degradation*)? "
          "Because SGD has to *find* that solution, and a plain net must learn the identity "
          "through a stack of ReLU layers. A residual net only has to push F towards zero."),
    prediction=Prediction(
        question="Train the same deep architecture from scratch with SGD. Which net matches the "
                 "shallow net's training loss?",
        options=("Only the residual net; the plain deep net ends worse",
                 "Both deep nets match or beat it",
                 "Neither: even the constructed deep net is worse"),
        expected=0),
    params=(Param("shallow_depth", 4, "hidden layers of the trained shallow plain net", 1, 50),
            Param("extra_blocks", 20, "identity blocks appended (F = 0)", 1, 100),
            Param("seeds", (0, 1), "random seeds", 0, 10_000, 5),
            Param("steps", 300, "SGD steps per run", 1, 5000)),
    specs=specs, analyse=analyse, figures=figures, claim=claim, outcome=outcome,
    estimate_s=lambda p: specs_cost_s(specs(p)) + 0.5 * len(p["seeds"]),
)
