"""The server's memory after a class leaves: hand it back to the OS, and name what stayed.

- Giving back (always on): after a class leaves, the server's and the trainer hosts' Python
  heaps are mostly free but stay mapped in glibc's arenas, so the resident size would sit at
  the class's peak until the next class reuses it. :func:`limit_arenas` keeps the arenas few,
  :func:`give_back_memory` (``malloc_trim(0)``) hands the free pages back.
- Naming (a developers' diagnostic, off by default): with ``RESNET_VIZ_MEMTRACE=/some/file``
  the server traces Python allocations (``tracemalloc``, ``RESNET_VIZ_MEMTRACE_FRAMES`` frames
  each, default 1) from the services' start. At each quiet spell (``reaper``'s trim) :data:`trace`
  appends a report to the file: the traced total, the allocation sites that grew most since
  the previous quiet spell, and the object types whose counts grew. The first report is the
  baseline; the next ones show what a class left behind. Tracing slows the server (~1.5x)
  and costs memory: never turn it on for a real class.

Nothing here imports streamlit.
"""
from __future__ import annotations

import collections
import ctypes
import ctypes.util
import gc
import logging
import os
import time
import tracemalloc
from pathlib import Path

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h
TRACE_ENV, TRACE_FRAMES_ENV = "RESNET_VIZ_MEMTRACE", "RESNET_VIZ_MEMTRACE_FRAMES"


# --- giving memory back ------------------------------------------------------------------
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def limit_arenas(n: int | None = None) -> bool:
    """Let glibc keep at most ``n`` malloc arenas in this process (as ``MALLOC_ARENA_MAX``).

    By default each of the server's ~35 script threads may get an arena of its own (up to 8
    per core), and freed memory stays scattered over all of them: with 2, the server kept
    +55 MB after a class instead of +89 to +108 MB (bench/bench_classroom.py). Python holds
    its interpreter lock for most allocations, so fewer arenas cost no speed. Call it early;
    False where the C library has no mallopt. ``n`` defaults to ``RESNET_VIZ_MALLOC_ARENAS``
    or 2; 0 leaves glibc's default.
    """
    n = int(os.environ.get("RESNET_VIZ_MALLOC_ARENAS", "2")) if n is None else n
    if n <= 0:
        return False
    try:
        return bool(_libc().mallopt(M_ARENA_MAX, int(n)))
    except (OSError, AttributeError):
        return False


def give_back_memory() -> bool:
    """Collect garbage, then trim the C heap; False where the C library has no malloc_trim.

    ``gc.collect()`` with torch loaded holds the interpreter ~0.2 s: call this when the
    process is quiet (a host with no runs, a server whose class has left), not per rerun.
    """
    gc.collect()
    try:
        _libc().malloc_trim(0)
        return True
    except (OSError, AttributeError):  # not glibc (musl, macOS): freed memory is reused
        log.debug("malloc_trim is not available", exc_info=True)
        return False


# --- naming what stayed (RESNET_VIZ_MEMTRACE) ----------------------------------------------
def _type_counts() -> collections.Counter[str]:
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def _rss_kb() -> str:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:  # not Linux
        return "?"
    return next((ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:")), "?")


def _site(stat: tracemalloc.StatisticDiff) -> str:
    return " <- ".join(f"{f.filename}:{f.lineno}" for f in stat.traceback)


class MemoryTrace:
    """Growth reports, each against the previous one (so it keeps the last snapshot)."""

    def __init__(self) -> None:
        self._snap: tracemalloc.Snapshot | None = None
        self._counts: collections.Counter[str] = collections.Counter()

    def start(self) -> bool:
        """Start tracing if ``RESNET_VIZ_MEMTRACE`` names a file; True when tracing."""
        if not os.environ.get(TRACE_ENV):
            return False
        if not tracemalloc.is_tracing():
            tracemalloc.start(max(1, int(os.environ.get(TRACE_FRAMES_ENV, "1") or 1)))
        return True

    def report(self, top: int = 40, path: str | None = None) -> str | None:
        """Append the growth since the last report to the trace file; the text, or None when
        tracing is off. The first call only records the baseline."""
        path = path or os.environ.get(TRACE_ENV)
        if not path or not tracemalloc.is_tracing():
            return None
        gc.collect()
        snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        counts = _type_counts()
        traced, peak = tracemalloc.get_traced_memory()
        lines = [f"== {time.strftime('%H:%M:%S')} traced {traced / 2**20:.1f} MB (peak {peak / 2**20:.1f} MB), "
                 f"{sum(counts.values())} objects, RSS {_rss_kb()} kB"]
        if self._snap is not None:
            lines += self._growth(snap, counts, top)
        self._snap, self._counts = snap, counts
        text = "\n".join(lines) + "\n"
        with Path(path).open("a", encoding="utf-8") as fh:
            fh.write(text)
        return text

    def _growth(self, snap: tracemalloc.Snapshot, counts: collections.Counter[str], top: int) -> list[str]:
        assert self._snap is not None
        diffs = snap.compare_to(self._snap, "traceback" if snap.traceback_limit > 1 else "lineno")
        lines = [f"growth since the last report: {sum(d.size_diff for d in diffs) / 2**20:+.2f} MB"]
        lines += [f"{d.size_diff / 1024:+10.1f} KiB {d.count_diff:+7d} blocks  {_site(d)}" for d in diffs[:top]]
        delta = sorted(((counts[k] - self._counts.get(k, 0), k) for k in counts), reverse=True)[:top]
        lines.append("object types that grew: " + ", ".join(f"{k} {n:+d}" for n, k in delta if n > 0))
        return lines


trace = MemoryTrace()   # the server process's one (build_services starts it, the reaper's trim reports)
