"""ui.run_view: what the live pages say about a run, decided without streamlit."""
from __future__ import annotations

import subprocess
import sys

import pytest

from resnet_viz.data.datasets import load_dataset
from resnet_viz.spec import ExperimentSpec
from resnet_viz.train.trainer import Trainer
from resnet_viz.ui.run_view import (adoptable, boundary_maps, failure_note, queue_note, run_status,
                                    settled)

SPEC = ExperimentSpec(dataset="moons", depth=4, width=8, steps=30, eval_every=10, log_every=5)


def snap(state: str, step: int = 0, **extra) -> dict:
    return {"key": "k", "state": state, "status": state, "step": step, "total_steps": 30,
            "spec": SPEC.to_dict(), **extra}


@pytest.mark.parametrize("state, step, text, boxed", [
    ("queued", 0, "waiting in the queue (30 steps)", True),
    ("running", 0, "starting: loading the data and building the net", False),
    ("running", 15, "step 15 / 30 (50%)", False),
    ("paused", 12, "paused at step 12 / 30", False),
    ("finished", 30, "finished 30 steps", False),
    ("cancelled", 3, "cancelled", False),
    ("interrupted", 3, "interrupted by a server restart", False),
    ("failed", 0, "failed", True),
    ("diverged", 7, "diverged at step 7", True),
])
def test_the_status_line_of_each_state(state, step, text, boxed):
    status = run_status(snap(state, step))
    assert status.text.startswith(text) and status.boxed is boxed and status.state == state
    assert status.label == "resnet-4 (identity)" and status.fraction == pytest.approx(step / 30)


def test_a_live_run_the_class_shares_says_so_and_an_ended_one_does_not():
    assert run_status(snap("running", 5, subscribers=3)).text.endswith(
        "shared with 2 other session(s), computed once")
    assert "shared" not in run_status(snap("finished", 30, subscribers=3)).text


def test_notes_under_the_bar():
    assert queue_note(snap("queued", queue_position=2, estimate_wait_s=40)) == (
        "Place 2 in the queue; starts in about 40 s; then trains for a few seconds.")
    assert queue_note(snap("queued", queue_position=1)).startswith("Place 1 in the queue; then trains")
    assert failure_note(snap("failed", error="no data"), "failed") == "resnet-4 (identity) could not train: no data"
    assert failure_note(snap("diverged", 7), "diverged").endswith(
        "the loss became non-finite. The curves up to that point are kept.")
    assert failure_note(snap("running", 5), "running") is None


def test_settled_and_adoptable():
    assert not settled([])
    assert settled([snap("finished", 30), snap("paused", 4)])
    assert not settled([snap("finished", 30), snap("running", 4)])
    assert not settled([snap("paused", 0)])               # not trained at all yet
    assert adoptable([snap("finished", 30), snap("diverged", 7)])
    assert not adoptable([snap("finished", 30)]) and not adoptable([snap("finished", 30), snap("stopped", 9)])


def test_boundary_maps_of_trained_nets_and_a_sentence_when_weights_are_gone():
    trainer = Trainer(SPEC, load_dataset(SPEC))
    trainer.train_steps(5)
    grids, x, y = boundary_maps(SPEC, [trainer.model, trainer.model])
    assert len(grids) == 2 and x.shape == (len(y), 2) and grids[0]["n"] == len(grids[0]["xx"])
    with pytest.raises(ValueError, match="weights are not available"):
        boundary_maps(SPEC, [trainer.model, None])


def test_run_view_imports_no_streamlit():
    code = ("import sys; sys.modules['streamlit'] = None; import resnet_viz.ui.run_view")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
