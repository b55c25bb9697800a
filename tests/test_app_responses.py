"""Residual responses: Fig. 7 by layer and sorted, ‖F(x)‖/‖x‖, and extra depths on demand."""
from __future__ import annotations

from app_helpers import app_env, chart_titled, no_exception, open_app, train_pair, wait_jobs  # noqa: F401


def test_responses_and_an_extra_depth(app_env):
    at = open_app("train")
    train_pair(at)
    at.switch_page("pages/responses.py").run()
    no_exception(at)
    assert len(chart_titled(at, "Layer responses by depth")["data"]) == 2
    assert len(chart_titled(at, "Layer responses sorted")["data"]) == 2
    assert chart_titled(at, "How far each residual block")
    at.multiselect(key="extra_pick").set_value([8])
    at.button(key="extra_add").click().run()
    no_exception(at)
    extra = at.session_state["extra_depths"]
    assert list(extra) == ["8"] and len(extra["8"]) == 2
    wait_jobs(extra["8"])
    at.run()
    assert len(chart_titled(at, "Layer responses by depth")["data"]) == 4
