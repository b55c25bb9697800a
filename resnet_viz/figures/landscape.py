"""Loss-landscape and singularity figures: plain data in, plotly figure out.

Landscapes after Li et al. 2018 (arXiv:1712.09913, Figs. 3 and 5); singularity signatures
after Orhan & Pitkow 2018 (arXiv:1701.09175, Figs. 1 and 4). Every comparison figure takes
a mapping ``{kind: result}`` where kind is "plain", "residual" or a shortcut kind
("none", "identity", "gated", ...), so colours come from the shared palette.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from resnet_viz.figures.style import REFERENCE, SEQUENTIAL, base_layout, colour_for, label_for
from resnet_viz.figures import style

LOSS_UNITS = "training loss (cross-entropy, nats)"
ALPHA_TITLE = "α (step along direction δ, in units of ‖θ‖ per filter)"
BETA_TITLE = "β (step along direction η, in units of ‖θ‖ per filter)"


def loss_slice_figure(slices: Mapping[str, dict], log_y: bool = True,
                      title: str = "1-D loss slice: plain vs residual") -> go.Figure:
    """L(θ + αδ) for each net, from ``loss_surface_1d`` results (Li et al. Fig. 3 style).

    A log y-axis by default: far from θ a deep plain net's loss can be 100× its residual
    twin's, which would flatten the interesting part near α = 0 on a linear axis.
    """
    fig = go.Figure()
    for kind, s in slices.items():
        fig.add_trace(go.Scatter(x=s["alpha"], y=s["loss"], mode="lines", name=label_for(kind),
                                 line=dict(color=colour_for(kind), width=2)))
    fig.add_vline(x=0.0, line=dict(color=REFERENCE, dash="dot"))
    base_layout(fig, title, ALPHA_TITLE, LOSS_UNITS)
    if log_y:
        style.log_axis(fig)
    return fig


def _z(surface: dict, log: bool) -> np.ndarray:
    """The loss grid (β rows, α columns); log10 if asked, cancelled points as NaN (gaps)."""
    z = np.array([[np.nan if v is None else v for v in row] for row in surface["loss"]],
                 dtype=float)
    return np.log10(np.maximum(z, 1e-12)) if log else z


def _z_title(log: bool) -> str:
    return "log₁₀ training loss (nats)" if log else LOSS_UNITS


def loss_surface_figure(surface: dict, kind: str = "residual", log: bool = True,
                        title: str | None = None) -> go.Figure:
    """3-D surface of L(θ + αδ + βη) from ``loss_surface_2d`` (Li et al. Fig. 5, top)."""
    fig = go.Figure(go.Surface(x=surface["alpha"], y=surface["beta"], z=_z(surface, log),
                               colorscale=SEQUENTIAL, colorbar=dict(title=_z_title(log)),
                               name=label_for(kind)))
    title = title or f"Loss surface around θ: {label_for(kind)}"
    base_layout(fig, title, ALPHA_TITLE, BETA_TITLE, height=520)
    fig.update_layout(scene=dict(xaxis_title="α", yaxis_title="β", zaxis_title=_z_title(log)))
    return fig


def loss_contour_figure(surface: dict, kind: str = "residual", log: bool = True,
                        title: str | None = None) -> go.Figure:
    """Contour map of L(θ + αδ + βη), θ marked at the origin (Li et al. Fig. 5, bottom)."""
    fig = go.Figure(go.Contour(x=surface["alpha"], y=surface["beta"], z=_z(surface, log),
                               colorscale=SEQUENTIAL, ncontours=30,
                               colorbar=dict(title=_z_title(log)), name=label_for(kind)))
    fig.add_trace(go.Scatter(x=[0.0], y=[0.0], mode="markers", name="trained θ",
                             marker=dict(color=colour_for(kind), size=10, symbol="x")))
    title = title or f"Loss contours around θ: {label_for(kind)}"
    base_layout(fig, title, ALPHA_TITLE, BETA_TITLE, height=480)
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def _by_layer(series: Mapping[str, Sequence[float]], title: str, y_title: str,
              y_range: tuple[float, float] | None = None) -> go.Figure:
    """One line per net, x = hidden layer number from input (1) to output."""
    fig = go.Figure()
    for kind, ys in series.items():
        fig.add_trace(go.Scatter(x=list(range(1, len(ys) + 1)), y=list(ys),
                                 mode="lines+markers", name=label_for(kind),
                                 line=dict(color=colour_for(kind), width=2)))
    base_layout(fig, title, "hidden layer (1 = nearest the input)", y_title)
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    return fig


def dead_units_figure(dead: Mapping[str, dict]) -> go.Figure:
    """Fraction of never-active units per layer, from ``dead_unit_fraction`` results."""
    return _by_layer({k: v["fraction"] for k, v in dead.items()},
                     "Elimination singularity: dead units per layer",
                     "fraction of units never active", (-0.02, 1.02))


def overlap_figure(overlaps: Mapping[str, dict]) -> go.Figure:
    """Mean over units of the largest |cos| to another unit's incoming weights, per layer."""
    return _by_layer({k: v["mean_max_cos"] for k, v in overlaps.items()},
                     "Overlap singularity: similarity of incoming weights",
                     "mean max |cosine| to another unit (0–1)", (0.0, 1.02))


def participation_figure(prs: Mapping[str, dict]) -> go.Figure:
    """Participation ratio of activations / width per layer (1 = all units independent)."""
    return _by_layer({k: v["ratio"] for k, v in prs.items()},
                     "Linear-dependence singularity: participation ratio",
                     "participation ratio / width (0–1)", (0.0, 1.02))


def hessian_histogram_figure(spectra: Mapping[str, Sequence[float]], tol: float = 1e-3,
                             bins: int = 60) -> go.Figure:
    """Histogram of Hessian eigenvalue magnitudes relative to the largest, log scale.

    Orhan & Pitkow Fig. 4: singular nets pile eigenvalues up at zero. The x-axis is
    log₁₀(|λ| / max|λ|), so the pile sits on the left of the dotted line at ``tol``; the
    legend gives each net's near-zero fraction.
    """
    fig = go.Figure()
    for kind, eigs in spectra.items():
        e = np.abs(np.asarray(eigs, dtype=float))
        top = e.max() if e.size and e.max() > 0 else 1.0
        rel = np.log10(np.maximum(e / top, 1e-12))
        near = float((e <= tol * top).mean()) if e.size else 0.0
        fig.add_trace(go.Histogram(x=rel, name=f"{label_for(kind)} ({near:.0%} near zero)",
                                   histnorm="probability", nbinsx=bins, opacity=0.6,
                                   marker=dict(color=colour_for(kind))))
    fig.add_vline(x=float(np.log10(tol)), line=dict(color=REFERENCE, dash="dot"))
    fig.update_layout(barmode="overlay")
    return base_layout(fig, "Hessian eigenvalues: plain vs residual",
                       "log₁₀ (|λ| / max |λ|)  (relative eigenvalue magnitude)",
                       "fraction of eigenvalues")


def singularity_figures(reports: Mapping[str, dict]) -> dict[str, go.Figure]:
    """All singularity figures from ``singularity_report`` results keyed by kind.

    The Hessian histogram is left out when any report has no Hessian (net too big).
    """
    figs = {"dead": dead_units_figure({k: r["dead"] for k, r in reports.items()}),
            "overlap": overlap_figure({k: r["overlap"] for k, r in reports.items()}),
            "participation": participation_figure({k: r["participation"]
                                                   for k, r in reports.items()})}
    if reports and all(r.get("hessian") for r in reports.values()):
        tol = next(iter(reports.values()))["hessian"]["tol"]
        figs["hessian"] = hessian_histogram_figure(
            {k: r["hessian"]["eigenvalues"] for k, r in reports.items()}, tol)
    return figs
