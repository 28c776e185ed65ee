"""Measuring a network without training it: weights and multiply-adds per layer, depth, stage outputs.

The chapters count what their networks cost and how deep they are; the counting lives here so that the
notebooks keep only the arithmetic that teaches:

    weights_and_mult_adds   {top-level layer: (weights, multiply-adds)} for one image, from forward hooks
    longest_path            the most layers of some kinds (convolutions) on one input-to-output path
    weight_depth            (depth, receptive field) after each layer or block, from a receptive-field table
    describe                one network's parameters, compute, memory, field, depth, widths and kernels
    stage_layers,           the layers whose outputs are worth showing, and the last output at each
    stage_ends              spatial size among them: the end of each stage

Nothing here trains or changes a model: each function runs it in eval mode (`lib.device.eval_mode`) and
gives every module its previous mode back.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any, NamedTuple, TypedDict

import torch
import torch.fx
from torch import nn
from torchinfo import summary

from .device import eval_mode, model_device
from .receptive_field import LayerField, receptive_field

__all__ = [
    "saved_for_backward",
    "LayerCost", "WEIGHTED_LAYERS", "weights_and_mult_adds", "longest_path", "weight_depth", "Description",
    "describe", "stage_layers", "stage_ends",
]

# The layers whose cost is counted: one multiply-add per weight at every output position.
WEIGHTED_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class LayerCost(NamedTuple):
    """What one layer (or all the layers of one top-level child) costs for one image."""

    weights: int  # biases are left out, as in the papers' tables
    mult_adds: int  # weights times output positions


def _check_module(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")


def _check_input_size(input_size: Any) -> tuple[int, ...]:
    """`input_size` as a tuple of positive ints, the shape of one input without the batch dimension."""
    if isinstance(input_size, torch.Size) or (isinstance(input_size, (tuple, list)) and input_size):
        if all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in input_size):
            return tuple(input_size)
    raise ValueError(f"input_size must be a non-empty tuple of positive ints such as (3, 224, 224), "
                     f"got {input_size!r}")


def _positions(module: nn.Module, output: torch.Tensor) -> int:
    """How many times one image makes `module` apply each of its weights: once per output position."""
    if isinstance(module, nn.Linear):
        return output[0].numel() // module.out_features  # 1 for a (batch, features) output
    return output[0, 0].numel()  # a convolution: the positions of one output channel


def weights_and_mult_adds(
    model: nn.Module, input_size: Sequence[int]
) -> tuple[dict[str, LayerCost], torch.Size]:
    """Weights and multiply-adds of `model`'s convolutions and linear layers for one image, per child.

    A layer does one multiply-add per weight at every output position, so its cost is its weights times
    its output positions (H x W for a 2-d convolution, 1 for a linear layer on a vector); biases are left
    out. The layers inside one top-level child ("inception3a", "features") are added up under its name;
    a layer that runs twice counts twice. The model runs once in eval mode without gradients, on an input
    of zeros on its own device: build it on the "meta" device and even a huge network costs nothing.

    Args:
        model: the network.
        input_size: the shape of one input, e.g. (3, 224, 224).

    Returns:
        ({child name: LayerCost(weights, mult_adds)} in the order the layers ran, the output's shape).

    Raises:
        TypeError: `model` is not a module, or its output is not one tensor.
        ValueError: `input_size` is not a tuple of positive ints.
    """
    _check_module(model)
    input_size = _check_input_size(input_size)
    costs: dict[str, LayerCost] = {}

    def record(module: nn.Module, inputs: Any, output: torch.Tensor, name: str) -> None:
        weights = module.weight.numel()
        before = costs.get(name, LayerCost(0, 0))
        mult_adds = weights * _positions(module, output)
        costs[name] = LayerCost(before.weights + weights, before.mult_adds + mult_adds)

    handles = [module.register_forward_hook(partial(record, name=name.split(".")[0]))
               for name, module in model.named_modules() if isinstance(module, WEIGHTED_LAYERS)]
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.get_default_dtype())
    try:
        with eval_mode(model), torch.no_grad():
            output = model(torch.zeros(1, *input_size, device=model_device(model), dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"expected the model to return one tensor in eval mode, got {type(output).__name__}")
    return costs, output.shape


def longest_path(module: nn.Module, kinds: tuple[type[nn.Module], ...] = (nn.Conv2d,)) -> int:
    """The most layers of the given `kinds` met on one path from `module`'s input to its output.

    The path runs through `module`'s torch.fx graph: parallel branches (an Inception module's four, a
    residual block's shortcut) are alternatives, and the longest one counts. Only submodules are counted,
    not functional calls such as `F.conv2d`. The graph is traced in the module's current mode.

    Args:
        module: a torch.fx-traceable network or block.
        kinds: the layer classes to count; (nn.Conv2d, nn.Linear) counts every layer with weights of
            a 2-d CNN.

    Raises:
        TypeError: `module` is not a module, or torch.fx cannot trace it.
    """
    _check_module(module)
    try:
        graph = torch.fx.symbolic_trace(module).graph
    except Exception as error:  # fx raises several kinds (TraceError, TypeError from a Proxy, ...)
        raise TypeError(f"torch.fx cannot trace {type(module).__name__}: {error}") from error
    modules = dict(module.named_modules())
    depth: dict[torch.fx.Node, int] = {}
    for node in graph.nodes:  # in topological order: a node's inputs come before it
        before = max((depth[n] for n in node.all_input_nodes), default=0)
        counted = node.op == "call_module" and isinstance(modules[node.target], kinds)
        depth[node] = before + int(counted)
        if node.op == "output":
            return depth[node]
    return 0


def _group_and_branch(name: str) -> tuple[str, str]:
    """The block a layer belongs to and its branch in it, from torchvision's layer names.

    An Inception module ("inception3a.branch2.1.conv") is one block with branches "branch1".."branch4";
    a residual block ("layer2.0.conv1", "layer2.0.downsample.0") is one block with a "main" path and a
    "downsample" shortcut; every other layer is a block of its own.
    """
    parts = name.split(".")
    if parts[0].startswith("inception"):
        return parts[0], parts[1] if len(parts) > 1 else "main"
    if parts[0].startswith("layer") and len(parts) > 2:
        return ".".join(parts[:2]), "downsample" if "downsample" in parts else "main"
    return name, "main"


def weight_depth(table: Iterable[LayerField]) -> list[tuple[int, int]]:
    """(depth, receptive field) after every convolution or pooling layer, one point per block.

    Depth counts the convolutions on the longest path. An Inception module or a residual block is one
    block (see the layer names it expects below): its depth is its longest branch, its field the largest
    of its branches' fields. The adaptive or global pooling before the classifier is left out.

    Args:
        table: the rows of `lib.receptive_field.receptive_field(model, input_size)`, in forward order;
            blocks are recognised by torchvision's names ("inception4a.branch2...", "layer3.1...").

    Returns:
        [(convolutions so far, receptive field in pixels)], one pair per block, in forward order.
    """
    convs: dict[str, dict[str, int]] = {}  # block -> branch -> convolutions in it
    sizes: dict[str, int] = {}  # block -> its largest field
    for row in table:
        if row.kind.startswith("adaptive"):
            continue
        block, branch = _group_and_branch(row.name)
        sizes[block] = max(sizes.get(block, 0), row.size)
        branches = convs.setdefault(block, {})
        branches[branch] = branches.get(branch, 0) + int(row.kind == "conv")
    depth, profile = 0, []
    for block, branches in convs.items():
        depth += max(branches.values())
        profile.append((depth, sizes[block]))
    return profile


class Description(TypedDict):
    """What `describe` measures for one network (a dict, indexed by these keys)."""

    input: str  # "3x224x224"
    params: int
    conv_params: int  # parameters outside the linear layers (convolutions and normalisation)
    fc_params: int  # parameters of the linear layers
    macs: int  # multiply-adds for one image, from torchinfo
    activation_mb: float  # torchinfo's forward/backward pass size, in MB (1e6 bytes)
    rf: int  # the largest receptive field before the adaptive pooling, in pixels
    rf_layer: str  # the layer that has it
    profile: list[tuple[int, int]]  # weight_depth's (depth, field) points
    depth: int  # convolutions on the longest path + linear layers
    widest: int  # the most output channels of a convolution
    kernels: list[int]  # the convolutions' kernel sizes, largest first
    norms: list[str]  # the normalisation layers' class names
    shortcuts: bool  # whether it has residual blocks


def describe(model: nn.Module, input_size: Sequence[int]) -> Description:
    """Parameters, compute, activation memory, receptive field, depth and shape of one network.

    Runs torchinfo's summary (one forward pass of one image on the model's device) and
    `lib.receptive_field.receptive_field`, both in eval mode.

    Args:
        model: a torch.fx-traceable 2-d CNN with at least one convolution.
        input_size: the shape of one image, (C, H, W).

    Raises:
        TypeError: `model` is not a module.
        ValueError: `input_size` is not a tuple of positive ints, or the model has no convolution.
    """
    _check_module(model)
    input_size = _check_input_size(input_size)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"expected a network with convolutions, {type(model).__name__} has none")
    with eval_mode(model):
        stats = summary(model, input_size=(1, *input_size), device=model_device(model), verbose=0)
        table = receptive_field(model, input_size)
    field = max((row for row in table if not row.kind.startswith("adaptive")), key=lambda row: row.size)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    norms = sorted({type(m).__name__ for m in model.modules()  # the book's own LRN class counts too
                    if isinstance(m, (nn.BatchNorm2d, nn.LocalResponseNorm))
                    or "ResponseNorm" in type(m).__name__})
    profile = weight_depth(table)
    return Description(
        input="x".join(map(str, input_size)),
        params=sum(p.numel() for p in model.parameters()),
        conv_params=sum(p.numel() for m in model.modules() if not isinstance(m, nn.Linear)
                        for p in m.parameters(recurse=False)),
        fc_params=sum(p.numel() for m in linears for p in m.parameters()),
        macs=stats.total_mult_adds,
        activation_mb=stats.total_output_bytes / 1e6,
        rf=field.size, rf_layer=field.name,
        profile=profile,
        depth=profile[-1][0] + len(linears),
        widest=max(m.out_channels for m in convs),
        kernels=sorted({m.kernel_size[0] for m in convs}, reverse=True),
        norms=norms,
        shortcuts=any(type(m).__name__ in ("BasicBlock", "Bottleneck") for m in model.modules()),
    )


def stage_layers(model: nn.Module) -> list[str]:
    """The names of `model`'s top-level layers, with a flat `nn.Sequential` opened up into its layers.

    AlexNet's and VGG's `features` become "features.0", "features.1", ...; a child whose name starts with
    "aux" (GoogLeNet's auxiliary heads, which do not run in eval mode) is left out.
    """
    _check_module(model)
    names = []
    for name, child in model.named_children():
        if name.startswith("aux"):
            continue
        children = list(child.named_children())
        if isinstance(child, nn.Sequential) and all(not list(c.children()) for _, c in children):
            names += [f"{name}.{sub}" for sub, _ in children]
        else:
            names.append(name)
    return names


def stage_ends(outputs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The last of `outputs` at each spatial size: where each stage of the network ends.

    Args:
        outputs: {layer name: output with a batch dimension} in forward order, e.g. from
            `lib.visualize.feature_maps(model, image, stage_layers(model))`. Outputs that are not
            (N, C, H, W) maps wider than 1 pixel are skipped.

    Returns:
        {layer name: its output for the first image, (C, H, W)}, in the order the sizes first appear.
    """
    ends: dict[int, tuple[str, torch.Tensor]] = {}
    for name, output in outputs.items():
        if isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[-1] > 1:
            ends[output.shape[-1]] = (name, output[0])  # a later output at the same size replaces it
    return dict(ends.values())


def saved_for_backward(model: nn.Module, input_size: Sequence[int]) -> dict[str, int]:
    """Bytes that autograd keeps for one image's backward pass in training mode, by the kind of
    layer that saved each tensor first (what activation memory really is, unlike torchinfo's
    "forward/backward pass size"). Weights are left out; a storage counts once, so an in-place
    ReLU's output, which is its input's storage, is not counted twice. Modes are restored after.
    """
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, tuple[str, int]] = {}
    layer = ["input"]

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            saved.setdefault(storage.data_ptr(), (layer[0], storage.nbytes()))
        return tensor

    def enter(module: nn.Module, _inputs: Any) -> None:
        layer[0] = type(module).__name__

    modes = {module: module.training for module in model.modules()}
    hooks = [m.register_forward_pre_hook(enter) for m in model.modules() if not any(m.children())]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model.train()(torch.rand(1, *input_size, device=model_device(model)))
    finally:
        for hook in hooks:
            hook.remove()
        for module, training in modes.items():
            module.training = training
    totals: dict[str, int] = {}
    for kind, size in saved.values():
        totals[kind] = totals.get(kind, 0) + size
    return totals
