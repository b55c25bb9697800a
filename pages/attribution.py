"""Attribution (captum): which pixels and which blocks a prediction depends on, plain vs residual."""
from __future__ import annotations

import hashlib

import streamlit as st

from resnet_viz.ui import frame, live, run_view, uploads
from resnet_viz import export
from resnet_viz.data.datasets import Dataset, load_dataset
from resnet_viz.data.image_folder import SUFFIXES
from resnet_viz.analysis.pair_attribution import explain, image_of, predict
from resnet_viz.figures.attribution import attribution_maps_figure, block_attribution_figure, completeness_text
from resnet_viz.serve.pair import PairSession, attribution_spec, load_model
from resnet_viz.spec import ExperimentSpec
from resnet_viz.data.upload import NORMALISATION, image_to_input

CITE = ("Simonyan et al. 2014 (saliency), Sundararajan et al. 2017 (integrated gradients), "
        "Shrikumar et al. 2016 and Dhamdhere et al. 2018 (per block), on the nets of He et al. 2016")
NAMES = {"none": "plain", "identity": "residual"}
ctx = frame.page("Attribution: where does each net look?", cite=CITE)
spec = attribution_spec(ctx.spec)
pair: PairSession = ctx.pair if ctx.pair.specs.get("residual") == spec else \
    frame.state("attr_pair", lambda: PairSession(ctx.sid))
st.markdown(f"Explains the **{spec.dataset}** pair ({spec.model.upper()}, depth {spec.depth}). Saliency is "
            "|∂y/∂x|; integrated gradients add up the gradient along a path from a blank image, so the "
            "map sums to the change of the logit. The bars say how much each block's F(x) pushes it.")


@st.cache_data(max_entries=4, show_spinner="Loading the images…")
def dataset(spec_hash: str, data_dir: str, _spec: ExperimentSpec) -> Dataset:
    return load_dataset(_spec, data_dir)


def _train() -> None:
    try:
        pair.start(ctx.svc.queue, spec)
    except ValueError as err:
        st.session_state["_attr_error"] = f"Could not start: {err}"


if pair.specs.get("residual") != spec:
    st.button(f"Train the {spec.dataset} pair to explain", key="attr_train", on_click=_train, type="primary")
    if msg := st.session_state.pop("_attr_error", None):
        st.error(msg)
    st.stop()
keys = [pair.keys["plain"], pair.keys["residual"]]
live.poll(ctx, keys, lambda snaps: [live.status_ui(ctx, s) for s in snaps if s.get("state") != "finished"])
snaps = live.snapshots(ctx, keys)
if not run_view.settled(snaps):
    st.caption("The explanations appear when both nets have trained (or are paused).")
    st.stop()

data = dataset(spec.spec_hash(), ctx.cfg.data_dir, spec)
x, target = None, None
with frame.shown_errors("That image cannot be used"):
    if st.radio("Input", ["a validation image", "your own image"], horizontal=True, key="attr_src") == "your own image":
        up = uploads.uploader("An image", SUFFIXES, ctx.cfg.max_upload_bytes, key="attr_upload")
        if up is not None:                    # any file is accepted; the extension is checked here
            blob = uploads.checked(up, SUFFIXES, ctx.cfg.max_upload_bytes)
            mean, std = NORMALISATION.get(spec.dataset, (None, None))
            x = image_to_input(blob, data.input_shape, ctx.cfg.max_upload_bytes, mean=mean, std=std)
    else:
        i = int(st.number_input("Validation image", 0, data.n_val - 1, 0, key="attr_index"))
        x, target = data.x_val[i:i + 1], int(data.y_val[i])
if x is None:
    st.stop()

c1, c2 = st.columns(2)
n_steps = c1.select_slider("Integrated-gradient steps", [8, 16, 32, 64], value=32, key="attr_steps")
method = c2.radio("Per-block attribution", ["grad_x_act", "conductance"], horizontal=True, key="attr_method",
                  format_func={"grad_x_act": "gradient × activation", "conductance": "layer conductance"}.get)
memo: dict = frame.state("attr_memo", dict)       # the last explanation of this session only
tag = (tuple(keys), tuple(s["step"] for s in snaps), hashlib.sha1(x.numpy().tobytes()).hexdigest(), n_steps, method)
if tag not in memo:
    bar = st.progress(0.0, text="Explaining…")
    with frame.shown_errors("The attribution failed"):
        models = {"none": load_model(keys[0], ctx.svc.queue, ctx.svc.store),
                  "identity": load_model(keys[1], ctx.svc.queue, ctx.svc.store)}
        target = predict(models["identity"], x)[0] if target is None else target
        memo.clear()
        memo[tag] = explain(models, x, target, n_steps, method, lambda f, what: bar.progress(f, text=what))
    bar.empty()
if res := memo.get(tag):
    preds = " · ".join(f"{NAMES[k]} predicts {c} ({p:.0%})" for k, (c, p) in res["prediction"].items())
    st.markdown(f"Explaining class **{res['target']}**: {preds}.")
    frame.chart(attribution_maps_figure(image_of(x), res["saliency"], res["integrated"]), "attr_maps")
    frame.chart(block_attribution_figure(res["blocks"], res["method"]), "attr_blocks")
    for k, delta in res["delta"].items():
        st.caption(f"Integrated gradients, {NAMES.get(k, k)} net: {completeness_text(delta, res['change'][k])}")
    d1, d2, d3 = st.columns(3)
    with d1:
        frame.download("Per-block attribution (CSV)", lambda: export.rows_to_csv(export.attribution_rows(res)),
                        "attribution_blocks.csv", "dl_attr_blocks_csv")
    with d2:
        frame.download("Saliency and IG maps (CSV)", lambda: export.rows_to_csv(export.attribution_map_rows(res)),
                        "attribution_maps.csv", "dl_attr_maps_csv")
    with d3:
        frame.download("Attributions (JSON)", lambda: export.to_json(res), "attribution.json", "dl_attr")
