"""Download the real image sets into the data folder: checked, resumable, safely extracted.

``fetch(name, data_dir)`` brings MNIST, Fashion-MNIST, CIFAR-10 or CIFAR-100 into
``data_dir/<name>/``, where ``datasets`` reads them. Each file comes from its canonical
source or from a mirror (schools run mirrors and proxies: ``RESNET_VIZ_MIRROR`` or the
classroom config's ``data_mirror``; a mirror serves the same file names under one base URL).

- A file downloads to ``NAME.part`` and is renamed only once its MD5 matches the published
  one, so nothing half-written ever looks valid. A mismatch deletes the part file.
- An interrupted download resumes with an HTTP ``Range`` request from where it stopped
  (a server that ignores ``Range`` answers 200 and the file starts over).
- Archives are opened with tarfile's ``filter="data"`` (no member may leave the target, no
  links out, no devices), and the members' count and total size are capped first.
- Nothing is unpickled: the binary CIFAR versions are fetched, never the Python ones.
The HTTP client is ``requests`` (a Streamlit dependency already installed).
"""
from __future__ import annotations

import hashlib
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests

from resnet_viz.data.files import DataError, folder

CHUNK = 1 << 16
TIMEOUT_S = 30.0                 # per connect / read, not for the whole file
MAX_ARCHIVE_MEMBERS = 64
MAX_EXTRACT_BYTES = 400 * 2**20  # CIFAR-10's members add up to 178 MB
Progress = Callable[[int, int], None]   # (bytes so far, bytes in all); total 0 if unknown


class FetchError(DataError):
    """A download that did not give a valid file; the message says what to do."""


@dataclass(frozen=True)
class Remote:
    """One published file: its name under the base URL and its MD5 (the sources publish MD5)."""

    name: str
    md5: str
    mb: float                    # approximate size, shown before the download starts


@dataclass(frozen=True)
class Source:
    title: str
    base_url: str
    files: tuple[Remote, ...]
    extract: bool = False        # a tar.gz to unpack into the dataset folder

    @property
    def mb(self) -> float:
        return sum(f.mb for f in self.files)


_IDX = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# MD5s as published by the datasets' authors (and used by torchvision's loaders).
SOURCES: dict[str, Source] = {
    "mnist": Source("MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/", tuple(
        Remote(n, m, mb) for n, m, mb in zip(_IDX, (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
            (9.9, 0.03, 1.6, 0.005)))),
    "fashion_mnist": Source("Fashion-MNIST", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", tuple(
        Remote(n, m, mb) for n, m, mb in zip(_IDX, (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
            (26.4, 0.03, 4.4, 0.005)))),
    "cifar10": Source("CIFAR-10 (binary version)", "https://www.cs.toronto.edu/~kriz/",
                      (Remote("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", 162.0),),
                      extract=True),
    "cifar100": Source("CIFAR-100 (binary version)", "https://www.cs.toronto.edu/~kriz/",
                       (Remote("cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8", 161.0),),
                       extract=True),
}


def describe(name: str) -> str:
    """'CIFAR-10 (binary version), about 162 MB' for the picker and the CLI."""
    src = source(name)
    return f"{src.title}, about {src.mb:.0f} MB" if src.mb >= 1 else f"{src.title}, under 1 MB"


def source(name: str) -> Source:
    if name not in SOURCES:
        raise FetchError(f"no download for {name!r}; the sets that can be fetched are "
                         f"{', '.join(SOURCES)}")
    return SOURCES[name]


def mirror_from_env() -> str | None:
    return os.environ.get("RESNET_VIZ_MIRROR") or None


def fetch(name: str, data_dir: str | Path | None = None, mirror: str | None = None,
          progress: Progress | None = None, session: requests.Session | None = None) -> Path:
    """Download (or resume) every file of ``name``, check it, unpack it; returns its folder.

    Files already present with the right checksum are not downloaded again.
    """
    src, target = source(name), folder(name, data_dir)
    base = (mirror or mirror_from_env() or src.base_url).rstrip("/") + "/"
    target.mkdir(parents=True, exist_ok=True)
    http = session or requests.Session()
    total = int(sum(f.mb for f in src.files) * 2**20)
    done = 0
    for remote in src.files:
        path = target / remote.name
        if not (path.exists() and md5_of(path) == remote.md5):
            download(base + remote.name, path, remote.md5, http,
                     lambda n, _t, before=done: progress and progress(before + n, total))
        done += path.stat().st_size
        if progress:
            progress(done, max(total, done))
        if src.extract:
            extract_tar(path, target)
    return target


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, path: Path, md5: str, http: requests.Session,
             progress: Progress | None = None) -> None:
    """``url`` into ``path`` via ``path.part``, resuming a part file left by a cut download."""
    part = path.with_name(path.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with http.get(url, headers=headers, stream=True, timeout=TIMEOUT_S) as r:
            if r.status_code == 416:          # the part file is already whole
                pass
            else:
                r.raise_for_status()
                resumed = r.status_code == 206
                have = have if resumed else 0
                total = have + int(r.headers.get("Content-Length") or 0)
                with open(part, "ab" if resumed else "wb") as out:
                    for block in r.iter_content(CHUNK):
                        out.write(block)
                        have += len(block)
                        if progress:
                            progress(have, total)
    except requests.RequestException as err:
        raise FetchError(f"the download of {path.name} from {url} broke off ({err}); run the "
                         "same fetch again to resume it") from None
    got = md5_of(part)
    if got != md5:
        part.unlink()
        raise FetchError(f"{path.name} from {url} is not the published file (MD5 {got}, "
                         f"expected {md5}); it was deleted. Try again, or check the mirror.")
    os.replace(part, path)


def extract_tar(archive: Path, target: Path) -> None:
    """Unpack ``archive`` into ``target`` with tarfile's ``data`` filter, caps checked first."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            if len(members) > MAX_ARCHIVE_MEMBERS:
                raise FetchError(f"{archive.name} has {len(members)} members, more than the "
                                 f"{MAX_ARCHIVE_MEMBERS} a dataset archive has; not unpacked")
            size = sum(m.size for m in members)
            if size > MAX_EXTRACT_BYTES:
                raise FetchError(f"{archive.name} would unpack to {size / 2**20:.0f} MB, more "
                                 f"than {MAX_EXTRACT_BYTES // 2**20} MB; not unpacked")
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError) as err:      # FilterError (e.g. ../x) is a TarError
        raise FetchError(f"{archive.name} could not be unpacked safely ({err}); nothing outside "
                         f"{target} was written. Delete it and fetch again.") from None
