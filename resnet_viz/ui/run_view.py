"""What the live pages say about a run and when they may analyse it, decided without streamlit.

``live.py`` draws; the decisions are here so that they are plain functions of a run's
snapshot (the dict ``serve.pair.load_run`` returns), tested without a page
(``tests/test_ui_run_view.py``): the status line of one run, the notes under it, whether a
pair has *settled* (the boundary and attribution views need finished weights), whether a
fresh session can adopt runs the class already trained, and the decision-boundary maps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch.nn as nn

from resnet_viz.serve.job import REUSABLE
from resnet_viz.analysis.boundary import decision_grid
from resnet_viz.data.datasets import load_dataset
from resnet_viz.figures.training import progress_summary
from resnet_viz.labels import run_label
from resnet_viz.serve.pair import is_live
from resnet_viz.spec import ExperimentSpec
from resnet_viz.train.estimate import describe, estimate_seconds

Snap = dict[str, Any]
OK_STATES = REUSABLE   # deterministic outcomes (serve.job): analysable, their weights kept
BOXED = ("queued", "failed", "diverged")         # the bar and a note under it: one element
ENDED_TEXT = {"cancelled": "cancelled", "interrupted": "interrupted by a server restart", "failed": "failed"}


@dataclass(frozen=True)
class RunStatus:
    """One run's progress bar: its fill, the run's label, the text after it; ``boxed`` when a
    note follows the bar (the two are then drawn as one element)."""

    state: str
    fraction: float
    label: str
    text: str
    boxed: bool


def run_status(snap: Snap) -> RunStatus:
    """The status line of one run: queue, pause, end or the progress summary, and whether
    the class shares it (a live run several sessions watch is computed once)."""
    summary = progress_summary(snap)
    state = snap.get("state", summary["status"])
    texts = {"queued": f"waiting in the queue ({summary['total']:,} steps)",
             "paused": f"paused at step {summary['step']:,} / {summary['total']:,}", **ENDED_TEXT}
    text = texts.get(state, summary["text"])
    if state == "running" and not summary["step"]:
        text = "starting: loading the data and building the net"
    if is_live(state) and snap.get("subscribers", 0) > 1:
        text += f" · shared with {snap['subscribers'] - 1} other session(s), computed once"
    return RunStatus(state, summary["percent"] / 100, run_label(snap), text, state in BOXED)


def queue_note(snap: Snap) -> str:
    """Where a queued run stands: its place, when it starts and how long it then trains."""
    wait = snap.get("estimate_wait_s")
    train = describe(estimate_seconds(ExperimentSpec(**snap["spec"])))
    return (f"Place {snap.get('queue_position')} in the queue"
            + (f"; starts in {describe(wait)}" if wait is not None else "") + f"; then trains for {train}.")


def failure_note(snap: Snap, state: str) -> str | None:
    """The sentence under a run that failed or diverged; None for any other state."""
    if state == "failed":
        return f"{run_label(snap)} could not train: {snap.get('error')}"
    if state == "diverged":
        reason = (snap.get("final") or {}).get("stopped_reason") or "the loss became non-finite"
        return f"{run_label(snap)} {reason}. The curves up to that point are kept."
    return None


def settled(snaps: Sequence[Snap]) -> bool:
    """Every run has trained a little and none is training right now."""
    return bool(snaps) and all(s.get("step") and s.get("state") not in ("running", "queued") for s in snaps)


def adoptable(runs: Sequence[Snap]) -> bool:
    """Both runs of a pair ended with kept weights: a fresh session (a shared link, a lesson
    preset the class opened) shows them instead of asking to train them again."""
    return len(runs) == 2 and all(r.get("state") in OK_STATES for r in runs)


def boundary_maps(spec: ExperimentSpec, models: Sequence[nn.Module | None]
                  ) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """P(class 1) grids of ``models`` (trained on ``spec``'s 2-D set) and its training points;
    ValueError when a run's weights are gone."""
    if any(m is None for m in models):
        raise ValueError("a run's weights are not available (it was interrupted or never trained)")
    data = load_dataset(spec)
    return [decision_grid(m, data.x_train) for m in models], data.x_train.numpy(), data.y_train.numpy()
