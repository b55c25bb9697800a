"""Home: residual learning in a few sentences, and the way into every page."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from resnet_viz.ui import frame

ctx = frame.page("ResNet Lab: why shortcuts let deep nets learn")

st.markdown(
    "Stacking more layers should never hurt: a deeper net could copy a shallower one and set "
    "its extra layers to the identity. Yet He et al. found that deeper **plain** nets reach a "
    "*higher training error* than shallower ones. This is the **degradation problem**, and it "
    "is not overfitting: the solver simply fails to find the identity through a stack of "
    "nonlinear layers.")
st.markdown("A **residual block** learns only the change to its input and adds the input back "
            "through a *shortcut*:")
st.latex(r"H(x) \;=\; F(x) + x")
st.markdown(
    "If the identity is what a block should do, the solver only has to drive F(x) toward zero. "
    "Here you train a plain net and its residual twin from the same seed, the same initial "
    "weights and the same batches, and watch where they differ.")

st.subheader("Where to go")
params = ctx.spec.to_query_params()  # links keep the current experiment
links = [
    ("pages/train.py", "Train & compare", "plain vs residual, live: loss, accuracy, decision boundary"),
    ("pages/gradients.py", "Gradient flow", "per-layer gradient norms: do they reach the first layer?"),
    ("pages/responses.py", "Residual responses", "He et al. Fig. 7: residual functions stay small"),
    ("pages/shatter.py", "Shattered gradients", "Balduzzi et al.: white noise vs brown noise"),
    ("pages/attribution.py", "Attribution", "saliency, integrated gradients, per-block attribution"),
    ("pages/architecture.py", "Architecture", "the network you configured, shortcut by shortcut"),
    ("pages/runs.py", "Runs", "every stored run: compare, export, delete"),
]
if (Path(__file__).parent / "lessons.py").exists():  # registered by app.py when present
    links.insert(0, ("pages/lessons.py", "Lessons", "guided experiments"))
for path, title, what in links:
    cols = st.columns([1, 3])
    cols[0].page_link(path, label=title, query_params=params)
    cols[1].caption(what)
