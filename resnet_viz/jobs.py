"""A shared training queue for a classroom on one small server.

Bounded concurrency: a fixed pool of ``max_concurrent`` worker threads trains queued jobs
in short chunks (~0.15 s) so controls take effect quickly. The most-watched job goes
first (first-in first-out among equals), and at a chunk boundary a running job yields its
worker to a waiting one with more watchers: the lesson preset 30 students wait for is not
stuck behind one student's private run, and the private run resumes where it stopped
(training is stepwise and deterministic, so being preempted changes no number). A factory
with ``build_on(spec, slot)`` (the worker-process pool) builds each trainer in the process of
the worker that takes the job, and a preempted job resumes only in that worker: two running
jobs never share one process, and so one core, while the other core idles. Runs are
cached by ``spec.spec_hash()``: training is deterministic in the spec, so when 30 students
open the same lesson preset the run is computed once and everyone watches the same job;
a run already in the store is not computed at all. Each job knows its subscribers
(session ids); when the last one leaves, an unfinished job is cancelled and its trainer
freed. Finished runs are written to the run store; a "running" record is written when a job
starts so a crash leaves a trace (``RunStore.mark_interrupted``).

Pages program against :class:`JobBackend` and :class:`JobHandle` (``job.py``), so a cluster
backend can replace this in-process queue later. Nothing here imports streamlit.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from typing import Any, Callable

import torch

from .config import cpu_cores
from .job import ACTIVE, REUSABLE, STATES, Job, JobBackend, JobHandle, QueueFull
from .spec import ExperimentSpec
from .store import RunStoreBackend
from .training import Trainer

__all__ = ["ACTIVE", "REUSABLE", "STATES", "Job", "JobBackend", "JobHandle", "JobQueue", "QueueFull"]

log = logging.getLogger(__name__)


def _free(trainer: Trainer | None) -> None:
    """Release what a trainer holds outside this process (a worker process's copy)."""
    if trainer is not None:
        trainer.close()


def _take_trainer(job: Job) -> Trainer | None:
    """Detach ``job``'s trainer and free it (caller holds the lock); the trainer, for its
    snapshot or its "running" trace."""
    trainer, job._trainer, job._slot = job._trainer, None, None
    _free(trainer)
    return trainer


class JobQueue:
    """Bounded-concurrency, most-watched-first queue of training jobs with a spec-hash cache
    (see module doc)."""

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
        self._cond = threading.Condition(self._lock)
        self._pending: deque[Job] = deque()
        self._running: list[Job] = []
        self._active: dict[str, Job] = {}                 # queued / running / paused, by key
        self._done: OrderedDict[str, Job] = OrderedDict()  # finished / diverged, LRU
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._prev_threads: int | None = None
        self._s_per_step = 0.01   # running mean over jobs, for wait estimates of unstarted jobs
        self.peak_running = 0

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
            if self._closed:
                raise RuntimeError("the job queue has been shut down")
            job = self._active.get(key) or self._cached_locked(key) or self._from_store(spec)
            if job is None:
                self._check_session_limit(session_id)
                job = self._active[key] = Job(spec, self)
                self._pending.append(job)
                self._start_pool_locked()
                self._cond.notify_all()
            job.subscribers.add(session_id)
            self._order_locked()
            return job

    def release(self, job: Job, session_id: str) -> None:
        """``session_id`` no longer watches ``job``; an unfinished job nobody watches is cancelled."""
        with self._lock:
            job.subscribers.discard(session_id)
            if job.state in ACTIVE and not job.subscribers:
                self._end_locked(job, "cancelled")
            self._order_locked()

    def release_session(self, session_id: str) -> None:
        """Release every job of a session (tab closed, connection lost)."""
        with self._lock:
            for job in [*self._active.values(), *self._done.values()]:
                if session_id in job.subscribers:
                    self.release(job, session_id)

    def get(self, key: str) -> Job | None:
        """The job with spec hash ``key`` still in memory, or None."""
        with self._lock:
            return self._active.get(key) or self._cached_locked(key)

    def drop_ended(self) -> int:
        """Drop the memory copies of ended runs when the store keeps them (a quiet server
        returns to its size; the next request reads the store). How many were dropped."""
        with self._lock:
            if self.store is None:
                return 0
            keep = [(k, j) for k, j in self._done.items() if j._weights is not None]  # not stored
            n = len(self._done) - len(keep)
            self._done = OrderedDict(keep)
            return n

    def forget(self, key: str) -> None:
        """Drop an ended run from the memory cache (call after deleting it from the store)."""
        with self._lock:
            self._done.pop(key, None)

    def stats(self) -> dict[str, Any]:
        """Counts for the teacher's dashboard and the load benchmark."""
        with self._lock:
            return {"queued": len(self._pending), "running": len(self._running),
                    "paused": sum(j.state == "paused" for j in self._active.values()),
                    "cached": len(self._done), "max_concurrent": self.max_concurrent,
                    "peak_running": self.peak_running,
                    "threads_alive": sum(t.is_alive() for t in self._threads)}

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the workers (running jobs end at their next chunk as "interrupted") and join them."""
        with self._lock:
            self._closed = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout)
        with self._lock:  # what is left is queued or paused (or stuck in a chunk)
            left = [(job, job._trainer.snapshot() if job._trainer else None)
                    for job in self._active.values()]
            for job, _ in left:
                self._end_locked(job, "interrupted")
            self._threads = [t for t in self._threads if t.is_alive()]
        for job, result in left:
            if result is not None:  # it had started: replace its "running" trace
                self._persist(job, "interrupted", result, None)
        stop = getattr(self._factory, "shutdown", None)
        if stop is not None:  # a process pool: its hosts exit now that nothing trains
            stop()
        if self._prev_threads is not None:
            torch.set_num_threads(self._prev_threads)
            self._prev_threads = None

    # --- positions and estimates ---
    def position(self, job: Job) -> int | None:
        """0 while running, k when k-th in line, None when neither (paused or ended)."""
        with self._lock:
            return self._position_locked(job)

    def estimate_wait_s(self, job: Job) -> float | None:
        """Rough seconds until ``job`` starts (0 when running, None when not waiting)."""
        with self._lock:
            return self._estimate_locked(job)

    def _position_locked(self, job: Job) -> int | None:
        if job.state == "running":
            return 0
        if job.state == "queued":
            return self._pending.index(job) + 1
        return None

    def _remaining_s(self, job: Job) -> float:
        step = job._trainer.step if job._trainer is not None else 0
        return max(0, job.spec.steps - step) * (job._s_per_step or self._s_per_step)

    def _estimate_locked(self, job: Job) -> float | None:
        if job.state != "queued":
            return 0.0 if job.state == "running" else None
        # Simulate the pool: each job ahead goes to the worker that frees up first, a job
        # whose trainer lives in one worker's process to that worker.
        free = dict.fromkeys(range(self.max_concurrent), 0.0)
        for j in self._running:              # _work set the worker of every running job
            free[j._worker] += self._remaining_s(j)
        for ahead in self._pending:
            slot = ahead._slot if ahead._slot is not None else min(free, key=free.get)
            if ahead is job:
                return round(free[slot], 1)
            free[slot] += self._remaining_s(ahead)
        return None

    # --- bookkeeping (caller holds the lock) ---
    def _cached_locked(self, key: str) -> Job | None:
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
        job._result, job.started, job.finished = rec.result, rec.created, rec.updated
        self._remember_locked(job)
        return job

    def _remember_locked(self, job: Job) -> None:
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

    def _requeue_front_locked(self, job: Job) -> None:
        if job.state == "paused":
            self._push_front_locked(job)

    def _push_front_locked(self, job: Job) -> None:
        """Back in line at the front of its rank: it already waited its turn once."""
        job.state = "queued"
        self._pending.appendleft(job)
        self._order_locked()
        self._cond.notify_all()   # only the job's own worker may take it back

    def _order_locked(self) -> None:
        """Most watchers first; the sort is stable, so arrival order among equals is kept."""
        if len(self._pending) > 1:
            ranked = sorted(self._pending, key=lambda j: -len(j.subscribers))
            self._pending.clear()
            self._pending.extend(ranked)

    def _outranked_locked(self, job: Job, slot: int) -> bool:
        """A job worker ``slot`` could take instead has more watchers than ``job``."""
        best = self._next_for_locked(slot)
        return best is not None and len(best.subscribers) > len(job.subscribers)

    def _next_for_locked(self, slot: int) -> Job | None:
        """The first waiting job worker ``slot`` may run (``_pending`` is kept ranked): an
        unbuilt one, or one whose trainer lives in this worker's process."""
        return next((j for j in self._pending if j._slot in (None, slot)), None)

    def _end_locked(self, job: Job, state: str) -> None:
        """End an unfinished job. A running one is freed by its worker at the next chunk."""
        if job.state == "queued":
            self._pending.remove(job)
        was_running = job.state == "running"
        job.state, job.finished = state, time.time()
        if self._active.get(job.key) is job:
            del self._active[job.key]
        if not was_running:  # paused or unstarted: nobody else holds the trainer
            _take_trainer(job)
            if state == "cancelled" and job.started is not None and self.store is not None \
                    and job.key not in self._active:
                self.store.delete_if_status(job.key, "running")  # no trace of a cancelled run

    def _start_pool_locked(self) -> None:
        if self._threads:
            return
        # See torch_threads in __init__; the old value comes back at shutdown().
        self._prev_threads = torch.get_num_threads()
        torch.set_num_threads(self.torch_threads)
        for i in range(self.max_concurrent):
            t = threading.Thread(target=self._work, args=(i,), name=f"resnet-viz-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    # --- workers ---
    def _work(self, slot: int) -> None:
        """Worker thread ``slot``: take the next job it may run, train it until it ends or
        pauses, repeat."""
        while True:
            with self._cond:
                while not self._closed and (job := self._next_for_locked(slot)) is None:
                    self._cond.wait()
                if self._closed:
                    return
                self._pending.remove(job)
                job._worker = slot
                job.state, job.started = "running", job.started or time.time()
                self._running.append(job)
                self.peak_running = max(self.peak_running, len(self._running))
            try:
                self._drive(job, slot)
            except Exception as err:  # one bad job must never kill a worker thread
                log.exception("training job %s failed", job.key)
                self._fail(job, f"{type(err).__name__}: {err}")
            finally:
                with self._cond:
                    self._running.remove(job)

    def _drive(self, job: Job, slot: int) -> None:
        if job._trainer is None and not self._build(job, slot):
            return
        while (n := self._boundary(job, slot)) > 0:
            trainer = job._trainer
            with job._train_lock:
                t0 = time.perf_counter()
                done = trainer.train_steps(n)
                dt = time.perf_counter() - t0
            self._adapt(job, done, dt)

    def _build(self, job: Job, slot: int) -> bool:
        """Load the data and build the model; False when the job cannot or need not run."""
        build_on = getattr(self._factory, "build_on", None)
        try:
            trainer = build_on(job.spec, slot) if build_on else self._factory(job.spec)
        except ValueError as err:  # SpecError / DataError: the message is for people
            self._fail(job, str(err))
            return False
        with self._lock:
            if job.state != "running":  # cancelled or interrupted while loading
                _free(trainer)
                return False
            job._trainer, job._slot = trainer, slot if build_on else None
        self._persist(job, "running", trainer.snapshot(), None)  # a crash leaves a trace
        return True

    def _boundary(self, job: Job, slot: int) -> int:
        """Between chunks: apply controls; the steps of the next chunk, or 0 when done here."""
        with self._lock:
            trainer = job._trainer
            if job.state == "cancelled":
                _take_trainer(job)
                # A new job for the same spec may already own the store record.
                end = "cancelled" if job.key not in self._active else "dropped"
            elif self._closed:
                end = "interrupted"
            else:
                if job._stop_reason and not trainer.done:
                    trainer.stop(job._stop_reason)
                if not trainer.done:
                    return self._next_chunk_locked(job, trainer, slot)
                end = "done"
        if end == "cancelled" and self.store is not None:
            self.store.delete_if_status(job.key, "running")  # no trace of a cancelled run
        elif end in ("done", "interrupted"):
            self._finish(job, trainer, end)
        return 0

    def _next_chunk_locked(self, job: Job, trainer: Trainer, slot: int) -> int:
        if job._step_budget is not None:
            job._pause_at, job._step_budget = trainer.step + job._step_budget, None
        if job._pause_requested or (job._pause_at is not None and trainer.step >= job._pause_at):
            job.state, job._pause_requested, job._pause_at = "paused", False, None
            return 0  # the worker goes on to the next job; resume() re-queues this one
        if self._outranked_locked(job, slot):  # yield the worker; the trainer keeps its place
            self._push_front_locked(job)
            return 0
        n = job._chunk
        return n if job._pause_at is None else min(n, job._pause_at - trainer.step)

    def _adapt(self, job: Job, done: int, dt: float) -> None:
        """Size the next chunk to ~chunk_s (at most doubling) and update speed estimates."""
        with self._lock:
            job._version += 1
            if done <= 0 or dt <= 0:
                return
            rate = dt / done
            job._s_per_step = rate
            self._s_per_step = 0.8 * self._s_per_step + 0.2 * rate
            job._chunk = max(1, min(2 * job._chunk + 1, int(self.chunk_s / rate), 10_000))

    def _finish(self, job: Job, trainer: Trainer, end: str) -> None:
        """Store the ended run, keep its snapshot, free the trainer."""
        result = trainer.snapshot()
        state = end if end == "interrupted" else result.get("status", "stopped")
        state = state if state in ("finished", "stopped", "diverged", "interrupted") else "stopped"
        weights = trainer.weights() if state != "interrupted" else None
        saved = self._persist(job, state, result, weights)
        with self._lock:
            job.state, job.finished, job._version = state, time.time(), job._version + 1
            job._result = result
            _take_trainer(job)
            job._weights = None if saved else weights  # the store holds them otherwise
            if self._active.get(job.key) is job:
                del self._active[job.key]
            if state in REUSABLE:
                self._remember_locked(job)

    def _fail(self, job: Job, message: str) -> None:
        """End a job that raised; its worker lives on to take the next one."""
        with self._lock:
            trainer = _take_trainer(job)
            if job.state in ACTIVE:
                job.state, job.error, job.finished = "failed", message, time.time()
            if self._active.get(job.key) is job:
                del self._active[job.key]
        if trainer is not None:  # it had started: replace the "running" trace
            self._persist(job, "failed", {"error": message}, None)

    def _persist(self, job: Job, status: str, result: dict[str, Any], weights: bytes | None) -> bool:
        """Write to the store; a store problem is logged, never fatal to training."""
        if self.store is None:
            return False
        try:
            self.store.save(job.key, job.spec, status, result, weights)
            return True
        except Exception:
            log.exception("could not store run %s", job.key)
            return False
