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

log = logging.getLogger(__name__)


def give_back_memory() -> bool:
    """Collect garbage, then trim the C heap; False where the C library has no malloc_trim.

    ``gc.collect()`` with torch loaded holds the interpreter ~0.2 s: call this when the
    process is quiet (a host with no runs, a server whose class has left), not per rerun.
    """
    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
        return True
    except (OSError, AttributeError):  # not glibc (musl, macOS): freed memory is reused
        log.debug("malloc_trim is not available", exc_info=True)
        return False
