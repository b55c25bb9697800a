"""Downloads against a real HTTP server on loopback, serving files made here in the real
formats: a good archive, a checksum mismatch, a download cut mid-way then resumed, and a
tar with a ``../`` member. Nothing leaves this machine."""
from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import re
import tarfile
import threading

import numpy as np
import pytest
import torch

from resnet_viz.data import fetch as F
from resnet_viz.data.datasets import load_dataset
from resnet_viz.spec import ExperimentSpec


class Files(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` with Range support; ``cut`` names a file whose first response stops
    after that many bytes (the connection drops, as on a flaky school network)."""

    files: dict[str, bytes] = {}
    cut: dict[str, int] = {}
    ranges: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        name = self.path.rsplit("/", 1)[-1]
        if name not in self.files:
            self.send_error(404)
            return
        data, start = self.files[name], 0
        if m := re.match(r"bytes=(\d+)-", self.headers.get("Range", "")):
            start = int(m.group(1))
            self.ranges.append(f"{name}:{start}")
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if name in self.cut:
            self.wfile.write(body[:self.cut.pop(name)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    Files.files, Files.cut, Files.ranges = {}, {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/mirror/"
    httpd.shutdown()
    httpd.server_close()


def cifar_archive(n: int = 20, evil: bool = False) -> bytes:
    """A cifar-10-binary.tar.gz in the real layout: 5 data batches of (label, 3072 pixels)."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for i in range(1, 6):
            rec = np.concatenate([rng.integers(0, 10, (n, 1)), rng.integers(0, 256, (n, 3072))], 1)
            add(f"cifar-10-batches-bin/data_batch_{i}.bin", rec.astype(np.uint8).tobytes())
        if evil:
            add("../escaped.txt", b"outside")
    return buf.getvalue()


def serve(monkeypatch, name: str, data: bytes, md5: str | None = None) -> None:
    Files.files[name] = data
    src = F.SOURCES["cifar10"]
    remote = F.Remote(name, md5 or hashlib.md5(data).hexdigest(), len(data) / 2**20)
    monkeypatch.setitem(F.SOURCES, "cifar10", F.Source(src.title, "http://nowhere.invalid/",
                                                        (remote,), extract=True))


def test_a_good_archive_downloads_unpacks_and_loads(server, tmp_path, monkeypatch):
    serve(monkeypatch, "cifar-10-binary.tar.gz", cifar_archive())
    seen = []
    folder = F.fetch("cifar10", tmp_path, mirror=server, progress=lambda a, b: seen.append((a, b)))
    assert folder == tmp_path / "cifar10"
    assert (folder / "cifar-10-batches-bin" / "data_batch_5.bin").stat().st_size == 20 * 3073
    assert seen and seen[-1][0] == seen[-1][1] == len(Files.files["cifar-10-binary.tar.gz"])
    data = load_dataset(ExperimentSpec(model="cnn", depth=8, dataset="cifar10", n_samples=100), tmp_path)
    assert data.x_train.shape[1:] == (3, 32, 32) and data.n_train + data.n_val == 100
    assert torch.isfinite(data.x_train).all()
    assert not list(folder.glob("*.part"))
    Files.files.clear()                       # a second fetch finds the checked file: no request
    F.fetch("cifar10", tmp_path, mirror=server)


def test_a_checksum_mismatch_says_so_and_leaves_nothing_that_looks_valid(server, tmp_path, monkeypatch):
    serve(monkeypatch, "cifar-10-binary.tar.gz", cifar_archive(), md5="0" * 32)
    with pytest.raises(F.FetchError, match="not the published file.*deleted"):
        F.fetch("cifar10", tmp_path, mirror=server)
    assert list((tmp_path / "cifar10").iterdir()) == []


def test_a_download_cut_mid_way_resumes_where_it_stopped(server, tmp_path, monkeypatch):
    data = cifar_archive(200)
    serve(monkeypatch, "cifar-10-binary.tar.gz", data)
    Files.cut["cifar-10-binary.tar.gz"] = len(data) // 3
    with pytest.raises(F.FetchError, match="broke off.*resume"):
        F.fetch("cifar10", tmp_path, mirror=server)
    part = tmp_path / "cifar10" / "cifar-10-binary.tar.gz.part"
    kept = part.stat().st_size          # whole blocks that arrived before the cut
    assert 0 < kept <= len(data) // 3
    assert not (tmp_path / "cifar10" / "cifar-10-binary.tar.gz").exists()
    F.fetch("cifar10", tmp_path, mirror=server)
    assert Files.ranges == [f"cifar-10-binary.tar.gz:{kept}"]    # resumed there, not restarted
    assert F.md5_of(tmp_path / "cifar10" / "cifar-10-binary.tar.gz") == hashlib.md5(data).hexdigest()


def test_a_tar_member_that_climbs_out_is_refused(server, tmp_path, monkeypatch):
    serve(monkeypatch, "cifar-10-binary.tar.gz", cifar_archive(evil=True))
    target = tmp_path / "inner"
    with pytest.raises(F.FetchError, match="could not be unpacked safely"):
        F.fetch("cifar10", target, mirror=server)
    assert not (target / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_archive_caps(tmp_path, monkeypatch):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(cifar_archive())
    monkeypatch.setattr(F, "MAX_EXTRACT_BYTES", 1000)
    with pytest.raises(F.FetchError, match="would unpack to"):
        F.extract_tar(archive, tmp_path / "out")
    monkeypatch.setattr(F, "MAX_ARCHIVE_MEMBERS", 2)
    with pytest.raises(F.FetchError, match="members"):
        F.extract_tar(archive, tmp_path / "out")


def test_idx_files_from_a_mirror(server, tmp_path, monkeypatch):
    """MNIST's four gzipped IDX files, made here in the real format."""
    def idx(magic: int, dims: tuple[int, ...], body: bytes) -> bytes:
        header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
        return gzip.compress(header + body)
    n = 30
    rng = np.random.default_rng(1)
    made = {"train-images-idx3-ubyte.gz": idx(2051, (n, 28, 28), rng.integers(0, 256, n * 784, dtype=np.uint8).tobytes()),
            "train-labels-idx1-ubyte.gz": idx(2049, (n,), rng.integers(0, 10, n, dtype=np.uint8).tobytes())}
    made["t10k-images-idx3-ubyte.gz"], made["t10k-labels-idx1-ubyte.gz"] = (
        made["train-images-idx3-ubyte.gz"], made["train-labels-idx1-ubyte.gz"])
    Files.files.update(made)
    monkeypatch.setitem(F.SOURCES, "mnist", F.Source("MNIST", "http://nowhere.invalid/", tuple(
        F.Remote(k, hashlib.md5(v).hexdigest(), 0.01) for k, v in made.items())))
    monkeypatch.setenv("RESNET_VIZ_MIRROR", server)
    F.fetch("mnist", tmp_path)
    data = load_dataset(ExperimentSpec(model="cnn", depth=8, dataset="mnist", n_samples=50), tmp_path)
    assert data.x_train.shape[1:] == (1, 28, 28) and data.n_train + data.n_val == 50


def test_unknown_names_and_the_published_table():
    with pytest.raises(F.FetchError, match="cifar100"):
        F.source("imagenet")
    assert F.describe("cifar10") == "CIFAR-10 (binary version), about 162 MB"
    assert all(re.fullmatch(r"[0-9a-f]{32}", f.md5) for s in F.SOURCES.values() for f in s.files)


def test_an_unreachable_server_is_a_clear_message(tmp_path, monkeypatch):
    serve(monkeypatch, "cifar-10-binary.tar.gz", b"x")
    with pytest.raises(F.FetchError, match="broke off"):
        F.fetch("cifar10", tmp_path, mirror="http://127.0.0.1:9/")     # the discard port: refused
    assert isinstance(F.FetchError("x"), ValueError)      # the UI shows DataErrors as messages


def test_the_command_line_fetches_from_a_mirror(server, tmp_path, monkeypatch, capsys):
    from resnet_viz.cli.main import main
    serve(monkeypatch, "cifar-10-binary.tar.gz", cifar_archive())
    assert main(["data", "fetch", "cifar10", "--data-dir", str(tmp_path), "--mirror", server]) == 0
    assert "cifar10: ready in" in capsys.readouterr().out
    assert main(["data", "list"]) == 0 and "cifar100" in capsys.readouterr().out
    assert main(["data", "fetch"]) == 2


def test_cifar100_binary_fine_labels(server, tmp_path, monkeypatch):
    """cifar-100-binary/train.bin records: coarse label, fine label, 3072 pixels."""
    rng = np.random.default_rng(2)
    n = 60
    rec = np.concatenate([rng.integers(0, 20, (n, 1)), np.arange(n)[:, None] % 100,
                          rng.integers(0, 256, (n, 3072))], 1).astype(np.uint8)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("cifar-100-binary/train.bin")
        info.size = rec.nbytes
        tar.addfile(info, io.BytesIO(rec.tobytes()))
    data = buf.getvalue()
    Files.files["cifar-100-binary.tar.gz"] = data
    monkeypatch.setitem(F.SOURCES, "cifar100", F.Source("CIFAR-100", "http://nowhere.invalid/", (
        F.Remote("cifar-100-binary.tar.gz", hashlib.md5(data).hexdigest(), 0.2),), extract=True))
    F.fetch("cifar100", tmp_path, mirror=server)
    ds = load_dataset(ExperimentSpec(model="cnn", depth=8, dataset="cifar100", n_samples=60), tmp_path)
    assert ds.n_classes == 100 and ds.x_train.shape[1:] == (3, 32, 32)
    assert sorted(torch.cat([ds.y_train, ds.y_val]).tolist()) == list(range(60))   # the fine labels
