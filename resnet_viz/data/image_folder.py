"""Your own images as a dataset: a folder with one sub-folder per class (torchvision's
``ImageFolder`` layout), or a zip of one, at a chosen square size.

Everything read is untrusted: the zip's member count and unpacked size are capped from its
directory before anything is read (nothing is ever written from it, so no member can land
outside the target), each file is size-capped and decoded by ``upload.decode_image``
(formats, pixel count checked from the header), and an unreadable or oversized image is
skipped with a message naming it while the rest still load. The result is stored as plain
``.npy`` arrays (``allow_pickle=False``) under ``data_dir/folders/<id>/``, where ``id`` (16
hex digits of its content hash) is what ``ExperimentSpec.folder_id`` names, so a shared link
opens the same images.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from resnet_viz.data.files import DataError, folder
from resnet_viz.data.upload import MAX_UPLOAD_BYTES, UploadError, decode_image, fit_colour

SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")
MAX_IMAGES = 20_000
MAX_TOTAL_BYTES = 200 * 2**20
MAX_ZIP_MEMBERS = 25_000
MAX_CLASSES = 100
MAX_PROBLEMS_SHOWN = 20


@dataclass
class FolderImages:
    """Images as uint8 (N, 3, S, S), labels (N,), class names in label order, and what was skipped."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    size: int
    problems: list[str] = field(default_factory=list)

    @property
    def dataset_id(self) -> str:
        h = hashlib.sha256(self.images.tobytes())
        h.update(self.labels.astype(np.int64).tobytes())
        h.update(json.dumps(self.classes).encode())
        return h.hexdigest()[:16]


def read_folder(root: str | Path, size: int = 32) -> FolderImages:
    """``root/<class>/<image>`` files, class sub-folders in sorted order."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    files = [(p.parent.name, str(p.relative_to(root)), p) for p in sorted(root.glob("*/*")) if p.is_file()]
    return _assemble(((cls, name, lambda p=p: _read_capped(p)) for cls, name, p in files), size)


def read_zip(data: bytes, size: int = 32, max_bytes: int = MAX_TOTAL_BYTES) -> FolderImages:
    """A zip of the same layout; one wrapping top folder (``animals/cat/1.png``) is allowed."""
    if len(data) > max_bytes:
        raise DataError(f"the zip is {len(data) / 2**20:.0f} MB, more than {max_bytes // 2**20} MB")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise DataError(f"that file is not a readable zip ({err})") from None
    if len(infos) > MAX_ZIP_MEMBERS:
        raise DataError(f"the zip has {len(infos)} files, more than {MAX_ZIP_MEMBERS}")
    if sum(i.file_size for i in infos) > max_bytes:
        raise DataError(f"the zip unpacks to more than {max_bytes // 2**20} MB")
    paths = [PurePosixPath(i.filename) for i in infos]
    tops = {p.parts[0] for p in paths if len(p.parts) >= 2}
    strip = 1 if len(tops) == 1 and all(len(p.parts) == 3 for p in paths) else 0

    def entries():
        for info, path in zip(infos, paths):
            parts = path.parts[strip:]
            if len(parts) == 2 and ".." not in parts and not path.is_absolute():
                yield parts[0], info.filename, lambda i=info: _read_member(archive, i)
    return _assemble(entries(), size)


def _read_capped(path: Path) -> bytes:
    with open(path, "rb") as f:
        data = f.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(f"it is larger than {MAX_UPLOAD_BYTES / 1e6:g} MB")
    return data


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if info.file_size > MAX_UPLOAD_BYTES:
        raise UploadError(f"it is larger than {MAX_UPLOAD_BYTES / 1e6:g} MB")
    with archive.open(info) as f:
        return f.read(MAX_UPLOAD_BYTES + 1)


def _assemble(entries, size: int) -> FolderImages:
    images, labels, problems, names = [], [], [], {}
    for cls, name, read in entries:
        if not name.lower().endswith(SUFFIXES):
            problems.append(f"{name}: skipped, not an image file ({', '.join(SUFFIXES)})")
            continue
        if len(images) >= MAX_IMAGES:
            problems.append(f"more than {MAX_IMAGES} images: the rest were left out")
            break
        try:
            img = decode_image(read(), MAX_UPLOAD_BYTES * 8)
            pixels = fit_colour(img.convert("RGB"), size, size)                  # (3, S, S) in 0..1
        except (UploadError, OSError) as err:
            problems.append(f"{name}: skipped, {err}")
            continue
        images.append(np.round(pixels * 255).astype(np.uint8))
        labels.append(names.setdefault(cls, len(names)))
    return _finish(images, labels, names, size, problems)


def _finish(images: list, labels: list, names: dict[str, int], size: int, problems: list[str]) -> FolderImages:
    if len(names) > MAX_CLASSES:
        raise DataError(f"{len(names)} class folders, more than {MAX_CLASSES}")
    counts = np.bincount(np.asarray(labels, np.int64), minlength=len(names)) if labels else []
    if len(names) < 2 or min(counts, default=0) < 1:
        raise DataError("a dataset needs at least 2 class sub-folders with at least one readable "
                        f"image each (found {len(names)})" + (f"; {problems[0]}" if problems else ""))
    order = sorted(names)                                   # label order = sorted class names
    remap = np.asarray([order.index(n) for n in sorted(names, key=names.get)], np.int64)
    return FolderImages(np.stack(images), remap[np.asarray(labels, np.int64)], tuple(order), size, problems)


def save(found: FolderImages, data_dir: str | Path | None = None) -> str:
    """Store the images under their id (idempotent); returns the id for ``folder_id``."""
    did = found.dataset_id
    target = folder("folders", data_dir) / did
    if not (target / "meta.json").exists():
        target.mkdir(parents=True, exist_ok=True)
        np.save(target / "images.npy", found.images, allow_pickle=False)
        np.save(target / "labels.npy", found.labels, allow_pickle=False)
        meta = {"classes": list(found.classes), "size": found.size, "n": int(len(found.labels))}
        (target / "meta.json.part").write_text(json.dumps(meta))
        os.replace(target / "meta.json.part", target / "meta.json")    # written last: complete
    return did


def load(dataset_id: str, size: int, n_classes: int,
         data_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The stored images, checked against what the spec says they are."""
    target = folder("folders", data_dir) / dataset_id
    try:
        meta = json.loads((target / "meta.json").read_text())
        images = np.load(target / "images.npy", allow_pickle=False)
        labels = np.load(target / "labels.npy", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"your image set {dataset_id} is not in {target.parent} ({type(err).__name__}); "
                        "upload it again on this server") from None
    if meta.get("size") != size or len(meta.get("classes", ())) != n_classes:
        raise DataError(f"image set {dataset_id} is {meta.get('size')} px with {len(meta.get('classes', ()))} "
                        f"classes, but the link says {size} px and {n_classes} classes")
    if images.dtype != np.uint8 or images.shape[1:] != (3, size, size) or len(images) != len(labels):
        raise DataError(f"image set {dataset_id} in {target} is damaged; upload it again")
    return images, labels.astype(np.int64), tuple(meta["classes"])
