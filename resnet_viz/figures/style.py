"""One palette and layout for every chart.

Okabe & Ito's colour-blind-safe palette. Plain is always vermillion and residual always
blue, on every page, so a student never has to re-learn the legend.
"""
from __future__ import annotations

import threading

import plotly.graph_objects as go
import plotly.io as pio

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


# Trace types the app draws; the lean template keeps plotly_white's defaults for these only.
TRACE_TYPES = ("scatter", "heatmap", "bar", "contour", "surface", "histogram", "image")
UNUSED_LAYOUT = ("geo", "mapbox", "polar", "ternary")  # subplots of kinds the app never draws
_TEMPLATE = "resnet_lab_white"
_template_lock = threading.Lock()


def template() -> str:
    """The name of plotly_white reduced to the trace types in ``TRACE_TYPES`` and the layout
    of the subplot kinds the app draws.

    Same look, a fifth of the cost: plotly validates and copies a figure's whole template,
    and plotly_white's defaults for 24 trace types made ~14 of a loss chart's ~17 ms
    (measured on this 2-core server), paid by every live tab's poll.
    """
    if _TEMPLATE not in pio.templates:
        with _template_lock:
            if _TEMPLATE not in pio.templates:
                white = pio.templates["plotly_white"]
                data = {t: getattr(white.data, t) for t in TRACE_TYPES if getattr(white.data, t, None)}
                layout = {k: v for k, v in white.layout.to_plotly_json().items() if k not in UNUSED_LAYOUT}
                pio.templates[_TEMPLATE] = go.layout.Template(layout=layout, data=data)
    return _TEMPLATE


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
                      template=template(), margin=dict(l=60, r=20, t=60, b=50),
                      legend=dict(orientation="h", yref="container", yanchor="bottom", y=0.0,
                                  xanchor="left", x=0.0))
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return fig


def log_axis(fig: go.Figure, axis: str = "y", **extra: object) -> go.Figure:
    """A log axis with decade ticks (10⁻², 10⁻¹, 1, 10) when its data span a decade or more
    (or there are no data yet: plotly's empty log range spans several).

    Plotly's own log ticks label the digits between decades too, which reads as "5, 2, 0.1,
    5, 2, 0.01"; within one decade its plain ticks (0.5, 0.6, ...) are the readable ones.
    """
    values = []
    for trace in fig.data:
        vals = getattr(trace, axis, None)
        if vals is not None and not isinstance(vals, str):
            values += [float(v) for v in vals if isinstance(v, (int, float)) and v == v and v > 0]
    decades = not values or max(values) / min(values) >= 10    # an empty chart's default range spans decades
    ticks = dict(dtick=1, exponentformat="power", showexponent="all") if decades else {}
    update = fig.update_yaxes if axis == "y" else fig.update_xaxes
    return update(type="log", **ticks, **extra)
