"""Images as pictures: grids of images, a model's predictions on them, and the confusion matrix.

`as_display_image` is the one conversion from the library's images (tensors (C, H, W)) and from
arrays (H, W[, 3]) to what `imshow` takes; every picture of an image in `lib.visualize` goes through it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ..evaluation import predict

if TYPE_CHECKING:  # annotations only
    from ..data import ImageData


def as_display_image(image: Any) -> np.ndarray:
    """An image as an array for `imshow`: (H, W) grey or (H, W, 3) colour, with values in [0, 1].

    Args:
        image: a tensor shaped (C, H, W), (1, C, H, W) or (H, W) with C = 1 or 3 (the library's
            layout), or an array shaped (H, W), (H, W, 1) or (H, W, 3) (the layout of imshow and PIL).

    Returns:
        Integer images (uint8) divided by 255; float images with values outside [0, 1] (normalised
        ones) stretched to [0, 1], because imshow would clip them; others unchanged.

    Raises:
        ValueError: for any other shape.
    """
    if isinstance(image, torch.Tensor):
        integer = not image.is_floating_point()
        array = image.detach().float().cpu().numpy()
        if array.ndim == 4 and array.shape[0] == 1:
            array = array[0]
        if array.ndim == 3 and array.shape[0] in (1, 3):
            array = np.moveaxis(array, 0, -1)  # C, H, W -> H, W, C
        elif array.ndim == 3:
            array = array[None]  # not a (C, H, W) image: rejected below with its shape
    else:
        array = np.asarray(image)
        integer = np.issubdtype(array.dtype, np.integer)
        array = array.astype(np.float32)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        shape = tuple(image.shape) if hasattr(image, "shape") else tuple(array.shape)
        raise ValueError(f"expected an image shaped (H, W), (1, H, W) or (3, H, W) (a tensor), or (H, W, 3) "
                         f"(an array), got {shape}")
    if integer:
        return array / 255.0
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:  # e.g. normalised: stretch to [0, 1] for display
        return (array - low) / max(high - low, 1e-12)
    return array


def _image_grid(count: int, ncols: int, size: float = 1.4, title_lines: int = 1):
    """A figure of `count` blank axes in rows of `ncols`, room for `title_lines` of title above each."""
    ncols = max(1, min(ncols, count))
    nrows = max(1, math.ceil(count / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.2 * title_lines + 0.05) * nrows),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes.flat


def _short(name: str, width: int = 14) -> str:
    """A class name cut to fit above a small image."""
    return name if len(name) <= width else name[:width - 1] + "\N{HORIZONTAL ELLIPSIS}"


def show_images(
    images: torch.Tensor | Sequence[torch.Tensor],
    labels: torch.Tensor | Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
    *,
    ncols: int = 8,
) -> Figure:
    """A grid of images, (N, C, H, W) with 1 (grey) or 3 (colour) channels, titled with their labels.

    Labels are shown as class names when `classes` is given, else as numbers.
    """
    arrays = [as_display_image(image) for image in images]  # checked before a figure exists
    fig, axes = _image_grid(len(arrays), ncols)
    for i, (ax, array) in enumerate(zip(axes, arrays)):
        ax.imshow(array, cmap="gray", vmin=0, vmax=1)
        if labels is not None:
            label = int(labels[i])
            ax.set_title(_short(classes[label]) if classes is not None else str(label), fontsize=8)
    fig.tight_layout(pad=0.3)
    plt.close(fig)
    return fig


def _first_wrong(model: nn.Module, data: ImageData, n: int, batch: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices and predictions of the first `n` misclassified test images, predicted batch by batch so
    that a good model on a large test set is not run on all of it."""
    images, labels = data.test_images, data.test_labels
    chosen, predicted = [], []
    for start in range(0, len(images), batch):
        guesses = predict(model, images[start:start + batch], data)
        wrong = (guesses != labels[start:start + batch].cpu()).nonzero().flatten()
        chosen.append(wrong + start)
        predicted.append(guesses[wrong])
        if sum(map(len, chosen)) >= n:
            break
    if not chosen:
        return torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long)
    return torch.cat(chosen)[:n], torch.cat(predicted)[:n]


def _nothing_to_show(text: str) -> Figure:
    fig, ax = plt.subplots(figsize=(4, 1))
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center")
    plt.close(fig)
    return fig


def plot_predictions(
    model: nn.Module, data: ImageData, *, n: int = 16, only_wrong: bool = False, ncols: int = 8
) -> Figure:
    """The first `n` test images with the model's predictions; wrong ones in red with the true class.

    With `only_wrong=True`, the first `n` misclassified test images instead.
    """
    images, labels = data.test_images, data.test_labels
    if only_wrong:
        chosen, predicted = _first_wrong(model, data, n)
    else:
        chosen = torch.arange(min(n, len(images)))
        predicted = predict(model, images[chosen], data)
    if len(chosen) == 0:
        return _nothing_to_show("no misclassified test images")
    name = [_short(c) for c in data.classes]
    fig, axes = _image_grid(len(chosen), ncols, size=1.5, title_lines=2)
    for ax, index, guess in zip(axes, chosen.tolist(), predicted.tolist()):
        truth = int(labels[index])
        ax.imshow(as_display_image(images[index]), cmap="gray", vmin=0, vmax=1)
        if guess == truth:
            ax.set_title(name[guess], fontsize=8)
        else:
            ax.set_title(f"{name[guess]}\n(true: {name[truth]})", fontsize=8, color="red")
    fig.tight_layout(pad=0.3)
    plt.close(fig)
    return fig


def confusion_matrix(model: nn.Module, data: ImageData, *, limit: int | None = None) -> torch.Tensor:
    """Counts (num_classes, num_classes) on the test split: row = true class, column = prediction."""
    images, labels = data.test_images[:limit], data.test_labels[:limit]
    predicted = predict(model, images, data)
    k = data.num_classes
    return torch.bincount(labels.cpu() * k + predicted, minlength=k * k).view(k, k)


def plot_confusion_matrix(matrix: torch.Tensor, classes: Sequence[str]) -> Figure:
    """The matrix as an image, coloured by the fraction of each true class, annotated with the counts."""
    matrix = torch.as_tensor(matrix).cpu()
    k = len(classes)
    if matrix.shape != (k, k):
        raise ValueError(f"a {k}-class confusion matrix is {k}x{k}, got {tuple(matrix.shape)}")
    fractions = matrix.float() / matrix.sum(dim=1, keepdim=True).clamp_min(1)
    side = max(3.5, 0.5 * k + 1.5)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(fractions.numpy(), cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if matrix[i, j]:
                ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=8,
                        color="white" if fractions[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    plt.close(fig)
    return fig
