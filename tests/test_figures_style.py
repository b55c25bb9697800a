"""The lean template: plotly_white's look for every trace type the app draws, at a fraction of the size."""
from __future__ import annotations

import pathlib
import re

import plotly.graph_objects as go
import plotly.io as pio

from resnet_viz.figures import style

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_lean_template_looks_like_plotly_white_for_our_traces():
    lean, white = pio.templates[style.template()], pio.templates["plotly_white"]
    kept = {k: v for k, v in white.layout.to_plotly_json().items() if k not in style.UNUSED_LAYOUT}
    assert lean.layout.to_plotly_json() == kept
    for kind in style.TRACE_TYPES:
        assert getattr(lean.data, kind) == getattr(white.data, kind), kind


def test_every_trace_type_the_app_draws_is_in_the_template():
    used = set()
    for path in [*ROOT.glob("resnet_viz/**/*.py"), *ROOT.glob("pages/*.py")]:
        used |= {m.lower() for m in re.findall(r"\bgo\.([A-Z][a-z0-9]+)\(", path.read_text())}
    assert used - {"figure"} <= set(style.TRACE_TYPES), used


def test_a_figure_with_the_lean_template_is_much_smaller():
    def size(template: str) -> int:
        fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
        fig.update_layout(template=template)
        return len(fig.to_json())
    assert size(style.template()) < 0.6 * size("plotly_white")   # measured 3.6 vs 6.6 kB


def test_log_axes_tick_decades_when_the_data_span_them():
    wide = go.Figure(go.Scatter(x=[0, 1, 2], y=[1e-3, 0.1, 5.0]))
    style.log_axis(wide)
    assert wide.layout.yaxis.type == "log" and wide.layout.yaxis.dtick == 1
    assert wide.layout.yaxis.exponentformat == "power"
    narrow = go.Figure(go.Scatter(x=[0, 1], y=[0.5, 0.9]))
    style.log_axis(narrow)
    assert narrow.layout.yaxis.type == "log" and narrow.layout.yaxis.dtick is None   # plain 0.5, 0.6, ...
    empty = style.log_axis(go.Figure())
    assert empty.layout.yaxis.dtick == 1
