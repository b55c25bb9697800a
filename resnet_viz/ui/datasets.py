"""The dataset picker's extras, drawn in the sidebar under the Dataset knob.

- A fetchable set (``data.fetch.SOURCES``) that is not in the data folder shows its size and
  a Download button. The download runs in a background thread, one per set for the whole
  server (thirty students pressing it start one download), from the classroom's
  ``data_mirror`` when set; every session watching shows its progress bar. A failure is the
  ``FetchError`` sentence; on success the set is usable at once (it is read from the data
  folder whenever a run starts).
- "folder" (your own images): a zip uploader and an image size; reading it stores the
  images (``data.image_folder``) and sets ``folder_id``, ``image_size`` and
  ``folder_classes`` in the spec, so the link opens the same images on this server. Until
  a zip has been read the spec keeps its dataset (a folder without images is not a spec).
"""
from __future__ import annotations

import threading
from typing import Any

import streamlit as st

from resnet_viz.data import fetch, image_folder
from resnet_viz.data.datasets import available
from resnet_viz.data.files import DataError
from resnet_viz.serve.config import ClassroomConfig
from resnet_viz.spec import ExperimentSpec
from resnet_viz.ui import changes
from resnet_viz.ui.uploads import MB, checked, plain, uploader

ZIP_CAP = 50 * MB                       # bounded by the server's maxUploadSize (uploads.limit)
MAX_PROBLEMS = 500                      # skipped files listed (the count is always given)
FOLDER_SIZES = (8, 16, 24, 32, 48, 64)  # ExperimentSpec.image_size is 8..64
ZIP_KEY, SIZE_KEY, READ, ERROR, FETCHING = "folder_zip", "folder_size", "_folder_read", "_folder_error", "_fetching"


# --- downloads -----------------------------------------------------------------------------
class Download:
    """One set's download in a thread; any session reads its progress."""

    def __init__(self, name: str, data_dir: str, mirror: str) -> None:
        self.name, self.data_dir, self.mirror = name, data_dir, mirror
        self.done, self.total, self.error = 0, 0, ""
        self._thread = threading.Thread(target=self._run, name=f"resnet-viz-fetch-{name}", daemon=True)

    def start(self) -> "Download":
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def _run(self) -> None:
        try:
            fetch.fetch(self.name, self.data_dir, mirror=self.mirror or None, progress=self._progress)
        except fetch.FetchError as err:
            self.error = str(err)
        except Exception as err:          # disk full, a broken data folder: a sentence, not a thread traceback
            self.error = f"the download stopped ({type(err).__name__}: {err}); press Download to try again"


class Downloads:
    """The server's downloads, at most one running per set and data folder."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str], Download] = {}

    def get(self, name: str, data_dir: str) -> Download | None:
        return self._jobs.get((name, str(data_dir)))

    def start(self, name: str, data_dir: str, mirror: str) -> Download:
        with self._lock:
            job = self._jobs.get((name, str(data_dir)))
            if job is None or not job.running:
                job = self._jobs[(name, str(data_dir))] = Download(name, str(data_dir), mirror).start()
        return job


@st.cache_resource(show_spinner=False)
def downloads() -> Downloads:
    """Shared on purpose: one download per set for every session of this server."""
    return Downloads()


def _start(name: str, cfg: ClassroomConfig) -> None:
    st.session_state[FETCHING] = name
    downloads().start(name, cfg.data_dir, cfg.data_mirror)


def download_ui(name: str, cfg: ClassroomConfig) -> None:
    """Size and Download button of a fetchable set missing from the data folder; progress
    while it downloads; the FetchError sentence when it failed."""
    job = downloads().get(name, cfg.data_dir)
    if job is not None and job.running:
        _progress(job)
        return
    if available(name, cfg.data_dir)[0]:
        if job is not None and st.session_state.get(FETCHING) == name:
            st.session_state.pop(FETCHING)
            st.success(f"{fetch.source(name).title} is downloaded and ready.")
        return
    st.caption(f"Not in this server's data folder yet: {fetch.describe(name)}"
               + (" (from the school's mirror)." if cfg.data_mirror else "."))
    if job is not None and job.error:
        st.error(f"The download failed: {plain(job.error)}")
    st.button("Download", key=f"fetch_{name}", on_click=_start, args=(name, cfg), icon=":material/download:",
              help="Checked against the published MD5; downloaded once for the whole server.")


def _progress(job: Download) -> None:
    @st.fragment(run_every=1.0)
    def bar() -> None:
        if not job.running:
            st.rerun()                      # the whole page: the set is usable now (or failed)
        title = fetch.source(job.name).title
        if not job.total:
            st.progress(0.0, text=f"Downloading {title}: connecting…")
            return
        st.progress(min(1.0, job.done / job.total), text=f"Downloading {title}: "
                    f"{job.done / MB:.1f} of about {max(job.total, job.done) / MB:.1f} MB")
    bar()


# --- your own images --------------------------------------------------------------------
def knob_values(name: str, value: Any) -> dict[str, Any] | None:
    """What moving the knob ``name`` to ``value`` asks of the spec: "folder" brings the images
    this session read last, or waits for a zip (None: the spec stays as it is)."""
    if name == "dataset" and value == "folder":
        read = st.session_state.get(READ)
        return {"dataset": "folder", **read["fields"]} if read else None
    return {name: value}


def read_values(spec: ExperimentSpec, cfg: ClassroomConfig) -> dict[str, Any] | None:
    """Read the uploaded zip (the frame runs this when "Read the images" was pressed)."""
    ss = st.session_state
    up, size = ss.get(ZIP_KEY), int(ss.get(SIZE_KEY) or spec.image_size)
    if up is None:
        ss[ERROR] = "Choose a zip of your images first."
        return None
    try:
        with st.spinner("Reading your images…"):
            found = image_folder.read_zip(checked(up, (".zip",), ZIP_CAP), size)
            fid = image_folder.save(found, cfg.data_dir)
    except DataError as err:  # may quote a file of the zip: user content
        ss[ERROR] = f"Those images cannot be used: {plain(str(err))}"
        return None
    except ValueError as err:             # UploadError: a sentence that escaped the name already
        ss[ERROR] = f"Those images cannot be used: {err}"
        return None
    fields = {"folder_id": fid, "image_size": size, "folder_classes": len(found.classes)}
    ss[READ] = {"fields": fields, "n": int(len(found.labels)), "classes": list(found.classes),
                "problems": list(found.problems[:MAX_PROBLEMS]), "skipped": len(found.problems)}
    return {"dataset": "folder", **fields}


CHANGES = {"_folder": read_values}


def folder_ui(spec: ExperimentSpec, cfg: ClassroomConfig) -> None:
    """The zip uploader, the image size and what was read."""
    ss, locked = st.session_state, cfg.classroom_mode
    up = uploader("A zip with one folder of images per class", (".zip",), ZIP_CAP, ZIP_KEY, disabled=locked,
                  help="e.g. pets.zip holding cat/1.png, cat/2.jpg, dog/1.png …; PNG, JPEG, GIF, BMP or WebP.")
    if ss.get(SIZE_KEY) not in FOLDER_SIZES:
        ss[SIZE_KEY] = spec.image_size if spec.image_size in FOLDER_SIZES else 32
    st.select_slider("Image size (pixels a side)", FOLDER_SIZES, key=SIZE_KEY, disabled=locked,
                     help="Every image is centre-cropped to a square and resized to this.")
    st.button("Read the images", key="folder_read", on_click=changes.record, args=("_folder",),
              disabled=locked or up is None, icon=":material/folder_open:")
    if err := ss.pop(ERROR, None):
        st.error(err)
    read = ss.get(READ)
    if read and spec.dataset == "folder" and read["fields"]["folder_id"] == spec.folder_id:
        names = ", ".join(plain(c) for c in read["classes"][:8]) + (", …" if len(read["classes"]) > 8 else "")
        st.success(f"{read['n']} images in {len(read['classes'])} classes ({names}), "
                   f"{spec.image_size}×{spec.image_size} px.")
        if read["problems"]:
            st.caption(f"{read['skipped']} file(s) skipped"
                       + (f", the first {MAX_PROBLEMS} listed:" if read["skipped"] > MAX_PROBLEMS else ":"))
            st.dataframe({"skipped": read["problems"]}, hide_index=True)
    elif spec.dataset == "folder":
        st.caption(f"Your image set {spec.folder_id}: {spec.folder_classes} classes at "
                   f"{spec.image_size}×{spec.image_size} px.")
    else:
        st.caption(f"Until your images are read, the pair uses {spec.dataset}.")


def dataset_ui(chosen: str, spec: ExperimentSpec, cfg: ClassroomConfig) -> None:
    """Under the Dataset knob (``chosen`` is what it shows): your images, or a download."""
    if chosen == "folder":
        folder_ui(spec, cfg)
    elif spec.dataset in fetch.SOURCES:
        download_ui(spec.dataset, cfg)
