"""Lessons page: it loads, the URL and the picker choose the lesson, Run waits for a
prediction, and a tiny-settings run completes through the job queue and the shared analysis."""
from __future__ import annotations

import time

from app_helpers import app_env, no_exception, open_app  # noqa: F401
from streamlit.testing.v1 import AppTest


def _markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_page_loads_and_the_picker_changes_the_text(app_env):
    at = open_app("lessons")
    no_exception(at)
    assert at.selectbox(key="lesson_pick").value == "degradation"
    assert "Degradation" in _markdown(at) or "degradation" in _markdown(at)
    assert at.button(key="lesson_start").disabled        # no prediction yet
    at.selectbox(key="lesson_pick").set_value("shattered").run()
    no_exception(at)
    assert "white noise" in _markdown(at)
    assert at.query_params.get("lesson") in ("shattered", ["shattered"])


def test_a_tiny_run_completes(app_env):
    at = open_app("lessons")
    at.selectbox(key="lesson_pick").set_value("identity").run()
    at.text_input(key="lp_identity_seeds").set_value("0")
    at.number_input(key="lp_identity_shallow_depth").set_value(2)
    at.number_input(key="lp_identity_extra_blocks").set_value(2)
    at.number_input(key="lp_identity_steps").set_value(10).run()
    at.radio(key="pred_identity").set_value(at.radio(key="pred_identity").options[0]).run()
    assert not at.button(key="lesson_start").disabled
    at.button(key="lesson_start").click().run()
    no_exception(at)
    end = time.monotonic() + 120
    while not any("Our numbers" in m.value for m in at.markdown):
        assert time.monotonic() < end, "the lesson did not finish in time"
        time.sleep(0.3)
        at.run()
        no_exception(at)
    assert any("You predicted" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) >= 1


def test_the_url_chooses_the_lesson(app_env):
    at = open_app("lessons", params={"lesson": "highway"})
    no_exception(at)
    assert at.selectbox(key="lesson_pick").value == "highway"


def test_classroom_limits_stop_a_lesson(app_env):
    cfg = app_env / "classroom.toml"
    cfg.write_text(cfg.read_text() + "max_steps = 50\n")
    at = open_app("lessons")
    no_exception(at)
    assert any("classroom limits" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "lesson_start"]
