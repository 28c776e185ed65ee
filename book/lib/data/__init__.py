"""Datasets as in-memory tensors, with offline stand-ins built from installed packages.

`load_dataset` returns an `ImageData`: the whole training and test splits as float32 tensors in [0, 1],
shaped (N, C, H, W), with int64 labels, class names and the per-channel mean and standard deviation of the
training split. The real datasets come through `torchvision.datasets` and are downloaded once into a cache
folder (`$CNNBOOK_DATA`, else `~/.cache/cnnbook`).

When a dataset cannot be had (no network, or `offline=True`), an offline set made from data that ships
inside scikit-learn and scikit-image takes its place, and one printed line says so. The offline sets are
real images, but they are not the datasets they stand in for:

* **mnist** and **fashion_mnist** become scikit-learn's 1,797 handwritten digits (`load_digits`): 8x8 scans
  with 17 grey levels, upsampled to 20x20 and framed in 28x28 like MNIST. There are about 37 times fewer
  images than in MNIST and they are blurrier, so accuracies differ from published MNIST figures. For
  Fashion-MNIST they are still digits, not clothing, and the class names are "0" to "9".
* **cifar10** becomes crops of ten photographs (one class per photograph, e.g. "chelsea", "rocket"):
  random squares of varying size resized to 32x32, with flips and brightness, contrast and saturation
  jitter. Training crops come from the left part of each photograph and test crops from the right part,
  so the test images share no pixel with the training images. The task is to recognise which scene a
  patch comes from, which rewards colour and texture more than object shape; it is smaller and easier to
  overfit than CIFAR-10, and its accuracies are not comparable with CIFAR-10 results.
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
import socket
import tarfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["DATASETS", "PHOTOS", "ImageData", "load_dataset", "sample_digit", "sample_image"]

DATASETS = ("mnist", "fashion_mnist", "cifar10")

# Photographs bundled with scikit-image (and two with scikit-learn): the classes of the offline colour set.
PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
    "immunohistochemistry", "retina", "motorcycle", "china", "flower",
)

_TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
_DATA_ENV = "CNNBOOK_DATA"


@dataclass(eq=False, repr=False)
class ImageData:
    """A whole image-classification dataset held in memory.

    Attributes:
        name: the dataset asked for, one of `DATASETS`.
        source: where the images come from, in words (e.g. "MNIST via torchvision").
        classes: the class names; label `i` means `classes[i]`.
        train_images: float32 tensor (N, C, H, W) with values in [0, 1].
        train_labels: int64 tensor (N,).
        test_images: float32 tensor (M, C, H, W) with values in [0, 1].
        test_labels: int64 tensor (M,).
        mean: per-channel mean of `train_images`.
        std: per-channel standard deviation of `train_images`.
        offline: True when this is an offline stand-in rather than the real dataset.
    """

    name: str
    source: str
    classes: list[str]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    offline: bool

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The shape of one image, (C, H, W)."""
        c, h, w = self.train_images.shape[1:]
        return (c, h, w)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise images channel by channel with the training split's mean and std.

        Args:
            x: float images in [0, 1], shaped (C, H, W) or (N, C, H, W), on any device, any float dtype.

        Returns:
            `(x - mean) / std`, with the same shape, device and dtype as `x`.
        """
        if not x.is_floating_point():
            raise TypeError(f"normalize expects float images in [0, 1], got dtype {x.dtype}")
        channels = len(self.mean)
        if x.dim() not in (3, 4) or x.shape[-3] != channels:
            raise ValueError(
                f"normalize expects images shaped (N, {channels}, H, W) or ({channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        mean = _channel_vector(self.mean, x.device, x.dtype)
        std = _channel_vector(self.std, x.device, x.dtype)
        return (x - mean) / std

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> ImageData:
        """A smaller copy with at most `n_train` training and `n_test` test images.

        The selection is deterministic and as class-balanced as the data allows: the first images of each
        class in the stored order, `n // num_classes` of each (the remainder going to the lowest labels),
        topped up in stored order when a class runs short. The kept images stay in their stored order.
        `mean` and `std` are kept from the full training split, so that a model trained on a subset sees
        inputs normalised exactly as the full dataset's.

        Args:
            n_train: the number of training images to keep; None keeps all.
            n_test: the number of test images to keep; None keeps all.

        Returns:
            A new `ImageData` (the tensors are indexed copies).
        """
        train = _balanced_first(self.train_labels, n_train, self.num_classes)
        test = _balanced_first(self.test_labels, n_test, self.num_classes)
        return ImageData(
            name=self.name, source=self.source, classes=list(self.classes),
            train_images=self.train_images[train], train_labels=self.train_labels[train],
            test_images=self.test_images[test], test_labels=self.test_labels[test],
            mean=self.mean, std=self.std, offline=self.offline,
        )

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        return (
            f"ImageData({self.name!r}, {self.source}: {len(self.train_labels):,} train / "
            f"{len(self.test_labels):,} test images of {c}x{h}x{w}, {self.num_classes} classes)"
        )


@functools.lru_cache(maxsize=64)
def _channel_vector(values: tuple[float, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """`values` as a (C, 1, 1) tensor, made once per device and dtype (normalize runs on every batch)."""
    return torch.tensor(values, dtype=dtype, device=device).view(-1, 1, 1)


def _balanced_first(labels: torch.Tensor, n: int | None, num_classes: int) -> torch.Tensor:
    """Indices of the first images of each class, `n` in all, sorted; see `ImageData.subset`."""
    total = len(labels)
    if n is None or n >= total:
        return torch.arange(total)
    if n < 0:
        raise ValueError(f"subset sizes must be >= 0, got {n}")
    chosen = torch.zeros(total, dtype=torch.bool)
    for c in range(num_classes):
        quota = n // num_classes + (1 if c < n % num_classes else 0)
        chosen[torch.nonzero(labels == c).flatten()[:quota]] = True
    shortfall = n - int(chosen.sum())
    if shortfall > 0:
        chosen[torch.nonzero(~chosen).flatten()[:shortfall]] = True
    return torch.nonzero(chosen).flatten()


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) standard deviation of an (N, C, H, W) tensor."""
    var, mean = torch.var_mean(images, dim=(0, 2, 3), correction=0)
    return tuple(mean.tolist()), tuple(var.sqrt().tolist())


def _canonical_name(name: str) -> str:
    key = str(name).lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return key


# ---------------------------------------------------------------------------------------------------------
# Loading: torchvision first, then the offline stand-in.


def load_dataset(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    download: bool = True,
    offline: bool | None = None,
) -> ImageData:
    """Load a dataset into memory, falling back to an offline stand-in when it cannot be had.

    Prints exactly one line saying which data is used and why.

    Args:
        name: one of `DATASETS` ("mnist", "fashion_mnist", "cifar10").
        root: the cache folder for torchvision's files; default `$CNNBOOK_DATA`, else `~/.cache/cnnbook`.
        download: whether torchvision may download the dataset when it is not in `root` yet.
        offline: True skips torchvision and returns the offline set; False raises a RuntimeError instead
            of falling back; None (the default) tries torchvision and falls back.

    Returns:
        The dataset as an `ImageData`.

    Raises:
        ValueError: for an unknown name.
        RuntimeError: with `offline=False`, when the real dataset cannot be loaded.
    """
    name = _canonical_name(name)
    title = _TITLES[name]
    if offline:
        data, what = _offline_dataset(name)
        print(f"Using {what}: {title} was not tried (offline=True).")
        return data
    try:
        data, how = _load_torchvision(name, _data_root(root), download)
    except _Unavailable as error:
        if offline is False:
            raise RuntimeError(f"{error} (and offline=False forbids the offline fallback)") from error
        data, what = _offline_dataset(name)
        print(f"Using {what}: {error}.")
        return data
    sizes = f"{len(data.train_labels):,} train / {len(data.test_labels):,} test images"
    print(f"Using {data.source} ({sizes}, {how}).")
    return data


class _Unavailable(Exception):
    """The real dataset cannot be loaded; the message says why."""


def _data_root(root: str | os.PathLike | None) -> Path:
    if root is None:
        root = os.environ.get(_DATA_ENV) or Path("~/.cache/cnnbook")
    return Path(root).expanduser()


def _torchvision_class(name: str) -> type:
    from torchvision import datasets

    classes = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST, "cifar10": datasets.CIFAR10}
    return classes[name]


def _first_url(dataset_class: type) -> str:
    if hasattr(dataset_class, "mirrors"):  # MNIST and Fashion-MNIST
        return dataset_class.mirrors[0] + dataset_class.resources[0][0]
    return dataset_class.url  # CIFAR-10


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the host of `url` opens within `timeout` seconds.

    torchvision's download has no timeout: behind a firewall that drops packets it can hang for minutes.
    This probe fails in milliseconds when there is no DNS and in `timeout` seconds when packets are dropped.
    With a proxy configured, the direct connection says nothing, so the download is simply tried.
    """
    if urllib.request.getproxies():
        return True
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _load_torchvision(name: str, root: Path, download: bool) -> tuple[ImageData, str]:
    """The real dataset through torchvision, and how it was obtained; raises `_Unavailable`."""
    title = _TITLES[name]
    dataset_class = _torchvision_class(name)
    try:  # already in the cache: no network needed
        train = dataset_class(root, train=True, download=False)
        test = dataset_class(root, train=False, download=False)
        how = "from the local cache"
    except RuntimeError:
        if not download:
            raise _Unavailable(f"{title} is not in the data folder and download=False") from None
        if not _reachable(_first_url(dataset_class)):
            raise _Unavailable(f"{title} could not be downloaded (no network)") from None
        try:
            # Older torchvision versions print "Downloading <url> to <path>" per file; the one line printed
            # below replaces them (the progress bar goes to stderr and stays).
            with contextlib.redirect_stdout(io.StringIO()):
                train = dataset_class(root, train=True, download=True)
            test = dataset_class(root, train=False, download=False)
        except (RuntimeError, OSError, EOFError, tarfile.TarError) as error:
            reason = " ".join(str(error).split())[:160] or type(error).__name__
            raise _Unavailable(f"{title} could not be downloaded ({reason})") from error
        how = "downloaded now"
    return _from_torchvision(name, train, test), how


def _from_torchvision(name: str, train, test) -> ImageData:
    """Convert torchvision datasets (uint8 HW or HWC arrays in `.data`) into an `ImageData`."""

    def images(dataset) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(dataset.data))
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)  # (N, H, W) or (N, H, W, C)
        return x.contiguous().float().div_(255)

    def labels(dataset) -> torch.Tensor:
        return torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)

    train_images = images(train)
    mean, std = _channel_stats(train_images)
    # torchvision names MNIST's classes "0 - zero", ...; plain digits match the offline stand-in.
    classes = [str(d) for d in range(10)] if name == "mnist" else list(train.classes)
    return ImageData(
        name=name, source=f"{_TITLES[name]} via torchvision", classes=classes,
        train_images=train_images, train_labels=labels(train),
        test_images=images(test), test_labels=labels(test),
        mean=mean, std=std, offline=False,
    )


def _offline_dataset(name: str) -> tuple[ImageData, str]:
    """The offline stand-in for `name` and the words that introduce it in the printed line."""
    if name == "cifar10":
        data = _offline_photos(name)
        what = (
            f"offline photo crops ({len(PHOTOS)} photographs from scikit-image and scikit-learn, "
            f"{len(data.train_labels):,} train / {len(data.test_labels):,} test crops of 32x32; "
            f"scenes, not CIFAR-10 objects)"
        )
        return data, what
    data = _offline_digits(name)
    total = len(data.train_labels) + len(data.test_labels)
    what = f"offline digits (scikit-learn, {total:,} real scans resized to 28x28"
    if name == "fashion_mnist":
        what += "; handwritten digits, not clothing"
    return data, what + ")"


# ---------------------------------------------------------------------------------------------------------
# Offline grayscale: scikit-learn's handwritten digits.


@functools.lru_cache(maxsize=1)
def _digits_28() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 scikit-learn digits as (N, 1, 28, 28) float32 in [0, 1], and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16  # 17 grey levels, 0..16
    # MNIST fits each digit into a 20x20 box centred in 28x28. The 8x8 scans are already cropped to the
    # digit, so upsampling to 20x20 and padding 4 pixels gives the same framing (and LeNet's 5x5 filters
    # see strokes of a similar width as on MNIST) instead of digits that touch the border.
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False, antialias=True)
    x = F.pad(x.clamp_(0, 1), (4, 4, 4, 4))
    return x, torch.as_tensor(digits.target, dtype=torch.int64)


def _stratified_split(
    labels: torch.Tensor, test_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffled train and test indices with `test_fraction` of every class in the test split."""
    # NumPy's generator: torch.randperm(1797) under seed 0 opens with a long run of one class in the
    # periodic order of scikit-learn's digits, which makes a poor-looking "first 16 images" grid.
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(labels)))
    is_test = torch.zeros(len(labels), dtype=torch.bool)
    for c in labels.unique():
        members = order[labels[order] == c]  # this class, in shuffled order
        is_test[members[: round(test_fraction * len(members))]] = True
    return order[~is_test[order]], order[is_test[order]]


def _offline_digits(name: str) -> ImageData:
    images, labels = _digits_28()
    train, test = _stratified_split(labels, test_fraction=0.2, seed=0)
    mean, std = _channel_stats(images[train])
    return ImageData(
        name=name, source="offline: scikit-learn handwritten digits resized to 28x28",
        classes=[str(d) for d in range(10)],
        train_images=images[train], train_labels=labels[train],
        test_images=images[test], test_labels=labels[test],
        mean=mean, std=std, offline=True,
    )


def sample_digit(index: int = 0) -> torch.Tensor:
    """A real handwritten digit from scikit-learn's scans, framed like MNIST.

    Args:
        index: which of the 1,797 scans, in scikit-learn's order (scan 0 is a "0").

    Returns:
        Float32 tensor (1, 28, 28) in [0, 1].
    """
    images, _ = _digits_28()
    if not -len(images) <= index < len(images):
        raise IndexError(f"index must be in [0, {len(images)}), got {index}")
    return images[index].clone()


# ---------------------------------------------------------------------------------------------------------
# Offline colour: crops of ten photographs.

_SHORT_SIDE = 256  # every photograph is first scaled so that its shorter side has this many pixels
_TRAIN_FRACTION = 0.7  # training crops from the left 70% of a photograph, test crops from the rest
_CROP_SIZES = (24, 96)  # side of a square crop, in pixels of the scaled photograph
_N_TRAIN, _N_TEST = 500, 100  # crops per class
# Jitter ranges (factors drawn uniformly per crop). Without them a patch's average colour alone tells most
# photographs apart; with them a network has to use texture and structure as well.
_BRIGHTNESS = (0.6, 1.4)
_CONTRAST = (0.6, 1.4)
_SATURATION = (0.5, 1.5)


@functools.cache
def _photo_array(name: str) -> np.ndarray:
    """The photograph `name` as a read-only uint8 array (H, W, 3)."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        image = load_sample_image(f"{name}.jpg")
    else:
        import skimage.data

        loader = {"motorcycle": lambda: skimage.data.stereo_motorcycle()[0]}.get(name)
        image = loader() if loader else getattr(skimage.data, name)()
    image = np.ascontiguousarray(image)
    image.flags.writeable = False
    return image


def _photo(name: str) -> torch.Tensor:
    """The photograph `name` as float32 (3, H, W) in [0, 1]."""
    if name not in PHOTOS:
        raise ValueError(f"unknown photograph {name!r}; choose one of {', '.join(PHOTOS)}")
    return torch.from_numpy(_photo_array(name).copy()).permute(2, 0, 1).float().div_(255)


def sample_image(name: str = "chelsea", size: int | None = 224) -> torch.Tensor:
    """A photograph bundled with scikit-image or scikit-learn.

    Args:
        name: one of `PHOTOS` (e.g. "astronaut", "chelsea", "coffee", "rocket").
        size: the side of the returned square: the photograph's centre square, resized with antialiasing.
            None returns the whole photograph at its original size.

    Returns:
        Float32 tensor (3, size, size), or (3, H, W) for `size=None`, with values in [0, 1].
    """
    image = _photo(name)
    if size is None:
        return image
    _, h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[None, :, top : top + side, left : left + side]
    resized = F.interpolate(square, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return resized[0].clamp_(0, 1)


@functools.cache
def _photo_regions(name: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The scaled training and test regions of a photograph, and the column of the original where it is cut.

    The photograph is cut before scaling and each part is scaled on its own, so that not even the
    resampling filter mixes pixels across the cut. The returned tensors are cached: do not modify them.
    """
    image = _photo(name)
    _, h, w = image.shape
    cut = round(_TRAIN_FRACTION * w)
    scale = _SHORT_SIDE / min(h, w)

    def scaled(part: torch.Tensor) -> torch.Tensor:
        size = (round(part.shape[1] * scale), round(part.shape[2] * scale))
        return F.interpolate(part[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]

    return scaled(image[:, :, :cut]), scaled(image[:, :, cut:]), cut


def _photo_crops(
    n_per_class: int,
    *,
    split: str,
    seed: int,
    regions: dict[str, tuple[torch.Tensor, torch.Tensor, int]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random jittered 32x32 crops, `n_per_class` from each photograph's `split` ("train" or "test") region.

    Args:
        n_per_class: crops per photograph.
        split: "train" for the left part of each photograph, "test" for the right part.
        seed: seeds every random choice (boxes, flips, jitter, order).
        regions: replaces `_photo_regions(name)` for each photograph (the tests poison pixels this way).

    Returns:
        images (N, 3, 32, 32) in [0, 1], labels (N,) and the crop boxes (N, 4) as (x0, y0, x1, y1) in pixels
        of the original photograph, for checking that the regions do not overlap.
    """
    generator = torch.Generator().manual_seed(seed)
    low, high = _CROP_SIZES
    pieces, sides, boxes = [], [], []
    for name in PHOTOS:
        train_part, test_part, cut = regions[name] if regions else _photo_regions(name)
        part = train_part if split == "train" else test_part
        _, h, w = part.shape
        height, width = _photo_array(name).shape[:2]
        offset, region_width = (0, cut) if split == "train" else (cut, width - cut)
        side = torch.randint(low, min(high, h, w) + 1, (n_per_class,), generator=generator)
        x0 = (torch.rand(n_per_class, generator=generator) * (w - side + 1)).long()
        y0 = (torch.rand(n_per_class, generator=generator) * (h - side + 1)).long()
        for x, y, s in zip(x0.tolist(), y0.tolist(), side.tolist(), strict=True):
            pieces.append(part[:, y : y + s, x : x + s])
        sides.append(side)
        box = torch.stack([x0, y0, x0 + side, y0 + side], dim=1).double()
        to_original = torch.tensor([region_width / w, height / h] * 2, dtype=torch.float64)
        boxes.append(box * to_original + torch.tensor([offset, 0.0, offset, 0.0], dtype=torch.float64))
    # Resize all crops of one size in one call: an antialiased (area-like) downscale to 32x32.
    sides = torch.cat(sides)
    images = torch.empty(len(pieces), 3, 32, 32)
    for s in sides.unique().tolist():
        index = torch.nonzero(sides == s).flatten()
        batch = torch.stack([pieces[i] for i in index.tolist()])
        images[index] = F.interpolate(batch, size=32, mode="bilinear", align_corners=False, antialias=True)
    images = _jitter(images, generator)
    labels = torch.arange(len(PHOTOS)).repeat_interleave(n_per_class)
    # Shuffle so that the stored order mixes the classes (subset() and plain slices then stay balanced).
    order = torch.randperm(len(labels), generator=generator)
    return images[order], labels[order], torch.cat(boxes)[order]


def _jitter(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and brightness, contrast and saturation changes, one draw per image."""
    n = len(images)

    def uniform(bounds: tuple[float, float]) -> torch.Tensor:
        low, high = bounds
        return low + torch.rand(n, 1, 1, 1, generator=generator) * (high - low)

    flip = torch.nonzero(torch.rand(n, generator=generator) < 0.5).flatten()
    images[flip] = images[flip].flip(-1)
    saturation, contrast, brightness = uniform(_SATURATION), uniform(_CONTRAST), uniform(_BRIGHTNESS)
    gray = 0.299 * images[:, 0:1] + 0.587 * images[:, 1:2] + 0.114 * images[:, 2:3]  # luma, ITU-R BT.601
    mean = gray.mean(dim=(2, 3), keepdim=True)
    # brightness * (mean + contrast * (gray + saturation * (x - gray) - mean)), expanded:
    colour, luma = brightness * contrast * saturation, brightness * contrast * (1 - saturation)
    images = images * colour + gray * luma + mean * (brightness * (1 - contrast))
    return images.clamp_(0, 1)


@functools.lru_cache(maxsize=1)
def _photo_set() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The offline colour set's tensors, generated once per process (about a second); do not modify them."""
    train_images, train_labels, _ = _photo_crops(_N_TRAIN, split="train", seed=0)
    test_images, test_labels, _ = _photo_crops(_N_TEST, split="test", seed=1)
    return train_images, train_labels, test_images, test_labels


def _offline_photos(name: str) -> ImageData:
    train_images, train_labels, test_images, test_labels = (t.clone() for t in _photo_set())
    mean, std = _channel_stats(train_images)
    return ImageData(
        name=name, source="offline: 32x32 crops of 10 photographs (scikit-image, scikit-learn)",
        classes=list(PHOTOS),
        train_images=train_images, train_labels=train_labels,
        test_images=test_images, test_labels=test_labels,
        mean=mean, std=std, offline=True,
    )
