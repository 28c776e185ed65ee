"""Photographs bundled with scikit-image and scikit-learn, and a colour set of crops of them.

`sample_image` gives one photograph for the figures (feature maps, filters). `photo_crop_set` is a
ten-class set with one class per photograph: random squares of varying size resized to 32x32, with flips
and brightness, contrast and saturation jitter. Training crops come from the left 70% of each photograph
and test crops from the right 30%, so the test images share no pixel with the training images. The task
is to recognise which scene a patch comes from, which rewards colour and texture more than object shape.
The MNIST-M-style set (`mnist_m.py`) takes its backgrounds from the same regions.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from ..lookup import unknown
from .imagedata import ImageData, channel_stats

# Photographs bundled with scikit-image (and two with scikit-learn): the classes of the photo-crop set and
# the backgrounds of the MNIST-M-style set.
PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
    "immunohistochemistry", "retina", "motorcycle", "china", "flower",
)

_SHORT_SIDE = 256  # every photograph is first scaled so that its shorter side has this many pixels
TRAIN_FRACTION = 0.7  # training crops and patches from the left 70% of a photograph, test ones from the rest
_CROP_SIZES = (24, 96)  # side of a square crop, in pixels of the scaled photograph
_N_TRAIN, _N_TEST = 500, 100  # crops per class
# Jitter ranges (factors drawn uniformly per crop). Without them a patch's average colour alone tells most
# photographs apart; with them a network has to use texture and structure as well.
_BRIGHTNESS = (0.6, 1.4)
_CONTRAST = (0.6, 1.4)
_SATURATION = (0.5, 1.5)


@functools.cache
def photo_array(name: str) -> np.ndarray:
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


def photo(name: str) -> torch.Tensor:
    """The photograph `name` (one of `PHOTOS`) as float32 (3, H, W) in [0, 1]."""
    if name not in PHOTOS:
        raise unknown("photograph", name, PHOTOS)
    return torch.from_numpy(photo_array(name).copy()).permute(2, 0, 1).float().div_(255)


def sample_image(name: str = "chelsea", size: int | None = 224) -> torch.Tensor:
    """A photograph bundled with scikit-image or scikit-learn.

    Args:
        name: one of `PHOTOS` (e.g. "astronaut", "chelsea", "coffee", "rocket").
        size: the side of the returned square: the photograph's centre square, resized with antialiasing.
            None returns the whole photograph at its original size.

    Returns:
        Float32 tensor (3, size, size), or (3, H, W) for `size=None`, with values in [0, 1].
    """
    image = photo(name)
    if size is None:
        return image
    _, h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[None, :, top : top + side, left : left + side]
    resized = F.interpolate(square, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return resized[0].clamp_(0, 1)


@functools.cache
def photo_regions(name: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The scaled training and test regions of a photograph, and the column of the original where it is cut.

    The photograph is cut before scaling and each part is scaled on its own, so that not even the
    resampling filter mixes pixels across the cut. The returned tensors are cached: do not modify them.
    """
    image = photo(name)
    _, h, w = image.shape
    cut = round(TRAIN_FRACTION * w)
    scale = _SHORT_SIDE / min(h, w)

    def scaled(part: torch.Tensor) -> torch.Tensor:
        size = (round(part.shape[1] * scale), round(part.shape[2] * scale))
        return F.interpolate(part[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]

    return scaled(image[:, :, :cut]), scaled(image[:, :, cut:]), cut


def to_original(name: str, split: str, boxes: torch.Tensor) -> torch.Tensor:
    """Boxes (x0, y0, x1, y1) in pixels of a scaled region of `name`, in pixels of the original photograph.

    Args:
        name: one of `PHOTOS`.
        split: "train" for the left region, "test" for the right one.
        boxes: (N, 4) in pixels of `photo_regions(name)[0]` (train) or `[1]` (test).

    Returns:
        (N, 4) float64: the same boxes in the original photograph, for checking where a patch came from.
    """
    train_part, test_part, cut = photo_regions(name)
    _, h, w = (train_part if split == "train" else test_part).shape
    height, width = photo_array(name).shape[:2]
    offset, region_width = (0, cut) if split == "train" else (cut, width - cut)
    scale = torch.tensor([region_width / w, height / h] * 2, dtype=torch.float64)
    return boxes.double() * scale + torch.tensor([offset, 0.0, offset, 0.0], dtype=torch.float64)


def random_crops(
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
        regions: replaces `photo_regions(name)` for each photograph (the tests poison pixels this way).

    Returns:
        images (N, 3, 32, 32) in [0, 1], labels (N,) and the crop boxes (N, 4) as (x0, y0, x1, y1) in pixels
        of the original photograph, for checking that the regions do not overlap.
    """
    generator = torch.Generator().manual_seed(seed)
    low, high = _CROP_SIZES
    pieces, sides, boxes = [], [], []
    for name in PHOTOS:
        train_part, test_part, _ = regions[name] if regions else photo_regions(name)
        part = train_part if split == "train" else test_part
        _, h, w = part.shape
        side = torch.randint(low, min(high, h, w) + 1, (n_per_class,), generator=generator)
        x0 = (torch.rand(n_per_class, generator=generator) * (w - side + 1)).long()
        y0 = (torch.rand(n_per_class, generator=generator) * (h - side + 1)).long()
        for x, y, s in zip(x0.tolist(), y0.tolist(), side.tolist(), strict=True):
            pieces.append(part[:, y : y + s, x : x + s])
        sides.append(side)
        boxes.append(to_original(name, split, torch.stack([x0, y0, x0 + side, y0 + side], dim=1)))
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
def _crop_tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The photo-crop set's tensors, generated once per process (about a second); do not modify them."""
    train_images, train_labels, _ = random_crops(_N_TRAIN, split="train", seed=0)
    test_images, test_labels, _ = random_crops(_N_TEST, split="test", seed=1)
    return train_images, train_labels, test_images, test_labels


def photo_crop_set() -> ImageData:
    """The photo-crop set: 5,000 training and 1,000 test crops of 32x32, one class per photograph."""
    train_images, train_labels, test_images, test_labels = (t.clone() for t in _crop_tensors())
    mean, std = channel_stats(train_images)
    return ImageData(
        name="photo_crops", source="32x32 crops of 10 photographs (scikit-image, scikit-learn)",
        classes=list(PHOTOS),
        train_images=train_images, train_labels=train_labels,
        test_images=test_images, test_labels=test_labels,
        mean=mean, std=std, offline=False,
    )
