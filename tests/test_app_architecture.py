"""Architecture: the diagram follows depth and the shortcut toggles; the table matches."""
from __future__ import annotations

from app_helpers import app_env, charts, no_exception, open_app  # noqa: F401


def _shapes(at, prefix: str) -> list[str]:
    fig = charts(at)[0]
    return [s["name"] for s in fig["layout"].get("shapes", []) if s.get("name", "").startswith(prefix)]


def test_diagram_follows_depth_and_toggles(app_env):
    at = open_app("architecture")
    no_exception(at)
    assert len(_shapes(at, "block ")) == 4 and len(_shapes(at, "shortcut ")) == 4
    assert len(at.dataframe[0].value) == 4
    at.sidebar.select_slider(key="knob_depth").set_value(8).run()
    assert len(_shapes(at, "block ")) == 8
    at.sidebar.get("button_group")[0].set_value([0, 1, 2, 3, 4, 5]).run()          # blocks 6, 7 lose theirs
    no_exception(at)
    assert _shapes(at, "removed ") == ["removed 6", "removed 7"]
    assert at.session_state["spec"].shortcut_mask == "11111100"
    at.sidebar.toggle(key="knob__all").set_value(False).run()
    assert len(_shapes(at, "removed ")) == 8 and _shapes(at, "shortcut ") == []
    at.get("segmented_control")[0].set_value("plain").run()
    assert _shapes(at, "removed ") == [] and _shapes(at, "shortcut ") == []
    assert "plain-8" in charts(at)[0]["layout"]["title"]["text"]
