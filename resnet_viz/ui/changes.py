"""Which sidebar control moved in this rerun: widget callbacks record a name here, and the
frame (``frame.apply_knobs``) takes the list at the start of the next script run.

A knob records its spec field; the controls that set several fields at once record a name
starting with "_" ("_all", "_mask", "_folder", "_init_from", "_init_none"). Its own module so
the helpers the frame calls (``datasets``, ``uploads``) can record a change without importing
the frame.
"""
from __future__ import annotations

import streamlit as st

CHANGED = "_knobs_changed"


def record(name: str) -> None:
    """Widget callback: only records which control moved; the frame decides what it means."""
    st.session_state.setdefault(CHANGED, []).append(name)


def take() -> list[str]:
    """This run's recorded changes, emptied."""
    return st.session_state.pop(CHANGED, [])
