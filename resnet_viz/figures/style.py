"""One palette and layout for every chart.

Okabe & Ito's colour-blind-safe palette. Plain is always vermillion and residual always
blue, on every page, so a student never has to re-learn the legend.
"""
from __future__ import annotations

import plotly.graph_objects as go

PLAIN = "#D55E00"      # vermillion
RESIDUAL = "#0072B2"   # blue
GATED = "#009E73"      # bluish green (Highway)
PROJECTION = "#CC79A7" # reddish purple (option B)
SCALED = "#56B4E9"     # sky blue (beta-scaled ResNet)
REFERENCE = "#7F7F7F"  # grey: theory curves, white/brown noise
EXTRA = ("#E69F00", "#F0E442", "#000000")
SEQUENTIAL = "Viridis"  # heatmaps: perceptually uniform, colour-blind safe
DIVERGING = "PuOr"      # not red/blue: those mean plain/residual here

KIND_COLOURS = {"none": PLAIN, "plain": PLAIN, "identity": RESIDUAL, "residual": RESIDUAL,
                "projection": PROJECTION, "gated": GATED, "scaled": SCALED}


def colour_for(kind: str) -> str:
    """Colour for a shortcut kind or a 'plain' / 'residual' label."""
    return KIND_COLOURS.get(kind, EXTRA[sum(map(ord, kind)) % len(EXTRA)])


def label_for(kind: str) -> str:
    return {"none": "plain", "identity": "residual (identity, option A)",
            "projection": "residual (projection, option B)", "gated": "highway (gated)"}.get(kind, kind)


def short_label_for(kind: str) -> str:
    """A one-word name for a shortcut kind (subplot titles; ``label_for`` says the rest)."""
    return {"none": "plain", "identity": "residual", "gated": "highway"}.get(kind, kind)


def base_layout(fig: go.Figure, title: str, x_title: str, y_title: str,
                height: int = 380) -> go.Figure:
    """Title, axis labels with units, a legend that does not cover the data.

    The legend sits below the plot, anchored to the bottom edge of the figure (``yref`` =
    container), so it can never meet the title, however many rows it wraps into in a
    half-width column: plotly shrinks the plot area to make room for it.
    """
    fig.update_layout(title=dict(text=title, x=0.0, xanchor="left"), height=height,
                      template="plotly_white", margin=dict(l=60, r=20, t=60, b=50),
                      legend=dict(orientation="h", yref="container", yanchor="bottom", y=0.0,
                                  xanchor="left", x=0.0))
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return fig
