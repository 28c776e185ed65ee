"""Tests for lib.data: the torchvision path on tiny files in the real formats, and the offline fallbacks.

Nothing here touches the network: the real-format tests load from files written into tmp_path with
download=False, and the fallback tests replace the connectivity probe and torchvision's download.
"""
from __future__ import annotations

import os
import pickle
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from lib import data
from lib.data import DATASETS, PHOTOS, ImageData, load_dataset, sample_digit, sample_image


def one_line(capsys) -> str:
    """The single line printed since the last call; fails if there was not exactly one."""
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.endswith("\n"), f"expected exactly one line, got {out!r}"
    return out.strip()


# ---------------------------------------------------------------------------------------------------------
# The real torchvision loading path, on tiny files written in the real formats.


def write_idx(path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format of the MNIST files (big-endian header, then the raw bytes)."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist_files(raw) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Write 20 training and 10 test images with known pixels and labels in the MNIST layout under `raw`."""
    rng = np.random.default_rng(0)
    train_x = rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    train_x[0] = 0
    train_x[0, 3, 5] = 255  # one known bright pixel: row 3, column 5 of the first image
    test_x = rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    train_y = np.arange(20) % 10
    test_y = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    raw.mkdir(parents=True, exist_ok=True)
    write_idx(raw / "train-images-idx3-ubyte", train_x)
    write_idx(raw / "train-labels-idx1-ubyte", train_y)
    write_idx(raw / "t10k-images-idx3-ubyte", test_x)
    write_idx(raw / "t10k-labels-idx1-ubyte", test_y)
    return train_x, train_y, test_x, test_y


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_format_files_load_through_torchvision(tmp_path, capsys, name, folder):
    # the layout torchvision expects once it has extracted the .gz files
    train_x, train_y, test_x, test_y = write_mnist_files(tmp_path / folder / "raw")

    ds = load_dataset(name, root=tmp_path, download=False)

    line = one_line(capsys)
    assert line.startswith(f"Using {data._TITLES[name]} via torchvision (20 train / 10 test images")
    assert not ds.offline and ds.name == name
    assert ds.train_images.dtype == torch.float32 and ds.train_labels.dtype == torch.int64
    assert ds.train_images.shape == (20, 1, 28, 28) and ds.test_images.shape == (10, 1, 28, 28)
    assert ds.train_images[0, 0, 3, 5] == 1.0 and ds.train_images[0].sum() == 1.0
    torch.testing.assert_close(ds.train_images[:, 0], torch.from_numpy(train_x).float() / 255, rtol=0, atol=0)
    torch.testing.assert_close(ds.test_images[:, 0], torch.from_numpy(test_x).float() / 255, rtol=0, atol=0)
    assert ds.train_labels.tolist() == train_y.tolist() and ds.test_labels.tolist() == test_y.tolist()
    digits = [str(d) for d in range(10)]
    assert ds.classes == (digits if name == "mnist" else torchvision.datasets.FashionMNIST.classes)
    pixels = train_x.astype(np.float64) / 255
    assert ds.mean == pytest.approx((pixels.mean(),), abs=1e-6)
    assert ds.std == pytest.approx((pixels.std(),), abs=1e-6)
    assert ds.image_shape == (1, 28, 28) and ds.num_classes == 10


def test_successful_download_prints_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(data, "_reachable", lambda url, timeout=3.0: True)

    def fake_download(self):  # what a download leaves behind, and the chatter of older torchvision versions
        print(f"Downloading {self.mirrors[0]} to {self.raw_folder}")
        write_mnist_files(tmp_path / "MNIST" / "raw")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fake_download)
    ds = load_dataset("mnist", root=tmp_path)
    assert one_line(capsys) == "Using MNIST via torchvision (20 train / 10 test images, downloaded now)."
    assert not ds.offline
    load_dataset("mnist", root=tmp_path)  # now in the cache
    assert one_line(capsys).endswith("(20 train / 10 test images, from the local cache).")


def test_cifar10_pickles_load_through_torchvision(tmp_path, capsys, monkeypatch):
    # torchvision checks every CIFAR-10 file against the md5 of the real 50,000-image batches, which tiny
    # files cannot match. Only that check is replaced (by "the file exists"); the loading code is real.
    def file_exists(path, md5=None) -> bool:
        return os.path.isfile(path)

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", file_exists)
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    names = ["truck", "ship", "horse", "frog", "dog", "deer", "cat", "bird", "automobile", "airplane"]
    batches = []
    for i in range(1, 6):  # four images per training batch: rows of 3072 bytes, red plane, green, blue
        pixels = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
        batch = {"data": pixels, "labels": [i, i + 1, i + 2, i + 3]}
        batches.append(batch)
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump(batch, f)
    test = {"data": rng.integers(0, 256, size=(5, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3, 4]}
    test["data"][0, :1024] = 255  # first test image: red plane full, green and blue empty
    test["data"][0, 1024:] = 0
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(test, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": 4, "num_vis": 3072}, f)

    ds = load_dataset("cifar10", root=tmp_path, download=False)

    assert one_line(capsys).startswith("Using CIFAR-10 via torchvision (20 train / 5 test images")
    assert ds.classes == names and not ds.offline
    assert ds.train_images.shape == (20, 3, 32, 32) and ds.test_images.shape == (5, 3, 32, 32)
    train_x = np.concatenate([b["data"] for b in batches]).reshape(20, 3, 32, 32)
    torch.testing.assert_close(ds.train_images, torch.from_numpy(train_x).float() / 255, rtol=0, atol=0)
    assert ds.train_labels.tolist() == [label for b in batches for label in b["labels"]]
    assert ds.test_labels.tolist() == [0, 1, 2, 3, 4]
    assert (ds.test_images[0, 0] == 1).all() and (ds.test_images[0, 1:] == 0).all()
    pixels = train_x.astype(np.float64) / 255
    assert ds.mean == pytest.approx(tuple(pixels.mean(axis=(0, 2, 3))), abs=1e-6)
    assert ds.std == pytest.approx(tuple(pixels.std(axis=(0, 2, 3))), abs=1e-6)


# ---------------------------------------------------------------------------------------------------------
# Falling back: exactly one line, and the offline set.


def test_failed_download_falls_back_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(data, "_reachable", lambda url, timeout=3.0: True)

    def failing_download(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried a mirror, got: timed out\n")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", failing_download)
    ds = load_dataset("mnist", root=tmp_path)
    line = one_line(capsys)
    assert line.startswith("Using offline digits (scikit-learn, 1,797 real scans resized to 28x28)")
    assert "MNIST could not be downloaded (Error downloading train-images-idx3-ubyte.gz: Tried" in line
    assert ds.offline and ds.name == "mnist" and ds.image_shape == (1, 28, 28)


@pytest.mark.parametrize("name", DATASETS)
def test_no_network_skips_the_download(tmp_path, capsys, monkeypatch, name):
    monkeypatch.setattr(data, "_reachable", lambda url, timeout=3.0: False)

    def must_not_run(self):
        raise AssertionError("download attempted although the probe found no network")

    monkeypatch.setattr(data._torchvision_class(name), "download", must_not_run)
    ds = load_dataset(name, root=tmp_path)
    line = one_line(capsys)
    assert line.endswith(f": {data._TITLES[name]} could not be downloaded (no network).")
    assert ds.offline and ds.name == name
    if name == "fashion_mnist":
        assert "handwritten digits, not clothing" in line and ds.classes == [str(d) for d in range(10)]
    if name == "cifar10":
        assert line.startswith("Using offline photo crops") and "not CIFAR-10" in line


def test_probe_reads_the_url(monkeypatch):
    calls = []

    def fake_connection(address, timeout):
        calls.append((address, timeout))
        raise OSError("unreachable")

    monkeypatch.setattr(data.urllib.request, "getproxies", dict)
    monkeypatch.setattr(data.socket, "create_connection", fake_connection)
    assert data._reachable("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", timeout=0.5) is False
    assert data._reachable("http://example.org:8080/x") is False
    assert calls == [(("www.cs.toronto.edu", 443), 0.5), (("example.org", 8080), 3.0)]


def test_empty_root_without_download(tmp_path, capsys):
    ds = load_dataset("fashion_mnist", root=tmp_path, download=False)
    line = one_line(capsys)
    assert line.endswith(": Fashion-MNIST is not in the data folder and download=False.")
    assert ds.offline
    assert not any(tmp_path.iterdir())  # nothing was written


def test_offline_true_does_not_try_torchvision(monkeypatch, capsys):
    def must_not_run(*args, **kwargs):
        raise AssertionError("torchvision tried although offline=True")

    monkeypatch.setattr(data, "_load_torchvision", must_not_run)
    ds = load_dataset("MNIST", offline=True)
    assert one_line(capsys).endswith("MNIST was not tried (offline=True).")
    assert ds.name == "mnist" and ds.offline


def test_offline_false_raises_instead_of_falling_back(tmp_path, capsys):
    with pytest.raises(RuntimeError, match="offline=False"):
        load_dataset("mnist", root=tmp_path, download=False, offline=False)
    assert capsys.readouterr().out == ""


def test_unknown_names_raise_and_list_the_choices():
    with pytest.raises(ValueError, match="imagenet") as error:
        load_dataset("imagenet", offline=True)
    assert all(name in str(error.value) for name in DATASETS)
    with pytest.raises(ValueError, match="lena") as error:
        sample_image("lena")
    assert all(name in str(error.value) for name in PHOTOS)


# ---------------------------------------------------------------------------------------------------------
# The offline sets.


def test_offline_digits_are_the_real_scans(capsys):
    ds = load_dataset("mnist", offline=True)
    capsys.readouterr()
    assert ds.classes == [str(d) for d in range(10)]
    assert ds.train_images.dtype == torch.float32 and ds.train_labels.dtype == torch.int64
    assert ds.train_images.shape[1:] == (1, 28, 28)
    assert len(ds.train_labels) + len(ds.test_labels) == 1797
    assert 0 <= ds.train_images.min() and ds.train_images.max() <= 1
    # MNIST framing: the digit lives in the central 20x20, a 4-pixel border stays black.
    inner = torch.zeros(28, 28, dtype=torch.bool)
    inner[4:24, 4:24] = True
    assert (ds.train_images[..., ~inner] == 0).all()
    # Stratified 80/20: every class has about 180 scans, a fifth of them in the test split.
    for c in range(10):
        n_train, n_test = int((ds.train_labels == c).sum()), int((ds.test_labels == c).sum())
        assert 170 <= n_train + n_test <= 190
        assert abs(n_test - 0.2 * (n_train + n_test)) <= 1
    # The same images as scikit-learn's 8x8 scans: shrunk back to 8x8, sample_digit(i) is closer to scan i
    # than to any other of the 1,797 scans.
    from sklearn.datasets import load_digits

    scans = torch.as_tensor(load_digits().images, dtype=torch.float32).flatten(1) / 16
    for index in (0, 5, 1000):
        digit = sample_digit(index)
        assert digit.shape == (1, 28, 28)
        shrunk = F.interpolate(digit[None, :, 4:24, 4:24], size=(8, 8), mode="area").flatten()
        assert torch.cdist(shrunk[None], scans).argmin() == index
    with pytest.raises(IndexError):
        sample_digit(1797)


def test_offline_digit_split_is_deterministic_and_disjoint():
    _, labels = data._digits_28()
    train, test = data._stratified_split(labels, test_fraction=0.2, seed=0)
    again_train, again_test = data._stratified_split(labels, test_fraction=0.2, seed=0)
    assert torch.equal(train, again_train) and torch.equal(test, again_test)
    assert sorted(train.tolist() + test.tolist()) == list(range(1797))


def test_offline_photo_set(capsys):
    ds = load_dataset("cifar10", offline=True)
    capsys.readouterr()
    assert ds.classes == list(PHOTOS) and ds.num_classes == 10
    assert ds.train_images.shape == (5000, 3, 32, 32) and ds.test_images.shape == (1000, 3, 32, 32)
    assert ds.train_images.dtype == torch.float32 and ds.test_labels.dtype == torch.int64
    assert torch.bincount(ds.train_labels).tolist() == [500] * 10
    assert torch.bincount(ds.test_labels).tolist() == [100] * 10
    assert 0 <= ds.train_images.min() and ds.train_images.max() <= 1
    mean, std = data._channel_stats(ds.train_images)
    assert ds.mean == mean and ds.std == std and len(ds.mean) == 3
    # The stored order mixes the classes: the first 100 training images hold every class.
    assert len(ds.train_labels[:100].unique()) == 10


def test_offline_photo_crops_are_deterministic():
    first = data._photo_crops(20, split="train", seed=0)
    second = data._photo_crops(20, split="train", seed=0)
    other = data._photo_crops(20, split="train", seed=1)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], other[0])


def test_offline_photo_train_and_test_regions_are_disjoint():
    _, train_labels, train_boxes = data._photo_crops(50, split="train", seed=0)
    _, test_labels, test_boxes = data._photo_crops(50, split="test", seed=1)
    for label, name in enumerate(PHOTOS):
        height, width = data._photo_array(name).shape[:2]
        train, test = train_boxes[train_labels == label], test_boxes[test_labels == label]
        for boxes in (train, test):  # (x0, y0, x1, y1) in pixels of the original photograph
            assert (boxes[:, :2] >= -1e-6).all() and (boxes[:, 2] <= width + 1e-6).all()
            assert (boxes[:, 3] <= height + 1e-6).all()
        # every training box ends left of where every test box starts
        assert train[:, 2].max() <= test[:, 0].min() + 1e-6, name


def test_offline_photo_test_crops_never_see_training_pixels():
    # Poison each photograph's training region with NaN: a test crop that read one of its pixels, even
    # through the resampling filter, would contain a NaN.
    regions = {}
    for name in PHOTOS:
        train_part, test_part, cut = data._photo_regions(name)
        regions[name] = (torch.full_like(train_part, float("nan")), test_part, cut)
    test_images, _, _ = data._photo_crops(30, split="test", seed=1, regions=regions)
    assert not test_images.isnan().any()
    train_images, _, _ = data._photo_crops(30, split="train", seed=0, regions=regions)
    assert train_images.isnan().all()  # the poison does reach the crops of the region it is in


# ---------------------------------------------------------------------------------------------------------
# Sample images and the ImageData methods.


def test_sample_image():
    image = sample_image()
    assert image.shape == (3, 224, 224) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1 and image.std() > 0.05
    assert sample_image("chelsea", size=None).shape == (3, 300, 451)
    assert sample_image("rocket", size=64).shape == (3, 64, 64)
    for name in PHOTOS:
        assert data._photo_array(name).shape[2] == 3, name


def tiny_data() -> ImageData:
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 0, 1, 2, 0])
    images = torch.arange(10, dtype=torch.float32).view(10, 1, 1, 1).expand(10, 1, 2, 2) / 10
    return ImageData(
        name="tiny", source="hand-made", classes=["a", "b", "c"],
        train_images=images, train_labels=labels, test_images=images[:4], test_labels=labels[:4],
        mean=(0.5,), std=(0.25,), offline=True,
    )


def test_normalize():
    ds = tiny_data()
    assert torch.equal(ds.normalize(torch.ones(2, 1, 3, 3)), torch.full((2, 1, 3, 3), 2.0))
    out = ds.normalize(torch.zeros(1, 4, 4, dtype=torch.float64))  # (C, H, W), float64 stays float64
    assert out.dtype == torch.float64 and out.shape == (1, 4, 4) and (out == -2).all()
    meta = ds.normalize(torch.empty(2, 1, 4, 4, device="meta", dtype=torch.bfloat16))
    assert meta.device.type == "meta" and meta.dtype == torch.bfloat16
    with pytest.raises(TypeError, match="float"):
        ds.normalize(torch.zeros(1, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="1, H, W"):
        ds.normalize(torch.zeros(1, 3, 4, 4))


def test_subset_is_balanced_and_ordered():
    ds = tiny_data()
    small = ds.subset(n_train=5, n_test=2)
    # quotas 2, 2, 1 for classes 0, 1, 2: the first of each, kept in stored order
    assert small.train_labels.tolist() == [0, 0, 1, 1, 2]
    assert torch.equal(small.train_images[:, 0, 0, 0] * 10, torch.tensor([0.0, 1, 3, 4, 5]))
    assert small.test_labels.tolist() == [0, 1]
    assert small.mean == ds.mean and small.std == ds.std and small.classes == ds.classes
    # quotas 3, 3, 3, but class 2 has two images only: the shortfall is topped up in stored order
    assert ds.subset(n_train=9).train_labels.tolist() == [0, 0, 0, 1, 1, 2, 0, 1, 2]
    assert len(ds.subset().train_labels) == 10 and len(ds.subset(n_train=100).train_labels) == 10
    with pytest.raises(ValueError):
        ds.subset(n_train=-1)


def test_repr_is_short():
    text = repr(tiny_data().subset(n_train=5))
    assert text == "ImageData('tiny', hand-made: 5 train / 4 test images of 1x2x2, 3 classes)"
