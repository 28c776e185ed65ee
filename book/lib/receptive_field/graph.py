"""The receptive field of every layer of a model, found by walking its torch.fx graph.

`receptive_field` traces the model with torch.fx, runs the traced graph once to record every node's
output shape, then gives every node a field (`geometry.AxisField` per axis): conv and pool layers
apply the window formula, padding shifts the field, position-wise layers keep it and joins (torch.cat,
+, *) take the union of their inputs' fields.
"""
from __future__ import annotations

import linecache
import os
from collections.abc import Sequence
from dataclasses import dataclass, field as dataclass_field
from typing import Any, NamedTuple

import torch
from torch import fx, nn

from ..device import eval_mode, model_device
from ..models import _checks
from .geometry import (
    INPUT_FIELD, Field, FieldTable, LayerField, Pair, Window, adaptive_window, apply_window, layer_field,
    pair_text, same_padding, union_field, window_field,
)

# --------------------------------------------------------------------------------------------------
# Which layers are windows, and with which geometry.
# --------------------------------------------------------------------------------------------------
POOLS = {nn.MaxPool2d: "maxpool", nn.AvgPool2d: "avgpool", nn.LPPool2d: "lppool"}
ADAPTIVE = {nn.AdaptiveAvgPool2d: "adaptive avgpool", nn.AdaptiveMaxPool2d: "adaptive maxpool"}
WINDOW_MODULES = (nn.Conv2d, *POOLS, *ADAPTIVE)
_PADS = (nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d, nn.CircularPad2d)
# Layers that mix positions in ways the formulas do not describe: the field is not followed past them.
_NOT_FOLLOWED = (nn.Linear, nn.Upsample, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
                 nn.Conv1d, nn.Conv3d, nn.MaxPool1d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool3d)
# The functional forms, with their parameters in order after the input.
_FUNCTIONAL_POOLS = {
    "max_pool2d": ("maxpool", ("kernel_size", "stride", "padding", "dilation")),
    "avg_pool2d": ("avgpool", ("kernel_size", "stride", "padding")),
    "lp_pool2d": ("lppool", ("norm_type", "kernel_size", "stride")),
}


def _pair(value: int | Sequence[int]) -> Pair:
    if isinstance(value, int):
        return value, value
    values = tuple(value)
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


def _conv_window(kernel, stride, padding, dilation) -> Window:
    kernel, stride, dilation = _pair(kernel), _pair(stride), _pair(dilation)
    if padding == "valid":
        padding = (0, 0)
    elif padding == "same":
        padding = tuple(same_padding(k, d) for k, d in zip(kernel, dilation))
    return Window("conv", kernel, stride, _pair(padding), dilation)


def _pool_window(kind, kernel, stride=None, padding=0, dilation=1) -> Window:
    # stride=None (or [] in the functional form) means "stride = kernel".
    return Window(kind, _pair(kernel), _pair(stride or kernel), _pair(padding), _pair(dilation))


def _adaptive_window(kind: str, in_hw: Pair, out_hw: Pair) -> Window | str:
    """The equivalent window of an adaptive pooling, or a sentence saying why there is none."""
    windows = [adaptive_window(i, o) for i, o in zip(in_hw, out_hw)]
    if None in windows:
        return (f"{kind} from {in_hw[0]}x{in_hw[1]} to {out_hw[0]}x{out_hw[1]} has windows of unequal "
                "width and spacing")
    (kh, sh), (kw, sw) = windows
    return Window(kind, (kh, kw), (sh, sw), (0, 0), (1, 1))


def _module_window(module: nn.Module, in_hw: Pair, out_hw: Pair) -> Window | str | None:
    """The window of a conv/pool module; a reason string if it has no fixed window; None otherwise."""
    if isinstance(module, nn.Conv2d):
        return _conv_window(module.kernel_size, module.stride, module.padding, module.dilation)
    for cls, kind in POOLS.items():
        if isinstance(module, cls):
            return _pool_window(kind, module.kernel_size, module.stride, getattr(module, "padding", 0),
                                getattr(module, "dilation", 1))
    for cls, kind in ADAPTIVE.items():
        if isinstance(module, cls):
            return _adaptive_window(kind, in_hw, out_hw)
    return None


def _call_arguments(node: fx.Node, names: Sequence[str]) -> dict[str, Any]:
    values = dict(zip(names, node.args[1:]))
    values.update({k: v for k, v in node.kwargs.items() if k in names})
    return values


def _function_window(node: fx.Node, in_hw: Pair, out_hw: Pair) -> Window | str | None:
    """The window of F.max_pool2d, F.conv2d and the like, as `_module_window`."""
    name = _target_name(node)
    if name in _FUNCTIONAL_POOLS:
        kind, names = _FUNCTIONAL_POOLS[name]
        a = _call_arguments(node, names)
        return _pool_window(kind, a["kernel_size"], a.get("stride"), a.get("padding", 0), a.get("dilation", 1))
    if name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        return _adaptive_window("adaptive " + name.split("_")[1] + "pool", in_hw, out_hw)
    if name == "conv2d" and node.op == "call_function":
        a = _call_arguments(node, ("weight", "bias", "stride", "padding", "dilation"))
        kernel = tuple(_tensor_shapes(a["weight"])[0][-2:])
        return _conv_window(kernel, a.get("stride", 1), a.get("padding", 0), a.get("dilation", 1))
    return None


def _padding_before(node: fx.Node, module: nn.Module | None) -> Pair | None:
    """(top, left) padding of a padding layer (nn.ZeroPad2d etc. or F.pad), else None."""
    if isinstance(module, _PADS):
        left, _, top, _ = module.padding
        return top, left
    if module is None and _target_name(node) == "pad":
        pad = _call_arguments(node, ("pad",))["pad"]  # (left, right, top, bottom): last axis first
        return (pad[2] if len(pad) >= 4 else 0), pad[0]
    return None


def _window_of(node: fx.Node, module: nn.Module | None) -> Window | str | None:
    """The window if `node` is a conv or pool layer (a reason string for uneven adaptive pooling)."""
    data = node.args[0] if node.args else None
    in_shape, out_shape = _shape(data), _shape(node)
    if in_shape is None or out_shape is None or len(in_shape) < 3 or len(out_shape) < 3:
        return None
    in_hw, out_hw = in_shape[-2:], out_shape[-2:]
    if module is not None:
        return _module_window(module, in_hw, out_hw)
    return _function_window(node, in_hw, out_hw)


# --------------------------------------------------------------------------------------------------
# Nodes: names, shapes and where their spatial axes are.
# --------------------------------------------------------------------------------------------------
class _Map(NamedTuple):
    """A tensor that depends on the input and still has its two spatial axes."""

    field: Field
    axis: int  # the index of the height axis in the tensor's shape (width follows it)


@dataclass(frozen=True)
class _Lost:
    """A tensor that depends on the input but whose spatial layout is gone (flatten, linear, upsampling)."""

    where: str


class _Shape(NamedTuple):
    shape: tuple[int, ...]
    dtype: torch.dtype


def _target_name(node: fx.Node) -> str:
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def _scope(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return next(reversed(stack.values()))[0] if stack else ""


def _describe(node: fx.Node) -> str:
    """A node as an error message names it: "3 (Conv2d)", "mul (mul in block)"."""
    if node.op == "call_module":
        return f"{node.target} ({type(node.graph.owning_module.get_submodule(node.target)).__name__})"
    target = f"Tensor.{node.target}" if node.op == "call_method" else _target_name(node)
    scope = _scope(node)
    inside = f" in {scope}" if scope else ""
    return f"{node.name}{inside}" if target == node.name else f"{node.name} ({target}{inside})"


def _shapes_of(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return _Shape(tuple(value.shape), value.dtype)
    if isinstance(value, (list, tuple)):
        return [_shapes_of(item) for item in value]
    if isinstance(value, dict):
        return {key: _shapes_of(item) for key, item in value.items()}
    return None


def _tensor_shapes(node: Any) -> list[tuple[int, ...]]:
    """The shapes of the tensors a node produced in the shape-recording run."""
    found: list[tuple[int, ...]] = []

    def collect(value: Any) -> None:
        if isinstance(value, _Shape):
            found.append(value.shape)
        elif isinstance(value, (list, tuple)):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)

    collect(node.meta.get("rf_shapes") if isinstance(node, fx.Node) else None)
    return found


def _shape(node: Any) -> tuple[int, ...] | None:
    shapes = _tensor_shapes(node)
    return shapes[0] if shapes else None


def _hw(shape: tuple[int, ...], axis: int) -> Pair:
    return shape[axis], shape[axis + 1]


def _find_axes(shape: tuple[int, ...], hw: Pair, prefer: Sequence[int]) -> int | None:
    """Where the spatial size `hw` sits in `shape`: a preferred place, else the only place, else None."""
    places = [i for i in range(len(shape) - 1) if _hw(shape, i) == hw]
    for axis in prefer:
        if axis in places:
            return axis
    return places[0] if len(places) == 1 else None


def _row_name(node: fx.Node, taken: dict[str, int]) -> str:
    if node.op == "call_module":
        base = str(node.target)
    else:
        base = ".".join(part for part in (_scope(node), node.name) if part)
    count = taken.get(base, 0)
    taken[base] = count + 1
    return base if count == 0 else f"{base}@{count}"  # a module called twice


# --------------------------------------------------------------------------------------------------
# Following the graph.
# --------------------------------------------------------------------------------------------------
_JOIN_ONLY_ALIGNED = "receptive_field can only join branches whose outputs line up unit for unit"


@dataclass
class _Walk:
    """What the walk has found so far: every node's value, the conv/pool rows and why it stopped."""

    values: dict[fx.Node, _Map | _Lost | None] = dataclass_field(default_factory=dict)
    rows: list[LayerField] = dataclass_field(default_factory=list)
    taken: dict[str, int] = dataclass_field(default_factory=dict)  # row names, for modules called twice
    note: str | None = None


def _walk(gm: fx.GraphModule) -> _Walk:
    """Give every node a value (a `_Map`, `_Lost`, or None when it does not depend on the input), in graph
    (= forward) order, collecting a row for every conv or pool layer."""
    walk = _Walk()
    for node in gm.graph.nodes:
        walk.values[node] = _value_of(gm, node, walk)
    return walk


def _value_of(gm: fx.GraphModule, node: fx.Node, walk: _Walk) -> _Map | _Lost | None:
    shape = _shape(node)
    if node.op == "placeholder":  # the image; any further argument is not followed
        first = not any(n.op == "placeholder" for n in walk.values)
        return _Map((INPUT_FIELD, INPUT_FIELD), len(shape) - 2) if first and shape else None
    sources = [n for n in node.all_input_nodes if walk.values.get(n) is not None]
    if node.op in ("get_attr", "output") or not sources or shape is None:
        return None  # constants, x.size(), input checks: no field
    module = gm.get_submodule(node.target) if node.op == "call_module" else None
    window = _window_of(node, module)
    if window is None:
        return _follow(node, module, shape, [(n, walk.values[n]) for n in sources])
    return _through_window(node, window, shape, walk)


def _through_window(node: fx.Node, window: Window | str, shape: tuple[int, ...], walk: _Walk) -> _Map | _Lost | None:
    """A conv or pool layer: apply its window and add its row to the table."""
    data = walk.values.get(node.args[0])
    if isinstance(data, _Lost):
        raise ValueError(
            f"{_describe(node)} works on a tensor whose spatial layout was lost at {data.where}; "
            "receptive_field follows convolution, pooling, padding and position-wise layers only"
        )
    if data is None:
        return None
    if isinstance(window, str):  # adaptive pooling with uneven windows: the table ends here
        walk.note = walk.note or f"The table stops at {_describe(node)}: {window}."
        return _Lost(_describe(node))
    field = apply_window(data.field, window)
    walk.rows.append(layer_field(_row_name(node, walk.taken), window.kind, field, shape[-2:], window))
    return _Map(field, len(shape) - 2)


def _follow(node: fx.Node, module: nn.Module | None, shape: tuple[int, ...],
            incoming: list[tuple[fx.Node, _Map | _Lost]]) -> _Map | _Lost:
    """Any node that is not a conv or pool layer.

    Padding shifts the field. A node that keeps the spatial size is position-wise (ReLU, batch norm,
    dropout, channel slicing) and keeps the field, or, with several inputs, joins branches (torch.cat,
    +, *): the union of their fields. A node that loses the spatial size (flatten, linear,
    upsampling) ends the field.
    """
    maps = [(n, v) for n, v in incoming if isinstance(v, _Map)]
    lost = [v for _, v in incoming if isinstance(v, _Lost)]
    if not maps:
        return lost[0]
    size = _common_size(node, maps)
    padding = _padding_before(node, module)
    if padding is not None and len(maps) == 1:
        field = tuple(window_field(f, 1, padding=p) for f, p in zip(maps[0][1].field, padding))
        return _Map(field, len(shape) - 2)
    # the height axis keeps its index counted from the left (unfold) or from the right (x[:, 0])
    prefer = [i for n, v in maps for i in (v.axis, v.axis + len(shape) - len(_shape(n)))]
    axis = None if isinstance(module, _NOT_FOLLOWED) else _find_axes(shape, size, prefer)
    if axis is None:
        if len(maps) > 1:
            raise ValueError(f"{_describe(node)} joins {size[0]}x{size[1]} maps into a tensor of shape "
                             f"{shape}; {_JOIN_ONLY_ALIGNED}")
        return _Lost(_describe(node))  # flatten, linear, upsampling: no spatial field from here on
    if lost:
        raise ValueError(
            f"{_describe(node)} combines a feature map with the output of {lost[0].where}, whose "
            "spatial layout is gone (a reshape or a mean over positions); receptive_field cannot "
            "follow such a branch"
        )
    return _Map(_join(node, [v for _, v in maps]), axis)


def _common_size(node: fx.Node, maps: list[tuple[fx.Node, _Map]]) -> Pair:
    """The spatial size that all of a node's incoming maps share (a ValueError if they differ)."""
    sizes = sorted({_hw(_shape(n), v.axis) for n, v in maps})
    if len(sizes) > 1:
        raise ValueError(f"{_describe(node)} combines tensors of spatial sizes "
                         f"{', '.join(f'{h}x{w}' for h, w in sizes)}; {_JOIN_ONLY_ALIGNED}")
    return sizes[0]


def _join(node: fx.Node, maps: list[_Map]) -> Field:
    """The field of branches that meet at `node`: their union, per axis."""
    if len(maps) == 1:
        return maps[0].field
    try:
        return tuple(union_field([v.field[i] for v in maps]) for i in (0, 1))
    except ValueError:
        jumps = ", ".join(pair_text((v.field[0].jump, v.field[1].jump)) for v in maps)
        raise ValueError(
            f"cannot join the branches that meet at {_describe(node)}: their jumps are {jumps} input "
            "pixels, so their units do not line up (every branch must downsample by the same factor)"
        ) from None


def _module_outputs(gm: fx.GraphModule, walk: _Walk) -> dict[str, LayerField]:
    """The field at the output of every module: that of the last node computed inside it."""
    last: dict[str, tuple[fx.Node, type]] = {}
    for node in gm.graph.nodes:
        if isinstance(walk.values.get(node), _Map):
            for path, cls in (node.meta.get("nn_module_stack") or {}).values():
                last[path] = (node, cls)
    taken = {row.name for row in walk.rows}
    return {
        path: layer_field(path, cls.__name__, walk.values[node].field, _hw(_shape(node), walk.values[node].axis))
        for path, (node, cls) in last.items() if path and path not in taken
    }


# --------------------------------------------------------------------------------------------------
# Tracing and recording shapes.
# --------------------------------------------------------------------------------------------------
def _where(error: BaseException) -> str:
    """The innermost frame of `error` outside torch and this package, as "Gate.forward: `if x.sum() > 0:`"."""
    skip = (os.path.dirname(torch.__file__), os.path.dirname(__file__), "<eval_with_key>")  # fx's generated code
    found = ""
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if not code.co_filename.startswith(skip):
            line = linecache.getline(code.co_filename, tb.tb_lineno).strip()
            name = getattr(code, "co_qualname", code.co_name).rsplit("<locals>.", 1)[-1]
            found = f" in {name}" + (f": `{line}`" if line else "")
        tb = tb.tb_next
    return found


class _LayerTracer(fx.Tracer):
    """A tracer that keeps subclasses of conv and pool layers (e.g. a masked convolution) as one layer."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return isinstance(module, (nn.Conv2d, *POOLS)) or super().is_leaf_module(module, qualified_name)


def _trace(model: nn.Module) -> fx.GraphModule:
    """Symbolic trace of `model` (in eval mode) that keeps the book's input checks as graph nodes."""
    check = _checks.check_image_batch

    def check_or_record(x, *args, **kwargs):  # for models that call _checks.check_image_batch(...)
        if isinstance(x, fx.Proxy):
            return x.tracer.create_proxy("call_function", check, (x, *args), kwargs)
        return check(x, *args, **kwargs)

    # autowrap_functions covers `from ._checks import check_image_batch`; the patch covers module access.
    tracer = _LayerTracer(autowrap_functions=(check,))
    _checks.check_image_batch = check_or_record
    try:
        graph = tracer.trace(model)
    except Exception as error:
        raise ValueError(
            f"receptive_field follows the network with torch.fx symbolic tracing, which needs a forward() "
            f"without Python control flow on tensor values; tracing {type(model).__name__} failed"
            f"{_where(error)}: {error}"
        ) from error
    finally:
        _checks.check_image_batch = check
    return fx.GraphModule(tracer.root, graph)


class _ShapeRecorder(fx.Interpreter):
    """Runs the traced model once and keeps every node's output (shapes only) in node.meta["rf_shapes"]."""

    def record(self, x: torch.Tensor, model_name: str) -> None:
        self.extra_traceback = False  # our message names the node instead
        self.node = None
        try:
            with torch.no_grad():
                self.run(x)
        except Exception as error:
            where = f" at {_describe(self.node)}" if self.node is not None else ""
            raise ValueError(
                f"{model_name} cannot run on an input of shape {tuple(x.shape)}{where}: {error}"
            ) from error

    def run_node(self, node: fx.Node) -> Any:
        self.node = node
        result = super().run_node(node)
        node.meta["rf_shapes"] = _shapes_of(result)
        return result


def _input_shape(input_size: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in input_size)
    if len(shape) == 3:
        return (1, *shape)
    if len(shape) == 4:
        return shape
    raise ValueError(f"input_size must be (C, H, W) or (N, C, H, W), got {tuple(input_size)}")


def receptive_field(model: nn.Module, input_size: Sequence[int]) -> FieldTable:
    """The receptive field of every convolution and pooling layer of `model`, in forward order.

    The model is traced with torch.fx (in eval mode, so that auxiliary outputs of training mode are
    left out) and run once on a zero tensor of `input_size` to record every layer's output size.
    Each node then gets a field (size, jump, start per axis): conv and pool layers apply the window
    formula (see `lib.receptive_field.geometry`), padding layers shift it, position-wise layers and
    functions keep it, and where several tensors meet (torch.cat, +, *) the field is the union of theirs.

    Adaptive pooling counts as the ordinary pooling it equals when the output size divides the
    input size (global pooling included). Otherwise its windows are uneven and the table stops there
    (`FieldTable.note` says so), as it does at flatten, linear layers or upsampling, after which
    there is no spatial field to follow. Normalisations that pool statistics over the whole map
    (GroupNorm, batch norm in training mode) are treated as position-wise, as is customary.

    Args:
        model: a network of 2-D convolution and pooling layers that torch.fx can trace.
        input_size: (C, H, W) or (N, C, H, W), as for torchinfo.

    Returns:
        A `FieldTable` of `LayerField`s named by module path ("features.0", "layer1.0.conv2").
        `table["layer1"]` gives the field at the output of any module, after its shortcuts.

    Raises:
        ValueError: the model cannot be traced (data-dependent control flow), cannot run on
            `input_size`, or has branches that do not line up (different jumps or sizes).

    Example:
        >>> table = receptive_field(torchvision.models.alexnet(), (3, 224, 224))
        >>> table["features.12"].size
        195
    """
    shape = _input_shape(input_size)
    with eval_mode(model):
        gm = _trace(model)
        _ShapeRecorder(gm).record(torch.zeros(shape, device=model_device(model)), type(model).__name__)
    walk = _walk(gm)
    return FieldTable(walk.rows, input_size=shape[1:], modules=_module_outputs(gm, walk), note=walk.note)
