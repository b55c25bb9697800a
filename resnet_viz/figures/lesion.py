"""Figures for Veit, Wilber & Belongie 2016: lesion studies and the ensemble of paths.

Pure builders: the dicts returned by ``analysis.lesion`` / ``analysis.paths`` in, a plotly
figure out. Plain is vermillion and residual blue, as everywhere (``figures/style.py``).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from resnet_viz.figures.style import REFERENCE, base_layout, colour_for, label_for
from resnet_viz.figures import style


def _pct(values: Sequence[float]) -> list[float]:
    return [100.0 * v for v in values]


def lesion_figure(results: Mapping[str, Mapping], chance: float | None = None,
                  title: str = "Deleting one block at test time") -> go.Figure:
    """Test accuracy with each block deleted, one line per net (Veit et al. 2016, Fig. 3).

    ``results`` maps a shortcut kind ("none", "identity", ...) or a label ("plain",
    "residual") to a ``lesion_study`` dict. Each net's intact accuracy is a dashed line of
    its colour; downsampling blocks (the ones a ResNet does need) are diamonds on a dotted
    vertical line; ``chance`` (a fraction, e.g. 0.1) adds a grey dotted line.
    """
    fig = go.Figure()
    marked: set[int] = set()
    for kind, res in results.items():
        colour, label, n = colour_for(kind), label_for(kind), len(res["acc"])
        down = list(res.get("downsampling", [False] * n))
        fig.add_trace(go.Scatter(
            x=list(range(n)), y=_pct(res["acc"]), mode="lines+markers", name=f"{label}, one block deleted",
            legendgroup=kind, line=dict(color=colour),
            marker=dict(color=colour, size=8, symbol=["diamond" if d else "circle" for d in down]),
            hovertemplate="block %{x} deleted: %{y:.1f}%<extra>" + label + "</extra>"))
        # A trace, not an annotated hline: the legend names it without covering the data.
        fig.add_trace(go.Scatter(
            x=[-0.5, n - 0.5], y=[100.0 * res["baseline_acc"]] * 2, mode="lines",
            name=f"{label}, intact", legendgroup=kind, line=dict(color=colour, dash="dash", width=1.5),
            hovertemplate="intact: %{y:.1f}%<extra>" + label + "</extra>"))
        marked.update(i for i, d in enumerate(down) if d)
    _mark_downsampling(fig, sorted(marked))
    if chance is not None:
        fig.add_hline(y=100.0 * chance, line=dict(color=REFERENCE, dash="dot", width=1),
                      annotation_text="chance", annotation_position="top left")
    base_layout(fig, title, "deleted block (index from the input, 0 = first)", "test accuracy (%)",
                height=420)
    fig.update_yaxes(range=[0, 101])
    return fig


def _mark_downsampling(fig: go.Figure, blocks: list[int]) -> None:
    """Dotted verticals at blocks that change the shape, named once in the legend."""
    for i in blocks:
        fig.add_vline(x=i, line=dict(color=REFERENCE, dash="dot", width=1))
    if blocks:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="downsampling block",
                                 marker=dict(symbol="diamond", color=REFERENCE, size=8)))


def lesion_k_figure(results: Mapping[str, Mapping], chance: float | None = None,
                    title: str = "Deleting several blocks at once") -> go.Figure:
    """Mean test accuracy against the number of blocks deleted (Veit et al. 2016, Fig. 5a).

    ``results`` maps a kind or label to a ``lesion_random_k`` dict; error bars are the spread
    (one standard deviation) over the random subsets.
    """
    fig = go.Figure()
    for kind, res in results.items():
        colour, label = colour_for(kind), label_for(kind)
        fig.add_trace(go.Scatter(
            x=list(res["k"]), y=_pct(res["acc_mean"]), mode="lines+markers", name=label,
            line=dict(color=colour), marker=dict(color=colour),
            error_y=dict(type="data", array=_pct(res["acc_std"]), visible=True, color=colour)))
    if chance is not None:
        fig.add_hline(y=100.0 * chance, line=dict(color=REFERENCE, dash="dot", width=1),
                      annotation_text="chance", annotation_position="top left")
    base_layout(fig, title, "blocks deleted (count)", "test accuracy (%)")
    fig.update_yaxes(range=[0, 101])
    return fig


def path_distribution_figure(distribution: Sequence[float],
                             title: str = "How long are the paths?") -> go.Figure:
    """Share of the 2^n paths with each length k: Binomial(n, 1/2) (Veit et al. 2016, Fig. 6a)."""
    n = len(distribution) - 1
    fig = go.Figure(go.Bar(x=list(range(n + 1)), y=_pct(distribution), name="paths",
                           marker_color=REFERENCE,
                           hovertemplate="length %{x}: %{y:.3g}% of paths<extra></extra>"))
    return base_layout(fig, f"{title} ({n} blocks, 2^{n} paths)",
                       "path length (residual branches on the path)", "share of all paths (%)")


def paths_figure(result: Mapping, kind: str = "identity",
                 title: str = "Residual nets are ensembles of short paths") -> go.Figure:
    """Three panels from a ``gradient_by_path_length`` dict (Veit et al. 2016, Fig. 6).

    Left: share of paths of each length (binomial). Middle: mean gradient magnitude reaching
    the first block through one path of that length, log scale: it falls exponentially.
    Right: their product, the gradient all paths of that length carry, as a share of the
    total: it peaks at lengths far shorter than the net, so the effective paths are short.
    """
    lengths, colour = list(result["lengths"]), colour_for(kind)
    effective = list(result["effective"])
    total = sum(effective) or 1.0
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.09, subplot_titles=(
        "paths of each length", "gradient through one path", "gradient from all paths of a length"))
    fig.add_trace(go.Bar(x=lengths, y=_pct(result["distribution"]), name="share of paths",
                         marker_color=REFERENCE), row=1, col=1)
    fig.add_trace(go.Scatter(x=lengths, y=list(result["grad_norm"]), mode="lines+markers",
                             name="gradient magnitude", line=dict(color=colour)), row=1, col=2)
    fig.add_trace(go.Bar(x=lengths, y=[100.0 * e / total for e in effective],
                         name="effective contribution", marker_color=colour), row=1, col=3)
    base_layout(fig, f"{title} ({result['n_blocks']} blocks)", "", "", height=400)
    fig.update_layout(showlegend=False)  # the panel titles name each trace
    for col in (1, 2, 3):
        fig.update_xaxes(title_text="path length (residual branches on the path)", row=1, col=col)
    fig.update_yaxes(title_text="share of all paths (%)", row=1, col=1)
    style.log_axis(fig, title_text="‖∂loss/∂(first block input)‖ (log)", row=1, col=2)
    fig.update_yaxes(title_text="share of total gradient (%)", row=1, col=3)
    return fig
