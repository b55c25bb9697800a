"""Give freed memory back to the operating system (glibc keeps it in its arenas otherwise).

After a class leaves, the server's and the trainer hosts' Python heaps are mostly free but
stay mapped: the resident size would sit at the class's peak until the next class reuses
it. ``malloc_trim(0)`` hands the free pages back. Nothing here imports streamlit.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os

log = logging.getLogger(__name__)


M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


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
