"""ResNet Lab: the routes. Every page is a thin view over ``resnet_viz``; the frame (the
spec from the URL, the sidebar knobs, the heartbeat) is drawn here so it is the same on
every page and its widgets survive page switches."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from resnet_viz.ui import frame

st.set_page_config(page_title="ResNet Lab", page_icon=":material/stacked_line_chart:", layout="wide")

HERE = Path(__file__).parent
PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/train.py", title="Train & compare", icon=":material/play_circle:"),
    st.Page("pages/gradients.py", title="Gradient flow", icon=":material/waterfall_chart:"),
    st.Page("pages/responses.py", title="Residual responses", icon=":material/equalizer:"),
    st.Page("pages/shatter.py", title="Shattered gradients", icon=":material/grain:"),
    st.Page("pages/attribution.py", title="Attribution", icon=":material/image_search:"),
    st.Page("pages/architecture.py", title="Architecture", icon=":material/account_tree:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/inventory_2:"),
]
if (HERE / "pages" / "lessons.py").exists():  # another helper's page; shown once it lands
    PAGES.insert(1, st.Page("pages/lessons.py", title="Lessons", icon=":material/school:"))

nav = st.navigation(PAGES, expanded=True)
st.session_state["_page"] = frame.frame()
nav.run()
