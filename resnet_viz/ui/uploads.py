"""Files a student gives the app: an image (Attribution), a zip of images (your own
dataset, ``ui.datasets``) and a checkpoint to start training from (Train).

Every upload goes through :func:`uploader` and :func:`checked`:

- No Streamlit ``type`` filter. In Streamlit 1.67 a file whose extension is not in ``type``
  makes the widget's deserializer raise ``StreamlitAPIException`` on every rerun: the page
  breaks and the uploader is gone (``evil.pkl`` on the Attribution page). The extension is
  checked here instead, and a wrong one is a sentence while the uploader stays.
- The size is refused before anything is decoded, at the smaller of the cap asked for and
  the server's ``server.maxUploadSize`` (Streamlit answers 413 to anything bigger), so the
  limit the widget shows is the one that holds.
- File names, class folders and library sentences that quote them are user content: shown
  with markdown escaped (:func:`plain`), never as HTML.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Callable, Sequence

import streamlit as st
import torch
from streamlit.runtime.uploaded_file_manager import UploadedFile

from resnet_viz.data.files import folder
from resnet_viz.data.upload import UploadError
from resnet_viz.nets.checkpoints import (CheckpointError, check_fits, checkpoint_file, from_cifar_layout,
                                         is_cifar_layout, read_state_dict, store_checkpoint)
from resnet_viz.nets.models import build_model
from resnet_viz.serve.config import ClassroomConfig
from resnet_viz.serve.pair import comparison_pair
from resnet_viz.spec import ExperimentSpec
from resnet_viz.ui import changes
from resnet_viz.ui.knobs import label

MB = 2**20
CHECKPOINT_CAP = 50 * MB            # a CIFAR ResNet-110 at width 16 is 7 MB; the server cap is lower
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".th")
INIT_ERROR, INIT_NAMES, INIT_ROUND = "_init_error", "_init_names", "_init_round"
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text: str) -> str:
    """``text`` with every markdown character escaped: shown as written, never as a link."""
    return _MARKDOWN.sub(r"\\\1", text)


def server_cap() -> int:
    """The largest upload the Streamlit server accepts at all (``server.maxUploadSize``)."""
    return int(st.get_option("server.maxUploadSize")) * MB


def limit(cap: int) -> int:
    return max(1, min(int(cap), server_cap()))


def size_text(n: int) -> str:
    return f"{n / MB:.0f} MB" if n >= MB else f"{n / 1024:.0f} kB"


def uploader(label: str, suffixes: Sequence[str], cap: int, key: str, **kwargs: Any) -> UploadedFile | None:
    """A file uploader that accepts any file (see the module docstring); the label names the
    extensions, the widget the size limit."""
    return st.file_uploader(f"{label} ({', '.join(suffixes)})", key=key,
                            max_upload_size=max(1, -(-limit(cap) // MB)), **kwargs)


def checked(up: UploadedFile, suffixes: Sequence[str], cap: int) -> bytes:
    """The upload's bytes, or an ``UploadError`` saying why not: a wrong extension, too big."""
    name = str(up.name)
    shown = plain(name if len(name) <= 80 else name[:77] + "...")
    if not name.lower().endswith(tuple(suffixes)):
        raise UploadError(f"“{shown}” is not a {' / '.join(suffixes)} file; choose one of those")
    if up.size > limit(cap):
        raise UploadError(f"“{shown}” is {size_text(up.size)}, more than the {size_text(limit(cap))} allowed")
    return up.getvalue()


# --- start from trained weights (spec.init_from) ------------------------------------------
def checkpoint_folder(cfg: ClassroomConfig) -> Path:
    return folder("checkpoints", cfg.data_dir)


@functools.lru_cache(maxsize=64)
def misfit(path: str, spec: ExperimentSpec) -> str:
    """Why the checkpoint at ``path`` does not load into ``spec``'s net ("" if it does): the
    trainer's own check (``nets.checkpoints``), on a net built on the meta device (shapes
    only, no memory). A checkpoint's id is its content, so the answer can be cached."""
    try:
        state = read_state_dict(path)
        with torch.device("meta"):
            expected = build_model(spec).state_dict()
        check_fits(expected, from_cifar_layout(state) if is_cifar_layout(state) else state)
    except CheckpointError as err:
        return str(err)
    return ""


def _checkpoint_key() -> str:
    return f"init_upload_{st.session_state.get(INIT_ROUND, 0)}"


def checkpoint_values(spec: ExperimentSpec, cfg: ClassroomConfig) -> dict[str, Any] | None:
    """The spec change an uploaded checkpoint asks for (run by the frame at the start of the
    rerun), or None with the reason kept for :func:`checkpoint_ui` to show."""
    ss = st.session_state
    up = ss.get(_checkpoint_key())
    if up is None:                      # the file was removed: keep the weights until asked
        return None
    try:
        cid = store_checkpoint(checked(up, CHECKPOINT_SUFFIXES, CHECKPOINT_CAP), checkpoint_folder(cfg))
    except UploadError as err:
        ss[INIT_ERROR] = f"That checkpoint cannot be used: {err}"
        return None
    except CheckpointError as err:      # quotes the checkpoint's own key names: user content
        ss[INIT_ERROR] = f"That checkpoint cannot be used: {plain(str(err))}"
        return None
    ss.setdefault(INIT_NAMES, {})[cid] = str(up.name)
    return {"init_from": cid}


def usual_init_values(spec: ExperimentSpec, cfg: ClassroomConfig) -> dict[str, Any]:
    st.session_state[INIT_ROUND] = st.session_state.get(INIT_ROUND, 0) + 1    # a fresh uploader
    return {"init_from": ""}


CHANGES: dict[str, Callable[[ExperimentSpec, ClassroomConfig], dict[str, Any] | None]] = {
    "_init_from": checkpoint_values, "_init_none": usual_init_values}


def checkpoint_ui(spec: ExperimentSpec, cfg: ClassroomConfig) -> None:
    """Train page: start both nets from uploaded weights, or go back to the usual init."""
    locked = cfg.classroom_mode
    uploader("A PyTorch checkpoint for both nets", CHECKPOINT_SUFFIXES, CHECKPOINT_CAP,
             _checkpoint_key(), on_change=changes.record, args=("_init_from",), disabled=locked,
             help="A state_dict saved with torch.save, ours or the CIFAR-ResNet layout. It is read "
                  "weights-only (it cannot run code) and must fit the net set in the sidebar.")
    if err := st.session_state.pop(INIT_ERROR, None):
        st.error(err)
    if not spec.init_from:
        st.caption(f"Both nets start from the usual initialisation ({label(spec.init, 'init')}, seed {spec.seed}).")
        return
    name = st.session_state.get(INIT_NAMES, {}).get(spec.init_from)
    try:
        path = str(checkpoint_file(spec.init_from, checkpoint_folder(cfg)))
    except CheckpointError as err:
        st.warning(f"This link starts from weights this server does not have: {plain(str(err))}")
    else:
        what = f"checkpoint {spec.init_from}" + (f" ({plain(name)})" if name else "")
        misfits = [(twin, why) for twin in comparison_pair(spec) if (why := misfit(path, twin))]
        if not misfits:
            st.success(f"Both nets start from {what}.")
        for twin, why in misfits:              # said now, not only when the runs fail
            st.warning(f"The weights of {what} do not fit the {'residual' if twin.is_residual else 'plain'} "
                       f"net set in the sidebar: {plain(why)}")
    st.button("Back to the usual initialisation", key="init_none", on_click=changes.record,
              args=("_init_none",), disabled=locked)
