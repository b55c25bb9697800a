"""The developers' memory diagnostic: off by default, and when on it names what grew."""
from __future__ import annotations

import tracemalloc

import pytest

from resnet_viz import memtrace


class _Kept:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload


@pytest.fixture
def tracing(monkeypatch, tmp_path):
    path = tmp_path / "trace.txt"
    monkeypatch.setenv(memtrace.ENV, str(path))
    monkeypatch.setattr(memtrace, "_state", {})
    was = tracemalloc.is_tracing()
    yield path
    if not was:
        tracemalloc.stop()


def test_off_without_the_variable(monkeypatch):
    monkeypatch.delenv(memtrace.ENV, raising=False)
    assert memtrace.start() is False
    assert memtrace.report() is None


def test_names_the_line_that_kept_memory(tracing):
    assert memtrace.start() is True
    first = memtrace.report()
    assert first is not None and "traced" in first and "growth" not in first
    kept = [_Kept(bytes(4096) + bytes([i % 256])) for i in range(256)]  # ~1 MiB kept
    second = memtrace.report()
    assert second is not None
    assert "growth since the last report" in second
    top = second.splitlines()[2]
    assert "test_memtrace.py" in top and "KiB" in top
    assert float(top.split()[0]) > 900  # KiB: the megabyte above, not noise
    assert "_Kept +256" in second.split("object types that grew:")[1]
    assert tracing.read_text().count("== ") == 2
    del kept
