"""A lesson on a classroom server, without streamlit: its runs through the shared job queue,
then its analysis in a background thread shared by every student who opened it.

- :class:`LessonRun` (one per browser session): submits the lesson's specs to the queue a few
  at a time (a session may only have ``max_jobs_per_session`` unfinished runs; joining a run
  another student started is free), reports training progress, and collects the trained
  runs (snapshot + private model copy) once every job has ended.
- :class:`Analyses` (one per server process): runs ``runner.finish`` in a background thread
  per (lesson, settings), with progress, so 30 students opening the same lesson preset
  compute its analysis once; finished documents are kept (bounded LRU).
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..config import ClassroomConfig, check_spec_limits
from ..job import QueueFull, JobBackend
from ..session import load_model, load_run
from ..store import RunStoreBackend
from .base import Lesson, train_cost_s, unique
from .runner import finish

OK_STATES = ("finished", "diverged")             # deterministic outcomes: analysable
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


class Analyses:
    """Background analyses by task key, shared by every session of the server process."""

    def __init__(self, keep: int = 32, concurrent: int = 1) -> None:
        self._tasks: OrderedDict[str, Task] = OrderedDict()
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(concurrent)   # analyses share the CPU with training
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
        threading.Thread(target=self._work, args=(task, run, backend, store), daemon=True,
                         name=f"resnet-viz-lesson-{run.lesson.name}").start()
        return task

    def _work(self, task: Task, run: LessonRun, backend: JobBackend,
              store: RunStoreBackend | None) -> None:
        with self._slots:
            try:
                task.tick(0.0, "loading the trained nets")
                runs = run.runs(backend, store)
                task.doc = finish(run.lesson, run.params, runs, progress=task.tick)
                task.state = "done"
            except ValueError as err:   # a sentence for the student (a run's weights gone, ...)
                task.error, task.state = str(err), "failed"
            except Exception as err:    # shown in a sentence too; never kills the server
                task.error, task.state = f"{type(err).__name__}: {err}", "failed"
