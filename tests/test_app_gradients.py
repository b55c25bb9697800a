"""Gradient flow: asks for a pair first, then per-layer norms with the first/last ratio."""
from __future__ import annotations

from app_helpers import app_env, chart_titled, charts, no_exception, open_app, train_pair  # noqa: F401


def test_gradient_page_before_and_after_training(app_env):
    at = open_app("gradients")
    no_exception(at)
    assert at.info and at.button(key="start")                       # nothing trained yet
    at.switch_page("pages/train.py").run()
    train_pair(at)
    at.switch_page("pages/gradients.py").run()
    no_exception(at)
    assert [m.label.split(":")[0] for m in at.metric] == ["plain-4", "resnet-4 (identity)"]
    assert len(chart_titled(at, "Gradient norm by depth")["data"]) == 2
    assert sum(f["data"][0]["type"] == "heatmap" for f in charts(at)) == 2
    last = at.metric[0].value
    at.get("segmented_control")[0].set_value("first").run()
    no_exception(at)
    assert "first probe step" in chart_titled(at, "Gradient norm by depth")["layout"]["title"]["text"]
    assert at.metric[0].value != last or at.metric[0].value
