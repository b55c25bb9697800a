"""Runs page: stored runs are listed, compared, exported and deleted."""
from __future__ import annotations

from app_helpers import app_env, chart_titled, no_exception, open_app, services, train_pair  # noqa: F401


def test_list_compare_export_delete(app_env):
    at = open_app("runs")
    no_exception(at)
    assert any("No runs stored yet" in i.value for i in at.info)
    at.switch_page("pages/train.py").run()
    keys = train_pair(at)
    at.switch_page("pages/runs.py").run()
    no_exception(at)
    assert len(at.dataframe[0].value) == 2
    at.multiselect(key="runs_pick").set_value(keys).run()
    assert len(chart_titled(at, "Loss during training")["data"]) == 6     # train, val, train batches x 2
    assert len(at.get("download_button")) == 2
    at.checkbox(key="runs_sure").check().run()
    at.button(key="runs_delete").click().run()
    no_exception(at)
    assert services().store.list() == []
    assert any("No runs stored yet" in i.value for i in at.info)
