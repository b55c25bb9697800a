"""Tests for resnet_viz.data.datasets: toy sets, digits, and the IDX / CIFAR-10 binary readers.

Image files are tiny fakes written into tmp_path; each pixel encodes its label so the
tests can tell that subsampling and splitting keep images and labels together.
"""
from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resnet_viz.data import datasets as data
from resnet_viz.data import files
from resnet_viz.data.datasets import DataError, Dataset, available, describe, grid_1d, load_dataset
from resnet_viz.spec import DATASET_SHAPES, DATASETS, SYNTHETIC_2D, ExperimentSpec


def spec(dataset: str, **kw) -> ExperimentSpec:
    return ExperimentSpec(dataset=dataset, **{"n_samples": 200, **kw})


def write(path: Path, payload: bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


def idx(magic: int, dims: tuple[int, ...], body: bytes) -> bytes:
    return b"".join(int(v).to_bytes(4, "big") for v in (magic, *dims)) + body


def fake_labels(n: int, start: int = 0) -> np.ndarray:
    return ((np.arange(n) + start) % 10).astype(np.uint8)


def make_idx(folder: Path, n: int = 40, gz: bool = False, prefix: str = "train",
             start: int = 0) -> np.ndarray:
    labels = fake_labels(n, start)
    images = np.repeat(labels * 20, 28 * 28).reshape(n, 28, 28)  # pixel value = 20 * label
    images[:, 0, 1] = np.arange(n) + start  # ... except one that says which image it is
    write(folder / f"{prefix}-images-idx3-ubyte", idx(2051, (n, 28, 28), images.tobytes()), gz)
    write(folder / f"{prefix}-labels-idx1-ubyte", idx(2049, (n,), labels.tobytes()), gz)
    return labels


def cifar_bytes(n: int, start: int = 0) -> bytes:
    labels = fake_labels(n, start)
    rec = np.zeros((n, 1 + 3 * 1024), np.uint8)
    rec[:, 0] = labels
    for c in range(3):  # channel-major planes: R = 10*label, G = R + 1, B = R + 2
        rec[:, 1 + c * 1024: 1 + (c + 1) * 1024] = (labels * 10 + c)[:, None]
    return rec.tobytes()


def pixels(ds: Dataset, mean, std) -> tuple[torch.Tensor, torch.Tensor]:
    """Undo the standardisation: back to 0..255 pixel values, train and val."""
    m = torch.tensor(mean).reshape(1, -1, 1, 1)
    s = torch.tensor(std).reshape(1, -1, 1, 1)
    return ((ds.x_train * s + m) * 255).round(), ((ds.x_val * s + m) * 255).round()


# --- built-in sets ------------------------------------------------------------------

@pytest.mark.parametrize("name", SYNTHETIC_2D)
def test_synthetic_shapes_balance_and_standardisation(name):
    ds = load_dataset(spec(name, n_samples=300, val_fraction=0.2))
    assert (ds.n_train, ds.n_val) == (240, 60)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.x_train.shape == (240, 2) and ds.y_val.shape == (60,)
    assert (ds.input_shape, ds.n_classes) == DATASET_SHAPES[name]
    y = torch.cat([ds.y_train, ds.y_val])
    assert torch.bincount(y).tolist() == [150, 150]
    assert torch.allclose(ds.x_train.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(ds.x_train.std(0, unbiased=False), torch.ones(2), atol=1e-4)
    assert ds.name == name and ds.description == describe(name)


@pytest.mark.parametrize("name", SYNTHETIC_2D + ("grid1d", "digits"))
def test_deterministic_per_seed_and_differs_across_seeds(name):
    a, b = load_dataset(spec(name, seed=3)), load_dataset(spec(name, seed=3))
    c = load_dataset(spec(name, seed=4))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.x_train, c.x_train)


@pytest.mark.parametrize("name", SYNTHETIC_2D)
def test_noise_changes_the_points_but_not_the_labels_or_split(name):
    clean, noisy = load_dataset(spec(name, noise=0.0)), load_dataset(spec(name, noise=0.3))
    assert not torch.allclose(clean.x_train, noisy.x_train)
    assert torch.equal(clean.y_train, noisy.y_train)  # independent random streams


def test_global_rng_is_left_alone():
    state = np.random.get_state()[1].copy()
    torch_state = torch.get_rng_state()
    load_dataset(spec("spirals"))
    assert np.array_equal(np.random.get_state()[1], state)
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_grid1d_labels_follow_sin3x():
    ds = load_dataset(spec("grid1d", n_samples=500))
    x = torch.cat([ds.x_train, ds.x_val])
    assert x.shape == (500, 1) and ds.input_shape == (1,)
    assert x.min() >= -2 and x.max() <= 2
    assert torch.equal(torch.cat([ds.y_train, ds.y_val]), (torch.sin(3 * x[:, 0]) > 0).long())


def test_grid_1d_is_evenly_spaced():
    g = grid_1d()
    assert g.shape == (256, 1) and g.dtype == torch.float32
    assert g[0, 0] == -2.0 and g[-1, 0] == 2.0
    assert torch.allclose(g.diff(dim=0), torch.full((255, 1), 4 / 255), atol=1e-6)
    assert grid_1d(5, 0.0, 1.0).flatten().tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_digits_shapes_and_cap():
    ds = load_dataset(spec("digits", n_samples=100, val_fraction=0.25))
    assert (ds.n_train, ds.n_val) == (75, 25)
    assert ds.x_train.shape == (75, 1, 8, 8) and ds.x_train.dtype == torch.float32
    full = load_dataset(spec("digits", n_samples=5000))
    assert full.n_train + full.n_val == 1797
    assert set(full.y_train.tolist()) == set(range(10)) and full.n_classes == 10
    assert abs(float(torch.cat([full.x_train, full.x_val]).mean())) < 0.01  # fixed constants fit


def test_describe_and_available_for_every_dataset(tmp_path):
    for name in DATASETS:
        assert describe(name) and "\n" not in describe(name)
    for name in ("spirals", "grid1d", "digits"):
        assert available(name, tmp_path) == (True, "")
    ok, msg = available("mnist", tmp_path)
    assert not ok and str(tmp_path / "mnist") in msg
    make_idx(tmp_path / "mnist")
    assert available("mnist", tmp_path) == (True, "")
    with pytest.raises(DataError, match="unknown dataset"):
        describe("imagenet")
    assert available("imagenet")[0] is False


# --- IDX (MNIST, Fashion-MNIST) -------------------------------------------------------

@pytest.mark.parametrize("name,mean,std", [("mnist", data.MNIST_MEAN, data.MNIST_STD),
                                           ("fashion_mnist", data.FASHION_MEAN, data.FASHION_STD)])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_loader_plain_and_gz(tmp_path, name, mean, std, gz):
    make_idx(tmp_path / name, n=40, gz=gz)
    ds = load_dataset(spec(name, val_fraction=0.25), tmp_path)
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.x_val.shape == (10, 1, 28, 28)
    assert (ds.input_shape, ds.n_classes) == DATASET_SHAPES[name]
    tr, va = pixels(ds, [mean], [std])
    assert torch.equal(tr[:, 0, 0, 0], ds.y_train.float() * 20)  # pairs kept together
    assert torch.equal(va[:, 0, 0, 0], ds.y_val.float() * 20)


def test_idx_cap_is_a_seeded_subsample_and_t10k_is_added(tmp_path, monkeypatch):
    folder = tmp_path / "mnist"
    make_idx(folder, n=40)
    make_idx(folder, n=30, prefix="t10k", start=100, gz=True)
    monkeypatch.setenv("RESNET_VIZ_DATA", str(tmp_path))  # data_dir from the environment
    assert load_dataset(spec("mnist", n_samples=1000)).n_train == 56  # 70 in all
    a = load_dataset(spec("mnist", n_samples=16, seed=1))
    b = load_dataset(spec("mnist", n_samples=16, seed=1))
    c = load_dataset(spec("mnist", n_samples=16, seed=2))
    assert a.n_train + a.n_val == 16 and torch.equal(a.x_train, b.x_train)

    def which(ds: Dataset) -> set[int]:
        tr, va = pixels(ds, [data.MNIST_MEAN], [data.MNIST_STD])
        return set(torch.cat([tr, va])[:, 0, 0, 1].long().tolist())
    assert len(which(a)) == 16 and which(a) != which(c)


def _expect(tmp_path: Path, name: str, *fragments: str) -> str:
    with pytest.raises(DataError) as err:
        load_dataset(spec(name), tmp_path)
    msg = str(err.value)
    for f in fragments:
        assert f in msg, msg
    return msg


def test_missing_folder_names_folder_files_and_alternative(tmp_path):
    _expect(tmp_path, "mnist", str(tmp_path / "mnist"), "does not exist",
            "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "digits")
    (tmp_path / "fashion_mnist").mkdir()
    _expect(tmp_path, "fashion_mnist", "has no usable files", "fashion-mnist")
    _expect(tmp_path, "cifar10", "data_batch_1.bin", "cifar-10-binary.tar.gz", "digits")


def test_truncated_idx(tmp_path):
    folder = tmp_path / "mnist"
    make_idx(folder, n=20)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    _expect(tmp_path, "mnist", str(path), "truncated")
    path.write_bytes(path.read_bytes()[:10])
    _expect(tmp_path, "mnist", "truncated")


def test_bad_magic_says_images_and_labels_may_be_swapped(tmp_path):
    folder = tmp_path / "mnist"
    make_idx(folder, n=20)
    img, lab = folder / "train-images-idx3-ubyte", folder / "train-labels-idx1-ubyte"
    blob = img.read_bytes()
    img.write_bytes(lab.read_bytes())
    lab.write_bytes(blob)
    _expect(tmp_path, "mnist", str(img), "magic number 2049, expected 2051", "swapped")


def test_label_out_of_range_and_count_mismatch(tmp_path):
    folder = tmp_path / "mnist"
    make_idx(folder, n=20)
    write(folder / "train-labels-idx1-ubyte", idx(2049, (20,), bytes([11] * 20)))
    _expect(tmp_path, "mnist", "label 11", "train-labels-idx1-ubyte")
    write(folder / "train-labels-idx1-ubyte", idx(2049, (19,), bytes(19)))
    _expect(tmp_path, "mnist", "20 images", "19 labels")


def test_wrong_image_size_and_corrupt_gzip(tmp_path):
    folder = tmp_path / "mnist"
    make_idx(folder, n=4)
    write(folder / "train-images-idx3-ubyte", idx(2051, (4, 32, 32), bytes(4 * 1024)))
    _expect(tmp_path, "mnist", "(32, 32)", "(28, 28)")
    (folder / "train-images-idx3-ubyte").unlink()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    _expect(tmp_path, "mnist", "could not read", "train-images-idx3-ubyte.gz")


def test_size_cap_and_symlink_out_of_folder(tmp_path, monkeypatch):
    folder = tmp_path / "mnist"
    make_idx(folder, n=20)
    monkeypatch.setattr(files, "MAX_TOTAL_BYTES", 10_000)
    _expect(tmp_path, "mnist", "past 0 MB", "train-")
    monkeypatch.undo()
    outside = write(tmp_path / "elsewhere" / "x", b"")
    (folder / "train-images-idx3-ubyte").unlink()
    (folder / "train-images-idx3-ubyte").symlink_to(outside)
    _expect(tmp_path, "mnist", "not a regular file inside")
    (folder / "train-images-idx3-ubyte").unlink()
    (folder / "train-images-idx3-ubyte").symlink_to(folder / "train-images-idx3-ubyte")
    _expect(tmp_path, "mnist", "not a regular file inside")  # a link loop
    (folder / "train-images-idx3-ubyte").unlink()
    (folder / "train-images-idx3-ubyte").mkdir()
    _expect(tmp_path, "mnist", "not a regular file inside")


def test_dataset_path_that_is_a_file(tmp_path):
    write(tmp_path / "fashion_mnist", b"oops")
    _expect(tmp_path, "fashion_mnist", "is not a folder")


# --- CIFAR-10 binary -------------------------------------------------------------------

@pytest.mark.parametrize("sub", ["cifar-10-batches-bin", "."])
def test_cifar_loader(tmp_path, sub):
    folder = tmp_path / "cifar10" / sub
    write(folder / "data_batch_1.bin", cifar_bytes(12))
    write(folder / "data_batch_3.bin", cifar_bytes(8, start=3))  # gaps are fine
    ds = load_dataset(spec("cifar10", val_fraction=0.25), tmp_path)
    assert ds.x_train.shape == (15, 3, 32, 32) and ds.x_val.shape == (5, 3, 32, 32)
    assert (ds.input_shape, ds.n_classes) == ((3, 32, 32), 10)
    tr, _ = pixels(ds, data.CIFAR_MEAN, data.CIFAR_STD)
    expected = ds.y_train.float()[:, None] * 10 + torch.arange(3.0)
    assert torch.equal(tr[:, :, 5, 7], expected)  # channel-major planes, label kept


def test_cifar_errors(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-bin"
    path = write(folder / "data_batch_1.bin", cifar_bytes(5)[:-1])
    _expect(tmp_path, "cifar10", str(path), "truncated")
    bad = bytearray(cifar_bytes(5))
    bad[3073 * 2] = 11
    path.write_bytes(bytes(bad))
    _expect(tmp_path, "cifar10", "label 11")
    path.write_bytes(b"")
    _expect(tmp_path, "cifar10", "0 bytes")


def test_cifar_python_version_is_refused(tmp_path):
    write(tmp_path / "cifar10" / "cifar-10-batches-py" / "data_batch_1", b"\x80\x04 pickle")
    msg = _expect(tmp_path, "cifar10", "pickle", "binary version", "cifar-10-binary.tar.gz")
    assert "never opens" in msg


# --- fuzz: random bytes only ever raise DataError -------------------------------------

def _load_or_data_error(root: str, name: str) -> None:
    try:
        ds = load_dataset(spec(name), root)
    except DataError as err:
        assert str(err)
        return
    assert ds.n_train >= 1 and ds.n_val >= 1 and torch.isfinite(ds.x_train).all()


HEADERS = st.sampled_from([b"", idx(2051, (2, 28, 28), b""), idx(2049, (2,), b""),
                           idx(2051, (1, 28, 28), b""), (2051).to_bytes(4, "big")])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(head=HEADERS, body=st.binary(max_size=3200) | st.binary(min_size=1568, max_size=1568),
       which=st.sampled_from(["images", "labels"]),
       gz=st.booleans())
def test_random_idx_bytes_raise_only_data_error(head, body, which, gz):
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root) / "mnist"
        make_idx(folder, n=2)
        target = folder / f"train-{which}-idx{3 if which == 'images' else 1}-ubyte"
        target.unlink()
        write(target, head + body, gz)
        _load_or_data_error(root, "mnist")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=7000) | st.sampled_from([bytes(3073 * 2), bytes([10]) * 3073]))
def test_random_cifar_bytes_raise_only_data_error(body):
    with tempfile.TemporaryDirectory() as root:
        write(Path(root) / "cifar10" / "data_batch_1.bin", body)
        _load_or_data_error(root, "cifar10")
