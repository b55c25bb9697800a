"""Shared set-up for the AppTest page tests: a temporary data dir, tiny specs, cleanup.

Each test gets its own run store (a config file in ``RESNET_VIZ_CONFIG`` pointing at
``tmp_path``); afterwards the process's services are released, which shuts the job queue
and the session reaper down, and no worker or reaper thread may be left.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parent.parent / "app.py"
TINY = {"dataset": "moons", "depth": "4", "width": "8", "steps": "30", "eval_every": "10", "log_every": "5"}
ENDED = ("finished", "stopped", "diverged", "failed", "cancelled", "interrupted")


def _our_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("resnet-viz-") and t.is_alive()]


def host_processes() -> list[int]:
    """Live trainer hosts (``python -m resnet_viz.serve.worker_host``) started by this process."""
    me, found = str(os.getpid()), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent, state = stat.rsplit(")", 1)[1].split()[1], stat.rsplit(")", 1)[1].split()[0]
        if parent == me and state != "Z" and b"resnet_viz.serve.worker_host" in cmd:
            found.append(int(pid))
    return found


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """A config with a temporary data dir; the services are torn down afterwards."""
    yield from _app_env(tmp_path, monkeypatch, processes=False)


@pytest.fixture
def app_env_procs(tmp_path, monkeypatch):
    """As ``app_env``, training in worker processes as a real server does."""
    yield from _app_env(tmp_path, monkeypatch, processes=True)


def _app_env(tmp_path, monkeypatch, processes: bool):
    cfg = tmp_path / "classroom.toml"
    # Threads, not worker processes: two fresh hosts per test would add ~4 s to each of them.
    # test_procs.py and the browser tests cover the process pool.
    cfg.write_text(f'data_dir = "{tmp_path / "data"}"\nmax_concurrent_jobs = 2\n'
                   f'worker_processes = {str(processes).lower()}\n')
    monkeypatch.setenv("RESNET_VIZ_CONFIG", str(cfg))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path
    # on_release: reaper stopped, queue shut down and joined (frame.services), the lessons'
    # analysis pool shut down and joined (pages/lessons.py)
    st.cache_resource.clear()
    st.cache_data.clear()
    assert _our_threads() == [], "leaked worker or reaper threads"
    assert host_processes() == [], "leaked trainer host processes"


def open_app(page: str | None = None, params: dict[str, str] | None = None) -> AppTest:
    """app.py run once with ``params`` in the URL, then switched to ``pages/<page>.py``."""
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.query_params = dict(params if params is not None else TINY)
    at.run()
    if page:
        at.switch_page(f"pages/{page}.py").run()
    return at


def services():
    from resnet_viz.ui import frame as common
    return common.services()


def wait_jobs(keys, timeout: float = 300.0) -> None:
    """Until every job ``keys`` names has ended."""
    queue = services().queue
    end = time.monotonic() + timeout
    while not all((j := queue.get(k)) is None or j.state in ENDED for k in keys):
        assert time.monotonic() < end, "training did not end in time"
        time.sleep(0.05)


def train_pair(at: AppTest) -> list[str]:
    """Press Start on the Train page, wait for both runs, rerun; the pair's keys."""
    at.button(key="start").click().run()
    keys = list(at.session_state["pair"].keys.values())
    assert len(keys) == 2
    wait_jobs(keys)
    at.run()
    return keys


def charts(at: AppTest) -> list[dict[str, Any]]:
    """Every plotly chart on the page as its figure JSON."""
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def chart_titled(at: AppTest, start: str) -> dict[str, Any]:
    for fig in charts(at):
        if str(fig["layout"].get("title", {}).get("text", "")).startswith(start):
            return fig
    raise AssertionError(f"no chart titled {start!r}: {[f['layout'].get('title') for f in charts(at)]}")


def param(at: AppTest, key: str) -> str | None:
    """One URL parameter as the page wrote it."""
    v = at.query_params.get(key)
    return v[-1] if isinstance(v, list) else v


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def unescaped(text: str) -> str:
    """A message as the student reads it: markdown escapes (``ui.uploads.plain``) removed."""
    import re
    return re.sub(r"\\(.)", r"\1", text)
