"""Your own images: a folder or a zip in the ImageFolder layout becomes a dataset; bad files
are named and skipped, the rest load; caps hold; a stored set opens from its id."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from resnet_viz.data import image_folder as IF
from resnet_viz.data.datasets import load_dataset
from resnet_viz.data.files import DataError
from resnet_viz.spec import ExperimentSpec, parse_spec


def png(colour: tuple[int, int, int], size: tuple[int, int] = (20, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def make_tree(root, n: int = 3) -> None:
    for cls, colour in (("cat", (250, 10, 10)), ("dog", (10, 10, 250))):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            (root / cls / f"{i}.png").write_bytes(png(colour))
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    (root / "dog" / "notes.txt").write_text("hello")


def test_a_folder_loads_naming_the_bad_files(tmp_path):
    make_tree(tmp_path / "pets")
    found = IF.read_folder(tmp_path / "pets", size=16)
    assert found.images.shape == (6, 3, 16, 16) and found.images.dtype == np.uint8
    assert found.classes == ("cat", "dog") and sorted(found.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    red = found.images[found.labels == 0].mean((0, 2, 3))
    assert red[0] > 200 and red[2] < 50                          # cats are the red ones
    assert any("broken.png" in p and "skipped" in p for p in found.problems)
    assert any("notes.txt" in p for p in found.problems)


def test_a_zip_with_a_wrapping_folder_and_the_stored_set_trains(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(4):
            z.writestr(f"pets/cat/{i}.png", png((240, 20, 20)))
            z.writestr(f"pets/dog/{i}.png", png((20, 20, 240)))
    found = IF.read_zip(buf.getvalue(), size=8)
    assert found.classes == ("cat", "dog") and len(found.labels) == 8
    did = IF.save(found, tmp_path)
    assert IF.save(found, tmp_path) == did and len(did) == 16
    spec, notes = parse_spec({"dataset": "folder", "folder_id": did, "image_size": "8", "folder_classes": "2",
                              "model": "cnn", "depth": "8", "width": "4", "n_samples": "100"})
    assert notes == [] and spec.data_shape() == ((3, 8, 8), 2)
    data = load_dataset(spec, tmp_path)
    assert data.n_classes == 2 and data.x_train.shape[1:] == (3, 8, 8) and data.n_train + data.n_val == 8
    with pytest.raises(DataError, match="says 16 px"):
        load_dataset(spec.replace(image_size=16), tmp_path)
    with pytest.raises(DataError, match="not in"):
        load_dataset(spec.replace(folder_id="0" * 16), tmp_path)


def test_caps_and_bad_archives(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="not a readable zip"):
        IF.read_zip(b"PK\x03\x04 broken")
    with pytest.raises(DataError, match="more than"):
        IF.read_zip(b"x" * 2000, max_bytes=1000)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(5):
            z.writestr(f"a/{i}.png", png((1, 2, 3)))
    monkeypatch.setattr(IF, "MAX_ZIP_MEMBERS", 3)
    with pytest.raises(DataError, match="5 files"):
        IF.read_zip(buf.getvalue())
    with pytest.raises(DataError, match="at least 2 class"):
        IF.read_zip(_one_class_zip())
    (tmp_path / "big" / "a").mkdir(parents=True)
    (tmp_path / "big" / "b").mkdir(parents=True)
    (tmp_path / "big" / "a" / "huge.png").write_bytes(b"\0" * (IF.MAX_UPLOAD_BYTES + 10))
    (tmp_path / "big" / "a" / "ok.png").write_bytes(png((9, 9, 9)))
    (tmp_path / "big" / "b" / "ok.png").write_bytes(png((9, 9, 9)))
    found = IF.read_folder(tmp_path / "big", size=8)
    assert len(found.labels) == 2 and any("huge.png" in p and "larger than" in p for p in found.problems)


def _one_class_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("only/0.png", png((1, 2, 3)))
    return buf.getvalue()


def test_a_zip_member_cannot_climb_out(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../evil/0.png", png((1, 2, 3)))
        z.writestr("cat/0.png", png((250, 0, 0)))
        z.writestr("dog/0.png", png((0, 0, 250)))
    found = IF.read_zip(buf.getvalue(), size=8)
    assert found.classes == ("cat", "dog")                # the ../ member is not a class
    assert not (tmp_path.parent / "evil").exists()


def test_the_folder_dataset_needs_its_id():
    spec, notes = parse_spec({"dataset": "folder"})
    assert spec.dataset == "digits" and notes and notes[0].field == "dataset"
    assert ExperimentSpec().spec_hash() == ExperimentSpec(image_size=32).spec_hash()


def test_the_command_line_reads_a_folder_and_trains_on_it(tmp_path, capsys):
    from resnet_viz.cli.main import main
    make_tree(tmp_path / "pets", n=6)
    data = tmp_path / "data"
    assert main(["data", "folder", str(tmp_path / "pets"), "--size", "8", "--data-dir", str(data)]) == 0
    out = capsys.readouterr()
    assert "12 images in 2 classes" in out.out and "broken.png" in out.err
    flags = out.out.split("train on them with: ")[1].split()
    assert main(["train", *flags, "--depth", "8", "--width", "4", "--steps", "3", "--data-dir", str(data),
                 "--quiet"]) == 0
