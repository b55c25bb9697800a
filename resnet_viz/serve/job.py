"""One shared training run (:class:`Job`) and the interfaces pages program against.

A job is watched by every session that asked for its spec (its subscribers) and trained by
a :class:`~resnet_viz.serve.queue.JobQueue`. Pages see it through :class:`JobHandle` and the
queue through :class:`JobBackend`, so a cluster backend can replace the in-process queue
later without touching them. A :class:`Job` is only a handle: what it can do, its owner
(:class:`JobOwner`, the queue) does; what training it has done is in its :class:`JobRun`,
which only the owner reads and writes, under the owner's lock. This module imports no
queue: the queue imports it.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch.nn as nn

from resnet_viz.spec import ExperimentSpec
from resnet_viz.train.trainer import Trainer

# Job states (``Job.state``; the trainer snapshot's "status" only knows its own three):
# queued: waiting for a worker; running: a worker holds it; paused: by its sole subscriber;
# finished / diverged: trained to the end or stopped by NaN/inf (deterministic, so cached);
# stopped: by its subscriber; failed: ``error`` says why; cancelled: its last subscriber
# left; interrupted: the server shut down first.
ACTIVE = ("queued", "running", "paused")
REUSABLE = ("finished", "diverged")  # deterministic outcomes: the same spec gives them again
STATES = ACTIVE + REUSABLE + ("stopped", "failed", "cancelled", "interrupted")


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


class JobOwner(Protocol):
    """What a :class:`Job` hands its calls to: the queue that trains it. Declared here, not
    imported, so that the job does not depend on the queue that depends on it."""

    def snapshot(self, job: Job) -> dict[str, Any]: ...
    def model_copy(self, job: Job) -> nn.Module | None: ...
    def pause(self, job: Job, session_id: str) -> tuple[bool, str]: ...
    def resume(self, job: Job, session_id: str) -> tuple[bool, str]: ...
    def step(self, job: Job, n: int, session_id: str) -> tuple[bool, str]: ...
    def stop(self, job: Job, session_id: str, reason: str) -> tuple[bool, str]: ...


@dataclass(eq=False)
class JobRun:
    """What training a job has done and what its controls asked for next.

    Owned by the job's queue and guarded by the queue's lock; ``train_lock`` is held by the
    worker for one chunk, so whoever copies the weights gets them between two chunks.
    """

    trainer: Trainer | None = None
    slot: int | None = None              # the worker whose process holds the trainer
    worker: int | None = None            # the worker that last took it
    result: dict[str, Any] | None = None  # the final snapshot once the trainer is freed
    weights: bytes | None = None         # kept only when there is no store
    pause_requested: bool = False
    step_budget: int | None = None       # from step(n); becomes pause_at at a boundary
    pause_at: int | None = None
    stop_reason: str | None = None
    chunk: int = 1                       # steps per chunk, adapted to ~chunk_s
    s_per_step: float | None = None
    version: int = 0                     # bumped after each chunk: the snapshot cache's key
    cached: tuple[Any, dict[str, Any], float] | None = None  # (version, data, when)
    train_lock: threading.Lock = field(default_factory=threading.Lock)

    def take_trainer(self) -> Trainer | None:
        """Detach the trainer and free what it holds outside this process (a worker
        process's copy); the trainer, for its snapshot or its "running" trace."""
        trainer, self.trainer, self.slot = self.trainer, None, None
        if trainer is not None:
            trainer.close()
        return trainer


class Job:
    """One training run shared by its subscribers: a handle whose calls its owner answers.

    ``state``, ``error``, ``subscribers`` and the timestamps are read by pages and written
    by the owner under its lock; ``run`` is the owner's alone.
    """

    def __init__(self, spec: ExperimentSpec, owner: JobOwner, state: str = "queued") -> None:
        self.spec, self.key, self.state = spec, spec.spec_hash(), state
        self.error: str | None = None
        self.subscribers: set[str] = set()
        self.created, self.started, self.finished = time.time(), None, None
        self.run = JobRun()
        self._owner = owner

    def __repr__(self) -> str:
        return f"Job({self.key}, {self.state}, {len(self.subscribers)} subscriber(s))"

    def snapshot(self) -> dict[str, Any]:
        """The trainer's snapshot (docs/DESIGN.md) plus ``state``, ``queue_position``,
        ``estimate_wait_s``, ``progress``, ``error``, ``subscribers`` and timestamps.
        Thread-safe; nested lists are shared: read, don't mutate."""
        return self._owner.snapshot(self)

    def model_copy(self) -> nn.Module | None:
        """A fresh model (eval mode) with the current trained weights; None before training."""
        return self._owner.model_copy(self)

    def pause(self, session_id: str) -> tuple[bool, str]:
        """Pause after the current chunk; the worker goes on to the next job."""
        return self._owner.pause(self, session_id)

    def resume(self, session_id: str) -> tuple[bool, str]:
        """Train on to the end. Any subscriber may resume: it never freezes anyone's view."""
        return self._owner.resume(self, session_id)

    def step(self, n: int, session_id: str) -> tuple[bool, str]:
        """Run exactly ``n`` more steps (counted from the next chunk boundary), then pause."""
        return self._owner.step(self, n, session_id)

    def stop(self, session_id: str, reason: str = "stopped by the student") -> tuple[bool, str]:
        """End the run keeping what it learned so far (stored as "stopped")."""
        return self._owner.stop(self, session_id, reason)

    def refusal(self, session_id: str, verb: str) -> str:
        """Why ``session_id`` may not ``verb`` this job ("" if it may); read under the lock.

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
