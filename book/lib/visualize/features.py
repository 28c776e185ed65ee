"""What the layers of a network compute: feature maps recorded with hooks, and the filters of a convolution."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure, SubFigure
from torch import nn

from ..device import eval_mode, model_device
from ..lookup import unknown

if TYPE_CHECKING:  # annotations only
    from ..data import ImageData


# ------------------------------------------------------------------------------------- feature maps

def _named_layers(model: nn.Module, layers: Sequence[str]) -> dict[str, nn.Module]:
    """The submodules of `model` named `layers`; a ValueError with close and valid names for a wrong one."""
    modules = dict(model.named_modules())
    modules.pop("", None)  # the model itself
    for name in layers:
        if name not in modules:
            error = unknown(f"{type(model).__name__} layer", name, modules)
            raise ValueError(f"{error} (the names of model.named_modules())")
    return {name: modules[name] for name in layers}


def _record_outputs(model: nn.Module, modules: dict[str, nn.Module], image: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run `model` on `image` (eval mode, no gradients) and keep the first output of each named module."""
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
    try:
        with eval_mode(model), torch.no_grad():
            model(image)
    finally:
        for handle in handles:
            handle.remove()
    return outputs


def feature_maps(
    model: nn.Module, image: torch.Tensor, layers: Sequence[str], *, data: ImageData | None = None
) -> dict[str, torch.Tensor]:
    """The outputs of the named `layers` when `model` processes one image.

    Forward hooks record each layer's output and are removed again, even on an error. The model runs in
    eval mode without gradients and each module gets its previous mode back.

    Args:
        model: any network; `layers` are names from `model.named_modules()`, e.g. "features.0".
        image: (C, H, W) or (1, C, H, W), already normalised unless `data` is given.
        layers: the layer names, in any order.
        data: if given, the image (in [0, 1]) is normalised with `data.mean` and `data.std` first.

    Returns:
        {name: output} in the order of `layers`, detached and on the CPU, with the batch dimension
        (e.g. (1, 64, 55, 55) for a convolution).

    Raises:
        ValueError: a name is not a module of `model`, or its module did not run.
    """
    if isinstance(layers, str):
        layers = [layers]
    modules = _named_layers(model, layers)
    if image.dim() == 3:
        image = image.unsqueeze(0)
    device = model_device(model)
    image = image.to(device)
    if data is not None:
        image = data.normalizer(device)(image)
    outputs = _record_outputs(model, modules, image)
    missing = [name for name in layers if name not in outputs]
    if missing:
        raise ValueError(f"layer(s) {', '.join(map(repr, missing))} did not run in eval mode's forward pass")
    return {name: outputs[name] for name in layers}


def _draw_channels(block: SubFigure, name: str, output: torch.Tensor, shown: int, rows: int, ncols: int) -> None:
    """The `shown` most active channels of one layer's output, labelled with their index, under a title."""
    fmap = output[0].float()
    order = fmap.mean(dim=(1, 2)).argsort(descending=True)[:shown]
    axes = block.subplots(rows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(order):
            ax.imshow(fmap[order[i]].numpy(), cmap="viridis")
            ax.text(0.03, 0.04, f"{order[i].item()}", transform=ax.transAxes, fontsize=7, color="white",
                    bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "linewidth": 0})
    c, h, w = fmap.shape
    block.suptitle(f"{name}: {c}x{h}x{w}, {len(order)} most active channels", x=0.0, ha="left", fontsize=9)


def plot_feature_maps(
    model: nn.Module,
    image: torch.Tensor,
    layers: Sequence[str],
    *,
    max_channels: int = 16,
    data: ImageData | None = None,
    ncols: int = 8,
    titles: Mapping[str, str] | None = None,
) -> Figure:
    """One block of small images per layer: the `max_channels` most active channels of its output.

    Channels are ordered by their mean activation (strongest first) and labelled with their index;
    each is scaled to its own range. `image` and `data` as for `feature_maps`. `titles` names a
    layer's block in the figure (say "branch1: 1x1"); a layer without one is titled by its name.
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
        title = (titles or {}).get(name, name)
        _draw_channels(block, title, output, shown[name], block_rows[name], ncols)
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


def _kernels(weight_or_conv: torch.Tensor | nn.Module, groups: int | None) -> tuple[torch.Tensor, int]:
    """The (out, in, kH, kW) weight and the number of groups to show, checked."""
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
    return weight, groups


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
    weight, groups = _kernels(weight_or_conv, groups)
    images = _filters_as_images(weight)
    per_group = weight.shape[0] // groups
    shown = min(per_group, max(1, max_filters // groups))
    ncols = min(ncols or (8 if shown * groups <= 64 else 16), shown)
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
