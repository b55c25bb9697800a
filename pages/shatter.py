"""Shattered gradients: df/dx over a 1-D input, plain vs residual, at init and trained."""
from __future__ import annotations

import streamlit as st

from resnet_viz.ui import frame, live, run_view
from resnet_viz import export
from resnet_viz.figures.shatter import autocorrelation_figure, correlation_heatmap, gradient_figure, lag1_depth_figure
from resnet_viz.serve.pair import PairSession, comparison_pair, load_model, shatter_spec
from resnet_viz.analysis.shatter import lag1_vs_depth, noise_references, shatter_report
from resnet_viz.spec import ExperimentSpec

BALDUZZI = ("Balduzzi et al., *The Shattered Gradients Problem*, ICML 2017 "
            "([arXiv:1702.08591](https://arxiv.org/abs/1702.08591))")
ctx = frame.page("Shattered gradients: white noise vs brown noise", cite=BALDUZZI)
spec = shatter_spec(ctx.spec)
plain, residual = comparison_pair(spec)
st.markdown(f"The gradient df/dx of a **{spec.depth}-layer** MLP (width {spec.width}, BN, 1-D input on "
            "[−2, 2]) at 256 points. Deep plain nets have gradients like **white noise**: neighbouring "
            "inputs get unrelated gradients. ResNets keep them correlated, like **brown noise**.")
st.caption("This page always uses the 1-D input (`grid1d`) and an MLP with BN; depth, width, α and "
           "seed come from the sidebar.")


@st.cache_data(max_entries=64, show_spinner="Computing input gradients…")
def at_init(spec_json: str, _spec: ExperimentSpec) -> dict:
    return shatter_report(_spec)


@st.cache_data(max_entries=16, show_spinner="Measuring lag-1 correlation at several depths…")
def by_depth(depths: tuple[int, ...], width: int, betas: tuple[float, ...]) -> dict:
    return lag1_vs_depth(depths, betas=betas, seeds=(0, 1, 2), width=width)


@st.cache_data(max_entries=16, show_spinner="Computing the trained nets' gradients…")
def trained(keys_and_steps: tuple, _ctx: frame.Page, _specs: tuple[ExperimentSpec, ...]) -> list[dict]:
    """Reports of the trained nets, BN on their own running statistics (what they compute)."""
    models = [load_model(k, _ctx.svc.queue, _ctx.svc.store) for k, _ in keys_and_steps]
    if any(m is None for m in models):
        raise ValueError("a trained net's weights are not available")
    return [shatter_report(s, m, bn="running") for s, m in zip(_specs, models)]


def show(reports: list[dict], when: str) -> None:
    refs = noise_references(len(reports[0]["x"]))
    frame.chart(gradient_figure(reports, references=refs), f"grad_{when}")
    c1, c2 = st.columns(2)
    with c1:
        frame.chart(autocorrelation_figure(reports, references=refs), f"acf_{when}")
    with c2:
        pick = st.radio("Correlation matrix of", ["plain", "residual"], horizontal=True, key=f"corr_{when}")
        r = reports[0 if pick == "plain" else 1]
        frame.chart(correlation_heatmap(r["corr_matrix"], r["corr_x"], pick), f"corrfig_{when}")
    st.caption(" · ".join(f"{n}: lag-1 autocorrelation {r['lag1']:.2f}, spectrum slope {r['spectrum_slope']:.1f}"
                          for n, r in zip(("plain", "residual"), reports)))
    d1, d2 = st.columns(2)
    with d1:
        frame.download(f"Gradients {when} (CSV)", lambda: export.rows_to_csv(export.shatter_rows(reports)),
                        f"shatter_{when}.csv", f"dl_shatter_{when}_csv")
    with d2:
        frame.download(f"Gradients {when} (JSON)", lambda: export.to_json(reports), f"shatter_{when}.json",
                        f"dl_shatter_{when}")


with frame.shown_errors("The gradients could not be computed"):
    st.subheader("At initialisation")
    show([at_init(s.spec_hash(), s) for s in (plain, residual)], "init")

st.subheader("How lag-1 correlation falls with depth")
depths = tuple(d for d in (1, 2, 4, 8, 16, 32, 50) if d <= ctx.cfg.max_depth)
betas = tuple(sorted({1.0, spec.residual_scale} - {0.0}))
with frame.shown_errors("The depth sweep could not be computed"):
    sweep = by_depth(depths, spec.width, betas)
    frame.chart(lag1_depth_figure(sweep), "lag1_depth")
    d1, d2 = st.columns(2)
    with d1:
        frame.download("Lag-1 by depth (CSV)", lambda: export.rows_to_csv(export.lag1_rows(sweep)),
                        "lag1_by_depth.csv", "dl_lag1_csv")
    with d2:
        frame.download("Lag-1 by depth (JSON)", lambda: export.to_json(sweep), "lag1_by_depth.json", "dl_lag1")

st.subheader("After training on the 1-D task")
pair: PairSession = frame.state("shatter_pair", lambda: PairSession(ctx.sid))


def _train() -> None:
    try:
        pair.start(ctx.svc.queue, spec)
    except ValueError as err:
        st.session_state["_shatter_error"] = f"Could not start: {err}"


st.button(f"Train both nets on grid1d ({spec.steps} steps)", on_click=_train, key="shatter_train")
if msg := st.session_state.pop("_shatter_error", None):
    st.error(msg)
keys = [pair.keys[r] for r in ("plain", "residual") if r in pair.keys]
if keys:
    live.poll(ctx, keys, lambda snaps: [live.status_ui(ctx, s) for s in snaps])
    snaps = live.snapshots(ctx, keys)
    if run_view.settled(snaps) and len(snaps) == 2:
        with frame.shown_errors("The trained nets' gradients could not be computed"):
            show(trained(tuple((s["key"], s["step"]) for s in snaps), ctx,
                         (pair.specs["plain"], pair.specs["residual"])), "trained")
