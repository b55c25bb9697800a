"""serve.memory: the developers' memory trace is off by default, and when on it names what
grew; the arena limit and the trim are tested with the reaper (test_serve_reaper.py)."""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from resnet_viz.serve import memory
from resnet_viz.serve.memory import TRACE_ENV, MemoryTrace


class _Kept:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload


@pytest.fixture
def tracing(monkeypatch, tmp_path):
    path = tmp_path / "trace.txt"
    monkeypatch.setenv(TRACE_ENV, str(path))
    was = tracemalloc.is_tracing()
    yield path
    if not was:
        tracemalloc.stop()


def test_off_without_the_variable(monkeypatch):
    monkeypatch.delenv(TRACE_ENV, raising=False)
    assert memory.trace.start() is False
    assert MemoryTrace().report() is None


def test_names_the_line_that_kept_memory(tracing):
    trace = MemoryTrace()
    assert trace.start() is True
    first = trace.report()
    assert first is not None and "traced" in first and "growth" not in first
    kept = [_Kept(bytes(4096) + bytes([i % 256])) for i in range(256)]  # ~1 MiB kept
    second = trace.report()
    assert second is not None
    assert "growth since the last report" in second
    top = second.splitlines()[2]
    assert Path(__file__).name in top and "KiB" in top
    assert float(top.split()[0]) > 900  # KiB: the megabyte above, not noise
    assert "_Kept +256" in second.split("object types that grew:")[1]
    assert tracing.read_text().count("== ") == 2
    del kept
