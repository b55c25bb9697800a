"""Home page: loads, teaches H(x) = F(x) + x, links every page; the URL holds the spec."""
from __future__ import annotations

from app_helpers import app_env, no_exception, open_app, param  # noqa: F401  (fixture)


def test_home_loads_with_formula_and_links(app_env):
    at = open_app()
    no_exception(at)
    assert "F(x) + x" in at.get("latex")[0].proto.body
    assert len(at.get("page_link")) >= 7
    assert param(at, "depth") == "4" and param(at, "dataset") == "moons"


def test_tampered_url_warns_and_falls_back(app_env):
    at = open_app(params={"depth": "abc", "lr": "-5", "model": "evil"})
    no_exception(at)
    text = " ".join(w.value for w in at.warning)
    assert "depth" in text and "lr" in text and "model" in text
    assert at.query_params == {}                     # the defaults: nothing to write
    assert at.session_state["spec"].depth == 20


def test_out_of_limit_values_are_clamped_with_a_message(app_env):
    at = open_app(params={"depth": "500", "steps": "99999"})
    no_exception(at)
    assert any("limit" in w.value for w in at.warning)
    spec = at.session_state["spec"]
    assert spec.depth == 110 and spec.steps == 5000


def test_changing_a_knob_rewrites_the_url(app_env):
    at = open_app()
    at.sidebar.select_slider(key="knob_depth").set_value(8).run()
    no_exception(at)
    assert param(at, "depth") == "8"
    at.sidebar.selectbox(key="knob_model").set_value("cnn").run()
    spec = at.session_state["spec"]
    assert (spec.model, spec.dataset, spec.depth) == ("cnn", "digits", 8)


def test_page_parameters_that_are_not_knobs_survive(app_env):
    at = open_app(params=dict(depth="6", lesson="degradation", evil="<b>x</b>"))
    no_exception(at)
    assert param(at, "lesson") == "degradation" and param(at, "depth") == "6"
    at.sidebar.select_slider(key="knob_depth").set_value(8).run()
    assert param(at, "lesson") == "degradation" and param(at, "depth") == "8"


def test_a_page_that_ran_without_app_py_is_rerun_through_it(app_env):
    """``pages/`` beside app.py starts Streamlit in its legacy mode, which AppTest enters on
    every run: a switched-to page first runs alone, then ``frame.page`` reruns it through
    app.py (``st.navigation``), which leaves the legacy mode and draws the frame."""
    from streamlit.runtime.pages_manager import PagesManager

    at = open_app("architecture")
    no_exception(at)
    assert at.title[0].value.startswith("Architecture") and not at.error
    assert at.sidebar.select_slider(key="knob_depth").value == 4            # the frame, from the URL
    assert PagesManager.uses_pages_directory is False
    assert "_legacy_rerun" not in at.session_state and "_framed" not in at.session_state


def test_a_page_started_on_its_own_says_how_to_start_the_app(app_env):
    from streamlit.testing.v1 import AppTest

    from app_helpers import APP

    at = AppTest.from_file(str(APP.parent / "pages" / "home.py"), default_timeout=300).run()
    assert [e.value for e in at.error] == ["Start the app with `streamlit run app.py`."]
    assert not at.title
