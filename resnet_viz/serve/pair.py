"""What one student's browser session does with the shared job queue, without streamlit.

- The comparison pair: the residual net of the current spec and its ``plain_twin()`` (same
  seed, same initial weights, same batches; He et al. 2016 Fig. 6's fair comparison), and
  the derived pairs the analysis pages train (1-D grid for shattered gradients, digits for
  attribution).
- :class:`PairSession`: start / pause / step / resume / stop / reset on the pair, each
  control answering with the sentences to show (a shared job says why it cannot be paused).
- :class:`Shelf`: finished run keys kept for this session, so changing a knob never loses
  a finished run; each can be overlaid on the charts.
- :func:`load_run`: a run's snapshot from the queue's memory or, once evicted, the store.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import torch.nn as nn

from resnet_viz.serve.job import ACTIVE, JobBackend, JobHandle
from resnet_viz.spec import IMAGE_DATASETS, ExperimentSpec, spec_from_json
from resnet_viz.serve.store import RunStoreBackend, StoreError
from resnet_viz.train.trainer import model_from_bytes

VERBS = ("pause", "resume", "step", "stop")
STEP_N = 10          # the Step button's steps
MAX_SHELF = 24       # finished runs a session keeps on its shelf


def comparison_pair(spec: ExperimentSpec) -> tuple[ExperimentSpec, ExperimentSpec]:
    """(plain, residual): the spec as the residual net (identity shortcuts if it had none)
    and its plain twin."""
    residual = spec if spec.shortcut != "none" else spec.replace(shortcut="identity", shortcut_mask="")
    return residual.plain_twin(), residual


def shatter_spec(spec: ExperimentSpec) -> ExperimentSpec:
    """The 1-D-input MLP of the shattered-gradients page (Balduzzi et al. 2017): the
    sidebar's depth, width, α, activation and seed, on ``grid1d`` with BN (shattering needs
    normalisation, shared/science.md) and identity shortcuts."""
    return ExperimentSpec(model="mlp", dataset="grid1d", depth=spec.depth, width=spec.width,
                          shortcut="identity", residual_scale=spec.residual_scale, norm="batch",
                          activation=spec.activation, seed=spec.seed, lr=min(spec.lr, 0.1),
                          steps=min(spec.steps, 600), batch_size=spec.batch_size)


def attribution_spec(spec: ExperimentSpec) -> ExperimentSpec:
    """The spec the attribution page explains: the current one on an image dataset
    (digits when the sidebar shows a 2-D or 1-D set)."""
    if spec.dataset in IMAGE_DATASETS:
        return spec
    return spec.replace(dataset="digits", shortcut_mask="")


def is_live(state: str | None) -> bool:
    return state in ACTIVE


@dataclass
class PairSession:
    """One session's current pair of jobs on a backend. ``keys`` survive reruns (keep the
    object in the session); the jobs are looked up again on every call."""

    session_id: str
    keys: dict[str, str] = field(default_factory=dict)      # "plain"/"residual" -> spec hash
    specs: dict[str, ExperimentSpec] = field(default_factory=dict)

    def jobs(self, backend: JobBackend) -> dict[str, JobHandle]:
        """The pair's jobs still known to the backend (ended ones may have been evicted)."""
        out = {}
        for role, key in self.keys.items():
            job = backend.get(key)
            if job is not None:
                out[role] = job
        return out

    def live(self, backend: JobBackend) -> bool:
        return any(is_live(j.state) for j in self.jobs(backend).values())

    def start(self, backend: JobBackend, spec: ExperimentSpec) -> list[str]:
        """Submit the pair for ``spec`` (joining identical runs); paused ones resume.

        An unfinished previous pair of another spec is stopped (it keeps what it learned and
        goes to the shelf) or, when shared, released. Raises QueueFull / ValueError.
        """
        plain, residual = comparison_pair(spec)
        new = {"plain": plain, "residual": residual}
        notes = self._leave_old(backend, {s.spec_hash() for s in new.values()})
        for role, s in new.items():
            job = backend.submit(s, self.session_id)
            self.keys[role], self.specs[role] = job.key, s
            if job.state == "paused":
                job.resume(self.session_id)
        return notes

    def wait_first_points(self, backend: JobBackend, timeout: float = 1.5) -> bool:
        """Block up to ``timeout`` s until every running job has logged its first point.

        Called right after Start, so the page's own rerun already draws the first point
        instead of waiting for the next poll (time to first point ~ job start-up, not +1 s).
        Just-submitted jobs are still "queued" until a worker picks them up (a few ms when a
        slot is free), so queued jobs are waited for too; a job stuck behind others costs at
        most ``timeout``. Paused jobs are not waited for. True when nothing is left to wait for.
        """
        end = time.monotonic() + timeout
        while True:
            pending = [j for j in self.jobs(backend).values()
                       if j.state in ("running", "queued") and not j.snapshot()["history"]["step"]]
            if not pending:
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.03)

    def _leave_old(self, backend: JobBackend, keep: set[str]) -> list[str]:
        notes = []
        for job in self.jobs(backend).values():
            if job.key in keep or not is_live(job.state):
                continue
            ok, _ = job.stop(self.session_id, "stopped: the student started another pair")
            if not ok:
                backend.release(job, self.session_id)
            notes.append(f"the previous {job.spec.depth}-layer run was "
                         + ("stopped and kept on your shelf" if ok else "left to the others watching it"))
        return notes

    def control(self, backend: JobBackend, verb: str, n: int = STEP_N) -> list[str]:
        """Apply ``verb`` to both jobs; the sentences explain what could not be done."""
        if verb not in VERBS:
            raise ValueError(f"unknown control {verb!r}; expected one of {', '.join(VERBS)}")
        jobs = self.jobs(backend)
        if not jobs:
            return ["nothing to control yet: press Start first"]
        problems = []
        for role, job in jobs.items():
            if verb == "step":
                ok, why = job.step(n, self.session_id)
            else:
                ok, why = getattr(job, verb)(self.session_id)
            if not ok and why:
                problems.append(f"{role} net: {why}")
        return problems

    def reset(self, backend: JobBackend) -> None:
        """Forget the pair: unshared unfinished jobs are cancelled, ended runs stay stored."""
        for job in self.jobs(backend).values():
            backend.release(job, self.session_id)
        self.keys.clear()
        self.specs.clear()


def load_run(key: str, backend: JobBackend, store: RunStoreBackend | None) -> dict[str, Any] | None:
    """The snapshot of run ``key``: live from the backend, else the stored result."""
    job = backend.get(key)
    if job is not None:
        return job.snapshot()
    if store is None:
        return None
    try:
        rec = store.get(key, with_weights=False)
    except StoreError:
        return None
    if rec is None or "history" not in rec.result:
        return None
    return {**rec.result, "key": rec.key, "state": rec.status, "status": rec.result.get("status", rec.status)}


def load_model(key: str, backend: JobBackend, store: RunStoreBackend | None) -> nn.Module | None:
    """A private eval-mode copy of run ``key``'s current weights (never the live model:
    hooks and BN statistics of a model a page pokes at would leak into the shared run)."""
    job = backend.get(key)
    if job is not None:
        return job.model_copy()
    if store is None:
        return None
    try:
        rec = store.get(key)
    except StoreError:
        return None
    if rec is None or not rec.weights:
        return None
    spec, _ = spec_from_json(json.dumps(rec.spec))
    return model_from_bytes(spec, rec.weights).eval()


@dataclass
class ShelfItem:
    key: str
    label: str
    state: str
    steps: int
    final: dict[str, Any]
    overlay: bool = False


class Shelf:
    """Finished runs of one session, newest first, at most ``MAX_SHELF``."""

    def __init__(self, limit: int = MAX_SHELF) -> None:
        self.items: list[ShelfItem] = []
        self.limit = limit

    def __len__(self) -> int:
        return len(self.items)

    def add(self, snapshot: dict[str, Any], label: str) -> bool:
        """Keep an ended run (one with history); True if it was new."""
        key, state = snapshot.get("key") or snapshot.get("spec_hash"), snapshot.get("state")
        if not key or is_live(state) or not (snapshot.get("history") or {}).get("step"):
            return False
        for item in self.items:
            if item.key == key:
                item.state, item.steps = str(state), int(snapshot.get("step") or 0)
                return False
        self.items.insert(0, ShelfItem(key, label, str(state), int(snapshot.get("step") or 0),
                                       dict(snapshot.get("final") or {})))
        del self.items[self.limit:]
        return True

    def set_overlay(self, keys: Iterable[str]) -> None:
        chosen = set(keys)
        for item in self.items:
            item.overlay = item.key in chosen

    def overlay_keys(self) -> list[str]:
        return [i.key for i in self.items if i.overlay]

    def remove(self, keys: Iterable[str]) -> None:
        gone = set(keys)
        self.items = [i for i in self.items if i.key not in gone]

    def rows(self) -> list[dict[str, Any]]:
        """Table rows for the page (finite numbers only, percentages rounded)."""
        out = []
        for i in self.items:
            f = i.final
            acc = f.get("val_acc")
            out.append({"overlay": i.overlay, "run": i.label, "status": i.state, "steps": i.steps,
                        "train loss": _round(f.get("train_loss")),
                        "val acc (%)": _round(acc * 100 if isinstance(acc, (int, float)) else None, 1),
                        "key": i.key})
        return out


def _round(v: Any, nd: int = 4) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return round(f, nd) if f == f and abs(f) != float("inf") else None


def extra_depth_specs(spec: ExperimentSpec, depths: Sequence[int]) -> list[ExperimentSpec]:
    """Plain and residual twins of ``spec`` at other depths (Fig. 7 compares several)."""
    out = []
    for d in depths:
        if d == spec.depth:
            continue
        try:
            other = spec.replace(depth=int(d), shortcut_mask="")
        except ValueError:
            continue
        out.extend(comparison_pair(other))
    return out
