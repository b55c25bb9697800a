"""Name what a server keeps after a class leaves (a developers' diagnostic, off by default).

With ``RESNET_VIZ_MEMTRACE=/some/file`` the server traces Python allocations (``tracemalloc``,
``RESNET_VIZ_MEMTRACE_FRAMES`` frames each, default 1) from the services' start. At each quiet
spell (``heartbeat.trim_when_quiet``) it appends a report to the file: the traced total, the
allocation sites that grew most since the previous quiet spell, and the object types whose
counts grew. The first report is the baseline; the next ones show what a class left behind.
Tracing slows the server (~1.5x) and costs memory: never turn it on for a real class.
"""
from __future__ import annotations

import collections
import gc
import os
import time
import tracemalloc
from pathlib import Path

ENV, FRAMES_ENV = "RESNET_VIZ_MEMTRACE", "RESNET_VIZ_MEMTRACE_FRAMES"
_state: dict[str, object] = {}


def start() -> bool:
    """Start tracing if ``RESNET_VIZ_MEMTRACE`` names a file; True when tracing."""
    if not os.environ.get(ENV):
        return False
    if not tracemalloc.is_tracing():
        tracemalloc.start(max(1, int(os.environ.get(FRAMES_ENV, "1") or 1)))
    return True


def _type_counts() -> collections.Counter[str]:
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def _rss_kb() -> str:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:  # not Linux
        return "?"
    return next((ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:")), "?")


def _site(stat: tracemalloc.StatisticDiff) -> str:
    frames = [f"{f.filename}:{f.lineno}" for f in stat.traceback]
    return " <- ".join(frames)


def report(top: int = 40, path: str | None = None) -> str | None:
    """Append the growth since the last report to the trace file; the text, or None when
    tracing is off. The first call only records the baseline."""
    path = path or os.environ.get(ENV)
    if not path or not tracemalloc.is_tracing():
        return None
    gc.collect()
    snap = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)])
    counts = _type_counts()
    rss = _rss_kb()
    traced, peak = tracemalloc.get_traced_memory()
    lines = [f"== {time.strftime('%H:%M:%S')} traced {traced / 2**20:.1f} MB (peak {peak / 2**20:.1f} MB), "
             f"{sum(counts.values())} objects, RSS {rss} kB"]
    prev = _state.get("snap")
    if isinstance(prev, tracemalloc.Snapshot):
        key = "traceback" if snap.traceback_limit > 1 else "lineno"
        diffs = snap.compare_to(prev, key)
        grown = sum(d.size_diff for d in diffs)
        lines.append(f"growth since the last report: {grown / 2**20:+.2f} MB")
        for d in diffs[:top]:
            lines.append(f"{d.size_diff / 1024:+10.1f} KiB {d.count_diff:+7d} blocks  {_site(d)}")
        old = _state.get("counts", collections.Counter())
        assert isinstance(old, collections.Counter)
        delta = sorted(((counts[k] - old.get(k, 0), k) for k in counts), reverse=True)[:top]
        lines.append("object types that grew: " + ", ".join(f"{k} {n:+d}" for n, k in delta if n > 0))
    _state["snap"], _state["counts"] = snap, counts
    text = "\n".join(lines) + "\n"
    with Path(path).open("a", encoding="utf-8") as fh:
        fh.write(text)
    return text
