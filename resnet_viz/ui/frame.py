"""Streamlit helpers shared by every page: the process's services, the session, the spec in
the URL and the sidebar knobs, errors shown in a sentence, and chart downloads.

Logic lives in the library (``ui.knobs``, ``serve.pair``, ``train.estimate``, ``serve.reaper``); these
helpers only read state, call it and draw. ``*_ui()`` functions draw widgets and return
plain values.
"""
from __future__ import annotations

import inspect
import os
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, Callable, Hashable, Iterator

# pandas first, at import time: plotly reads sys.modules["pandas"] without the import lock, so
# a worker thread importing it (sklearn, for digits) while a session draws its first figure
# handed plotly a half-initialised module ("partially initialized module 'pandas'").
import pandas  # noqa: F401
import plotly.graph_objects as go
import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from resnet_viz.ui import changes, datasets, legacy_pages, uploads
from resnet_viz.ui.expiry import drop_expired_sessions
from resnet_viz.serve.config import ClassroomConfig
from resnet_viz.ui.knobs import KNOBS, blocks_on, build, clamp_to_limits, label, mask_from_on, options, shown
from resnet_viz.data.datasets import DataError
from resnet_viz.figures.memo import FigureMemo
from resnet_viz.figures.warm import warm_up as warm_figures
from resnet_viz.serve.job import QueueFull
from resnet_viz.serve.services import Services, build_services
from resnet_viz.serve.pair import PairSession, Shelf
from resnet_viz.spec import ExperimentSpec, SpecError, parse_spec
from resnet_viz.train.estimate import warm_up as warm_estimates
from resnet_viz.serve.store import StoreError
from resnet_viz.data.upload import UploadError

HE2016 = ("He, Zhang, Ren & Sun, *Deep Residual Learning for Image Recognition*, CVPR 2016 "
          "([arXiv:1512.03385](https://arxiv.org/abs/1512.03385))")
PEOPLE_ERRORS = (SpecError, DataError, UploadError, QueueFull, StoreError, ValueError)
SPEC_FIELDS = frozenset(f.name for f in fields(ExperimentSpec))
FIGURES = FigureMemo()             # process-wide: every session's live charts (shared_chart)
SPEC, URL, NOTICES = "spec", "_url_written", "_spec_notices"
SPEC_CHANGES = {**datasets.CHANGES, **uploads.CHANGES}    # controls that set several fields


# --- the process and the session -------------------------------------------------------
def _is_active(session_id: str) -> bool | None:
    """Is the browser session still connected? (Runtime.is_active_session is thread-safe.)"""
    if not runtime.exists():
        return None
    try:
        answer = runtime.get_instance().is_active_session(session_id)
    except Exception:
        return None
    return answer if isinstance(answer, bool) else None


@st.cache_resource(show_spinner=False, on_release=lambda svc: svc.shutdown())
def services() -> Services:
    """The one job queue, run store and session reaper of this server process.

    ``cache_resource`` is right here: they are shared on purpose and thread-safe. Never a
    per-student model (hooks and ``.grad`` would mix between sessions).
    """
    # A shorter timeout lets the browser test watch a closed tab's run being cancelled.
    timeout = float(os.environ.get("RESNET_VIZ_SESSION_TIMEOUT_S") or 20.0)
    # When the class has left, its expired sessions, the shared figures and cached data go
    # too (serve.reaper).
    return build_services(is_active=_is_active, timeout_s=max(1.0, timeout),
                          on_quiet=(drop_expired_sessions, FIGURES.clear, st.cache_data.clear),
                          warm=(warm_figures, warm_estimates))


def session_id() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"


@dataclass
class Page:
    """What a page needs: the services, this session, the config and the current spec."""

    svc: Services
    sid: str
    cfg: ClassroomConfig
    spec: ExperimentSpec

    @property
    def pair(self) -> PairSession:
        return state("pair", lambda: PairSession(self.sid))

    @property
    def shelf(self) -> Shelf:
        return state("shelf", Shelf)


def state(key: str, make: Callable[[], Any]) -> Any:
    """Init-if-missing session state."""
    if key not in st.session_state:
        st.session_state[key] = make()
    return st.session_state[key]


def frame() -> Page:
    """Run by app.py before every page: heartbeat, spec from the URL, sidebar knobs, URL."""
    svc, sid = services(), session_id()
    svc.reaper.touch(sid)
    spec = apply_knobs(current_spec(svc.config), svc.config)
    spec = spec_ui(spec, svc.config)
    write_url(spec)
    legacy_pages.mark_framed()
    return Page(svc, sid, svc.config, spec)


def page(title: str, cite: str = HE2016) -> Page:
    """Title, citation and pending notices of a page; the frame app.py prepared."""
    if not legacy_pages.framed():                 # Streamlit's legacy pages/ mode ran it alone
        legacy_pages.rerun_through_app(inspect.stack(0)[1].filename)   # the calling page's file
    ctx: Page = st.session_state["_page"]
    st.title(title)
    st.caption(f"After {cite}.")
    for note in st.session_state.pop(NOTICES, []):
        st.warning(note)
    return ctx


# --- the spec in the URL ---------------------------------------------------------------
def current_spec(cfg: ClassroomConfig) -> ExperimentSpec:
    """The session's spec; parsed from the URL on the first run and whenever the URL holds
    parameters this session did not write (a pasted link). Bad values fall back with a
    notice; out-of-limit values are clamped with a notice."""
    ss = st.session_state
    url = _spec_part(st.query_params.to_dict())
    if SPEC not in ss or (url and url != ss.get(URL)):
        spec, notices = parse_spec(url)
        spec, clamped = clamp_to_limits(spec, cfg)
        ss[SPEC], ss[NOTICES] = spec, [f"Link setting ignored: {n}." for n in notices + clamped]
        sync_widgets(spec, cfg, force=True)
    return ss[SPEC]


def _spec_part(params: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k in SPEC_FIELDS}


def write_url(spec: ExperimentSpec) -> None:
    """Copying the link reproduces the experiment (only non-default knobs are written);
    parameters that are not knobs (a page's own, e.g. ``lesson``) are left as they are."""
    current = st.query_params.to_dict()
    wanted = {**{k: v for k, v in current.items() if k not in SPEC_FIELDS}, **spec.to_query_params()}
    if current != wanted:
        st.query_params.from_dict(wanted)
    st.session_state[URL] = spec.to_query_params()


# --- the sidebar knobs -------------------------------------------------------------------
def _key(name: str) -> str:
    return f"knob_{name}"


def sync_widgets(spec: ExperimentSpec, cfg: ClassroomConfig, force: bool = False) -> None:
    """Widget values from the spec (all of them, or only those Streamlit dropped)."""
    ss = st.session_state
    values = {_key(n): getattr(spec, n) for n, _, _ in KNOBS}
    values[_key("_all")] = not spec.shortcut_mask or "1" in spec.shortcut_mask
    values[_key("_mask")] = blocks_on(spec)
    for k, v in values.items():
        if force or k not in ss:
            ss[k] = v


def apply_knobs(spec: ExperimentSpec, cfg: ClassroomConfig) -> ExperimentSpec:
    """The spec after this run's knob change, every widget re-synced to it.

    A person moves one knob per rerun. When several "change" at once, the browser sent
    placeholder values (a menu click while the page was still drawing resets every widget
    to its first option): those are ignored and the widgets put back to the spec.
    """
    ss = st.session_state
    changed = changes.take()
    if len(changed) != 1:
        if changed:
            sync_widgets(spec, cfg, force=True)
        return spec
    values = _changed_values(changed[0], spec, cfg)
    if values is None:                   # nothing to apply yet (a bad upload, "folder" before a zip)
        return spec
    new, notes = build(values, cfg, base=spec)
    ss[SPEC] = new
    ss[NOTICES] = ss.get(NOTICES, []) + notes
    sync_widgets(new, cfg, force=True)
    return new


def _changed_values(name: str, spec: ExperimentSpec, cfg: ClassroomConfig) -> dict[str, Any] | None:
    ss = st.session_state
    if name == "_all":
        return {"shortcut_mask": "" if ss[_key("_all")] else "0" * spec.n_blocks}
    if name == "_mask":
        return {"shortcut_mask": mask_from_on(spec, ss[_key("_mask")] or [])}
    if name in SPEC_CHANGES:
        return SPEC_CHANGES[name](spec, cfg)
    return datasets.knob_values(name, ss[_key(name)])


def _knob(name: str, text: str, kind: str, spec: ExperimentSpec, cfg: ClassroomConfig) -> None:
    common: dict[str, Any] = dict(key=_key(name), on_change=changes.record, args=(name,),
                                  disabled=cfg.classroom_mode, format_func=lambda v: label(v, name))
    if kind == "number":
        common.pop("format_func")
        st.number_input(text, min_value=0, max_value=2**31 - 1, step=1, **common)
    elif kind == "slider":
        st.select_slider(text, options(name, spec, cfg), **common)
    else:
        st.selectbox(text, options(name, spec, cfg), **common)


def spec_ui(spec: ExperimentSpec, cfg: ClassroomConfig) -> ExperimentSpec:
    """Draw every knob in the sidebar, initialised from ``spec``; return the spec they
    describe (:func:`apply_knobs` applied this run's change first)."""
    sync_widgets(spec, cfg)
    groups = {"Network": ("model", "dataset", "augment", "depth", "width"),
              "Shortcuts": ("shortcut", "residual_scale"),
              "Training": ("norm", "activation", "init", "optimizer", "lr", "batch_size", "steps", "seed")}
    table = {n: (t, k) for n, t, k in KNOBS}
    with st.sidebar:
        if cfg.classroom_mode:
            st.info("Classroom mode: the teacher has locked the settings.")
        for group, names in groups.items():
            with st.expander(group, expanded=group != "Training"):
                for n in (n for n in names if shown(n, spec)):
                    _knob(n, *table[n], spec, cfg)
                    if n == "dataset":         # a download, or your own images
                        datasets.dataset_ui(st.session_state[_key(n)], spec, cfg)
                if group == "Shortcuts":
                    _mask_ui(spec, cfg)
    return st.session_state[SPEC]


def _mask_ui(spec: ExperimentSpec, cfg: ClassroomConfig) -> None:
    st.toggle("All shortcuts on", key=_key("_all"), on_change=changes.record, args=("_all",),
              disabled=cfg.classroom_mode, help="Off: the residual net loses every shortcut.")
    st.pills("Blocks keeping their shortcut (0 = input side)", list(range(spec.n_blocks)),
             selection_mode="multi", key=_key("_mask"), on_change=changes.record, args=("_mask",),
             disabled=cfg.classroom_mode)


# --- errors and downloads ----------------------------------------------------------------
@contextmanager
def shown_errors(what: str) -> Iterator[None]:
    """A library error becomes one sentence on the page, never a traceback; what was
    already drawn stays."""
    try:
        yield
    except PEOPLE_ERRORS as err:
        st.error(f"{what}: {err}")


def download(label_: str, make: Callable[[], str], file_name: str, key: str) -> None:
    """A download whose data is made only when clicked (fresh, and free until then)."""
    mime = "text/csv" if file_name.endswith(".csv") else "application/json"
    st.download_button(label_, data=make, file_name=file_name, mime=mime, key=key,
                       on_click="ignore", icon=":material/download:")


def _framed(fig: go.Figure) -> go.Figure:
    """A top legend gets its own band under the title so that in a half-width column the two
    never overlap (the projector shows long titles)."""
    legend = fig.layout.legend
    if legend.orientation == "h" and (legend.y or 0) >= 1.0:
        top = max(fig.layout.margin.t or 0, 110)
        fig.update_layout(margin=dict(t=top), title=dict(y=1.0, yanchor="top", yref="container", pad=dict(t=12)),
                          legend=dict(y=1.02, yanchor="bottom", x=0.0, xanchor="left"))
    return fig


def chart(fig: go.Figure, key: str) -> None:
    """A plotly chart (see ``_framed``)."""
    st.plotly_chart(_framed(fig), key=key, config={"displaylogo": False})


def shared_chart(signature: Hashable, build: Callable[[], go.Figure], key: str) -> None:
    """A chart built once per content for every session (``figures.memo``): the live charts
    30 students watch on one run. ``signature`` must cover everything ``build`` reads."""
    fig = FIGURES.get(signature, lambda: _framed(build()))
    st.plotly_chart(fig, key=key, config={"displaylogo": False})
