"""Local dataset files (MNIST and Fashion-MNIST IDX, binary CIFAR-10): untrusted bytes.

Every header, size and label is checked before numpy sees the data, and any problem becomes
a ``DataError`` with a sentence a student can act on. Nothing is unpickled: the Python-pickle
CIFAR version is refused on purpose (unpickling a downloaded file can run code).
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

MAX_TOTAL_BYTES = 400 * 2**20  # guard against absurd files: more than all of CIFAR-10

CIFAR_BIN_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"

IDX_SOURCES = {  # title, where to get the files
    "mnist": ("MNIST", "https://yann.lecun.com/exdb/mnist/ or a mirror"),
    "fashion_mnist": ("Fashion-MNIST", "https://github.com/zalandoresearch/fashion-mnist"),
}


class DataError(ValueError):
    """A dataset that cannot be loaded; the message says what is wrong and what to do."""


_IDX_PAIRS = (("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))

_CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte, then R, G, B planes of 32x32


def folder(name: str, data_dir: str | Path | None) -> Path:
    base = data_dir if data_dir is not None else os.environ.get("RESNET_VIZ_DATA") or "data"
    return Path(base).expanduser().absolute() / name


def _inside(folder: Path, rel: str) -> Path | None:
    """``folder/rel`` if present; refuses links out of the folder and non-regular files."""
    path = folder / rel
    if not (path.exists() or path.is_symlink()):
        return None
    real = Path(os.path.realpath(path))  # unlike Path.resolve, never raises on link loops
    if not real.is_relative_to(os.path.realpath(folder)) or not real.is_file():
        raise DataError(f"{path} is not a regular file inside {folder}; "
                        "put the real file there (links out of the folder are refused)")
    return path


def _read_all(paths: list[Path]) -> list[bytes]:
    """File contents (gunzipped where ``.gz``), at most ``MAX_TOTAL_BYTES`` in total."""
    out, left = [], MAX_TOTAL_BYTES
    for path in paths:
        try:
            with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
                data = f.read(left + 1)  # +1 tells "exactly at the limit" from "over it"
        except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
            raise DataError(f"could not read {path} ({err}); re-download it") from None
        if len(data) > left:
            raise DataError(f"{path} takes the data past {MAX_TOTAL_BYTES // 2**20} MB; "
                            "this is not a standard dataset file, replace it")
        out.append(data)
        left -= len(data)
    return out


def _missing(folder: Path, what: str, where: str, extra: str = "") -> DataError:
    state = ("has no usable files" if folder.is_dir() else
             "is not a folder" if folder.exists() else "does not exist")
    return DataError(f"The folder {folder} {state}{extra}. Put {what} there (get them from "
                     f"{where}), or pick the built-in 'digits' dataset.")


def _locate_idx(folder: Path) -> list[Path]:
    found: list[Path] = []
    if folder.is_dir():
        for names in _IDX_PAIRS:
            pair = [_inside(folder, n) or _inside(folder, n + ".gz") for n in names]
            found += [p for p in pair if p] if all(pair) else []
    if found:
        return found
    title, where = IDX_SOURCES[folder.name]
    raise _missing(folder, f"the {title} files train-images-idx3-ubyte and "
                   "train-labels-idx1-ubyte (.gz is fine)", where)


def _parse_idx(path: Path, data: bytes, magic: int, dims: tuple[int, ...]) -> np.ndarray:
    """Checked view of an IDX file (LeCun's format: big-endian magic, sizes, uint8s)."""
    head = 4 * (2 + len(dims))
    if len(data) < head:
        raise DataError(f"{path} is truncated ({len(data)} bytes, less than its header); "
                        "re-download it")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        kind = "image (idx3)" if magic == 2051 else "label (idx1)"
        raise DataError(f"{path} is not an IDX {kind} file (magic number {got}, expected "
                        f"{magic}); check images and labels are not swapped, or re-download it")
    shape = tuple(int.from_bytes(data[i:i + 4], "big") for i in range(4, head, 4))
    if shape[1:] != dims:
        raise DataError(f"{path} holds items of size {shape[1:]}, expected {dims}")
    size = head + int(np.prod(shape, dtype=object))
    if len(data) != size or shape[0] == 0:
        raise DataError(f"{path} header promises {shape[0]} items ({size} bytes) but the file "
                        f"has {len(data)} bytes: it is truncated or corrupt; re-download it")
    return np.frombuffer(data, np.uint8, offset=head).reshape(shape)


def _check_labels(path: Path, labels: np.ndarray, classes: int = 10) -> np.ndarray:
    if labels.max() > classes - 1:
        raise DataError(f"{path} contains label {int(labels.max())}, but there are only "
                        f"{classes} classes (0-{classes - 1}): the file is corrupt; re-download it")
    return labels


def _read_idx(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    blobs = _read_all(paths)
    for i in range(0, len(paths), 2):
        img = _parse_idx(paths[i], blobs[i], 2051, (28, 28))
        lab = _check_labels(paths[i + 1], _parse_idx(paths[i + 1], blobs[i + 1], 2049, ()))
        if len(img) != len(lab):
            raise DataError(f"{paths[i]} has {len(img)} images but {paths[i + 1]} has "
                            f"{len(lab)} labels; they must come from the same download")
        images.append(img)
        labels.append(lab)
    return _join(images), _join(labels)


def _locate_cifar(folder: Path) -> list[Path]:
    if folder.is_dir():
        for sub in ("cifar-10-batches-bin/", ""):
            found = [p for i in range(1, 6) if (p := _inside(folder, f"{sub}data_batch_{i}.bin"))]
            if found:
                return found
    pickled = any((folder / p).exists() for p in ("cifar-10-batches-py", "data_batch_1"))
    extra = (": only the Python (pickle) version is there, which ResNet Lab never opens "
             "because unpickling a file can run code; download the binary version"
             if pickled else "")
    raise _missing(folder, "the binary CIFAR-10 files (cifar-10-batches-bin/data_batch_1.bin "
                   "… data_batch_5.bin)", CIFAR_BIN_URL, extra)


def _read_cifar(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    records = []
    for path, data in zip(paths, _read_all(paths)):
        if not data or len(data) % _CIFAR_RECORD:
            raise DataError(f"{path} has {len(data)} bytes, not a whole number of "
                            f"{_CIFAR_RECORD}-byte CIFAR-10 records: it is truncated or not "
                            f"the binary version; re-download {CIFAR_BIN_URL}")
        rec = np.frombuffer(data, np.uint8).reshape(-1, _CIFAR_RECORD)
        _check_labels(path, rec[:, 0])
        records.append(rec)
    rec = _join(records)
    return rec[:, 1:], rec[:, 0]


_CIFAR100_RECORD = 2 + 3 * 32 * 32  # coarse label, fine label, then the R, G, B planes


def _locate_cifar100(folder: Path) -> list[Path]:
    for sub in ("cifar-100-binary/", ""):
        if folder.is_dir() and (p := _inside(folder, f"{sub}train.bin")):
            return [p]
    pickled = (folder / "cifar-100-python").exists()
    extra = (": only the Python (pickle) version is there, which ResNet Lab never opens "
             "because unpickling a file can run code; download the binary version" if pickled else "")
    raise _missing(folder, "the binary CIFAR-100 file (cifar-100-binary/train.bin)",
                   "python -m resnet_viz data fetch cifar100", extra)


def _read_cifar100(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """The fine labels (100 classes), as in He et al.'s and most CIFAR-100 results."""
    (data,) = _read_all(paths)
    if not data or len(data) % _CIFAR100_RECORD:
        raise DataError(f"{paths[0]} has {len(data)} bytes, not a whole number of "
                        f"{_CIFAR100_RECORD}-byte CIFAR-100 records: it is truncated or not "
                        "the binary version; fetch it again")
    rec = np.frombuffer(data, np.uint8).reshape(-1, _CIFAR100_RECORD)
    _check_labels(paths[0], rec[:, 1], classes=100)
    return rec[:, 2:], rec[:, 1]


def _join(parts: list[np.ndarray]) -> np.ndarray:
    # The usual case is one file: skip a copy of all of it (it is still uint8 here).
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


LOCAL: dict[str, tuple[Callable[[Path], list[Path]], Callable]] = {
    "mnist": (_locate_idx, _read_idx),
    "fashion_mnist": (_locate_idx, _read_idx),
    "cifar10": (_locate_cifar, _read_cifar),
    "cifar100": (_locate_cifar100, _read_cifar100),
}
