"""The effective receptive field (Luo et al., 2016): how much each input pixel actually moves one unit.

The theoretical field (`graph.receptive_field`) says which pixels can influence a unit at all; the
gradient of the unit with respect to the input says how much each of them does. This module computes
that gradient as a heatmap; `lib.visualize.plot_effective_receptive_field` draws it.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..device import eval_mode, model_device
from ..lookup import unknown
from .graph import WINDOW_MODULES

Pair = tuple[int, int]


class _Reached(Exception):
    """Raised by a hook to stop the forward pass once the wanted tensor exists."""


def _window_calls(model: nn.Module, x: torch.Tensor) -> list[tuple[str, Pair, Pair, bool]]:
    """(name, input hw, output hw, is a pooling) of every conv/pool call of one forward pass, in order."""
    calls: list[tuple[str, Pair, Pair, bool]] = []

    def record(name: str, is_pool: bool):
        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor) and isinstance(inputs[0], torch.Tensor):
                calls.append((name, tuple(inputs[0].shape[-2:]), tuple(output.shape[-2:]), is_pool))
        return hook

    handles = [m.register_forward_hook(record(name, not isinstance(m, nn.Conv2d)))
               for name, m in model.named_modules() if isinstance(m, WINDOW_MODULES)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _default_target(model: nn.Module, x: torch.Tensor) -> tuple[str, str]:
    """(module name, "input" | "output"): the input of the global pooling, else the last conv/pool."""
    calls = _window_calls(model, x)
    for name, in_hw, out_hw, is_pool in calls:
        if is_pool and out_hw == (1, 1) and in_hw != (1, 1):
            return name, "input"
    for name, _, out_hw, _ in reversed(calls):
        if out_hw != (1, 1):
            return name, "output"
    raise ValueError(f"{type(model).__name__} has no convolution or pooling layer with more than one "
                     "output position: pass layer=")


def _forward_to(model: nn.Module, module: nn.Module, x: torch.Tensor, where: str) -> torch.Tensor:
    """Run `model` on `x` until `module` is reached and return its input or output."""
    found: list[torch.Tensor] = []

    def keep(value):
        found.append(value[0] if isinstance(value, tuple) else value)
        raise _Reached  # the rest of the network is not needed

    if where == "input":
        handle = module.register_forward_pre_hook(lambda m, inputs: keep(inputs))
    else:
        handle = module.register_forward_hook(lambda m, inputs, output: keep(output))
    try:
        model(x)
    except _Reached:
        pass
    finally:
        handle.remove()
    if not found or not isinstance(found[0], torch.Tensor) or found[0].dim() != 4:
        raise ValueError("the chosen layer was not reached or does not produce an (N, C, H, W) tensor")
    return found[0]


def _image_size(input_size: int | Sequence[int], channels: int) -> tuple[int, int, int]:
    if isinstance(input_size, int):
        return channels, input_size, input_size
    size = tuple(int(s) for s in input_size)
    if len(size) == 2:
        return (channels, *size)
    if len(size) in (3, 4):
        return size[-3:]
    raise ValueError(f"input_size must be S, (H, W), (C, H, W) or (N, C, H, W), got {input_size}")


def _centre_gradient(model: nn.Module, module: nn.Module, x: torch.Tensor, where: str) -> torch.Tensor:
    """d(centre position of `module`'s input or output, summed over channels) / d`x`."""
    with torch.enable_grad():
        out = _forward_to(model, module, x, where)
        weight = torch.zeros_like(out)
        weight[:, :, out.shape[-2] // 2, out.shape[-1] // 2] = 1.0
        (grad,) = torch.autograd.grad(out, x, weight)
    return grad


def effective_receptive_field(
    model: nn.Module,
    input_size: int | Sequence[int],
    *,
    layer: str | None = None,
    channels: int = 3,
    samples: int = 8,
    seed: int = 0,
) -> torch.Tensor:
    """How strongly each input pixel influences the centre unit of `layer` (Luo et al., 2016).

    The input is a batch of `samples` standard-normal images; the gradient that is 1 at the centre
    position (row H' // 2, column W' // 2, all channels) of the layer's output and 0 elsewhere is
    sent back to the input. The heatmap is |gradient| summed over channels, averaged over the
    samples and scaled to a maximum of 1. It is nonzero only inside the theoretical receptive field
    and, as Luo et al. show, concentrated near its centre.

    The model keeps its current weights (random or trained) and runs in eval mode; the modes of all
    modules are restored afterwards.

    Args:
        model: the network.
        input_size: S, (H, W) or (C, H, W); a given C overrides `channels`.
        layer: the name of a module (as in `model.named_modules()`). By default the input of the
            global pooling, i.e. the last feature map (after shortcuts and concatenations), or the
            output of the last conv/pool layer if there is no global pooling.
        channels: input channels when `input_size` does not say.
        samples: random inputs to average over.
        seed: seed of the random inputs.

    Returns:
        A float tensor (H, W) on the CPU, maximum 1 (all zeros if no pixel reaches the unit).

    Raises:
        ValueError: `layer` is not a module of `model` (the message suggests close names), or it does
            not produce an (N, C, H, W) feature map.
    """
    c, h, w = _image_size(input_size, channels)
    with eval_mode(model):
        device = model_device(model)
        where = "output"
        if layer is None:
            layer, where = _default_target(model, torch.zeros(1, c, h, w, device=device))
        modules = dict(model.named_modules())
        if layer not in modules:
            raise unknown(f"{type(model).__name__} module", layer, [name for name in modules if name])
        generator = torch.Generator().manual_seed(seed)  # on the CPU: the same images on every device
        x = torch.randn(samples, c, h, w, generator=generator).to(device).requires_grad_()
        grad = _centre_gradient(model, modules[layer], x, where)
    heat = grad.detach().abs().sum(dim=1).mean(dim=0).float().cpu()
    peak = heat.max()
    return heat / peak if peak > 0 else heat
