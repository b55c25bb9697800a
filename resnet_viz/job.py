"""One shared training run (:class:`Job`) and the interfaces pages program against.

A job is watched by every session that asked for its spec (its subscribers) and trained by
a :class:`~resnet_viz.jobs.JobQueue` worker. Pages see it through :class:`JobHandle` and the
queue through :class:`JobBackend`, so a cluster backend can replace the in-process queue
later without touching them. All of a job's state is guarded by its queue's lock.
"""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

import torch.nn as nn

from .spec import ExperimentSpec
from .training import Trainer, model_from_bytes

if TYPE_CHECKING:
    from .jobs import JobQueue

# Job states (``Job.state``; the trainer snapshot's "status" only knows its own three):
# queued: waiting for a worker; running: a worker holds it; paused: by its sole subscriber;
# finished / diverged: trained to the end or stopped by NaN/inf (deterministic, so cached);
# stopped: by its subscriber; failed: ``error`` says why; cancelled: its last subscriber
# left; interrupted: the server shut down first.
ACTIVE = ("queued", "running", "paused")
REUSABLE = ("finished", "diverged")  # deterministic outcomes: the same spec gives them again
STATES = ACTIVE + REUSABLE + ("stopped", "failed", "cancelled", "interrupted")
_HISTORY_KEYS = ("step", "train_loss", "train_acc", "val_loss", "val_acc")


FRESH_S = 0.5  # a live view is at most this stale; a change of state shows at once


def _fresh(cached: tuple[Any, dict[str, Any], float], version: tuple, now: float) -> bool:
    """The cached run data still serves: the same version, or a running job's newer chunks
    within the same ``FRESH_S`` tick of the clock (any other state is always exact).

    Ticks, not ages: the two runs of a pair then refresh at the same moment, so a chart of
    both changes once a tick instead of once per run's refresh (half the figure builds).
    """
    def tick(t: float) -> float:
        return t // FRESH_S if FRESH_S > 0 else t
    return cached[0] == version or (version[1] == "running" and cached[0][1:] == version[1:]
                                    and tick(now) == tick(cached[2]))


class QueueFull(ValueError):
    """A session asked for more runs than the classroom allows; the message says what to do."""


class JobHandle(Protocol):
    """What a page may do with a job, whatever backend runs it."""

    key: str
    state: str
    def snapshot(self) -> dict[str, Any]: ...
    def pause(self, session_id: str) -> tuple[bool, str]: ...
    def resume(self, session_id: str) -> tuple[bool, str]: ...
    def step(self, n: int, session_id: str) -> tuple[bool, str]: ...
    def stop(self, session_id: str) -> tuple[bool, str]: ...
    def model_copy(self) -> nn.Module | None: ...


class JobBackend(Protocol):
    """What pages need from a job runner: the in-process :class:`JobQueue` today."""

    def submit(self, spec: ExperimentSpec, session_id: str) -> JobHandle: ...
    def release(self, job: JobHandle, session_id: str) -> None: ...
    def release_session(self, session_id: str) -> None: ...
    def get(self, key: str) -> JobHandle | None: ...
    def stats(self) -> dict[str, Any]: ...
    def shutdown(self) -> None: ...


class Job:
    """One training run shared by its subscribers. All state is guarded by the queue's lock."""

    def __init__(self, spec: ExperimentSpec, queue: "JobQueue", state: str = "queued") -> None:
        self.spec, self.key, self.state = spec, spec.spec_hash(), state
        self.error: str | None = None
        self.subscribers: set[str] = set()
        self.created, self.started, self.finished = time.time(), None, None
        self._queue, self._lock = queue, queue._lock
        self._train_lock = threading.Lock()  # held by the worker for one chunk
        self._slot: int | None = None                # the worker whose process holds the trainer
        self._worker: int | None = None              # the worker that last took it
        self._trainer: Trainer | None = None
        self._result: dict[str, Any] | None = None  # final snapshot once the trainer is freed
        self._weights: bytes | None = None          # kept only when there is no store
        self._pause_requested = False
        self._step_budget: int | None = None         # from step(n); becomes _pause_at at a boundary
        self._pause_at: int | None = None
        self._stop_reason: str | None = None
        self._chunk = 1                              # steps per chunk, adapted to ~chunk_s
        self._s_per_step: float | None = None
        self._version = 0                            # bumped after each chunk: snapshot cache key
        self._cached: tuple[Any, dict[str, Any], float] | None = None  # (version, data, when)

    def __repr__(self) -> str:
        return f"Job({self.key}, {self.state}, {len(self.subscribers)} subscriber(s))"

    # --- reading ---
    def snapshot(self) -> dict[str, Any]:
        """The trainer's snapshot (docs/DESIGN.md) plus ``state``, ``queue_position``,
        ``estimate_wait_s``, ``progress``, ``error``, ``subscribers`` and timestamps.

        Thread-safe. The run data is rebuilt only when the job has advanced, and while it
        trains at most every ``FRESH_S``: 30 students polling one shared job then see the same
        copy at the same step, so their charts are built once (``figures.memo``) instead of
        once per chunk. Nested lists are shared: read, don't mutate.
        """
        now = time.monotonic()
        with self._lock:
            version = (self._version, self.state, self._trainer is None)
            trainer, cached = self._trainer, self._cached
            extra = {"key": self.key, "state": self.state, "error": self.error,
                     "queue_position": self._queue._position_locked(self),
                     "estimate_wait_s": self._queue._estimate_locked(self),
                     "subscribers": len(self.subscribers), "created": self.created,
                     "started": self.started, "finished": self.finished}
        if cached is None or not _fresh(cached, version, now):
            data = trainer.snapshot() if trainer is not None else self._result or self._empty()
            with self._lock:
                self._cached = cached = (version, data, now)
        data = cached[1]
        step, total = data.get("step", 0), data.get("total_steps", self.spec.steps)
        return {**data, **extra, "progress": min(1.0, step / total) if total else 0.0}

    def _empty(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "spec_hash": self.key, "step": 0,
                "total_steps": self.spec.steps, "status": self.state,
                "history": {k: [] for k in _HISTORY_KEYS}, "final": {}}

    def model_copy(self) -> nn.Module | None:
        """A fresh model (eval mode) with the current trained weights; None before training.

        Never the live training model: hooks, ``.grad`` and BN statistics of a model an
        analysis page pokes at would leak into the run everyone is watching.
        """
        with self._lock:
            trainer, blob = self._trainer, self._weights
        if trainer is not None:
            try:
                with self._train_lock:  # between chunks: weights are consistent
                    blob = trainer.weights()
            except RuntimeError:  # it ended meanwhile: its weights went to the store
                with self._lock:
                    blob = self._weights
        if blob is None and self._queue.store is not None:
            rec = self._queue.store.get(self.key)
            blob = rec.weights if rec is not None else None
        return model_from_bytes(self.spec, blob).eval() if blob else None

    # --- controls ---
    def _sole(self, session_id: str, verb: str) -> str:
        """Why ``session_id`` may not ``verb`` this job ("" if it may).

        Only a job's sole subscriber may pause, step or stop it: the job is shared by every
        student who asked for the same spec, and pausing it would freeze their view too.
        """
        if self.state not in ACTIVE:
            return f"the run has already ended ({self.state})"
        if session_id not in self.subscribers:
            return "this session is not watching this run"
        if others := len(self.subscribers - {session_id}):
            return (f"this run is shared with {others} other session(s); to {verb} it would "
                    "freeze their view too. Change the seed to get a run of your own.")
        return ""

    def pause(self, session_id: str) -> tuple[bool, str]:
        """Pause after the current chunk; the worker goes on to the next job."""
        with self._lock:
            if why := self._sole(session_id, "pause"):
                return False, why
            self._step_budget = self._pause_at = None
            if self.state == "queued":
                self._queue._pending.remove(self)
                self.state = "paused"
            elif self.state == "running":
                self._pause_requested = True
            return True, ""

    def resume(self, session_id: str) -> tuple[bool, str]:
        """Train on to the end. Any subscriber may resume: it never freezes anyone's view."""
        with self._lock:
            if self.state not in ACTIVE or session_id not in self.subscribers:
                return False, self._sole(session_id, "resume")
            self._pause_requested, self._step_budget, self._pause_at = False, None, None
            self._queue._requeue_front_locked(self)
            return True, ""

    def step(self, n: int, session_id: str) -> tuple[bool, str]:
        """Run exactly ``n`` more steps (counted from the next chunk boundary), then pause."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            return False, f"the number of steps must be a whole number of at least 1 (got {n!r})"
        with self._lock:
            if why := self._sole(session_id, "step"):
                return False, why
            self._pause_requested, self._pause_at, self._step_budget = False, None, n
            self._queue._requeue_front_locked(self)
            return True, ""

    def stop(self, session_id: str, reason: str = "stopped by the student") -> tuple[bool, str]:
        """End the run keeping what it learned so far (stored as "stopped")."""
        with self._lock:
            if why := self._sole(session_id, "stop"):
                return False, why
            self._stop_reason = reason
            if self._trainer is None and self.state != "running":  # nothing trained: just end it
                self._queue._end_locked(self, "stopped")
            self._queue._requeue_front_locked(self)  # a paused job must reach a boundary to end
            return True, ""
