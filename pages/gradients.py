"""Gradient flow: per-layer gradient norms of the current pair, plain vs residual."""
from __future__ import annotations

import math

import streamlit as st

from resnet_viz.ui import frame, live
from resnet_viz import export
from resnet_viz.labels import run_label
from resnet_viz.figures.training import first_last_ratio, grad_norm_by_depth, grad_norm_heatmap

ctx = frame.page("Gradient flow: does the gradient reach the first layer?")
st.markdown("The norm of ∂L/∂W for every weight layer, logged every `log_every` steps. In a deep "
            "**plain** net it shrinks (or explodes) on its way back to the input, so the first "
            "layers barely learn; the **shortcut** gives the gradient a direct path.")
live.adopt_finished(ctx, ctx.spec)
keys = live.pair_keys(ctx)
if not keys:
    st.info("No pair trained yet: train the pair set in the sidebar here or on *Train & compare*.")
    live.start_ui(ctx, ctx.spec, "Train the pair")
    st.stop()

at = st.segmented_control("Gradient norms at", ["first", "last"], default="last", key="grad_at",
                          help="first: at initialisation; last: the latest probe step") or "last"


def render(snaps: list[dict]) -> None:
    for col, snap in zip(st.columns(len(snaps) or 1), snaps):
        ratio = first_last_ratio(snap, at)
        col.metric(f"{run_label(snap)}: first / last layer", f"{ratio:.3g}" if math.isfinite(ratio) else "–",
                   help="‖∂L/∂W‖ of the first weight layer divided by the last one's. Far below 1: the "
                        "gradient vanishes before it reaches the input.")
    frame.chart(grad_norm_by_depth(snaps, at), "grad_by_depth")
    for col, snap in zip(st.columns(len(snaps) or 1), snaps):
        with col:
            frame.chart(grad_norm_heatmap(snap), f"grad_heatmap_{snap['key']}")


live.poll(ctx, keys, render)
for col, key in zip(st.columns(len(keys)), keys):
    with col:
        frame.download("Gradient norms (CSV)", lambda k=key: export.probes_to_csv(live.snapshots(ctx, [k])[0]),
                        f"grad_norms_{key}.csv", f"dl_grad_{key}")
st.caption("Norms are measured on one training batch at each probe step (hooks armed only then). "
           "Glorot & Bengio 2010 describe the vanishing-gradient problem He et al. 2016 address.")
