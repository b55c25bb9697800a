"""Decision-boundary figures for the 2-D toy datasets (TensorFlow Playground's main view).

The background is the net's P(class 1) from ``boundary.decision_grid``, the black line its
0.5 level set (the decision boundary), the dots the data. Classes use orange and sky blue
from the Okabe & Ito palette, never the plain/residual colours, which mean *which net*.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from resnet_viz.figures import style
from resnet_viz.figures.runs import downsample_indices

CLASS_COLOURS = (style.EXTRA[0], style.SCALED)     # orange, sky blue
MAX_GRID = 200                                     # grid points per side drawn at most
X_TITLE, Y_TITLE = "x₁ (standardised units)", "x₂ (standardised units)"


def _blend(hex_colour: str, weight: float) -> str:
    """``hex_colour`` mixed with white; ``weight`` is the share of the colour."""
    rgb = [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]
    r, g, b = (round(255 - weight * (255 - c)) for c in rgb)
    return f"rgb({r},{g},{b})"


COLOURSCALE = [[0.0, _blend(CLASS_COLOURS[0], 0.55)], [0.5, "rgb(255,255,255)"],
               [1.0, _blend(CLASS_COLOURS[1], 0.55)]]


def _grid(grid: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xx, yy, prob thinned to at most ``MAX_GRID`` per side; non-finite probs become NaN gaps.

    Arrays, not lists: plotly validates a list point by point (a 60x60 pair took 71 ms to
    build with lists, 44 ms with arrays) and sends an array as compact base64."""
    xx = np.asarray(grid.get("xx") or [], dtype=float).reshape(-1)
    yy = np.asarray(grid.get("yy") or [], dtype=float).reshape(-1)
    prob = np.asarray(grid.get("prob") if grid.get("prob") is not None else [], dtype=float)
    if prob.ndim != 2 or prob.shape != (len(yy), len(xx)):
        return np.zeros(0), np.zeros(0), np.zeros((0, 0))
    ci, ri = downsample_indices(len(xx), MAX_GRID), downsample_indices(len(yy), MAX_GRID)
    z = prob[np.ix_(ri, ci)]
    return xx[ci], yy[ri], np.where(np.isfinite(z), z, np.nan)


def _numpy(a: Any) -> Any:
    return a.detach().cpu().numpy() if hasattr(a, "detach") else a


def _points(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) float points and (N,) int labels, thinned to at most ``MAX_POINTS``."""
    xa = np.asarray(_numpy(x), dtype=float).reshape(-1, 2)
    ya = np.asarray(_numpy(y)).astype(int).reshape(-1)
    n = min(len(xa), len(ya))
    idx = downsample_indices(n)
    return xa[idx], ya[idx]


def _add_panel(fig: go.Figure, grid: Mapping[str, Any], x: Any, y: Any, first: bool,
               where: dict[str, int]) -> None:
    """Four traces: P(class 1), the p = 0.5 line, class 0 dots, class 1 dots."""
    xx, yy, z = _grid(grid)
    fig.add_trace(go.Contour(x=xx, y=yy, z=z, zmin=0, zmax=1, colorscale=COLOURSCALE, name="P(class 1)",
                             contours=dict(start=0, end=1, size=0.1), line=dict(width=0),
                             showscale=first, colorbar=dict(title=dict(text="P(class 1)")),
                             hovertemplate="x₁ %{x:.2f}, x₂ %{y:.2f}: P(class 1) = %{z:.2f}<extra></extra>"),
                  **where)
    fig.add_trace(go.Contour(x=xx, y=yy, z=z, contours=dict(start=0.5, end=0.5, size=1, coloring="lines"),
                             line=dict(width=2.5, color="black"), showscale=False, hoverinfo="skip",
                             colorscale=[[0, "black"], [1, "black"]], name="decision boundary (p = 0.5)",
                             showlegend=first), **where)
    pts, labels = _points(x, y)
    for c, colour in enumerate(CLASS_COLOURS):
        sel = pts[labels == c]
        fig.add_trace(go.Scatter(x=sel[:, 0], y=sel[:, 1], mode="markers",
                                 name=f"class {c}", legendgroup=f"class {c}", showlegend=first,
                                 marker=dict(color=colour, size=6, line=dict(color="#333333", width=0.6)),
                                 hovertemplate=f"class {c}: (%{{x:.2f}}, %{{y:.2f}})<extra></extra>"),
                      **where)


def decision_boundary(grid: Mapping[str, Any], x: Any, y: Any,
                      title: str = "Decision boundary") -> go.Figure:
    """The net's P(class 1) over the plane with the 0.5 boundary and the data on top.

    Toy-problem view of TensorFlow Playground (Smilkov et al. 2017): a deep plain net often
    fails to bend its boundary around spirals that its residual twin fits (He et al. 2016's
    degradation problem, seen in input space). Empty or malformed grids draw no background.
    """
    fig = go.Figure()
    _add_panel(fig, grid, x, y, True, {})
    style.base_layout(fig, title, X_TITLE, Y_TITLE, height=460)
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    fig.update_layout(uirevision="decision_boundary")
    return fig


def boundary_pair(grid_plain: Mapping[str, Any], grid_res: Mapping[str, Any], x: Any, y: Any,
                  titles: Sequence[str] = ("plain", "residual"),
                  title: str = "Decision boundaries: plain vs residual") -> go.Figure:
    """Two ``decision_boundary`` panels side by side, one shared colour bar and legend.

    Panel titles take the plain (vermillion) and residual (blue) colours of every page.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=tuple(titles), horizontal_spacing=0.08,
                        shared_yaxes=True)
    for col, grid in ((1, grid_plain), (2, grid_res)):
        _add_panel(fig, grid, x, y, col == 1, {"row": 1, "col": col})
    style.base_layout(fig, title, X_TITLE, Y_TITLE, height=460)
    fig.update_yaxes(title_text="", row=1, col=2)
    for ann, colour in zip(fig.layout.annotations, (style.PLAIN, style.RESIDUAL)):
        ann.font = dict(color=colour, size=14)
    # Legend under the panels: above them it would cover the right panel's title.
    fig.update_layout(uirevision="boundary_pair", margin=dict(b=100),
                      legend=dict(y=-0.2, yanchor="top", x=0.5, xanchor="center"))
    return fig
