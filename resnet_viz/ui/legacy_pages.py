"""A page that ran without app.py is rerun through it: Streamlit's legacy ``pages/`` mode.

Streamlit 1.67 decides at a server's first session whether the app is a legacy "pages/
directory" app: whether ``pages/`` exists beside the main script (``PagesManager.__init__``;
what the folder holds does not matter, so moving the helpers out of it changed nothing).
Until some run calls ``st.navigation``, every run routes the URL itself (``_mpa_v1`` in
``script_runner.py``): a first visit straight to ``/train`` runs pages/train.py alone, with
no frame, no knobs and a menu of file names. No option turns that off
(``client.showSidebarNavigation`` only hides that menu, and app.py's menu with it) and the
folder keeps its name, so a page that finds no frame calls ``st.navigation`` itself (the
public call that ends the legacy mode for the whole process, as app.py's call does) and
reruns: the rerun keeps the page's URL path and goes through app.py. Tested in
``tests/test_app_home.py`` (AppTest enters the legacy mode on every run) and, with a real
browser on a fresh server, in ``tests/test_browser_first_visit.py``.
"""
from __future__ import annotations

import streamlit as st

FRAMED, LEGACY_RERUN = "_framed", "_legacy_rerun"   # session-state keys


def mark_framed() -> None:
    """app.py's frame was drawn in this run (``frame.frame`` calls this last)."""
    st.session_state.pop(LEGACY_RERUN, None)
    st.session_state[FRAMED] = True


def framed() -> bool:
    """Whether app.py drew the frame in this run (each page asks once, first)."""
    return bool(st.session_state.pop(FRAMED, False))


def rerun_through_app(script: str) -> None:
    """Rerun the page ``script`` (its own file) through app.py; when even that rerun had no
    frame (a page started on its own), say how to start the app instead."""
    if st.session_state.get(LEGACY_RERUN):
        st.error("Start the app with `streamlit run app.py`.")
        st.stop()
    st.session_state[LEGACY_RERUN] = True
    # The default page's URL is "/", so the page itself must not be the default (its URL
    # would then be "not found"): a default that never runs stands beside it.
    st.navigation([st.Page(_never_runs, title="ResNet Lab", default=True), st.Page(script)], position="hidden")
    st.rerun()


def _never_runs() -> None:
    """The default page of the navigation above, which reruns before any page runs."""
