"""A lesson on a classroom server, without streamlit: its runs through the shared job queue,
then its analysis in a background thread shared by every student who opened it.

- :class:`LessonRun` (one per browser session): submits the lesson's specs to the queue a few
  at a time (a session may only have ``max_jobs_per_session`` unfinished runs; joining a run
  another student started is free), reports training progress, and collects the trained
  runs (snapshot + private model copy) once every job has ended.
- :class:`Analyses` (one per server process): runs ``runner.finish`` in a thread pool, one
  task per (lesson, settings), with progress, so 30 students opening the same lesson preset
  compute its analysis once; finished documents are kept (bounded LRU).
"""
from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from resnet_viz.serve.config import ClassroomConfig, check_spec_limits
from resnet_viz.serve.job import REUSABLE, QueueFull, JobBackend
from resnet_viz.serve.pair import load_model, load_run
from resnet_viz.serve.store import RunStoreBackend
from resnet_viz.lessons.base import Lesson, train_cost_s, unique
from resnet_viz.lessons.runner import finish

OK_STATES = REUSABLE   # deterministic outcomes (serve.job): analysable, their weights kept
BAD_STATES = ("stopped", "failed", "cancelled", "interrupted")


def task_key(lesson: Lesson, params: dict[str, Any]) -> str:
    return lesson.name + ":" + json.dumps(params, sort_keys=True, default=list)


@dataclass
class LessonRun:
    """One session's view of a lesson's training runs (keep it in the session state)."""

    lesson: Lesson
    params: dict[str, Any]
    session_id: str
    keys: list[str] = field(default_factory=list)
    submitted: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.specs = unique(self.lesson.specs(self.params))
        self.keys = [s.spec_hash() for s in self.specs]
        self.costs = {s.spec_hash(): train_cost_s(s) for s in self.specs}

    @property
    def key(self) -> str:
        return task_key(self.lesson, self.params)

    def check(self, cfg: ClassroomConfig) -> None:
        """ValueError (a sentence) when a run exceeds this classroom's limits."""
        problems = sorted({p for s in self.specs for p in check_spec_limits(s, cfg)})
        if problems:
            raise ValueError("this lesson's settings exceed the classroom limits: " + "; ".join(problems))

    def pump(self, backend: JobBackend) -> None:
        """Submit the runs not yet submitted, until the session's limit says wait."""
        for spec, key in zip(self.specs, self.keys):
            if key in self.submitted:
                continue
            try:
                backend.submit(spec, self.session_id)
            except QueueFull:
                return   # some of ours are still training; the next poll submits the rest
            self.submitted.add(key)

    def snapshots(self, backend: JobBackend, store: RunStoreBackend | None) -> dict[str, dict[str, Any]]:
        return {k: s for k in self.submitted if (s := load_run(k, backend, store)) is not None}

    def status(self, backend: JobBackend, store: RunStoreBackend | None) -> dict[str, Any]:
        """Training progress (cost-weighted fraction), counts, and the runs that went wrong."""
        snaps = self.snapshots(backend, store)
        total = sum(self.costs.values()) or 1.0
        done = sum(self.costs[k] * (1.0 if s.get("state", s.get("status")) in OK_STATES
                                    else float(s.get("progress") or 0.0)) for k, s in snaps.items())
        states = [snaps[k].get("state", snaps[k].get("status")) if k in snaps else "waiting" for k in self.keys]
        problems = [f"{k[:8]}: {snaps[k].get('error') or st}" for k, st in zip(self.keys, states)
                    if st in BAD_STATES]
        return {"fraction": min(1.0, done / total), "n": len(self.keys),
                "done": sum(s in OK_STATES for s in states), "states": states, "problems": problems,
                "trained": all(s in OK_STATES for s in states)}

    def runs(self, backend: JobBackend, store: RunStoreBackend | None) -> dict[str, tuple[dict, Any]]:
        """(snapshot, private model copy) of every run; ValueError if one is unavailable."""
        out = {}
        for key in self.keys:
            snap, model = load_run(key, backend, store), load_model(key, backend, store)
            if snap is None or model is None:
                raise ValueError("a run's weights are no longer available; run the lesson again")
            out[key] = (snap, model)
        return out

    def release(self, backend: JobBackend) -> None:
        """Stop watching the runs (an unshared unfinished one is cancelled)."""
        for key in self.submitted:
            job = backend.get(key)
            if job is not None:
                backend.release(job, self.session_id)
        self.submitted.clear()


class Task:
    """One background analysis; read ``state``/``fraction``/``message``/``doc``/``error``."""

    def __init__(self, key: str) -> None:
        self.key, self.state, self.fraction, self.message = key, "analysing", 0.0, "starting"
        self.doc: dict[str, Any] | None = None
        self.error: str | None = None

    def tick(self, fraction: float, message: str) -> None:
        self.fraction, self.message = fraction, message


class Stopped(Exception):
    """The server is stopping (or released the analyses): an analysis ends at its next tick."""


class Analyses:
    """Background analyses by task key, shared by every session of the server process.

    A ``ThreadPoolExecutor`` of ``concurrent`` threads runs them (analyses share the CPU with
    training; the rest wait in its queue). Its threads are not daemons, so the interpreter
    joins them at exit: a running analysis therefore stops at its next progress tick once the
    main thread has ended or :meth:`shutdown` was called, instead of holding the server's exit.
    The tasks themselves are an ``OrderedDict`` LRU, not ``functools.lru_cache``: a page asks
    for a task it does not start (``get``), and a failed one is replaced, not kept.
    """

    def __init__(self, keep: int = 32, concurrent: int = 1) -> None:
        self._tasks: OrderedDict[str, Task] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(concurrent, thread_name_prefix="resnet-viz-lesson")
        self._stopping = threading.Event()
        self.keep = keep

    def get(self, key: str) -> Task | None:
        with self._lock:
            return self._tasks.get(key)

    def start(self, run: LessonRun, backend: JobBackend, store: RunStoreBackend | None) -> Task:
        """The task for ``run``'s lesson and settings, started unless it exists (and did not fail)."""
        with self._lock:
            task = self._tasks.get(run.key)
            if task is not None and task.state != "failed":
                self._tasks.move_to_end(run.key)
                return task
            task = self._tasks[run.key] = Task(run.key)
            while len(self._tasks) > self.keep:
                self._tasks.popitem(last=False)
        try:
            self._pool.submit(self._work, task, run, backend, store)
        except RuntimeError:            # shut down: the page's next rerun gets a new Analyses
            task.error, task.state = "the server is stopping", "failed"
        return task

    def shutdown(self) -> None:
        """Drop the queued analyses, stop the running one at its next tick, join the threads."""
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for task in self._tasks.values():
                if task.state == "analysing":          # dropped from the queue
                    task.error, task.state = "the server is stopping", "failed"

    def _tick(self, task: Task, fraction: float, message: str) -> None:
        if self._stopping.is_set() or not threading.main_thread().is_alive():
            raise Stopped("the analysis was stopped: the server is stopping")
        task.tick(fraction, message)

    def _work(self, task: Task, run: LessonRun, backend: JobBackend,
              store: RunStoreBackend | None) -> None:
        progress = functools.partial(self._tick, task)
        try:
            progress(0.0, "loading the trained nets")
            runs = run.runs(backend, store)
            task.doc = finish(run.lesson, run.params, runs, progress=progress)
            task.state = "done"
        except (ValueError, Stopped) as err:   # a sentence for the student (a run's weights gone, ...)
            task.error, task.state = str(err), "failed"
        except Exception as err:    # shown in a sentence too; never kills the server
            task.error, task.state = f"{type(err).__name__}: {err}", "failed"
