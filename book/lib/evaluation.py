"""Evaluating a trained model: loss and accuracy on a split, predicted classes.

Every function here runs the model in eval mode without gradients and gives each module its own
previous mode back afterwards (`lib.device.eval_mode`). Models may return a tuple in train mode
(GoogLeNet's auxiliary heads); only the first entry, the main output, is ever scored.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed
from .device import autocast, eval_mode, model_device

if TYPE_CHECKING:  # annotations only
    from .data import ImageData

Normalizer = Callable[[torch.Tensor], torch.Tensor]


def split_outputs(outputs: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(main, [aux...]) from a model's output: a tensor, or a tuple/namedtuple whose first entry is main."""
    if isinstance(outputs, (tuple, list)):
        main, *aux = outputs
        return main, [a for a in aux if a is not None]
    return outputs, []


@torch.no_grad()
def evaluate_tensors(
    model: nn.Module | Callable[[torch.Tensor], Any],
    images: torch.Tensor,
    labels: torch.Tensor,
    normalize: Normalizer,
    *,
    batch_size: int,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` (already in eval mode) on `images`, in batches.

    The sums are kept on the device and read once at the end, so the GPU is never waited for in between.
    Returns (nan, nan) for no images.
    """
    if len(images) == 0:
        return math.nan, math.nan
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for start in range(0, len(images), batch_size):
        x = normalize(images[start:start + batch_size].to(device, non_blocking=True))
        y = labels[start:start + batch_size].to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp_dtype):
            logits, _ = split_outputs(model(x))
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    return loss_sum.item() / len(images), correct.item() / len(images)


def evaluate_on_all_ranks(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    normalize: Normalizer,
    *,
    device: torch.device,
    **options: Any,
) -> tuple[float, float]:
    """Mean loss and accuracy over the test images of all processes, each of which holds a share of them.

    `options` go to `evaluate_tensors`. Every process must call it (the sums are an all-reduce).
    """
    n = len(images)
    loss, accuracy = evaluate_tensors(model, images, labels, normalize, device=device, **options) if n else (0, 0)
    loss_sum, correct, count = distributed.all_reduce_sum([loss * n, round(accuracy * n), n], device)
    return (loss_sum / count, correct / count) if count else (math.nan, math.nan)


def evaluate(
    model: nn.Module,
    data: ImageData,
    *,
    split: str = "test",
    batch_size: int = 512,
    device: torch.device | str | None = None,
    limit: int | None = None,
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` on a split of `data`.

    Args:
        model: maps normalised (N, C, H, W) batches to class scores.
        data: an `ImageData`.
        split: "test" or "train".
        batch_size: images per forward pass.
        device: where to evaluate; default the device the model is on (given one, the model moves there).
        limit: evaluate only the first `limit` images.

    Returns:
        (mean loss, accuracy); the model's modes are as they were before the call.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    images = data.train_images if split == "train" else data.test_images
    labels = data.train_labels if split == "train" else data.test_labels
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    device = _place(model, device)
    with eval_mode(model):
        return evaluate_tensors(model, images, labels, data.normalizer(device),
                                batch_size=batch_size, device=device)


@torch.no_grad()
def predict(
    model: nn.Module,
    images: torch.Tensor,
    data: ImageData,
    *,
    device: torch.device | str | None = None,
    batch_size: int = 512,
) -> torch.Tensor:
    """Predicted class indices (int64, on the CPU) for images in [0, 1], shaped (N, C, H, W) or (C, H, W).

    The images are normalised with `data.mean` and `data.std`; the model runs in eval mode (each
    module's mode restored afterwards) on `device`, by default the device it is on.
    """
    if images.dim() not in (3, 4):
        raise ValueError(f"images must be shaped (N, C, H, W) or (C, H, W), got {tuple(images.shape)}")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    device = _place(model, device)
    normalize = data.normalizer(device)
    predictions = []
    with eval_mode(model):
        for start in range(0, len(images), batch_size):
            logits, _ = split_outputs(model(normalize(images[start:start + batch_size].to(device))))
            predictions.append(logits.argmax(1).cpu())
    return torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)


def _place(model: nn.Module, device: torch.device | str | None) -> torch.device:
    """Move `model` to `device` if one is given; return the device it is on."""
    if device is None:
        return model_device(model)
    device = torch.device(device)
    model.to(device)
    return device
