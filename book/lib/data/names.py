"""Dataset names: the canonical spellings, the titles the book prints, and the sizes of the real sets."""
from __future__ import annotations

import re

from ..lookup import unknown

# The first three come through torchvision; the last two are built here from installed packages.
DATASETS = ("mnist", "fashion_mnist", "cifar10", "mnist_m", "photo_crops")
BUILT_HERE = ("mnist_m", "photo_crops")

TITLES = {
    "mnist": "MNIST",
    "fashion_mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "mnist_m": "MNIST-M-style colour digits",
    "photo_crops": "photo crops",
}

# Training plus test images of the real datasets, for the line that says what an offline set replaces.
REAL_SIZES = {"mnist": 70_000, "fashion_mnist": 70_000, "cifar10": 60_000}

# Case and punctuation are ignored, so "Fashion-MNIST", "fashion_mnist" and "FashionMNIST" all match.
_BY_KEY = {re.sub(r"[^a-z0-9]", "", name): name for name in DATASETS}


def canonical_name(name: str) -> str:
    """The canonical dataset name for any spelling the book prints ("CIFAR-10", "MNIST-M", "photo crops").

    Args:
        name: a dataset name; case, spaces, hyphens and underscores are ignored.

    Returns:
        One of `DATASETS`.

    Raises:
        TypeError: when `name` is not a string.
        ValueError: for an unknown name, with the closest matches.
    """
    if not isinstance(name, str):
        raise TypeError(f"a dataset name must be a string such as 'mnist', got {type(name).__name__}")
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    if key not in _BY_KEY:
        # Lower case, so that "MNST" is matched against "mnist" (difflib compares case-sensitively).
        raise unknown("dataset", name.strip().lower(), DATASETS)
    return _BY_KEY[key]
