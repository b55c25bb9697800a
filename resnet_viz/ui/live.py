"""Streamlit helpers for the live plain-vs-residual pair, shared by the pages that show it.

They draw; what they show is decided in ``run_view`` (no streamlit there): a run's status
line, when a pair has settled, when finished runs are adopted, the boundary maps.

The jobs train in the shared queue's workers, which never call ``st.*``. A page draws its
live part inside :func:`poll`: a fragment that re-renders about once a second while a job
is queued, running or paused, stamps the session's heartbeat, draws the jobs' end as soon
as it sees it and triggers one full rerun at the next poll, after which it stops polling.
Buttons only call job controls in their callbacks.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable, Sequence

import streamlit as st

from resnet_viz import export
from resnet_viz.labels import run_label
from resnet_viz.serve.pair import PairSession, comparison_pair, is_live, load_model, load_run
from resnet_viz.spec import ExperimentSpec
from resnet_viz.train.estimate import BIG_RUN_S, describe, pair_seconds
from resnet_viz.ui.frame import Page, download, shown_errors
from resnet_viz.ui.run_view import adoptable, boundary_maps, failure_note, queue_note, run_status

Snap = dict[str, Any]
MESSAGES = "_control_messages"
ENDED = "_ended_shown"          # the pair whose end a poll has shown (rerun at the next one)


def snapshots(ctx: Page, keys: Sequence[str]) -> list[Snap]:
    """Snapshots of the runs ``keys`` (live from the queue, else from the store)."""
    return [s for k in keys if (s := load_run(k, ctx.svc.queue, ctx.svc.store)) is not None]


def pair_keys(ctx: Page) -> list[str]:
    """The current pair's keys, plain first."""
    keys = ctx.pair.keys
    return [keys[r] for r in ("plain", "residual") if r in keys]


def poll(ctx: Page, keys: Sequence[str], render: Callable[[list[Snap]], None],
         every: float | None = None) -> None:
    """``render(snapshots)`` now and, while any of the runs is live, every ``every`` seconds
    (default: 1 s, longer when the whole class is watching; ``heartbeat.poll_every``).
    The poll that sees the runs end draws them ended; the next one reruns the page."""
    live = any(is_live(s.get("state")) for s in snapshots(ctx, keys))
    every = ctx.svc.reaper.poll_every() if every is None else every

    ended_flag = tuple(keys)

    @st.fragment(run_every=every if live else None)
    def view() -> None:
        ctx.svc.reaper.touch(ctx.sid)           # the heartbeat: this tab is still here
        snaps = snapshots(ctx, keys)
        _learn_speed(ctx, snaps)
        render(snaps)
        still = any(is_live(s.get("state")) for s in snaps)
        if still:
            st.session_state.pop(ENDED, None)
        elif live:
            # This poll shows the final numbers; the next one redraws the page without
            # polling. Rerunning at once would drop what was just drawn and make the
            # result wait for the whole page (boundaries, shelf), while the rest of the
            # class, who saw the end at the same moment, redraw theirs too.
            if st.session_state.get(ENDED) == ended_flag:
                st.rerun()
            st.session_state[ENDED] = ended_flag

    view()


def _learn_speed(ctx: Page, snaps: list[Snap]) -> None:
    for s in snaps:
        if s.get("state") == "finished" and s.get("spec"):
            ctx.svc.speed.observe(ExperimentSpec(**s["spec"]), (s.get("final") or {}).get("steps_per_s"))


# --- starting and controlling --------------------------------------------------------------
def _say(*lines: str) -> None:
    st.session_state[MESSAGES] = st.session_state.get(MESSAGES, []) + [x for x in lines if x]


def _start(ctx: Page, spec: ExperimentSpec) -> None:
    st.session_state.pop("_confirm", None)
    try:
        _say(*ctx.pair.start(ctx.svc.queue, spec))
        ctx.pair.wait_first_points(ctx.svc.queue)   # this rerun already draws the first point
    except ValueError as err:                   # QueueFull, SpecError, a shut-down queue
        _say(f"Could not start: {err}")


def _control(ctx: Page, verb: str) -> None:
    _say(*ctx.pair.control(ctx.svc.queue, verb))


def _reset(ctx: Page) -> None:
    ctx.pair.reset(ctx.svc.queue)
    _say("Reset: the pair is cleared; finished runs stay on your shelf and in the Runs page.")


def adopt_finished(ctx: Page, spec: ExperimentSpec) -> None:
    """Start a fresh session's pair from runs already trained (``run_view.adoptable``)."""
    if ctx.pair.keys:
        return
    if adoptable(snapshots(ctx, [s.spec_hash() for s in comparison_pair(spec)])):
        with shown_errors("The stored runs could not be loaded"):
            ctx.pair.start(ctx.svc.queue, spec)


def pair_estimate(ctx: Page, spec: ExperimentSpec) -> float:
    workers = min(2, ctx.svc.queue.max_concurrent)
    return pair_seconds(comparison_pair(spec), workers, ctx.svc.speed.factor)


def start_ui(ctx: Page, spec: ExperimentSpec, label: str = "Start") -> None:
    """Start button with the time estimate; a big run asks for a second click first."""
    seconds = pair_estimate(ctx, spec)
    big = seconds > BIG_RUN_S
    if st.session_state.get("_confirm") == spec.spec_hash():
        st.warning(f"This pair needs {describe(seconds)} of training on this server, and other "
                   "students' runs share it. Smaller depth, width or steps train faster.")
        st.button("Start anyway", type="primary", on_click=_start, args=(ctx, spec), key="start_anyway")
        return
    if big:
        st.button(f"{label}…", type="primary", key="start", help=f"estimated {describe(seconds)}",
                  on_click=lambda: st.session_state.__setitem__("_confirm", spec.spec_hash()))
    else:
        st.button(label, type="primary", on_click=_start, args=(ctx, spec), key="start",
                  icon=":material/play_arrow:")
    st.caption(f"Estimated training time for the pair: {describe(seconds)}.")


def controls_ui(ctx: Page) -> None:
    """Pause, Step, Resume, Stop, Reset: each works at any time and says when it cannot."""
    cols = st.columns(5)
    for col, (verb, text, icon) in zip(cols, (("pause", "Pause", "pause"), ("step", "Step 10", "skip_next"),
                                            ("resume", "Resume", "play_arrow"), ("stop", "Stop", "stop"))):
        col.button(text, on_click=_control, args=(ctx, verb), key=f"ctl_{verb}", icon=f":material/{icon}:",
                   width="stretch")
    cols[4].button("Reset", on_click=_reset, args=(ctx,), key="ctl_reset", icon=":material/restart_alt:",
                   width="stretch")
    for line in st.session_state.pop(MESSAGES, []):
        (st.error if line.startswith("Could not") else st.info)(line)


# --- one run's readout -----------------------------------------------------------------
def _cancel(ctx: Page, key: str) -> None:
    job = ctx.svc.queue.get(key)
    if job is not None:
        ctx.svc.queue.release(job, ctx.sid)


def status_ui(ctx: Page, snap: Snap) -> None:
    """Progress bar, steps/s and device, queue place with Cancel, or the reason it ended.

    A training or finished run is one element (the progress bar says it all, the class's
    shared run included), so a page can lay the pair's bars out in one horizontal
    container: each poll of each tab sends fewer messages (``render`` in pages/train.py)."""
    status = run_status(snap)
    with st.container() if status.boxed else nullcontext():
        st.progress(status.fraction, text=f"**{status.label}**: {status.text}")
        if status.state == "queued":
            st.caption(queue_note(snap))
            st.button("Cancel", key=f"cancel_{snap['key']}", on_click=_cancel, args=(ctx, snap["key"]))
        elif (note := failure_note(snap, status.state)) is not None:
            st.error(note)


def pair_note(ctx: Page, spec: ExperimentSpec, pair: PairSession) -> None:
    """Say when the charts show a pair other than the one the sidebar describes."""
    if pair.specs and pair.specs.get("residual") != comparison_pair(spec)[1]:
        st.info("The charts show the pair you started; the sidebar now describes another one. "
                "Press Start to train it (finished runs stay on your shelf).")


def runs_downloads(runs_now: Callable[[], list[Snap]], name: str) -> None:
    """CSV of the curves and JSON of the full snapshots, made when clicked."""
    c1, c2 = st.columns(2)
    with c1:
        download("Curves (CSV)", lambda: export.runs_to_csv(runs_now()), f"{name}.csv", f"dl_{name}_csv")
    with c2:
        download("Runs (JSON)", lambda: export.to_json(runs_now()), f"{name}.json", f"dl_{name}_json")


@st.cache_data(max_entries=32, show_spinner="Drawing the decision boundaries…")
def boundaries(keys_and_steps: tuple, _ctx: Page, _spec: ExperimentSpec) -> tuple:
    """``run_view.boundary_maps`` of the runs at the given steps (cached per run and step, so
    30 students looking at one finished run compute it once)."""
    return boundary_maps(_spec, [load_model(k, _ctx.svc.queue, _ctx.svc.store) for k, _ in keys_and_steps])


def shelve(ctx: Page, snaps: list[Snap]) -> None:
    for s in snaps:
        ctx.shelf.add(s, run_label(s))


def shelf_ui(ctx: Page) -> list[str]:
    """The session's finished runs with overlay checkboxes; returns the keys to overlay."""
    shelf = ctx.shelf
    if not len(shelf):
        return []
    st.subheader("Your finished runs")
    rows = shelf.rows()
    key = "shelf_" + "_".join(r["key"][:6] for r in rows)   # a new table when runs are added
    with shown_errors("The shelf could not be shown"):
        edited = st.data_editor(rows, key=key, hide_index=True, disabled=[c for c in rows[0] if c != "overlay"],
                                column_config={"overlay": st.column_config.CheckboxColumn("overlay"),
                                               "key": None})
        shelf.set_overlay(r["key"] for r in edited if r.get("overlay"))
    return shelf.overlay_keys()
