"""Input checks shared by the model families: one clear error instead of a shape mismatch deep inside."""
from __future__ import annotations

import torch


def check_image_batch(
    x: torch.Tensor,
    *,
    model: str,
    channels: int,
    min_size: int | None = None,
    size: tuple[int, int] | None = None,
) -> None:
    """Raise a ValueError that says what `model` expects when `x` is not a fitting image batch.

    Args:
        x: the input, expected as (N, C, H, W).
        model: the network's name, used in the message.
        channels: the number of channels the first layer takes.
        min_size: the smallest height and width the network can process, if any.
        size: the exact (H, W) the network needs, if it has no adaptive pooling.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{model} expects a batch of images shaped (N, {channels}, H, W), got {shape}")
    _, c, h, w = x.shape
    if c != channels:
        raise ValueError(
            f"{model} expects {channels}-channel images, got {c} channels (input shape {tuple(x.shape)})"
        )
    if size is not None and (h, w) != tuple(size):
        raise ValueError(f"{model} expects {size[0]}x{size[1]} images, got {h}x{w}")
    if min_size is not None and (h < min_size or w < min_size):
        raise ValueError(f"{model} needs images of at least {min_size}x{min_size} pixels, got {h}x{w}")
