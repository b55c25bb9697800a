"""Shattered gradients: at init for the sidebar's depth, the depth sweep, and after training."""
from __future__ import annotations

from app_helpers import app_env, chart_titled, charts, no_exception, open_app, wait_jobs  # noqa: F401

SMALL = {"depth": "6", "width": "8", "steps": "30", "log_every": "5", "eval_every": "10"}


def test_shatter_page_at_init_then_trained(app_env):
    at = open_app("shatter", SMALL)
    no_exception(at)
    grads = chart_titled(at, "Gradient of the first logit")
    assert [t["name"] for t in grads["data"]][-2:] == ["plain, depth 6", "ResNet, depth 6"]
    assert chart_titled(at, "Autocorrelation of the gradient")
    assert chart_titled(at, "Correlation of unit gradients")
    assert chart_titled(at, "Lag-1 autocorrelation")
    at.radio(key="corr_init").set_value("residual").run()
    assert "residual" in chart_titled(at, "Correlation of unit gradients")["layout"]["title"]["text"]
    at.button(key="shatter_train").click().run()
    wait_jobs(at.session_state["shatter_pair"].keys.values())
    at.run()
    no_exception(at)
    assert sum(str(f["layout"]["title"]["text"]).startswith("Gradient of the first logit") for f in charts(at)) == 2


def test_depth_knob_changes_the_nets(app_env):
    at = open_app("shatter", SMALL)
    at.sidebar.select_slider(key="knob_depth").set_value(8).run()
    no_exception(at)
    names = [t["name"] for t in chart_titled(at, "Gradient of the first logit")["data"]]
    assert "ResNet, depth 8" in names
