"""Release a browser session's training jobs when the session is gone.

Streamlit has no end-of-session callback that survives a flaky classroom network, so each
page run and each live poll *touches* its session here (a heartbeat), and one daemon
thread per process (:class:`SessionReaper`) releases the sessions that went quiet:

- not seen for ``timeout_s`` and not known to be connected (``is_active`` says False, or
  cannot tell): the tab was closed, navigated away or lost its connection. Waiting
  ``timeout_s`` first lets a laptop that drops the Wi-Fi for a few seconds reconnect and
  keep its run.
- not seen for ``max_idle_s`` even though still connected: a tab forgotten in the
  background (browsers throttle its timers, so it stops polling) must not hold a worker
  for the rest of the lesson.

Releasing goes through ``release(session_id)`` (``JobQueue.release_session``): a job
nobody else watches is cancelled and its trainer freed; a shared job trains on for the
others. Nothing here imports streamlit: the app passes ``is_active`` in.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from resnet_viz.serve.memory import give_back_memory

log = logging.getLogger(__name__)

Release = Callable[[str], None]
IsActive = Callable[[str], "bool | None"]   # True connected, False gone, None unknown

# Every live tab re-renders its charts on each poll (~0.05 s of the server's interpreter,
# bench/bench_classroom.py, 2 cores). Training runs in worker processes below the server's
# priority, so polls no longer starve it: with 35 tabs, 1 s polls gave a p95 time-to-result
# of 7.5 s where 3.5 s polls gave 16.6 s (a tab learns of the end one poll late). Beyond
# ~40 tabs they poll less often, so the server itself stays responsive.
POLLS_PER_S = 40.0
POLL_MIN_S, POLL_MAX_S = 1.0, 4.0


def poll_every(sessions: int) -> float:
    """Seconds between a live tab's refreshes when ``sessions`` tabs are open: 1 s for a
    small group, stretching so the whole class costs about ``POLLS_PER_S`` renders a second."""
    return min(POLL_MAX_S, max(POLL_MIN_S, sessions / POLLS_PER_S))


def _unknown(_session_id: str) -> bool | None:
    return None


class SessionReaper:
    """Heartbeat table plus the thread that releases quiet sessions (see module doc)."""

    def __init__(self, release: Release, is_active: IsActive = _unknown, timeout_s: float = 20.0,
                 max_idle_s: float = 900.0, interval_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, trim_after_s: float = 150.0,
                 trim: Callable[[], object] = give_back_memory) -> None:
        if timeout_s <= 0 or max_idle_s < timeout_s or interval_s <= 0:
            raise ValueError("need 0 < timeout_s <= max_idle_s and interval_s > 0")
        self.release, self.is_active = release, is_active
        self.timeout_s, self.max_idle_s, self.interval_s = timeout_s, max_idle_s, interval_s
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.released = 0                    # sessions released so far (for the teacher's stats)
        # Streamlit drops a closed tab's state after server.disconnectedSessionTTL (120 s).
        self.trim_after_s, self.trim = trim_after_s, trim
        self._quiet_since: float | None = None
        self._trimmed = False

    # --- heartbeat ---
    def touch(self, session_id: str) -> None:
        """``session_id`` is alive now (called on every page run and every live poll)."""
        with self._lock:
            self._seen[session_id] = self._clock()

    def forget(self, session_id: str) -> None:
        """Stop tracking a session without releasing it (it released itself)."""
        with self._lock:
            self._seen.pop(session_id, None)

    def tracked(self) -> int:
        with self._lock:
            return len(self._seen)

    def poll_every(self) -> float:
        """:func:`poll_every` for the sessions this reaper tracks now."""
        return poll_every(self.tracked())

    # --- reaping ---
    def due(self, now: float | None = None) -> list[str]:
        """Sessions that should be released now (the rules in the module doc)."""
        now = self._clock() if now is None else now
        with self._lock:
            quiet = [(sid, now - t) for sid, t in self._seen.items() if now - t >= self.timeout_s]
        out = []
        for sid, idle in quiet:
            if idle >= self.max_idle_s or self._connected(sid) is not True:
                out.append(sid)
        return out

    def _connected(self, session_id: str) -> bool | None:
        try:
            answer = self.is_active(session_id)
        except Exception:  # a runtime shutting down must not kill the reaper
            log.debug("is_active(%s) failed", session_id, exc_info=True)
            return None
        return answer if isinstance(answer, bool) else None

    def reap(self, now: float | None = None) -> list[str]:
        """Release every due session; returns their ids. A failing release is logged."""
        gone = self.due(now)
        for sid in gone:
            with self._lock:
                last = self._seen.get(sid)
                # Touched again since ``due`` looked: it is back, leave it alone.
                if last is None or (now if now is not None else self._clock()) - last < self.timeout_s:
                    continue
                del self._seen[sid]
            try:
                self.release(sid)
                self.released += 1
            except Exception:
                log.exception("releasing session %s failed", sid)
        return gone

    # --- the thread ---
    def start(self) -> "SessionReaper":
        """Start the reaper thread (idempotent: at most one per reaper)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._loop, name="resnet-viz-reaper", daemon=True)
                self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.reap()
            self.trim_when_quiet()

    def trim_when_quiet(self, now: float | None = None) -> bool:
        """Once the class has left (no session for ``trim_after_s``, longer than Streamlit
        keeps a closed tab's state), give the freed memory back to the OS; once per quiet
        spell. True when it trimmed now."""
        now = self._clock() if now is None else now
        with self._lock:
            if self._seen:
                self._quiet_since, self._trimmed = None, False
                return False
            if self._quiet_since is None:
                self._quiet_since = now
            if self._trimmed or now - self._quiet_since < self.trim_after_s:
                return False
            self._trimmed = True
        self.trim()
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and wait for it (sessions are not released)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def reaper_threads() -> list[threading.Thread]:
    """Reaper threads alive in this process (the app must never have more than one)."""
    return [t for t in threading.enumerate() if t.name == "resnet-viz-reaper"]
