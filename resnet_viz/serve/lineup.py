"""The line of jobs waiting for a worker, the jobs training now, and how long the wait is.

The most-watched job goes first (first-in first-out among equals): the lesson preset 30
students wait for is not stuck behind one student's private run. A job whose trainer lives
in one worker's process (``JobRun.slot``) may only be taken by that worker. Guarded by its
queue's lock; worker threads wait on it for a job they may take. Nothing here trains.
"""
from __future__ import annotations

import threading
import time
from collections import deque

from resnet_viz.serve.job import Job


class Lineup:
    """Waiting jobs (``waiting``, kept ranked) and running ones (``running``) of a pool of
    ``workers``. Every method expects the caller to hold ``lock`` except :meth:`take` and
    :meth:`close`, which take it."""

    def __init__(self, lock: threading.RLock, workers: int) -> None:
        self.workers = workers
        self.waiting: deque[Job] = deque()
        self.running: list[Job] = []
        self.closed = False
        self.peak_running = 0
        self.s_per_step = 0.01   # running mean over jobs, for wait estimates of unstarted jobs
        self._cond = threading.Condition(lock)

    # --- joining and leaving ---
    def add(self, job: Job) -> None:
        """A new job joins at the back of its rank."""
        self.waiting.append(job)
        self._cond.notify_all()

    def push_front(self, job: Job) -> None:
        """Back in line at the front of its rank: it already waited its turn once."""
        job.state = "queued"
        self.waiting.appendleft(job)
        self.order()
        self._cond.notify_all()   # only the job's own worker may take it back

    def remove(self, job: Job) -> None:
        """A waiting job leaves the line (paused or ended)."""
        self.waiting.remove(job)

    def order(self) -> None:
        """Most watchers first; the sort is stable, so arrival order among equals is kept."""
        if len(self.waiting) > 1:
            ranked = sorted(self.waiting, key=lambda j: -len(j.subscribers))
            self.waiting.clear()
            self.waiting.extend(ranked)

    # --- the workers' side ---
    def take(self, slot: int) -> Job | None:
        """Block until worker ``slot`` may run a waiting job, and mark it running on that
        worker; None once the line is closed."""
        with self._cond:
            while not self.closed and (job := self.next_for(slot)) is None:
                self._cond.wait()
            if self.closed:
                return None
            self.waiting.remove(job)
            job.run.worker = slot
            job.state, job.started = "running", job.started or time.time()
            self.running.append(job)
            self.peak_running = max(self.peak_running, len(self.running))
            return job

    def close(self) -> None:
        """No job is taken any more; waiting workers wake up and exit."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def next_for(self, slot: int) -> Job | None:
        """The first waiting job worker ``slot`` may run: an unbuilt one, or one whose
        trainer lives in this worker's process."""
        return next((j for j in self.waiting if j.run.slot in (None, slot)), None)

    def outranked(self, job: Job, slot: int) -> bool:
        """A job worker ``slot`` could take instead has more watchers than ``job``."""
        best = self.next_for(slot)
        return best is not None and len(best.subscribers) > len(job.subscribers)

    # --- positions and estimates ---
    def position(self, job: Job) -> int | None:
        """0 while running, k when k-th in line, None when neither (paused or ended)."""
        if job.state == "running":
            return 0
        if job.state == "queued":
            return self.waiting.index(job) + 1
        return None

    def estimate_wait_s(self, job: Job) -> float | None:
        """Rough seconds until ``job`` starts (0 when running, None when not waiting)."""
        if job.state != "queued":
            return 0.0 if job.state == "running" else None
        # Simulate the pool: each job ahead goes to the worker that frees up first, a job
        # whose trainer lives in one worker's process to that worker.
        free = dict.fromkeys(range(self.workers), 0.0)
        for j in self.running:              # take() set the worker of every running job
            free[j.run.worker] += self._remaining_s(j)
        for ahead in self.waiting:
            slot = ahead.run.slot if ahead.run.slot is not None else min(free, key=free.get)
            if ahead is job:
                return round(free[slot], 1)
            free[slot] += self._remaining_s(ahead)
        return None

    def _remaining_s(self, job: Job) -> float:
        step = job.run.trainer.step if job.run.trainer is not None else 0
        return max(0, job.spec.steps - step) * (job.run.s_per_step or self.s_per_step)
