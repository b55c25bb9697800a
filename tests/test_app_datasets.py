"""The dataset picker in the sidebar: download a missing set from the classroom's mirror (a
real HTTP server on loopback serving a CIFAR-10 archive made here in the binary format),
your own images from a zip, and the augmentation knob. Nothing leaves this machine."""
from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

from app_helpers import TINY, app_env, no_exception, open_app, param, services, train_pair  # noqa: F401
from resnet_viz.data import fetch
from resnet_viz.data.datasets import available
from resnet_viz.serve.pair import load_run
from resnet_viz.ui import datasets

ARCHIVE = "cifar-10-binary.tar.gz"


class Mirror(http.server.BaseHTTPRequestHandler):
    """A school mirror: serves ``files``; ``gate`` holds each answer until the test opens it."""

    files: dict[str, bytes] = {}
    gate = threading.Event()
    asked: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.asked.append(self.path)
        name = self.path.rsplit("/", 1)[-1]
        if name not in self.files:
            self.send_error(404)
            return
        self.gate.wait(30)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.files[name])))
        self.end_headers()
        self.wfile.write(self.files[name])

    def log_message(self, *args: object) -> None:
        pass


def cifar_archive(n: int = 20) -> bytes:
    """cifar-10-binary.tar.gz in the real layout: 5 batches of (label, 3072 pixel bytes)."""
    rng, buf = np.random.default_rng(0), io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for i in range(1, 6):
            rec = np.concatenate([rng.integers(0, 10, (n, 1)), rng.integers(0, 256, (n, 3072))], 1)
            data = rec.astype(np.uint8).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/data_batch_{i}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def mirror(app_env, monkeypatch):
    """The archive on a loopback mirror named in the classroom config; CIFAR-10's canonical
    URL points nowhere, so only the mirror can serve it."""
    data = cifar_archive()
    Mirror.files, Mirror.asked = {ARCHIVE: data}, []
    Mirror.gate.clear()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/school/"
    with open(app_env / "classroom.toml", "a") as f:
        f.write(f'data_mirror = "{url}"\n')
    monkeypatch.delenv("RESNET_VIZ_MIRROR", raising=False)
    monkeypatch.setitem(fetch.SOURCES, "cifar10", fetch.Source(
        "CIFAR-10 (binary version)", "http://nowhere.invalid/",
        (fetch.Remote(ARCHIVE, hashlib.md5(data).hexdigest(), len(data) / 2**20),), extract=True))
    yield url
    Mirror.gate.set()
    httpd.shutdown()
    httpd.server_close()


def _job(at):
    return datasets.downloads().get("cifar10", services().config.data_dir)


def test_a_missing_set_downloads_from_the_mirror_with_progress_and_trains(mirror):
    at = open_app("train", dict(TINY, dataset="cifar10", n_samples="100"))
    no_exception(at)
    data_dir = services().config.data_dir
    assert not available("cifar10", data_dir)[0]
    assert any("CIFAR-10 (binary version), under 1 MB" in c.value and "mirror" in c.value for c in at.sidebar.caption)
    at.sidebar.button(key="fetch_cifar10").click().run()
    no_exception(at)
    assert _job(at).running
    bars = at.sidebar.get("progress")
    assert len(bars) == 1 and "Downloading CIFAR-10" in bars[0].proto.text
    Mirror.gate.set()                               # the mirror answers now
    _job(at).wait(30)
    assert not _job(at).running and _job(at).error == ""
    at.run()
    no_exception(at)
    assert Mirror.asked == ["/school/" + ARCHIVE]
    assert available("cifar10", data_dir)[0]
    assert any("downloaded and ready" in s.value for s in at.sidebar.success)
    assert not [b for b in at.sidebar.button if b.key == "fetch_cifar10"]
    keys = train_pair(at)                          # usable at once
    svc = services()
    assert {load_run(k, svc.queue, svc.store)["state"] for k in keys} == {"finished"}


def test_a_bad_download_says_why_and_offers_the_button_again(mirror, monkeypatch):
    src = fetch.SOURCES["cifar10"]
    monkeypatch.setitem(fetch.SOURCES, "cifar10", fetch.Source(
        src.title, src.base_url, (fetch.Remote(ARCHIVE, "0" * 32, src.files[0].mb),), extract=True))
    Mirror.gate.set()
    at = open_app("train", dict(TINY, dataset="cifar10"))
    at.sidebar.button(key="fetch_cifar10").click().run()
    _job(at).wait(30)
    at.run()
    no_exception(at)
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and "not the published file" in errors[0] and "Traceback" not in errors[0]
    assert [b for b in at.sidebar.button if b.key == "fetch_cifar10"]
    assert not available("cifar10", services().config.data_dir)[0]


def _png(colour: tuple[int, int, int], size: int = 20) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(4):
            z.writestr(f"pets/cat/{i}.png", _png((200, 40 * i, 0)))
            z.writestr(f"pets/dog/{i}.png", _png((0, 40 * i, 200)))
            z.writestr(f"pets/bird/{i}.png", _png((40 * i, 200, 0)))
        z.writestr("pets/dog/notes.txt", "not an image")
        z.writestr("pets/cat/broken.png", b"not a png at all")
    return buf.getvalue()


def test_your_own_images_from_a_zip_set_the_spec_and_train(app_env):
    at = open_app("train")
    at.sidebar.selectbox(key="knob_dataset").set_value("folder").run()
    no_exception(at)
    assert param(at, "dataset") == "moons"                  # no images yet: the spec waits
    assert at.sidebar.button(key="folder_read").disabled
    at.sidebar.file_uploader(key="folder_zip").set_value(("notes.txt", b"hello", "text/plain")).run()
    at.sidebar.button(key="folder_read").click().run()
    no_exception(at)
    assert "is not a .zip file" in at.sidebar.error[0].value and param(at, "dataset") == "moons"
    at.sidebar.file_uploader(key="folder_zip").set_value(("pets.zip", _zip(), "application/zip")).run()
    at.sidebar.select_slider(key="folder_size").set_value(16).run()
    at.sidebar.button(key="folder_read").click().run()
    no_exception(at)
    assert param(at, "dataset") == "folder" and param(at, "image_size") == "16"
    assert param(at, "folder_classes") == "3" and len(param(at, "folder_id")) == 16
    assert "12 images in 3 classes (bird, cat, dog)" in at.sidebar.success[0].value
    skipped = list(at.sidebar.dataframe[0].value["skipped"])
    assert len(skipped) == 2 and any("notes.txt" in s for s in skipped) and any("broken.png" in s for s in skipped)
    keys = train_pair(at)
    svc = services()
    assert {load_run(k, svc.queue, svc.store)["state"] for k in keys} == {"finished"}
    at.sidebar.selectbox(key="knob_dataset").set_value("moons").run()
    assert param(at, "folder_id") is None and param(at, "dataset") == "moons"
    at.sidebar.selectbox(key="knob_dataset").set_value("folder").run()        # the images come back
    assert param(at, "dataset") == "folder" and len(param(at, "folder_id")) == 16


def test_a_zip_without_classes_gets_a_sentence(app_env):
    at = open_app("train")
    at.sidebar.selectbox(key="knob_dataset").set_value("folder").run()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("only/one.png", _png((1, 2, 3)))
    at.sidebar.file_uploader(key="folder_zip").set_value(("one.zip", buf.getvalue(), "application/zip")).run()
    at.sidebar.button(key="folder_read").click().run()
    no_exception(at)
    assert "at least 2 class sub\\-folders" in at.sidebar.error[0].value
    assert param(at, "dataset") == "moons"


def test_augmentation_is_offered_for_image_sets_only(app_env):
    at = open_app("train", dict(TINY, dataset="digits"))
    knob = at.sidebar.selectbox(key="knob_augment")
    assert knob.options == ["none", "pad 4, random crop, flip (He et al. §4.2)"]
    knob.set_value("he").run()
    no_exception(at)
    assert param(at, "augment") == "he"
    at.sidebar.selectbox(key="knob_dataset").set_value("moons").run()
    no_exception(at)
    assert param(at, "augment") is None and param(at, "dataset") == "moons"
    assert not [s for s in at.sidebar.selectbox if s.key == "knob_augment"]
    assert not at.warning                                    # nothing was refused
