"""Shattered-gradients figures (Balduzzi et al. 2017, arXiv:1702.08591). Pure builders.

Inputs are the JSON-safe dicts of ``resnet_viz.analysis.shatter`` (``shatter_report``,
``lag1_vs_depth``, ``noise_references``) or plain lists: the figures compute nothing. Plain nets are vermillion, ResNets blue, β-scaled
ResNets sky blue; white and brown noise references are grey.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from resnet_viz.figures.style import DIVERGING, PLAIN, REFERENCE, RESIDUAL, SCALED, base_layout, colour_for
from resnet_viz.figures import style

DASHES = ("solid", "dot", "dash", "longdash", "dashdot")
Curve = Mapping[str, Any]   # a shatter_report, or {"gradients"/"autocorr", "label", "kind"}
References = Mapping[str, Mapping[str, Sequence[float]]]   # analysis.shatter.noise_references
REFERENCE_STYLE = {"white noise": ("solid", 1.0, 0.5), "brown noise": ("dash", 1.5, 0.8)}


def curve_colour(kind: str, beta: float = 1.0) -> str:
    """Plain vermillion, identity ResNet blue, β-scaled ResNet (β ≠ 1) sky blue."""
    if kind == "none":
        return PLAIN
    if kind == "identity":
        return RESIDUAL if beta == 1.0 else SCALED
    return colour_for(kind)


def curve_label(kind: str, beta: float = 1.0, depth: int | None = None) -> str:
    """'plain, depth 24', 'ResNet, depth 50', 'ResNet β=0.1, depth 50'."""
    name = "plain" if kind == "none" else ("ResNet" if kind == "identity" else kind)
    if kind != "none" and beta != 1.0:
        name += f" β={beta:g}"
    return name if depth is None else f"{name}, depth {depth}"


def _describe(curve: Curve) -> tuple[str, str]:
    """(label, colour) of one curve, from its spec when it is a shatter_report."""
    spec = curve.get("spec") or {}
    kind = curve.get("kind", spec.get("shortcut", "none"))
    beta = float(curve.get("beta", spec.get("residual_scale", 1.0)))
    label = curve.get("label") or curve_label(kind, beta, spec.get("depth"))
    return label, curve_colour(kind, beta)


def _dash_for(colour: str, used: dict[str, int]) -> str:
    # Two curves of the same kind (e.g. plain depth 1 and 24) differ by dash pattern.
    used[colour] = used.get(colour, -1) + 1
    return DASHES[used[colour] % len(DASHES)]


def _standardise(g: Sequence[float]) -> np.ndarray:
    g = np.asarray(g, dtype=float)
    sd = g.std()
    return (g - g.mean()) / sd if sd > 0 else g - g.mean()


def gradient_figure(curves: Sequence[Curve], x: Sequence[float] | None = None,
                    references: References | None = None, normalise: bool = True) -> go.Figure:
    """df/dx over the input grid, several nets overlaid (Balduzzi et al. Fig. 1).

    ``normalise`` standardises each curve (zero mean, unit std) so a shattered deep net
    (|df/dx| in the hundreds) and a smooth shallow one share an axis; white and brown noise
    ``references`` (``noise_references``, always standardised) are drawn in grey behind the nets.
    """
    if not curves:
        raise ValueError("give at least one gradient curve")
    x = list(x if x is not None else curves[0]["x"])
    fig = go.Figure()
    for name, ref in (references or {}).items():
        dash, width, opacity = REFERENCE_STYLE.get(name, ("dot", 1.0, 0.6))
        fig.add_trace(_line(x, _standardise(ref["gradients"][:len(x)]), f"{name} (reference)",
                            REFERENCE, dash, width=width, opacity=opacity))
    used: dict[str, int] = {}
    for curve in curves:
        label, colour = _describe(curve)
        g = _standardise(curve["gradients"]) if normalise else np.asarray(curve["gradients"], float)
        fig.add_trace(_line(x, g, label, colour, _dash_for(colour, used)))
    y_title = "df/dx (standardised: zero mean, unit std)" if normalise else "df/dx (logit per unit input)"
    return base_layout(fig, "Gradient of the first logit over the input grid",
                       "input x (dimensionless, grid in [lo, hi])", y_title)


def _line(x: Sequence[float], y: Sequence[float], name: str, colour: str, dash: str,
          width: float = 2.0, opacity: float = 1.0) -> go.Scatter:
    return go.Scatter(x=list(x), y=list(map(float, y)), mode="lines", name=name, opacity=opacity,
                      line=dict(color=colour, dash=dash, width=width))


def correlation_heatmap(C: Sequence[Sequence[float]], x: Sequence[float] | None = None,
                        label: str = "") -> go.Figure:
    """Correlation between the unit gradients at grid points x_i and x_j (−1 to 1).

    Smooth nets give a broad band of high correlation around the diagonal; shattered nets
    only the diagonal itself (Balduzzi et al. 2017, gradient covariance across inputs).
    """
    C = np.asarray(C, dtype=float)
    x = list(x) if x is not None else list(range(len(C)))
    fig = go.Figure(go.Heatmap(z=C, x=x, y=x, zmin=-1.0, zmax=1.0, colorscale=DIVERGING,
                               reversescale=True, colorbar=dict(title="correlation")))
    title = "Correlation of unit gradients between grid points"
    fig = base_layout(fig, f"{title} — {label}" if label else title,
                      "input x_i (dimensionless)", "input x_j (dimensionless)", height=420)
    fig.update_xaxes(constrain="domain")   # square cells, no empty margins beside the map
    fig.update_yaxes(scaleanchor="x", scaleratio=1, constrain="domain")
    return fig


def autocorrelation_figure(curves: Sequence[Curve], references: References | None = None,
                           max_lag: int | None = None) -> go.Figure:
    """Autocorrelation of df/dx by lag, with white and brown noise references
    (Balduzzi et al. 2017, Fig. 2: plain nets decay to white noise, ResNets stay brown)."""
    if not curves:
        raise ValueError("give at least one autocorrelation curve")
    n_lags = len(curves[0]["autocorr"]) if max_lag is None else max_lag + 1
    lags = list(range(n_lags))
    fig = go.Figure()
    for name, ref in (references or {}).items():
        dash = REFERENCE_STYLE.get(name, ("dot",))[0]
        fig.add_trace(_line(lags[:len(ref["autocorr"])], ref["autocorr"][:n_lags], f"{name} (reference)",
                            REFERENCE, dash, width=1.5))
    used: dict[str, int] = {}
    for curve in curves:
        label, colour = _describe(curve)
        fig.add_trace(_line(lags, curve["autocorr"][:n_lags], label, colour, _dash_for(colour, used)))
    fig.add_hline(y=0.0, line=dict(color=REFERENCE, width=0.5))
    return base_layout(fig, "Autocorrelation of the gradient df/dx by lag",
                       "lag (grid steps)", "autocorrelation (1 at lag 0)")


def lag1_depth_figure(result: Mapping[str, Any], log_y: bool = False,
                      theory: bool = True) -> go.Figure:
    """Lag-1 gradient autocorrelation vs depth, mean ± std over seeds (``lag1_vs_depth``).

    Theory curves are dashed in the colour of their measurement: plain 2^-L (Theorem 1),
    ResNet 1/(β√L) (Theorem 3), one constant per kind fitted at the smallest depth. The grey
    band ±1/√n is where white noise lands. ``log_y`` shows the decay rates; values ≤ 0
    (white noise) cannot be drawn on it.
    """
    depths = list(result["depths"])
    fig = go.Figure()
    floor = float(result["noise_floor"])
    low = floor / 4 if log_y else -floor   # a log axis has no negative half
    fig.add_trace(go.Scatter(x=depths + depths[::-1], y=[floor] * len(depths) + [low] * len(depths),
                             fill="toself", fillcolor="rgba(127,127,127,0.15)", mode="lines",
                             line=dict(width=0, color=REFERENCE), name="white-noise level ±1/√n"))
    for curve in result["curves"]:
        colour = curve_colour(curve["kind"], curve["beta"])
        fig.add_trace(go.Scatter(x=depths, y=curve["mean"], mode="lines+markers",
                                 name=curve_label(curve["kind"], curve["beta"]),
                                 line=dict(color=colour, width=2),
                                 error_y=dict(type="data", array=curve["std"], visible=True)))
    if theory:
        for th in result["theory"]:
            fig.add_trace(_line(depths, th["values"], th["name"],
                                curve_colour(th["kind"], th["beta"]), "dash", width=1.5))
    title = "Lag-1 autocorrelation of df/dx vs depth (mean ± std over seeds)"
    fig = base_layout(fig, title, "depth L (hidden layers)", "lag-1 autocorrelation")
    if log_y:
        style.log_axis(fig, range=[math.log10(floor / 4), math.log10(1.1)])
    return fig
