"""Residual responses (He et al. 2016, Fig. 7) and ‖F(x)‖/‖x‖ per block: pure builders from
trainer snapshots. Plain is vermillion and residual blue, as on every page."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import plotly.graph_objects as go

from resnet_viz.figures import style
from resnet_viz.figures.runs import (downsample_indices, empty_note, finite, line_style, positive, probe_index,
                                     run_kind, run_styles)

Run = Mapping[str, Any]
FIG7_CAPTION = "measured after BN, before ReLU/addition, with batch statistics (He et al. 2016, Fig. 7)"



def response_std(runs: Sequence[Run], sort: bool = False, at: str | int = "last",
                 title: str | None = None) -> go.Figure:
    """Std of each layer's response by layer index, or sorted largest first (``sort=True``).

    He et al. 2016, Fig. 7 (top: by layer, bottom: sorted): "ResNets have generally smaller
    responses than their plain counterparts", supporting that residual functions are closer
    to zero. Measured on the training batch in train mode, so after BN the std is close to
    the BN scale |γ| (shared/science.md); the title says so.
    """
    fig = go.Figure()
    for run, (label, colour, symbol) in zip(runs, run_styles(runs)):
        j = probe_index(run, at, "response_std")
        row = [finite(v) for v in ((run.get("response_std") or [])[j] if j is not None else [])]
        names = list(run.get("response_names") or [])
        order = list(range(len(row)))
        if sort:  # missing values last, like the paper's descending curve
            order.sort(key=lambda i: -row[i] if row[i] is not None else math.inf)
        idx = downsample_indices(len(order))
        fig.add_trace(go.Scatter(
            x=idx, y=[row[order[i]] for i in idx], name=label, connectgaps=False,
            text=[names[order[i]] if order[i] < len(names) else f"layer {order[i]}" for i in idx],
            hovertemplate="%{text}: std %{y:.3g}<extra>" + label + "</extra>", **line_style(colour, symbol)))
    head = "Layer responses sorted by magnitude" if sort else "Layer responses by depth"
    x_title = "layer rank (sorted by std, largest first)" if sort else "layer index (0 = input side)"
    style.base_layout(fig, title or f"{head}<br><sup>{FIG7_CAPTION}</sup>", x_title,
                      "std of layer response (activation units)", height=400)
    if not runs:
        empty_note(fig, "no runs yet")
    fig.update_layout(uirevision=f"response_std:{sort}")
    return fig

def branch_ratio(runs: Sequence[Run], at: str | int = "last", title: str | None = None) -> go.Figure:
    """‖F(x)‖ / ‖x‖ of every residual block, log scale: how far each block moves its input.

    He et al. 2016 §3.1: if an identity mapping is near optimal, "the solver may simply drive
    the weights of the multiple nonlinear layers toward zero", so residual functions stay
    small (their Fig. 7 discussion). Plain runs are left out (their F(x) is the whole block);
    blocks whose shortcut the mask removed are drawn as open markers.
    """
    fig = go.Figure()
    shown = 0
    for run, (label, colour, symbol) in zip(runs, run_styles(runs)):
        if run_kind(run) == "none":
            continue
        shown += 1
        j = probe_index(run, at, "branch_ratio")
        row = list((run.get("branch_ratio") or [])[j]) if j is not None else []
        mask = str((run.get("spec") or {}).get("shortcut_mask") or "")
        off = [bool(mask) and i < len(mask) and mask[i] == "0" for i in range(len(row))]
        idx = downsample_indices(len(row))
        fig.add_trace(go.Scatter(
            x=idx, y=[positive(row[i]) for i in idx], name=label, mode="lines+markers", connectgaps=False,
            line=dict(color=colour), text=["shortcut removed" if off[i] else "" for i in idx],
            marker=dict(color=colour, symbol=[f"{symbol or 'circle'}-open" if off[i] else symbol or "circle"
                                              for i in idx]),
            hovertemplate="block %{x}: %{y:.3g} %{text}<extra>" + label + "</extra>"))
    fig.add_hline(y=1.0, line=dict(color=style.REFERENCE, dash="dot", width=1))
    # Annotations on a log axis take log10 of the value: y=0 is the line at 1.
    fig.add_annotation(x=1.0, xref="paper", xanchor="right", y=0.0, yanchor="bottom", text="‖F(x)‖ = ‖x‖",
                       showarrow=False, font=dict(color=style.REFERENCE), name="reference")
    style.base_layout(fig, title or "How far each residual block moves its input",
                      "residual block index (0 = input side)", "‖F(x)‖ / ‖x‖ (log scale)")
    style.log_axis(fig)
    if not shown:
        empty_note(fig, "plain nets have no shortcut: run a residual net to see ‖F(x)‖/‖x‖")
    fig.update_layout(uirevision="branch_ratio")
    return fig
