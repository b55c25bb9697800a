"""figures.memo: one live chart per content, shared by every session watching it."""
from __future__ import annotations

import threading

import plotly.graph_objects as go

from resnet_viz.data.datasets import load_dataset
from resnet_viz.figures.memo import FigureMemo, SharedFigure, runs_signature, share
from resnet_viz.figures.training import loss_curves
from resnet_viz.spec import ExperimentSpec
from resnet_viz.train.trainer import Trainer

SPEC = ExperimentSpec(dataset="moons", depth=4, width=16, steps=60, eval_every=20, log_every=10)


def snapshot_at(steps: int) -> dict:
    trainer = Trainer(SPEC, load_dataset(SPEC))
    trainer.train_steps(steps)
    return {**trainer.snapshot(), "key": SPEC.spec_hash(), "state": "running"}


def test_two_watchers_of_one_run_get_the_figure_built_once():
    memo, calls = FigureMemo(), []

    def build() -> go.Figure:
        calls.append(1)
        return go.Figure()

    first = memo.get(("loss", (("k", 10, "running"),)), build)
    again = memo.get(("loss", (("k", 10, "running"),)), build)
    later = memo.get(("loss", (("k", 20, "running"),)), build)   # a new point: a new figure
    assert first is again and later is not first and len(calls) == 2 == memo.builds


def test_the_signature_covers_what_the_curves_show():
    """Two sessions' snapshots of the same run at the same step (deterministic training) have
    one signature and draw the same figure; another step or state has another signature."""
    a, b = snapshot_at(30), snapshot_at(30)
    assert runs_signature([a]) == runs_signature([b])
    assert loss_curves([a], "loss").to_json() == loss_curves([b], "loss").to_json()
    assert runs_signature([snapshot_at(40)]) != runs_signature([a])
    assert runs_signature([{**a, "state": "finished"}]) != runs_signature([a])
    assert runs_signature([{**a, "label": "mine"}]) != runs_signature([a])


def test_memory_is_bounded_and_least_recently_used_goes_first():
    memo = FigureMemo(max_entries=3)
    for i in range(10):
        memo.get(i, go.Figure)
    assert len(memo) == 3
    memo.get(7, go.Figure)                    # touched: survives the next insertions
    memo.get(10, go.Figure)
    memo.get(11, go.Figure)
    kept = memo.builds
    memo.get(7, go.Figure)
    assert memo.builds == kept                # still cached
    memo.clear()
    assert len(memo) == 0


def test_racing_sessions_all_get_one_and_the_same_figure():
    memo, got, gate = FigureMemo(), [], threading.Barrier(8)

    def watcher() -> None:
        gate.wait()
        got.append(memo.get("same", go.Figure))

    threads = [threading.Thread(target=watcher) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(f is got[0] for f in got) and len(memo) == 1


def test_thirty_tabs_asking_at_once_build_the_figure_once():
    memo, calls, gate = FigureMemo(), [], threading.Event()

    def build() -> go.Figure:
        calls.append(1)
        gate.wait(5)                 # slow, so every other tab asks while it builds
        return go.Figure()

    got: list[go.Figure] = []
    tabs = [threading.Thread(target=lambda: got.append(memo.get("boundary", build))) for _ in range(30)]
    for t in tabs:
        t.start()
    while not calls:
        pass
    gate.set()
    for t in tabs:
        t.join(10)
    assert len(calls) == 1 and len(got) == 30 and all(g is got[0] for g in got)


def test_a_failed_build_does_not_strand_the_waiters():
    memo, gate = FigureMemo(), threading.Event()

    def broken() -> go.Figure:
        gate.wait(5)
        raise ValueError("no data")

    errors: list[Exception] = []

    def first() -> None:
        try:
            memo.get("x", broken)
        except ValueError as err:
            errors.append(err)

    t = threading.Thread(target=first)
    t.start()
    while not len(memo):             # the build has started
        pass
    waiter: list[go.Figure] = []
    w = threading.Thread(target=lambda: waiter.append(memo.get("x", go.Figure)))
    w.start()
    gate.set()
    t.join(10), w.join(10)
    assert len(errors) == 1 and isinstance(waiter[0], go.Figure)
    assert memo.get("x", broken) is waiter[0] and memo.builds == 1   # the waiter's figure is kept


def test_a_tab_that_waits_too_long_draws_its_own_copy():
    memo, gate = FigureMemo(wait_s=0.05), threading.Event()

    def slow() -> go.Figure:
        gate.wait(5)
        return go.Figure()

    built: list[go.Figure] = []
    t = threading.Thread(target=lambda: built.append(memo.get("slow", slow)))
    t.start()
    while not len(memo):
        pass
    own = memo.get("slow", go.Figure)          # returns after wait_s, the build still going
    gate.set()
    t.join(10)
    assert own is not built[0] and memo.get("slow", go.Figure) is built[0] and memo.builds == 1


def test_a_shared_figure_hands_every_viewer_one_dict_with_the_same_content():
    """Streamlit's plotly_chart starts with ``to_dict`` (plotly's is a deep copy and a walk of
    every point): a memo figure makes it once, and what the browser gets is unchanged."""
    import json

    import plotly.io
    import plotly.tools

    snap = snapshot_at(30)
    fig = FigureMemo().get("k", lambda: loss_curves([snap], "loss"))
    assert isinstance(fig, SharedFigure)
    # The path st.plotly_chart takes (streamlit/elements/plotly_chart.py).
    sent = plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True)
    assert sent is fig.to_dict() is plotly.tools.return_figure_from_figure_or_data(fig, True)
    fresh = loss_curves([snap], "loss")
    assert json.loads(plotly.io.to_json(sent, validate=False)) == json.loads(fresh.to_json())


def test_share_leaves_other_figure_classes_alone():
    class Mine(go.Figure):
        pass

    mine = Mine()
    assert type(share(mine)) is Mine
    once = share(go.Figure())
    assert share(once) is once and once.to_dict() is once.to_dict()
