"""Train & compare: a plain net and its residual twin, side by side, live."""
from __future__ import annotations

import streamlit as st

from resnet_viz.ui import frame, live, run_view, uploads
from resnet_viz import export
from resnet_viz.figures.boundary import boundary_pair
from resnet_viz.figures.memo import runs_signature
from resnet_viz.labels import run_label
from resnet_viz.figures.training import loss_curves
from resnet_viz.serve.pair import comparison_pair
from resnet_viz.spec import SYNTHETIC_2D

ctx = frame.page("Train & compare: plain vs residual")
spec = ctx.spec
plain, residual = comparison_pair(spec)
st.markdown(f"A **{plain.depth}-layer plain net** (vermillion) against its **residual twin** (blue): "
            "same seed, same initial weights, same batches; only the shortcuts differ. Deeper plain "
            "nets train *worse* (degradation); their residual twins do not.")

live.adopt_finished(ctx, spec)
left, right = st.columns([1, 2])
with left:
    live.start_ui(ctx, spec)
    with st.expander("Start from trained weights", expanded=bool(spec.init_from)):
        uploads.checkpoint_ui(spec, ctx.cfg)
with right:
    live.controls_ui(ctx)
live.pair_note(ctx, spec, ctx.pair)

log_loss = st.toggle("Loss on a log scale", value=True, key="log_loss",
                     help="Deep nets can start with a huge loss; a log scale keeps both curves readable.")
charts = st.container()            # filled after the shelf table has read its checkboxes
boundary_area = st.container()
keys = live.pair_keys(ctx)
snaps = live.snapshots(ctx, keys)
live.shelve(ctx, snaps)            # ended runs join the shelf before it is drawn
overlay_keys = live.shelf_ui(ctx)
overlays = [s for s in live.snapshots(ctx, overlay_keys) if s["key"] not in keys]


def render(snaps: list[dict]) -> None:
    """Readouts and curves of the pair, plus the runs overlaid from the shelf.

    Horizontal containers, not st.columns: every tab polls this once a second, and each
    message costs the server's event loop for every tab (a column row is 3 messages, a
    horizontal container 1; a poll went from 17 messages to 11)."""
    with st.container(horizontal=True):
        for snap in snaps:
            live.status_ui(ctx, snap)
    runs = snaps + overlays
    sig = runs_signature(runs)             # the same run at the same step: one figure for all
    with st.container(horizontal=True):
        frame.shared_chart(("loss", log_loss, sig), lambda: loss_curves(runs, "loss", log_y=log_loss),
                            "loss_chart")
        frame.shared_chart(("acc", sig), lambda: loss_curves(runs, "acc"), "acc_chart")


with charts:
    if keys or overlays:
        live.poll(ctx, keys, render)
        live.runs_downloads(lambda: live.snapshots(ctx, keys) + overlays, "train_curves")
    if not keys:
        st.info("Press **Start** to train the pair set in the sidebar. Tiny nets train in seconds.")
        if not overlays:
            # Empty axes now: the browser loads plotly.js (~2 s on a busy 2-core server) with
            # the page, not on the Start rerun, so the first point shows as soon as it exists.
            render([])

if len(snaps) == 2 and ctx.pair.specs["plain"].dataset in SYNTHETIC_2D:
    with boundary_area:
        if run_view.settled(snaps):
            with frame.shown_errors("The decision boundaries could not be drawn"):
                at = tuple((s["key"], s["step"]) for s in snaps)  # what the grids are of
                grids, x, y = live.boundaries(at, ctx, ctx.pair.specs["plain"])
                titles = [run_label(s) for s in snaps]
                frame.shared_chart(("boundary", at, tuple(titles)),
                                    lambda: boundary_pair(grids[0], grids[1], x, y, titles=titles),
                                    "boundary")
                both = {"plain": grids[0], "residual": grids[1]}
                d1, d2 = st.columns(2)
                with d1:
                    frame.download("Boundaries (CSV)", lambda: export.rows_to_csv(export.grid_rows(both)),
                                    "decision_boundaries.csv", "dl_boundary_csv")
                with d2:
                    frame.download("Boundaries (JSON)", lambda: export.to_json(both),
                                    "decision_boundaries.json", "dl_boundary")
        else:
            st.caption("The decision boundaries appear when the runs pause or end.")
st.caption("Curves: cross-entropy and accuracy on up to 2048 training and validation examples, "
           "evaluated every `eval_every` steps in eval mode on BN statistics re-estimated for the current "
           "weights (precise BN, Wu & Johnson 2021; the running averages lag the weights). Dotted: the "
           "mean training-minibatch loss since the previous point, in train mode.")
