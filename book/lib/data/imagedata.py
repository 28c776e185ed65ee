"""`ImageData`: a whole image-classification dataset held in memory as tensors."""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(eq=False, repr=False)
class ImageData:
    """A whole image-classification dataset held in memory.

    Attributes:
        name: the dataset asked for, one of `DATASETS` (an offline stand-in keeps the name it stands in for).
        source: where the images come from, in words (e.g. "MNIST via torchvision").
        classes: the class names; label `i` means `classes[i]`.
        train_images: float32 tensor (N, C, H, W) with values in [0, 1].
        train_labels: int64 tensor (N,).
        test_images: float32 tensor (M, C, H, W) with values in [0, 1].
        test_labels: int64 tensor (M,).
        mean: per-channel mean of `train_images`.
        std: per-channel standard deviation of `train_images`.
        offline: True when this is an offline stand-in rather than the dataset asked for.
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

    def normalizer(self, device: torch.device | str, dtype: torch.dtype = torch.float32
                   ) -> Callable[[torch.Tensor], torch.Tensor]:
        """`(x - mean) / std` per channel with the training split's statistics, for a training loop:
        the two (C, 1, 1) tensors are built once, on `device`, and every batch only subtracts and divides.
        """
        mean = _channel_vector(self.mean, device, dtype)
        std = _channel_vector(self.std, device, dtype)
        return lambda x: (x - mean) / std

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
        return self.normalizer(x.device, x.dtype)(x)

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


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) standard deviation of an (N, C, H, W) tensor."""
    var, mean = torch.var_mean(images, dim=(0, 2, 3), correction=0)
    return tuple(mean.tolist()), tuple(var.sqrt().tolist())
