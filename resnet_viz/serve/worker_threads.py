"""The queue's worker threads: each takes a job from the :class:`~resnet_viz.serve.lineup.Lineup`
and trains it in short chunks (~0.15 s) until it ends, pauses or yields; and what the
controls (pause, resume, step, stop, cancel) do to the jobs they train.

Chunks keep the controls quick: a pause, step or stop takes effect at the next boundary. At
a boundary a running job also yields its worker to a waiting one with more watchers, and
resumes where it stopped (training is stepwise and deterministic, so being preempted
changes no number). A factory with ``build_on(spec, slot)`` (the worker-process pool,
``workers.py``) builds each trainer in the process of the worker that takes the job, and
a preempted job resumes only in that worker: two running jobs never share one process, and
so one core, while the other core idles. A "running" record is written to the store when a
job starts, so a crash leaves a trace (``RunStore.mark_interrupted``); ended runs replace it.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Protocol

import torch

from resnet_viz.serve.job import ACTIVE, Job
from resnet_viz.serve.lineup import Lineup
from resnet_viz.serve.store import RunStoreBackend
from resnet_viz.spec import ExperimentSpec
from resnet_viz.train.trainer import Trainer

log = logging.getLogger(__name__)


class JobBook(Protocol):
    """What the workers tell, and ask, the queue that keeps the jobs (lock held by the caller)."""

    def retire(self, job: Job) -> None:
        """``job`` ended: it is no longer active; a reusable outcome is kept in memory."""

    def is_active(self, key: str) -> bool:
        """Some job for the spec with hash ``key`` is queued, running or paused."""


class WorkerThreads:
    """``lineup.workers`` threads training the line's jobs with trainers from ``factory``."""

    def __init__(self, lineup: Lineup, lock: threading.RLock, book: JobBook,
                 factory: Callable[[ExperimentSpec], Trainer], store: RunStoreBackend | None,
                 torch_threads: int, chunk_s: float) -> None:
        self.lineup, self.store = lineup, store
        self.torch_threads, self.chunk_s = torch_threads, chunk_s
        self._lock, self._book, self._factory = lock, book, factory
        self._threads: list[threading.Thread] = []
        self._prev_threads: int | None = None

    def start(self) -> None:
        """Start the threads, once (the queue calls this with its first job)."""
        if self._threads:
            return
        # See torch_threads in JobQueue; the old value comes back at restore_torch_threads().
        self._prev_threads = torch.get_num_threads()
        torch.set_num_threads(self.torch_threads)
        for i in range(self.lineup.workers):
            t = threading.Thread(target=self._work, args=(i,), name=f"resnet-viz-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def alive(self) -> int:
        """How many worker threads are alive (the dashboard's, and the tests', leak check)."""
        return sum(t.is_alive() for t in self._threads)

    def join(self, timeout: float) -> None:
        """Wait for the threads to exit (close the line first); forget those that did."""
        for t in self._threads:
            t.join(timeout)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]

    def restore_torch_threads(self) -> None:
        """Give torch back the thread count it had before :meth:`start` (at shutdown)."""
        if self._prev_threads is not None:
            torch.set_num_threads(self._prev_threads)
            self._prev_threads = None

    def persist(self, job: Job, status: str, result: dict[str, Any], weights: bytes | None) -> bool:
        """Write to the store; a store problem is logged, never fatal to training."""
        if self.store is None:
            return False
        try:
            self.store.save(job.key, job.spec, status, result, weights)
            return True
        except Exception:
            log.exception("could not store run %s", job.key)
            return False

    # --- the controls' effects (the queue checked who may; the caller holds the lock) ---
    def pause(self, job: Job) -> None:
        """A waiting job leaves the line now, a running one at its next chunk boundary."""
        job.run.step_budget = job.run.pause_at = None
        if job.state == "queued":
            self.lineup.remove(job)
            job.state = "paused"
        elif job.state == "running":
            job.run.pause_requested = True

    def resume(self, job: Job) -> None:
        """Train on to the end; a paused job goes back to the front of its rank."""
        job.run.pause_requested, job.run.step_budget, job.run.pause_at = False, None, None
        self._requeue(job)

    def step(self, job: Job, n: int) -> None:
        """``n`` more steps counted from the next chunk boundary, then pause."""
        job.run.pause_requested, job.run.pause_at, job.run.step_budget = False, None, n
        self._requeue(job)

    def stop(self, job: Job, reason: str) -> None:
        """End at the next chunk boundary, keeping what was learned; at once if untrained."""
        job.run.stop_reason = reason
        if job.run.trainer is None and job.state != "running":  # nothing trained: just end it
            self.end(job, "stopped")
        self._requeue(job)  # a paused job must reach a boundary to end

    def end(self, job: Job, state: str) -> None:
        """End an unfinished job. A running one is freed by its worker at the next chunk."""
        if job.state == "queued":
            self.lineup.remove(job)
        was_running = job.state == "running"
        job.state, job.finished = state, time.time()
        self._book.retire(job)
        if not was_running:  # paused or unstarted: nobody else holds the trainer
            job.run.take_trainer()
            if state == "cancelled" and job.started is not None and self.store is not None \
                    and not self._book.is_active(job.key):
                self.store.delete_if_status(job.key, "running")  # no trace of a cancelled run

    def _requeue(self, job: Job) -> None:
        if job.state == "paused":
            self.lineup.push_front(job)

    # --- one worker ---
    def _work(self, slot: int) -> None:
        """Worker thread ``slot``: take the next job it may run, train it until it ends,
        pauses or yields, repeat until the line closes."""
        while (job := self.lineup.take(slot)) is not None:
            try:
                self._drive(job, slot)
            except Exception as err:  # one bad job must never kill a worker thread
                log.exception("training job %s failed", job.key)
                self._fail(job, f"{type(err).__name__}: {err}")
            finally:
                with self._lock:
                    self.lineup.running.remove(job)

    def _drive(self, job: Job, slot: int) -> None:
        if job.run.trainer is None and not self._build(job, slot):
            return
        while (n := self._boundary(job, slot)) > 0:
            trainer = job.run.trainer
            with job.run.train_lock:
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
                trainer.close()
                return False
            job.run.trainer, job.run.slot = trainer, slot if build_on else None
        self.persist(job, "running", trainer.snapshot(), None)  # a crash leaves a trace
        return True

    def _boundary(self, job: Job, slot: int) -> int:
        """Between chunks: apply controls; the steps of the next chunk, or 0 when done here."""
        with self._lock:
            trainer = job.run.trainer
            if job.state == "cancelled":
                job.run.take_trainer()
                # A new job for the same spec may already own the store record.
                end = "dropped" if self._book.is_active(job.key) else "cancelled"
            elif self.lineup.closed:
                end = "interrupted"
            else:
                if job.run.stop_reason and not trainer.done:
                    trainer.stop(job.run.stop_reason)
                if not trainer.done:
                    return self._next_chunk(job, trainer, slot)
                end = "done"
        if end == "cancelled" and self.store is not None:
            self.store.delete_if_status(job.key, "running")  # no trace of a cancelled run
        elif end in ("done", "interrupted"):
            self._finish(job, trainer, end)
        return 0

    def _next_chunk(self, job: Job, trainer: Trainer, slot: int) -> int:
        """The steps of the next chunk, or 0 after pausing or yielding (lock held)."""
        run = job.run
        if run.step_budget is not None:
            run.pause_at, run.step_budget = trainer.step + run.step_budget, None
        if run.pause_requested or (run.pause_at is not None and trainer.step >= run.pause_at):
            job.state, run.pause_requested, run.pause_at = "paused", False, None
            return 0  # the worker goes on to the next job; resume() re-queues this one
        if self.lineup.outranked(job, slot):  # yield the worker; the trainer keeps its place
            self.lineup.push_front(job)
            return 0
        return run.chunk if run.pause_at is None else min(run.chunk, run.pause_at - trainer.step)

    def _adapt(self, job: Job, done: int, dt: float) -> None:
        """Size the next chunk to ~chunk_s (at most doubling) and update speed estimates."""
        with self._lock:
            run = job.run
            run.version += 1
            if done <= 0 or dt <= 0:
                return
            rate = dt / done
            run.s_per_step = rate
            self.lineup.s_per_step = 0.8 * self.lineup.s_per_step + 0.2 * rate
            run.chunk = max(1, min(2 * run.chunk + 1, int(self.chunk_s / rate), 10_000))

    def _finish(self, job: Job, trainer: Trainer, end: str) -> None:
        """Store the ended run, keep its snapshot, free the trainer."""
        result = trainer.snapshot()
        state = end if end == "interrupted" else result.get("status", "stopped")
        state = state if state in ("finished", "stopped", "diverged", "interrupted") else "stopped"
        weights = trainer.weights() if state != "interrupted" else None
        saved = self.persist(job, state, result, weights)
        with self._lock:
            job.state, job.finished, job.run.version = state, time.time(), job.run.version + 1
            job.run.result = result
            job.run.take_trainer()
            job.run.weights = None if saved else weights  # the store holds them otherwise
            self._book.retire(job)

    def _fail(self, job: Job, message: str) -> None:
        """End a job that raised; its worker lives on to take the next one."""
        with self._lock:
            trainer = job.run.take_trainer()
            if job.state in ACTIVE:
                job.state, job.error, job.finished = "failed", message, time.time()
            self._book.retire(job)
        if trainer is not None:  # it had started: replace the "running" trace
            self.persist(job, "failed", {"error": message}, None)
