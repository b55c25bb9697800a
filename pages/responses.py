"""Residual responses: He et al. Fig. 7 live, and how far each block moves its input."""
from __future__ import annotations

import streamlit as st

from resnet_viz.ui import frame, live
from resnet_viz import export
from resnet_viz.ui.knobs import depth_options
from resnet_viz.figures.responses import branch_ratio, response_std
from resnet_viz.serve.pair import extra_depth_specs

ctx = frame.page("Residual responses: residual functions stay small")
st.markdown("He et al. (Fig. 7) measured the standard deviation of every 3×3 layer's output "
            "(after BN, before the ReLU or the addition): **ResNets respond less than plain nets**, "
            "so each residual function is close to zero and the shortcut does most of the work.")
live.adopt_finished(ctx, ctx.spec)
keys = live.pair_keys(ctx)
if not keys:
    st.info("No pair trained yet: train the pair set in the sidebar here or on *Train & compare*.")
    live.start_ui(ctx, ctx.spec, "Train the pair")
    st.stop()

extra: dict[str, list[str]] = frame.state("extra_depths", dict)   # depth -> its two run keys


def _add(depths: list[int]) -> None:
    try:
        for spec in extra_depth_specs(ctx.pair.specs["residual"], depths):
            extra.setdefault(str(spec.depth), []).append(ctx.svc.queue.submit(spec, ctx.sid).key)
    except ValueError as err:                                         # QueueFull: say it, keep the rest
        st.session_state["_extra_error"] = f"Could not add that depth: {err}"


current = ctx.pair.specs["residual"].depth
choices = [d for d in depth_options(ctx.pair.specs["residual"], ctx.cfg) if d != current and str(d) not in extra]
with st.form("add_depths", border=False):
    picked = st.multiselect("Compare with other depths (trains a plain and a residual net each)", choices,
                            max_selections=2, key="extra_pick")
    st.form_submit_button("Add depths", key="extra_add",
                          on_click=lambda: _add(st.session_state.get("extra_pick") or []))
if msg := st.session_state.pop("_extra_error", None):
    st.error(msg)
all_keys = keys + [k for ks in extra.values() for k in ks]


def render(snaps: list[dict]) -> None:
    c1, c2 = st.columns(2)
    with c1:
        frame.chart(response_std(snaps, sort=False), "resp_by_layer")
    with c2:
        frame.chart(response_std(snaps, sort=True), "resp_sorted")
    frame.chart(branch_ratio(snaps), "branch_ratio")
    for s in snaps:
        if s.get("state") in ("queued", "running"):
            live.status_ui(ctx, s)


live.poll(ctx, all_keys, render)
d1, d2 = st.columns(2)
with d1:
    frame.download("Responses (CSV)", lambda: export.rows_to_csv(export.probe_rows(live.snapshots(ctx, all_keys))),
                    "responses.csv", "dl_responses_csv")
with d2:
    frame.download("Responses (JSON)", lambda: export.to_json(
        [{k: s.get(k) for k in ("spec", "probe_step", "response_names", "response_std", "branch_ratio")}
         for s in live.snapshots(ctx, all_keys)]), "responses.json", "dl_responses")
st.caption("Std measured with batch statistics on the training batch at the latest probe step, "
           "so after BN it is close to the BN scale |γ|. At this small scale \"deeper ResNets respond "
           "less\" is weak; the plain-vs-residual gap is the robust part.")
