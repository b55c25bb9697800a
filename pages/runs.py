"""Runs: the run store (every run trained on this server): list, compare, export, delete."""
from __future__ import annotations

import time

import streamlit as st

from resnet_viz.ui import frame
from resnet_viz import export
from resnet_viz.labels import run_label
from resnet_viz.figures.training import loss_curves
from resnet_viz.serve.pair import load_run
from resnet_viz.spec import parse_spec

ctx = frame.page("Runs: everything trained on this server")
store, queue = ctx.svc.store, ctx.svc.queue
stats = queue.stats()
cols = st.columns(4)
for col, (name, value) in zip(cols, (("training now", stats["running"]), ("waiting", stats["queued"]),
                                     ("workers", stats["max_concurrent"]), ("sessions seen", ctx.svc.reaper.tracked()))):
    col.metric(name, value)
for note in ctx.svc.notices:
    st.warning(f"Server notice: {note}")
if store is None:
    st.error("This server has no run store, so runs are not kept after a restart.")
    st.stop()

summaries = store.list(limit=200)
if not summaries:
    st.info("No runs stored yet. Train a pair on *Train & compare*: finished runs land here.")
    st.stop()
labels = {s.key: f"{run_label({'spec': s.spec})} · seed {s.spec.get('seed')} · {s.status} · {s.key[:6]}"
          for s in summaries}
st.dataframe([{"run": labels[s.key], "dataset": s.spec.get("dataset"), "steps": s.spec.get("steps"),
               "status": s.status, "train loss": (s.final or {}).get("train_loss"),
               "val acc": (s.final or {}).get("val_acc"),
               "updated": time.strftime("%H:%M:%S", time.localtime(s.updated))} for s in summaries],
             hide_index=True)

chosen = st.multiselect("Compare runs", list(labels), format_func=labels.get, key="runs_pick",
                        max_selections=8)
if chosen:
    runs = [r for k in chosen if (r := load_run(k, queue, store)) is not None]
    c1, c2 = st.columns(2)
    with c1:
        frame.chart(loss_curves(runs, "loss"), "runs_loss")
    with c2:
        frame.chart(loss_curves(runs, "acc"), "runs_acc")
    d1, d2, d3 = st.columns(3)
    with d1:
        frame.download("Curves (CSV)", lambda: export.runs_to_csv(runs), "runs.csv", "dl_runs_csv")
    with d2:
        frame.download("Runs (JSON)", lambda: export.to_json([store.export(k) for k in chosen]), "runs.json",
                        "dl_runs_json")
    with d3:
        st.page_link("pages/train.py", label="Open the first in Train & compare", icon=":material/open_in_new:",
                     query_params=parse_spec(runs[0]["spec"])[0].to_query_params() if runs else None)


def _delete(keys: list[str]) -> None:
    for k in keys:
        with frame.shown_errors("Could not delete"):
            if store.delete(k):
                queue.forget(k)
    st.session_state["runs_pick"] = []


if chosen and not ctx.cfg.classroom_mode:
    with st.expander("Delete the chosen runs"):
        sure = st.checkbox(f"Yes, delete {len(chosen)} run(s) from the store", key="runs_sure")
        st.button("Delete", disabled=not sure, on_click=_delete, args=(list(chosen),), key="runs_delete")
