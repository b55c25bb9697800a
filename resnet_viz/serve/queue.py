"""A shared training queue for a classroom on one small server.

Runs are cached by ``spec.spec_hash()``: training is deterministic in the spec, so when 30
students open the same lesson preset it is computed once and everyone watches the same job;
a run already in the store is not computed at all. When a job's last subscriber (session
id) leaves, an unfinished job is cancelled and its trainer freed. :class:`JobQueue` is the
front desk: it finds or makes the job for a spec, answers its handle's calls and keeps the
ended runs. Behind it, ``lineup.py`` ranks the waiting jobs and estimates the waits, and
``worker_threads.py`` trains them on ``max_concurrent`` threads. Pages program against
:class:`JobBackend` and :class:`JobHandle` (``job.py``). Nothing here imports streamlit.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable

import torch.nn as nn

from resnet_viz.serve.config import cpu_cores
from resnet_viz.serve.job import ACTIVE, REUSABLE, STATES, Job, JobBackend, JobHandle, QueueFull
from resnet_viz.serve.lineup import Lineup
from resnet_viz.serve.store import RunStoreBackend
from resnet_viz.serve.worker_threads import WorkerThreads
from resnet_viz.spec import ExperimentSpec
from resnet_viz.train.history import HISTORY_KEYS
from resnet_viz.train.trainer import Trainer, model_from_bytes

__all__ = ["ACTIVE", "REUSABLE", "STATES", "Job", "JobBackend", "JobHandle", "JobQueue", "QueueFull"]

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


def _blank(job: Job) -> dict[str, Any]:
    """The run data of a job that has not trained yet, shaped like a trainer's snapshot."""
    return {"spec": job.spec.to_dict(), "spec_hash": job.key, "step": 0,
            "total_steps": job.spec.steps, "status": job.state,
            "history": {k: [] for k in HISTORY_KEYS}, "final": {}}


class JobQueue:
    """Bounded-concurrency, most-watched-first queue of training jobs with a spec-hash cache
    (see module doc). Every job's state and ``run`` are guarded by this queue's lock."""

    def __init__(self, max_concurrent: int | None = None, store: RunStoreBackend | None = None,
                 cache_size: int = 64, max_jobs_per_session: int = 4,
                 trainer_factory: Callable[[ExperimentSpec], Trainer] | None = None,
                 torch_threads: int | None = None, chunk_s: float = 0.15) -> None:
        self.max_concurrent = max(1, max_concurrent or cpu_cores())
        self.store, self.cache_size = store, max(0, cache_size)
        self.max_jobs_per_session = max_jobs_per_session
        # Single-threaded jobs by default: 2 jobs x 2 intra-op threads on 2 cores thrash
        # (measured 98 vs 4 ms/step under load), and a deep plain net is chaotic enough that
        # the thread count changes its numbers: one thread everywhere (queue, CLI, lessons)
        # keeps a cached run identical to what a student gets headless.
        self.torch_threads = torch_threads or 1
        self.chunk_s = chunk_s
        self._factory = trainer_factory or Trainer
        self._lock = threading.RLock()
        self.lineup = Lineup(self._lock, self.max_concurrent)  # read it under the lock
        self._workers = WorkerThreads(self.lineup, self._lock, self, self._factory, store,
                                      self.torch_threads, chunk_s)
        self._active: dict[str, Job] = {}                 # queued / running / paused, by key
        self._done: OrderedDict[str, Job] = OrderedDict()  # finished / diverged, LRU
        self._failed: OrderedDict[str, Job] = OrderedDict()  # failed, found by get() only

    def __enter__(self) -> "JobQueue":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # --- the JobBackend interface ---
    def submit(self, spec: ExperimentSpec, session_id: str) -> Job:
        """The job for ``spec``, shared with every session that asked for the same spec.

        Raises :class:`QueueFull` when this session already has ``max_jobs_per_session``
        unfinished runs and the spec would need a new one (joining is always free).
        """
        key = spec.spec_hash()
        with self._lock:
            if self.lineup.closed:
                raise RuntimeError("the job queue has been shut down")
            job = self._active.get(key) or self._cached(key) or self._from_store(spec)
            if job is None:
                self._check_session_limit(session_id)
                self._failed.pop(key, None)
                job = self._active[key] = Job(spec, self)
                self.lineup.add(job)
                self._workers.start()
            job.subscribers.add(session_id)
            self.lineup.order()
            return job

    def release(self, job: Job, session_id: str) -> None:
        """``session_id`` no longer watches ``job``; an unfinished job nobody watches is cancelled."""
        with self._lock:
            job.subscribers.discard(session_id)
            if job.state in ACTIVE and not job.subscribers:
                self._workers.end(job, "cancelled")
            self.lineup.order()

    def release_session(self, session_id: str) -> None:
        """Release every job of a session (tab closed, connection lost)."""
        with self._lock:
            for job in [*self._active.values(), *self._done.values()]:
                if session_id in job.subscribers:
                    self.release(job, session_id)

    def get(self, key: str) -> Job | None:
        """The job with spec hash ``key`` still in memory, or None. A run that failed before it
        trained (a checkpoint that does not fit, a missing dataset) is found too, so its page can
        say why; it is never reused: a new submit trains the spec again."""
        with self._lock:
            return self._active.get(key) or self._cached(key) or self._failed.get(key)

    def drop_ended(self) -> int:
        """Drop the memory copies of ended runs when the store keeps them (a quiet server
        returns to its size; the next request reads the store). How many were dropped."""
        with self._lock:
            if self.store is None:
                return 0
            keep = [(k, j) for k, j in self._done.items() if j.run.weights is not None]  # not stored
            n = len(self._done) - len(keep)
            self._done = OrderedDict(keep)
            self._failed.clear()
            return n

    def forget(self, key: str) -> None:
        """Drop an ended run from the memory cache (call after deleting it from the store)."""
        with self._lock:
            self._done.pop(key, None)

    def stats(self) -> dict[str, Any]:
        """Counts for the teacher's dashboard and the load benchmark."""
        with self._lock:
            return {"queued": len(self.lineup.waiting), "running": len(self.lineup.running),
                    "paused": sum(j.state == "paused" for j in self._active.values()),
                    "cached": len(self._done), "max_concurrent": self.max_concurrent,
                    "peak_running": self.lineup.peak_running, "threads_alive": self._workers.alive()}

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the workers (running jobs end at their next chunk as "interrupted") and join them."""
        self.lineup.close()
        self._workers.join(timeout)
        with self._lock:  # what is left is queued or paused (or stuck in a chunk)
            left = [(job, job.run.trainer.snapshot() if job.run.trainer else None)
                    for job in self._active.values()]
            for job, _ in left:
                self._workers.end(job, "interrupted")
        for job, result in left:
            if result is not None:  # it had started: replace its "running" trace
                self._workers.persist(job, "interrupted", result, None)
        stop = getattr(self._factory, "shutdown", None)
        if stop is not None:  # a process pool: its hosts exit now that nothing trains
            stop()
        self._workers.restore_torch_threads()

    # --- what a Job hands over (the JobOwner interface) ---
    def snapshot(self, job: Job) -> dict[str, Any]:
        """``job``'s snapshot (see :meth:`Job.snapshot`).

        The run data is rebuilt only when the job has advanced, and while it trains at most
        every ``FRESH_S``: 30 students polling one shared job then see the same copy at the
        same step, so their charts are built once (``figures.memo``), not once per chunk.
        """
        now, run = time.monotonic(), job.run
        with self._lock:
            version = (run.version, job.state, run.trainer is None)
            trainer, cached = run.trainer, run.cached
            extra = {"key": job.key, "state": job.state, "error": job.error,
                     "queue_position": self.lineup.position(job),
                     "estimate_wait_s": self.lineup.estimate_wait_s(job),
                     "subscribers": len(job.subscribers), "created": job.created,
                     "started": job.started, "finished": job.finished}
        if cached is None or not _fresh(cached, version, now):
            data = trainer.snapshot() if trainer is not None else run.result or _blank(job)
            with self._lock:
                run.cached = cached = (version, data, now)
        data = cached[1]
        step, total = data.get("step", 0), data.get("total_steps", job.spec.steps)
        return {**data, **extra, "progress": min(1.0, step / total) if total else 0.0}

    def model_copy(self, job: Job) -> nn.Module | None:
        """A fresh model of ``job`` (see :meth:`Job.model_copy`).

        Never the live training model: hooks, ``.grad`` and BN statistics of a model an
        analysis page pokes at would leak into the run everyone is watching.
        """
        run = job.run
        with self._lock:
            trainer, blob = run.trainer, run.weights
        if trainer is not None:
            try:
                with run.train_lock:  # between chunks: weights are consistent
                    blob = trainer.weights()
            except RuntimeError:  # it ended meanwhile: its weights went to the store
                with self._lock:
                    blob = run.weights
        if blob is None and self.store is not None:
            rec = self.store.get(job.key)
            blob = rec.weights if rec is not None else None
        return model_from_bytes(job.spec, blob).eval() if blob else None

    def pause(self, job: Job, session_id: str) -> tuple[bool, str]:
        """Pause ``job`` after the current chunk (its sole subscriber only)."""
        with self._lock:
            if why := job.refusal(session_id, "pause"):
                return False, why
            self._workers.pause(job)
            return True, ""

    def resume(self, job: Job, session_id: str) -> tuple[bool, str]:
        """Train ``job`` on to the end; any subscriber may: it never freezes anyone's view."""
        with self._lock:
            if job.state not in ACTIVE or session_id not in job.subscribers:
                return False, job.refusal(session_id, "resume")
            self._workers.resume(job)
            return True, ""

    def step(self, job: Job, n: int, session_id: str) -> tuple[bool, str]:
        """Run ``job`` exactly ``n`` more steps, then pause it (its sole subscriber only)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            return False, f"the number of steps must be a whole number of at least 1 (got {n!r})"
        with self._lock:
            if why := job.refusal(session_id, "step"):
                return False, why
            self._workers.step(job, n)
            return True, ""

    def stop(self, job: Job, session_id: str, reason: str = "stopped by the student") -> tuple[bool, str]:
        """End ``job`` keeping what it learned so far (its sole subscriber only)."""
        with self._lock:
            if why := job.refusal(session_id, "stop"):
                return False, why
            self._workers.stop(job, reason)
            return True, ""

    # --- positions and estimates ---
    def position(self, job: Job) -> int | None:
        """0 while running, k when k-th in line, None when neither (paused or ended)."""
        with self._lock:
            return self.lineup.position(job)

    def estimate_wait_s(self, job: Job) -> float | None:
        """Rough seconds until ``job`` starts (0 when running, None when not waiting)."""
        with self._lock:
            return self.lineup.estimate_wait_s(job)

    # --- what the workers ask (the JobBook interface; the caller holds the lock) ---
    def retire(self, job: Job) -> None:
        """``job`` ended: no longer active; a reusable outcome stays in the memory cache."""
        if self._active.get(job.key) is job:
            del self._active[job.key]
        if job.state in REUSABLE:
            self._remember(job)
        elif job.state == "failed":
            self._failed[job.key] = job
            while len(self._failed) > self.cache_size:
                self._failed.popitem(last=False)

    def is_active(self, key: str) -> bool:
        """A job for the spec with hash ``key`` is queued, running or paused."""
        return key in self._active

    # --- bookkeeping (caller holds the lock) ---
    def _cached(self, key: str) -> Job | None:
        job = self._done.get(key)
        if job is not None:
            self._done.move_to_end(key)
        return job

    def _from_store(self, spec: ExperimentSpec) -> Job | None:
        """A finished run from the store, wrapped as an ended job (nothing is computed)."""
        rec = self.store.get(spec.spec_hash(), with_weights=False) if self.store else None
        if rec is None or rec.status not in REUSABLE:
            return None
        job = Job(spec, self, state=rec.status)
        job.run.result, job.started, job.finished = rec.result, rec.created, rec.updated
        self._remember(job)
        return job

    def _remember(self, job: Job) -> None:
        self._done[job.key] = job
        self._done.move_to_end(job.key)
        while len(self._done) > self.cache_size:  # evicted runs stay in the store
            self._done.popitem(last=False)

    def _check_session_limit(self, session_id: str) -> None:
        mine = sum(session_id in j.subscribers for j in self._active.values())
        if mine >= self.max_jobs_per_session:
            raise QueueFull(f"You already have {mine} runs training or waiting (the limit is "
                            f"{self.max_jobs_per_session}); wait for one to finish or cancel "
                            "one before starting another.")
