"""Run a lesson headless: train its runs one after another, analyse, judge the claim.

The page trains the same specs through the shared job queue instead, then calls
:func:`finish` exactly as :func:`run_lesson` does, so both produce the same document::

    {"lesson", "title", "params", "result", "claim", "outcome", "prediction", "runs", "timing"}

``result`` is the lesson's analysis (JSON-safe), ``claim`` its headline with our numbers and
the paper's, ``outcome`` the prediction option our numbers support, ``runs`` the trainer
snapshots by spec hash. NaN and ±inf become ``None`` so strict JSON parsers accept it.
"""
from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

import torch
import torch.nn as nn

from resnet_viz.jsonsafe import to_jsonable
from resnet_viz.spec import ExperimentSpec
from resnet_viz.train.trainer import Trainer, model_from_bytes, run_training
from resnet_viz.lessons import get
from resnet_viz.lessons.base import Lesson, Progress, Runs, train_cost_s, unique


def spec_label(spec: ExperimentSpec) -> str:
    kind = {"none": "plain", "identity": "residual", "projection": "option B",
            "gated": "highway"}[spec.shortcut]
    return f"{kind}-{spec.depth} ({spec.model}, seed {spec.seed}, {spec.steps} steps)"


def plan(lesson: Lesson, params: dict[str, Any]) -> tuple[list[ExperimentSpec], list[float], float]:
    """(the distinct runs, their estimated seconds, the estimated analysis seconds)."""
    specs = unique(lesson.specs(params))
    costs = [train_cost_s(s) for s in specs]
    return specs, costs, max(0.2, lesson.estimate_s(params) - sum(costs))


def detached(spec: ExperimentSpec, trainer: Trainer) -> nn.Module:
    """A CPU eval-mode copy of ``trainer``'s net through the bytes round trip ``Job.model_copy``
    uses (``Trainer.weights``: BN statistics re-estimated for the weights, precise BN), so
    headless and queued lessons analyse identical models, and what the net really computes."""
    return model_from_bytes(spec, trainer.weights()).eval()


def finish(lesson: Lesson, params: dict[str, Any], runs: Runs, progress: Progress = None,
           timing: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Analyse trained ``runs`` (spec hash → (snapshot, model)) and build the lesson document."""
    t0 = time.perf_counter()
    result = lesson.analyse(params, runs, progress=progress)
    claim = lesson.claim(result)
    if progress:
        progress(1.0, "done")
    return to_jsonable({
        "lesson": lesson.name, "title": lesson.title, "params": params, "result": result,
        "claim": dataclasses.asdict(claim), "outcome": lesson.outcome(result),
        "prediction": dataclasses.asdict(lesson.prediction),
        "paper_figures": lesson.paper_figures, "papers": lesson.papers,
        "runs": {h: snap for h, (snap, _) in runs.items()},
        "timing": {**(timing or {}), "analysis_s": round(time.perf_counter() - t0, 2)},
    })


def run_lesson(name: str, params: Mapping[str, Any] | None = None, progress: Progress = None,
               data_dir: str | None = None, threads: int | None = 1) -> dict[str, Any]:
    """Train ``name``'s runs sequentially, analyse them, return the lesson document.

    ``params`` override the lesson's defaults (typed values or strings, as from a URL);
    ``progress(fraction, message)`` is called as training and analysis advance.
    ``threads``: torch intra-op threads for the duration (restored after; None leaves them).
    One, like the job queue's workers on a default classroom server: float sums depend on
    the thread count, and a chaotic deep plain net then ends elsewhere, so only the same
    count gives the page's numbers exactly.
    Raises ValueError (SpecError, DataError) with a sentence for people on bad input.
    """
    lesson = get(name)
    p = lesson.resolve(params)
    with torch_threads(threads):
        return _run(lesson, p, progress, data_dir)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run(lesson: Lesson, p: dict[str, Any], progress: Progress, data_dir: str | None) -> dict[str, Any]:
    specs, costs, analysis_cost = plan(lesson, p)
    total = sum(costs) + analysis_cost
    runs: dict[str, tuple[dict[str, Any], nn.Module]] = {}
    t0, done = time.perf_counter(), 0.0
    for spec, cost in zip(specs, costs):
        snap, trainer = run_training(spec, data=_data(spec, data_dir),
                                     progress=_train_tick(progress, spec, done, cost, total))
        runs[spec.spec_hash()] = (snap, detached(spec, trainer))
        done += cost
    train_s = round(time.perf_counter() - t0, 2)
    sub = None if progress is None else (
        lambda f, msg: progress(min(1.0, (done + f * analysis_cost) / total), msg))
    return finish(lesson, p, runs, sub, {"train_s": train_s, "n_runs": len(specs)})


def _data(spec: ExperimentSpec, data_dir: str | None):
    from resnet_viz.data.datasets import load_dataset
    return load_dataset(spec, data_dir)


def _train_tick(progress: Progress, spec: ExperimentSpec, done: float, cost: float,
                total: float) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    label = spec_label(spec)
    return lambda step, steps: progress(min(1.0, (done + cost * step / max(1, steps)) / total),
                                        f"training {label}: step {step}/{steps}")
