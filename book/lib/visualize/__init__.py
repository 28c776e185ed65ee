"""Pictures of what a network computes: feature maps, filters, training curves, predictions, confusions.

Every plotting function builds its figure with `plt.subplots`, closes it with `plt.close(fig)` and
returns it. Closed, the figure is not drawn again by the inline backend at the end of the cell; returned,
it is drawn exactly once when it is the cell's last expression (IPython renders a Figure result as a
PNG). So in a notebook write

    lib.visualize.plot_history(history)          # last line of the cell: shown once

and `fig = plot_history(history)` shows nothing until `fig` (or `display(fig)`) is evaluated; to show
several figures from one cell, call `display(...)` on each.
"""
from __future__ import annotations

import difflib
import math
from typing import TYPE_CHECKING, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from .training import History, _model_device, _normalizer, predict

if TYPE_CHECKING:
    from .data import ImageData


# ------------------------------------------------------------------------------------- feature maps

def _check_layer_names(model: nn.Module, layers: Sequence[str]) -> dict[str, nn.Module]:
    """The named submodules of `model` for `layers`, or a ValueError listing some valid names."""
    if isinstance(layers, str):
        layers = [layers]
    modules = dict(model.named_modules())
    modules.pop("", None)  # the model itself
    unknown = [name for name in layers if name not in modules]
    if unknown:
        names = list(modules)
        close = [match for name in unknown for match in difflib.get_close_matches(name, names, n=3)]
        examples = list(dict.fromkeys(close + names[:6]))[:8]
        raise ValueError(
            f"no layer named {', '.join(map(repr, unknown))} in {type(model).__name__}; "
            f"valid names include {', '.join(map(repr, examples))} (see model.named_modules())"
        )
    return {name: modules[name] for name in layers}


def feature_maps(
    model: nn.Module, image: torch.Tensor, layers: Sequence[str], *, data: ImageData | None = None
) -> dict[str, torch.Tensor]:
    """The outputs of the named `layers` when `model` processes one image.

    Forward hooks record each layer's output and are removed again, even on an error. The model runs in
    eval mode without gradients and gets its previous mode back.

    Args:
        model: any network; `layers` are names from `model.named_modules()`, e.g. "features.0".
        image: (C, H, W) or (1, C, H, W), already normalised unless `data` is given.
        layers: the layer names, in any order.
        data: if given, the image (in [0, 1]) is normalised with `data.mean` and `data.std` first.

    Returns:
        {name: output} in the order of `layers`, detached and on the CPU, with the batch dimension
        (e.g. (1, 64, 55, 55) for a convolution).
    """
    if isinstance(layers, str):
        layers = [layers]
    modules = _check_layer_names(model, layers)
    if image.dim() == 3:
        image = image.unsqueeze(0)
    device = _model_device(model)
    image = image.to(device)
    if data is not None:
        image = _normalizer(data, device)(image)

    outputs: dict[str, torch.Tensor] = {}

    def recorder(name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            # A copy, not a view: on the CPU `.cpu()` returns the same storage, and an in-place
            # activation after this layer (nn.ReLU(inplace=True)) would overwrite what was recorded.
            if isinstance(output, torch.Tensor):
                output = output.detach().to("cpu", copy=True)
            outputs.setdefault(name, output)
        return hook

    handles = [module.register_forward_hook(recorder(name)) for name, module in modules.items()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(image)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    missing = [name for name in layers if name not in outputs]
    if missing:
        raise ValueError(f"layer(s) {', '.join(map(repr, missing))} did not run in eval mode's forward pass")
    return {name: outputs[name] for name in layers}


def plot_feature_maps(
    model: nn.Module,
    image: torch.Tensor,
    layers: Sequence[str],
    *,
    max_channels: int = 16,
    data: ImageData | None = None,
    ncols: int = 8,
) -> Figure:
    """One block of small images per layer: the `max_channels` most active channels of its output.

    Channels are ordered by their mean activation (strongest first) and labelled with their index;
    each is scaled to its own range. `image` and `data` as for `feature_maps`.
    """
    if isinstance(layers, str):
        layers = [layers]
    maps = feature_maps(model, image, layers, data=data)
    for name, output in maps.items():
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(f"layer {name!r} gives {shape}, not a feature map (1, C, H, W)")
    shown = {name: min(max_channels, output.shape[1]) for name, output in maps.items()}
    ncols = min(ncols, max(shown.values()))
    block_rows = {name: math.ceil(count / ncols) for name, count in shown.items()}
    nrows = sum(block_rows.values())
    fig = plt.figure(figsize=(1.2 * ncols, 1.2 * nrows + 0.25 * len(layers)), layout="constrained")
    # One subfigure per layer, titled on its own: a title on the first small image would widen the first
    # column and push the others away from it.
    blocks = fig.subfigures(len(maps), 1, height_ratios=[block_rows[name] for name in maps], squeeze=False)
    for block, (name, output) in zip(blocks[:, 0], maps.items()):
        fmap = output[0].float()
        order = fmap.mean(dim=(1, 2)).argsort(descending=True)[:shown[name]]
        axes = block.subplots(block_rows[name], ncols, squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.set_axis_off()
            if i < len(order):
                ax.imshow(fmap[order[i]].numpy(), cmap="viridis")
                ax.text(0.03, 0.04, f"{order[i].item()}", transform=ax.transAxes, fontsize=7, color="white",
                        bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "linewidth": 0})
        c, h, w = fmap.shape
        block.suptitle(f"{name}: {c}x{h}x{w}, {len(order)} most active channels", x=0.0, ha="left", fontsize=9)
    plt.close(fig)
    return fig


# ------------------------------------------------------------------------------------------ filters

def _filters_as_images(weight: torch.Tensor) -> torch.Tensor:
    """(O, I, kH, kW) kernels → (O, kH, kW, 3) or (O, kH, kW) images, each scaled to [0, 1] on its own.

    Kernels with three input channels are shown in colour, all others by their first input channel.
    """
    weight = weight.detach().float().cpu()
    if weight.shape[1] != 3:
        weight = weight[:, :1]
    low = weight.amin(dim=(1, 2, 3), keepdim=True)
    high = weight.amax(dim=(1, 2, 3), keepdim=True)
    weight = (weight - low) / (high - low).clamp_min(1e-12)
    return weight.permute(0, 2, 3, 1) if weight.shape[1] == 3 else weight[:, 0]


def plot_filters(
    weight_or_conv: torch.Tensor | nn.Conv2d,
    *,
    max_filters: int = 64,
    groups: int | None = None,
    ncols: int | None = None,
) -> Figure:
    """The kernels of a convolution as small images, each normalised to its own range for display.

    Three-channel kernels (a first layer on colour images) are drawn in colour; others show their first
    input channel in grey.

    Args:
        weight_or_conv: an `nn.Conv2d` or its weight, shaped (out, in, kH, kW).
        max_filters: how many kernels to show in all (the first ones of each group).
        groups: split the kernels into this many consecutive groups, drawn one above the other, like
            the two GPUs' kernels in figure 3 of the AlexNet paper (`groups=2`). Default: the
            convolution's own `groups`, or 1 for a bare weight.
        ncols: kernels per row (default 8, or 16 when more than 64 are shown).
    """
    if isinstance(weight_or_conv, nn.Module):
        if not isinstance(getattr(weight_or_conv, "weight", None), torch.Tensor):
            raise ValueError(f"{type(weight_or_conv).__name__} has no weight to plot")
        weight = weight_or_conv.weight
        groups = groups if groups is not None else getattr(weight_or_conv, "groups", 1)
    else:
        weight = weight_or_conv
        groups = groups if groups is not None else 1
    if weight.dim() != 4:
        raise ValueError(f"expected convolution kernels shaped (out, in, kH, kW), got {tuple(weight.shape)}")
    if weight.shape[0] % groups:
        raise ValueError(f"{weight.shape[0]} filters do not split into {groups} groups")
    images = _filters_as_images(weight)
    per_group = weight.shape[0] // groups
    shown = min(per_group, max(1, max_filters // groups))
    ncols = ncols or (8 if shown * groups <= 64 else 16)
    ncols = min(ncols, shown)
    rows = math.ceil(shown / ncols)
    fig, axes = plt.subplots(groups * rows, ncols, figsize=(0.8 * ncols, 0.8 * groups * rows + 0.3 * groups),
                             squeeze=False)
    for g in range(groups):
        for i in range(rows * ncols):
            ax = axes[g * rows + i // ncols, i % ncols]
            ax.set_axis_off()
            if i < shown:
                ax.imshow(images[g * per_group + i].numpy(), cmap="gray", interpolation="nearest")
        if groups > 1:
            axes[g * rows, 0].set_title(f"group {g}", loc="left", fontsize=9, pad=2)
    fig.tight_layout(pad=0.3, h_pad=0.6 if groups > 1 else 0.3)
    plt.close(fig)
    return fig


# ---------------------------------------------------------------------------------- training curves

def plot_history(histories: History | dict[str, History], *, loss_scale: str = "linear") -> Figure:
    """Accuracy (left) and loss (right) per epoch; test solid, train dashed, one colour per run.

    Pass one `History`, or a dict {label: History} to compare runs. `loss_scale="log"` draws the loss
    on a log scale: useful when one early value (e.g. the first test loss of a BatchNorm network,
    evaluated with running statistics that have barely moved) would squash all the others.
    """
    if loss_scale not in ("linear", "log"):
        raise ValueError(f"loss_scale must be 'linear' or 'log', got {loss_scale!r}")
    runs = {"": histories} if isinstance(histories, History) else dict(histories)
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (label, history) in enumerate(runs.items()):
        color = f"C{i % 10}"
        epochs = range(1, len(history.test_acc) + 1)
        prefix = f"{label} " if label else ""
        for ax, train, test in ((acc_ax, history.train_acc, history.test_acc),
                                (loss_ax, history.train_loss, history.test_loss)):
            ax.plot(epochs, test, color=color, marker="o", markersize=3, label=f"{prefix}test")
            ax.plot(epochs, train, color=color, linestyle="--", label=f"{prefix}train")
    for ax, name in ((acc_ax, "accuracy"), (loss_ax, "loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    loss_ax.set_yscale(loss_scale)
    if loss_scale == "log":
        loss_ax.set_ylabel("loss (log scale)")
    acc_ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


# --------------------------------------------------------------------------------- images, predictions

def _as_display_image(image: torch.Tensor):
    """(C, H, W) with 1 or 3 channels → an array for imshow; values outside [0, 1] are rescaled."""
    image = image.detach().float().cpu()
    if image.dim() == 2:
        image = image.unsqueeze(0)
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected images shaped (1, H, W) or (3, H, W), got {tuple(image.shape)}")
    if image.min() < 0 or image.max() > 1:  # e.g. normalised: stretch to [0, 1] for display
        image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-12)
    return image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()


def _image_grid(count: int, ncols: int, size: float = 1.4, title_lines: int = 1):
    ncols = max(1, min(ncols, count))
    nrows = max(1, math.ceil(count / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.2 * title_lines + 0.05) * nrows),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes.flat


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
    arrays = [_as_display_image(image) for image in images]  # checked before a figure exists
    fig, axes = _image_grid(len(arrays), ncols)
    for i, (ax, array) in enumerate(zip(axes, arrays)):
        ax.imshow(array, cmap="gray", vmin=0, vmax=1)
        if labels is not None:
            label = int(labels[i])
            ax.set_title(_short(classes[label]) if classes is not None else str(label), fontsize=8)
    fig.tight_layout(pad=0.3)
    plt.close(fig)
    return fig


def _short(name: str, width: int = 14) -> str:
    """A class name cut to fit above a small image."""
    return name if len(name) <= width else name[:width - 1] + "\N{HORIZONTAL ELLIPSIS}"


def plot_predictions(
    model: nn.Module, data: ImageData, *, n: int = 16, only_wrong: bool = False, ncols: int = 8
) -> Figure:
    """The first `n` test images with the model's predictions; wrong ones in red with the true class.

    With `only_wrong=True`, the first `n` misclassified test images instead.
    """
    images, labels = data.test_images, data.test_labels
    if only_wrong:
        chosen, predicted = [], []
        for start in range(0, len(images), 1024):
            batch = predict(model, images[start:start + 1024], data)
            wrong = (batch != labels[start:start + 1024]).nonzero().flatten()
            chosen.append(wrong + start)
            predicted.append(batch[wrong])
            if sum(map(len, chosen)) >= n:
                break
        chosen = torch.cat(chosen)[:n] if chosen else torch.empty(0, dtype=torch.long)
        predicted = torch.cat(predicted)[:n] if predicted else torch.empty(0, dtype=torch.long)
    else:
        chosen = torch.arange(min(n, len(images)))
        predicted = predict(model, images[chosen], data)
    if len(chosen) == 0:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no misclassified test images", ha="center", va="center")
        plt.close(fig)
        return fig
    name = [_short(c) for c in data.classes]
    fig, axes = _image_grid(len(chosen), ncols, size=1.5, title_lines=2)
    for ax, index, guess in zip(axes, chosen.tolist(), predicted.tolist()):
        truth = int(labels[index])
        ax.imshow(_as_display_image(images[index]), cmap="gray", vmin=0, vmax=1)
        if guess == truth:
            ax.set_title(name[guess], fontsize=8)
        else:
            ax.set_title(f"{name[guess]}\n(true: {name[truth]})", fontsize=8, color="red")
    fig.tight_layout(pad=0.3)
    plt.close(fig)
    return fig


# ------------------------------------------------------------------------------------------ confusion

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
