"""Receptive fields of convolutional networks: theoretical (layer arithmetic) and effective (gradients).

The *receptive field* of a unit is the patch of input pixels that can influence it. Along one spatial
axis, every layer's output is described by three numbers, all in input pixels (Araujo et al., 2019;
Dumoulin and Visin, 2016):

    size  r   how many input pixels one unit sees,
    jump  j   how far apart (in input pixels) two neighbouring units' fields are: the product of strides,
    start     the centre of the first unit's field (pixel centres sit at 0, 1, ..., N - 1; padding makes
              it negative, the field may reach outside the image).

A window layer with kernel k, stride s, padding p and dilation d maps (r, j, start) to

    r'     = r + (k - 1) * d * j
    j'     = j * s
    start' = start + ((k - 1) / 2 * d - p) * j

These formulas treat the zero padding of every layer as if it were made of units that see pixels
too. A unit far from the border depends on exactly the pixels of its field; near the border, part of
its field is padding, and it may depend on fewer real pixels than the clipped field shows.

Layers that work position by position (batch norm, ReLU, LRN, dropout) leave the field unchanged.
Where branches meet (Inception's concatenation, a residual addition) the field is the union of the
branches' fields, which requires them to move in step: same jump. When the branches are centred
alike, the union is simply the largest field.

`receptive_field` follows a model with torch.fx symbolic tracing, applies these formulas node by
node and returns a `FieldTable` with one `LayerField` per convolution or pooling layer.
`effective_receptive_field` measures how much each input pixel actually influences the centre unit
(Luo et al., 2016): the gradient of that unit with respect to the input.
"""
from __future__ import annotations

import difflib
import linecache
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import fx, nn

from .models import _checks

__all__ = [
    "AxisField",
    "LayerField",
    "FieldTable",
    "window_field",
    "union_field",
    "adaptive_window",
    "same_padding",
    "receptive_field",
    "draw_receptive_field",
    "effective_receptive_field",
    "plot_effective_receptive_field",
]


# --------------------------------------------------------------------------------------------------
# The arithmetic, one axis at a time.
# --------------------------------------------------------------------------------------------------
class AxisField(NamedTuple):
    """The field of a layer's units along one axis, in input pixels."""

    size: int
    jump: int
    start: float


INPUT_FIELD = AxisField(size=1, jump=1, start=0.0)  # an input pixel sees itself


def window_field(field: AxisField, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> AxisField:
    """The field after a convolution or pooling window (along one axis).

    The window covers (kernel - 1) * dilation + 1 input units, each `field.jump` pixels apart, so the
    field grows by (kernel - 1) * dilation * jump. Padding shifts the first window left by `padding`
    units. Padding alone is a window of size 1: `window_field(f, 1, padding=p)`.
    """
    return AxisField(
        size=field.size + (kernel - 1) * dilation * field.jump,
        jump=field.jump * stride,
        start=field.start + ((kernel - 1) / 2 * dilation - padding) * field.jump,
    )


def union_field(fields: Sequence[AxisField]) -> AxisField:
    """The smallest field containing every field in `fields` (branches that meet in a sum or a concat).

    Raises:
        ValueError: when the jumps differ. Unit i of one branch then sits above a different place in
            the input than unit i of another, so no single (size, jump, start) describes the result.
    """
    jumps = sorted({f.jump for f in fields})
    if len(jumps) != 1:
        raise ValueError(f"the branches have different jumps {jumps}: their units do not line up")
    # The first unit's field spans the pixels start - (size - 1) / 2 ... start + (size - 1) / 2.
    first = min(f.start - (f.size - 1) / 2 for f in fields)
    last = max(f.start + (f.size - 1) / 2 for f in fields)
    return AxisField(size=round(last - first) + 1, jump=jumps[0], start=(first + last) / 2)


def adaptive_window(in_size: int, out_size: int) -> tuple[int, int] | None:
    """The (kernel, stride) of an adaptive pooling from n = `in_size` to m = `out_size` units, if any.

    Adaptive pooling gives output unit i the input units floor(i * n / m) ... ceil((i + 1) * n / m) - 1.
    When m divides n these windows are all n / m wide and n / m apart, an ordinary pooling (global
    pooling is the case m = 1). Otherwise the windows have different widths and spacings, no single
    (size, jump) describes them, and the answer is None.
    """
    if out_size > 0 and in_size % out_size == 0:
        return in_size // out_size, in_size // out_size
    return None


def same_padding(kernel: int, dilation: int = 1) -> int:
    """The padding before the first input unit for padding="same" (PyTorch puts the odd one after)."""
    return (kernel - 1) * dilation // 2


# --------------------------------------------------------------------------------------------------
# The result: one value per layer, and a table of them.
# --------------------------------------------------------------------------------------------------
Pair = tuple[int, int]


@dataclass(frozen=True)
class LayerField:
    """The receptive field of the units of one layer, in input pixels.

    `size`, `jump`, `start` and `output_size` describe the vertical axis; the `*_hw` fields hold
    (vertical, horizontal) for networks with non-square kernels or inputs (they default to the
    square case).

    Attributes:
        name: the module's path in the model ("features.0", "layer1.0.conv2").
        kind: "conv", "maxpool", "avgpool", "lppool", "adaptive avgpool", "adaptive maxpool";
            for the output of a whole module looked up by name, its class name ("Bottleneck").
        size: how many input pixels one unit sees (may exceed the image: the rest is padding).
        jump: the distance in input pixels between neighbouring units' fields (product of strides).
        start: the centre of the first unit's field, in input pixel coordinates (pixel centres at
            0 ... N - 1); unit i is centred at start + i * jump.
        output_size: the layer's output height.
        kernel_hw, stride_hw, dilation_hw: the window of a conv or pool layer (adaptive pooling:
            the equivalent ordinary window); None for whole modules.
    """

    name: str
    kind: str
    size: int
    jump: int
    start: float
    output_size: int
    size_hw: Pair | None = None
    jump_hw: Pair | None = None
    start_hw: tuple[float, float] | None = None
    output_hw: Pair | None = None
    kernel_hw: Pair | None = None
    stride_hw: Pair | None = None
    dilation_hw: Pair | None = None

    def __post_init__(self) -> None:
        for name, scalar in (("size", self.size), ("jump", self.jump), ("start", self.start),
                             ("output", self.output_size)):
            if getattr(self, f"{name}_hw") is None:
                object.__setattr__(self, f"{name}_hw", (scalar, scalar))

    def box(self, row: int | None = None, col: int | None = None) -> tuple[int, int, int, int]:
        """The input pixels (top, left, bottom, right), inclusive, seen by unit (row, col).

        The default is the centre unit (output_size // 2 along each axis). The box is not clipped:
        parts of it may lie in the padding outside the image.
        """
        row = self.output_hw[0] // 2 if row is None else row
        col = self.output_hw[1] // 2 if col is None else col
        (top, bottom), (left, right) = (
            _unit_span(AxisField(size, jump, start), index)
            for size, jump, start, index in zip(self.size_hw, self.jump_hw, self.start_hw, (row, col))
        )
        return top, left, bottom, right

    def __repr__(self) -> str:  # the square case without its repeated (v, h) pairs
        shown = [f"name={self.name!r}", f"kind={self.kind!r}", f"size={self.size}", f"jump={self.jump}",
                 f"start={self.start}", f"output_size={self.output_size}"]
        for name in ("size_hw", "jump_hw", "start_hw", "output_hw", "kernel_hw", "stride_hw", "dilation_hw"):
            value = getattr(self, name)
            if value is not None and (value[0] != value[1] or name in ("kernel_hw", "stride_hw")):
                shown.append(f"{name}={value}")
        return f"LayerField({', '.join(shown)})"


def _unit_span(field: AxisField, index: int) -> tuple[int, int]:
    """First and last input pixel seen by unit `index` along one axis."""
    centre = field.start + index * field.jump
    return round(centre - (field.size - 1) / 2), round(centre + (field.size - 1) / 2)


class FieldTable(Sequence[LayerField]):
    """The receptive fields of a model's conv and pool layers, in forward order.

    A sequence of `LayerField`. Look a layer up by position or by name (`table["features.12"]`);
    a name that is not a conv or pool layer but a module of the model ("layer1", "inception3a",
    "features") gives the field at that module's output, after its shortcuts and concatenations.
    `str(table)` (and the notebook display) is an aligned text table.
    """

    def __init__(
        self,
        rows: Sequence[LayerField],
        *,
        input_size: tuple[int, ...],
        modules: dict[str, LayerField] | None = None,
        note: str | None = None,
    ) -> None:
        self._rows = tuple(rows)
        self._by_name = {row.name: row for row in self._rows}
        self._modules = dict(modules or {})
        self.input_size = tuple(input_size)
        self.note = note  # why the table ends early, if it does

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, key: int | slice | str) -> LayerField | FieldTable:
        if isinstance(key, str):
            if key in self._by_name:
                return self._by_name[key]
            if key in self._modules:
                return self._modules[key]
            raise KeyError(self._unknown(key))
        if isinstance(key, slice):
            return FieldTable(self._rows[key], input_size=self.input_size, modules=self._modules)
        return self._rows[key]

    def __iter__(self) -> Iterator[LayerField]:
        return iter(self._rows)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return item in self._by_name or item in self._modules
        return item in self._rows

    @property
    def names(self) -> list[str]:
        """The layer names, in forward order."""
        return [row.name for row in self._rows]

    def select(self, names: Sequence[str]) -> FieldTable:
        """A table of the given layers or modules, e.g. the stages: `table.select(["layer1", "layer2"])`."""
        return FieldTable([self[name] for name in names], input_size=self.input_size, modules=self._modules)

    @property
    def last(self) -> LayerField:
        """The last conv or pool layer."""
        if not self._rows:
            raise IndexError("the table is empty: the model has no convolution or pooling layer")
        return self._rows[-1]

    def _unknown(self, key: str) -> str:
        close = difflib.get_close_matches(key, [*self._by_name, *self._modules], n=3)
        names = self.names
        shown = ", ".join(names if len(names) <= 8 else [*names[:4], "...", *names[-2:]])
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        return f"no layer or module named {key!r}{hint}; the {len(names)} layers are: {shown}"

    def __str__(self) -> str:
        return _format_table(self._rows, self.input_size, self.note)

    __repr__ = __str__


# --------------------------------------------------------------------------------------------------
# The text table.
# --------------------------------------------------------------------------------------------------
TABLE_WIDTH = 80


def _pair_text(pair: tuple, fmt: Callable[[Any], str] = str, sep: str = "x") -> str:
    return fmt(pair[0]) if pair[0] == pair[1] else f"{fmt(pair[0])}{sep}{fmt(pair[1])}"


def _number(value: float) -> str:
    return f"{value:g}"


def _window_text(row: LayerField) -> str:
    if row.kernel_hw is None:
        return ""
    text = f"{row.kernel_hw[0]}x{row.kernel_hw[1]}/{_pair_text(row.stride_hw)}"
    if row.dilation_hw != (1, 1):
        text += f" d{_pair_text(row.dilation_hw)}"
    return text


def _shorten(name: str, width: int) -> str:
    """Cut the middle out of a long name: "inception5b.branch3.1.conv" -> "incep…ch3.1.conv"."""
    if len(name) <= width:
        return name
    head = (width - 1) // 2
    return name[:head] + "…" + name[len(name) - (width - 1 - head):]


def _format_table(rows: Sequence[LayerField], input_size: tuple[int, ...], note: str | None) -> str:
    shape = "x".join(map(str, input_size))
    title = f"Receptive fields in input pixels, for a {shape} input"
    if not rows:
        return f"{title}: no convolution or pooling layers." + (f"\n{note}" if note else "")
    header = ("layer", "kind", "window", "output", "RF", "jump", "start")
    cells = [
        (row.name, row.kind, _window_text(row), "x".join(map(str, row.output_hw)),
         _pair_text(row.size_hw), _pair_text(row.jump_hw), _pair_text(row.start_hw, _number, ","))
        for row in rows
    ]
    widths = [max(len(header[i]), *(len(c[i]) for c in cells)) for i in range(len(header))]
    spare = TABLE_WIDTH - (sum(widths) + 2 * (len(widths) - 1))
    if spare < 0:
        widths[0] = max(len(header[0]), widths[0] + spare)
    left = {0, 1, 2}  # text columns; numbers are right-aligned

    def line(values: Sequence[str]) -> str:
        parts = []
        for i, (value, width) in enumerate(zip(values, widths)):
            value = _shorten(value, width) if i == 0 else value
            parts.append(value.ljust(width) if i in left else value.rjust(width))
        return "  ".join(parts).rstrip()

    lines = [title, line(header), "  ".join("-" * w for w in widths), *(line(c) for c in cells)]
    if note:
        lines.append(note)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Which layers are windows, and with which geometry.
# --------------------------------------------------------------------------------------------------
class _Window(NamedTuple):
    """The geometry of a conv or pool layer, (vertical, horizontal) each."""

    kind: str
    kernel: Pair
    stride: Pair
    padding: Pair  # before the first unit (top, left)
    dilation: Pair


def _pair(value: int | Sequence[int]) -> Pair:
    if isinstance(value, int):
        return value, value
    values = tuple(value)
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


_POOLS = {nn.MaxPool2d: "maxpool", nn.AvgPool2d: "avgpool", nn.LPPool2d: "lppool"}
_ADAPTIVE = {nn.AdaptiveAvgPool2d: "adaptive avgpool", nn.AdaptiveMaxPool2d: "adaptive maxpool"}
_PADS = (nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d, nn.CircularPad2d)
# Layers that mix positions in ways the formulas do not describe: the field is not followed past them.
_NOT_FOLLOWED = (nn.Linear, nn.Upsample, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
                 nn.Conv1d, nn.Conv3d, nn.MaxPool1d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool3d)


def _conv_window(kernel, stride, padding, dilation) -> _Window:
    kernel, stride, dilation = _pair(kernel), _pair(stride), _pair(dilation)
    if padding == "valid":
        padding = (0, 0)
    elif padding == "same":
        padding = tuple(same_padding(k, d) for k, d in zip(kernel, dilation))
    return _Window("conv", kernel, stride, _pair(padding), dilation)


def _pool_window(kind, kernel, stride=None, padding=0, dilation=1) -> _Window:
    # stride=None (or [] in the functional form) means "stride = kernel".
    return _Window(kind, _pair(kernel), _pair(stride or kernel), _pair(padding), _pair(dilation))


def _adaptive_window(kind: str, in_hw: Pair, out_hw: Pair) -> _Window | str:
    """The equivalent window of an adaptive pooling, or a sentence saying why there is none."""
    windows = [adaptive_window(i, o) for i, o in zip(in_hw, out_hw)]
    if None in windows:
        return (f"{kind} from {in_hw[0]}x{in_hw[1]} to {out_hw[0]}x{out_hw[1]} has windows of unequal "
                "width and spacing")
    (kh, sh), (kw, sw) = windows
    return _Window(kind, (kh, kw), (sh, sw), (0, 0), (1, 1))


def _module_window(module: nn.Module, in_hw: Pair, out_hw: Pair) -> _Window | str | None:
    """The window of a conv/pool module; a reason string if it has no fixed window; None otherwise."""
    if isinstance(module, nn.Conv2d):
        return _conv_window(module.kernel_size, module.stride, module.padding, module.dilation)
    for cls, kind in _POOLS.items():
        if isinstance(module, cls):
            return _pool_window(kind, module.kernel_size, module.stride, getattr(module, "padding", 0),
                                getattr(module, "dilation", 1))
    for cls, kind in _ADAPTIVE.items():
        if isinstance(module, cls):
            return _adaptive_window(kind, in_hw, out_hw)
    return None


# The functional forms, with their parameters in order after the input.
_FUNCTIONAL_POOLS = {
    "max_pool2d": ("maxpool", ("kernel_size", "stride", "padding", "dilation")),
    "avg_pool2d": ("avgpool", ("kernel_size", "stride", "padding")),
    "lp_pool2d": ("lppool", ("norm_type", "kernel_size", "stride")),
}


def _call_arguments(node: fx.Node, names: Sequence[str]) -> dict[str, Any]:
    values = dict(zip(names, node.args[1:]))
    values.update({k: v for k, v in node.kwargs.items() if k in names})
    return values


def _function_window(node: fx.Node, in_hw: Pair, out_hw: Pair) -> _Window | str | None:
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


# --------------------------------------------------------------------------------------------------
# Following the graph.
# --------------------------------------------------------------------------------------------------
Field = tuple[AxisField, AxisField]  # (vertical, horizontal)


class _Map(NamedTuple):
    """A tensor that depends on the input and still has its two spatial axes."""

    field: Field
    axis: int  # the index of the height axis in the tensor's shape (width follows it)


@dataclass(frozen=True)
class _Lost:
    """A tensor that depends on the input but whose spatial layout is gone (flatten, linear, upsampling)."""

    where: str


def _target_name(node: fx.Node) -> str:
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def _describe(node: fx.Node) -> str:
    if node.op == "call_module":
        return f"{node.target} ({type(node.graph.owning_module.get_submodule(node.target)).__name__})"
    target = f"Tensor.{node.target}" if node.op == "call_method" else _target_name(node)
    scope = _scope(node)
    inside = f" in {scope}" if scope else ""
    return f"{node.name}{inside}" if target == node.name else f"{node.name} ({target}{inside})"


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


def _scope(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return next(reversed(stack.values()))[0] if stack else ""


def _row_name(node: fx.Node, taken: dict[str, int]) -> str:
    if node.op == "call_module":
        base = str(node.target)
    else:
        base = ".".join(part for part in (_scope(node), node.name) if part)
    count = taken.get(base, 0)
    taken[base] = count + 1
    return base if count == 0 else f"{base}@{count}"  # a module called twice


def _layer_field(name: str, kind: str, field: Field, out_hw: Pair, window: _Window | None = None) -> LayerField:
    return LayerField(
        name=name, kind=kind,
        size=field[0].size, jump=field[0].jump, start=field[0].start, output_size=out_hw[0],
        size_hw=(field[0].size, field[1].size), jump_hw=(field[0].jump, field[1].jump),
        start_hw=(field[0].start, field[1].start), output_hw=out_hw,
        kernel_hw=window.kernel if window else None, stride_hw=window.stride if window else None,
        dilation_hw=window.dilation if window else None,
    )


def _window_of(node: fx.Node, module: nn.Module | None) -> _Window | str | None:
    """The window if `node` is a conv or pool layer (a reason string for uneven adaptive pooling)."""
    data = node.args[0] if node.args else None
    in_shape, out_shape = _shape(data), _shape(node)
    if in_shape is None or out_shape is None or len(in_shape) < 3 or len(out_shape) < 3:
        return None
    in_hw, out_hw = in_shape[-2:], out_shape[-2:]
    if module is not None:
        return _module_window(module, in_hw, out_hw)
    return _function_window(node, in_hw, out_hw)


def _walk(gm: fx.GraphModule) -> tuple[list[LayerField], dict[fx.Node, Any], str | None]:
    """Give every node a value (a `_Map`, `_Lost`, or None when it does not depend on the input).

    Returns the conv/pool rows in graph (= forward) order, all the values and a note if the table
    stops early.
    """
    values: dict[fx.Node, _Map | _Lost | None] = {}
    rows: list[LayerField] = []
    taken: dict[str, int] = {}
    note = None
    for node in gm.graph.nodes:
        shape = _shape(node)
        if node.op == "placeholder":  # the image; any further argument is not followed
            first = not any(n.op == "placeholder" for n in values)
            values[node] = _Map((INPUT_FIELD, INPUT_FIELD), len(shape) - 2) if first and shape else None
            continue
        sources = [n for n in node.all_input_nodes if values.get(n) is not None]
        if node.op in ("get_attr", "output") or not sources or shape is None:
            values[node] = None  # constants, x.size(), input checks: no field
            continue
        module = gm.get_submodule(node.target) if node.op == "call_module" else None
        window = _window_of(node, module)
        if window is None:
            values[node] = _follow(node, module, shape, [(n, values[n]) for n in sources])
            continue
        data = values.get(node.args[0])
        if isinstance(data, _Lost):
            raise ValueError(
                f"{_describe(node)} works on a tensor whose spatial layout was lost at {data.where}; "
                "receptive_field follows convolution, pooling, padding and position-wise layers only"
            )
        if data is None:
            values[node] = None
        elif isinstance(window, str):  # adaptive pooling with uneven windows: the table ends here
            values[node] = _Lost(_describe(node))
            note = note or f"The table stops at {_describe(node)}: {window}."
        else:
            field = tuple(window_field(f, k, s, p, d) for f, k, s, p, d in
                          zip(data.field, window.kernel, window.stride, window.padding, window.dilation))
            rows.append(_layer_field(_row_name(node, taken), window.kind, field, shape[-2:], window))
            values[node] = _Map(field, len(shape) - 2)
    return rows, values, note


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
    sizes = sorted({_hw(_shape(n), v.axis) for n, v in maps})
    if len(sizes) > 1:
        raise ValueError(
            f"{_describe(node)} combines tensors of spatial sizes {', '.join(f'{h}x{w}' for h, w in sizes)}; "
            "receptive_field can only join branches whose outputs line up unit for unit"
        )
    padding = _padding_before(node, module)
    if padding is not None and len(maps) == 1:
        field = tuple(window_field(f, 1, padding=p) for f, p in zip(maps[0][1].field, padding))
        return _Map(field, len(shape) - 2)
    # the height axis keeps its index counted from the left (unfold) or from the right (x[:, 0])
    prefer = [i for n, v in maps for i in (v.axis, v.axis + len(shape) - len(_shape(n)))]
    axis = None if isinstance(module, _NOT_FOLLOWED) else _find_axes(shape, sizes[0], prefer)
    if axis is None:
        if len(maps) > 1:
            raise ValueError(
                f"{_describe(node)} joins {sizes[0][0]}x{sizes[0][1]} maps into a tensor of shape {shape}; "
                "receptive_field can only join branches whose outputs line up unit for unit"
            )
        return _Lost(_describe(node))  # flatten, linear, upsampling: no spatial field from here on
    if lost:
        raise ValueError(
            f"{_describe(node)} combines a feature map with the output of {lost[0].where}, whose "
            "spatial layout is gone (a reshape or a mean over positions); receptive_field cannot "
            "follow such a branch"
        )
    if len(maps) == 1:
        return _Map(maps[0][1].field, axis)
    try:
        return _Map(tuple(union_field([v.field[i] for _, v in maps]) for i in (0, 1)), axis)
    except ValueError:
        jumps = ", ".join(_pair_text((v.field[0].jump, v.field[1].jump)) for _, v in maps)
        raise ValueError(
            f"cannot join the branches that meet at {_describe(node)}: their jumps are {jumps} input "
            "pixels, so their units do not line up (every branch must downsample by the same factor)"
        ) from None


def _where(error: BaseException) -> str:
    """The innermost frame of `error` outside torch and this file, as "Gate.forward: `if x.sum() > 0:`"."""
    skip = (os.path.dirname(torch.__file__), __file__, "<eval_with_key>")  # torch, us, fx's generated code
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
        return isinstance(module, (nn.Conv2d, *_POOLS)) or super().is_leaf_module(module, qualified_name)


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


class _Shape(NamedTuple):
    shape: tuple[int, ...]
    dtype: torch.dtype


def _shapes_of(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return _Shape(tuple(value.shape), value.dtype)
    if isinstance(value, (list, tuple)):
        return [_shapes_of(item) for item in value]
    if isinstance(value, dict):
        return {key: _shapes_of(item) for key, item in value.items()}
    return None


def _input_shape(input_size: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in input_size)
    if len(shape) == 3:
        return (1, *shape)
    if len(shape) == 4:
        return shape
    raise ValueError(f"input_size must be (C, H, W) or (N, C, H, W), got {tuple(input_size)}")


def _modes(model: nn.Module) -> dict[nn.Module, bool]:
    return {m: m.training for m in model.modules()}


def _restore(modes: dict[nn.Module, bool]) -> None:
    for module, training in modes.items():
        module.training = training


def _device(model: nn.Module) -> torch.device:
    tensor = next(iter(model.parameters()), None)
    if tensor is None:
        tensor = next(iter(model.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def receptive_field(model: nn.Module, input_size: Sequence[int]) -> FieldTable:
    """The receptive field of every convolution and pooling layer of `model`, in forward order.

    The model is traced with torch.fx (in eval mode, so that auxiliary outputs of training mode are
    left out) and run once on a zero tensor of `input_size` to record every layer's output size.
    Each node then gets a field (size, jump, start per axis): conv and pool layers apply the window
    formula (module docstring), padding layers shift it, position-wise layers and functions keep it,
    and where several tensors meet (torch.cat, +, *) the field is the union of theirs.

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
    modes = _modes(model)
    model.eval()
    try:
        gm = _trace(model)
        _ShapeRecorder(gm).record(torch.zeros(shape, device=_device(model)), type(model).__name__)
    finally:
        _restore(modes)
    rows, values, note = _walk(gm)
    return FieldTable(rows, input_size=shape[1:], modules=_module_outputs(gm, values, rows), note=note)


def _module_outputs(gm: fx.GraphModule, values: dict[fx.Node, Any], rows: list[LayerField]) -> dict[str, LayerField]:
    """The field at the output of every module: that of the last node computed inside it."""
    last: dict[str, tuple[fx.Node, type]] = {}
    for node in gm.graph.nodes:
        if isinstance(values.get(node), _Map):
            for path, cls in (node.meta.get("nn_module_stack") or {}).values():
                last[path] = (node, cls)
    taken = {row.name for row in rows}
    return {
        path: _layer_field(path, cls.__name__, values[node].field, _hw(_shape(node), values[node].axis))
        for path, (node, cls) in last.items() if path and path not in taken
    }


# --------------------------------------------------------------------------------------------------
# Drawing the field on an image.
# --------------------------------------------------------------------------------------------------
def _as_picture(image: Any) -> np.ndarray:
    """An image as an (H, W) or (H, W, 3) array for imshow; accepts (C, H, W) / (1, C, H, W) tensors."""
    if isinstance(image, torch.Tensor):
        integer = not image.is_floating_point()
        array = image.detach().float().cpu().numpy()
        if array.ndim == 4 and array.shape[0] == 1:
            array = array[0]
        if array.ndim == 3:
            array = np.moveaxis(array, 0, -1)  # C, H, W -> H, W, C
    else:
        integer = np.issubdtype(np.asarray(image).dtype, np.integer)
        array = np.asarray(image, dtype=float)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3):
        raise ValueError(f"expected an image (C, H, W) or (H, W), got shape {tuple(array.shape)}")
    if integer:
        return array / 255.0
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:  # a normalised image: stretch it for display
        return (array - low) / max(high - low, 1e-12)
    return array


def _edges(first: int, last: int, limit: int) -> tuple[float, float, bool]:
    """Pixel indices first..last as edges for imshow (pixel i spans i - 0.5 .. i + 0.5), clipped."""
    lo, hi = max(first, 0), min(last, limit - 1)
    return lo - 0.5, hi + 0.5, (lo, hi) != (first, last)


def _new_axes(ax: plt.Axes | None, size: tuple[float, float] = (5, 5)) -> tuple[Figure, plt.Axes, bool]:
    if ax is not None:
        return ax.figure, ax, False
    fig, ax = plt.subplots(figsize=size)
    return fig, ax, True


def _draw_box(ax: plt.Axes, field: LayerField, position: tuple[int, int] | None, hw: Pair,
              color: str) -> tuple[tuple[int, int, int, int], bool]:
    row, col = position if position is not None else (None, None)
    top, left, bottom, right = field.box(row, col)
    y0, y1, clipped_y = _edges(top, bottom, hw[0])
    x0, x1, clipped_x = _edges(left, right, hw[1])
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, linewidth=2))
    return (top, left, bottom, right), clipped_x or clipped_y


def draw_receptive_field(
    image: Any,
    table: FieldTable,
    layer: str | int | LayerField,
    *,
    position: tuple[int, int] | None = None,
    ax: plt.Axes | None = None,
) -> Figure:
    """Draw the receptive field of one unit of `layer` on `image`.

    The box shows the input pixels that unit (row, col) of the layer sees, clipped to the image
    (the rest is padding). When the layer has at most 32x32 units, the centres of all its units are
    marked, which shows the jump.

    Args:
        image: the input image, (C, H, W) or (1, C, H, W) tensor or an (H, W[, C]) array, of the size
            the table was computed for.
        table: the result of `receptive_field`.
        layer: a layer name, a position in the table or a `LayerField`.
        position: (row, col) of the unit in the layer's output; default the centre unit.
        ax: the axes to draw on; by default a new figure.

    Returns:
        The figure (a new figure is closed, so that a notebook shows it once, as the cell's value).
    """
    field = layer if isinstance(layer, LayerField) else table[layer]
    picture = _as_picture(image)
    hw = picture.shape[:2]
    if tuple(hw) != tuple(table.input_size[-2:]):
        raise ValueError(f"the image is {hw[0]}x{hw[1]} but the table was computed for "
                         f"{table.input_size[-2]}x{table.input_size[-1]} inputs")
    if position is not None and not all(0 <= p < n for p, n in zip(position, field.output_hw)):
        raise ValueError(f"position {position} is outside the {field.output_hw[0]}x{field.output_hw[1]} "
                         f"output of {field.name}")
    fig, ax, created = _new_axes(ax)
    ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1)
    (top, left, bottom, right), clipped = _draw_box(ax, field, position, hw, "#ffcc00")
    if max(field.output_hw) <= 32:
        ys = field.start_hw[0] + field.jump_hw[0] * np.arange(field.output_hw[0])
        xs = field.start_hw[1] + field.jump_hw[1] * np.arange(field.output_hw[1])
        grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
        inside = (grid_y >= 0) & (grid_y <= hw[0] - 1) & (grid_x >= 0) & (grid_x <= hw[1] - 1)
        ax.scatter(grid_x[inside], grid_y[inside], s=4, c="white", edgecolors="none", alpha=0.7)
    ax.plot([(left + right) / 2], [(top + bottom) / 2], marker="+", color="#ffcc00", markersize=10)
    ax.set_xlim(-0.5, hw[1] - 0.5)
    ax.set_ylim(hw[0] - 0.5, -0.5)
    ax.set_axis_off()
    row, col = position if position is not None else (field.output_hw[0] // 2, field.output_hw[1] // 2)
    size = "x".join(map(str, field.size_hw)) if field.size_hw[0] != field.size_hw[1] else f"{field.size}"
    ax.set_title(f"{field.name}, unit ({row}, {col}): {size} px" + (" (clipped)" if clipped else ""),
                 fontsize=10)
    if created:
        plt.close(fig)
    return fig


# --------------------------------------------------------------------------------------------------
# The effective receptive field (Luo et al., 2016).
# --------------------------------------------------------------------------------------------------
_WINDOW_MODULES = (nn.Conv2d, *_POOLS, *_ADAPTIVE)


class _Reached(Exception):
    """Raised by a hook to stop the forward pass once the wanted tensor exists."""


def _default_target(model: nn.Module, x: torch.Tensor) -> tuple[str, str]:
    """(module name, "input" | "output"): the input of the global pooling, else the last conv/pool."""
    calls: list[tuple[str, Pair, Pair, bool]] = []

    def record(name: str, is_pool: bool):
        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor) and isinstance(inputs[0], torch.Tensor):
                calls.append((name, tuple(inputs[0].shape[-2:]), tuple(output.shape[-2:]), is_pool))
        return hook

    handles = [m.register_forward_hook(record(name, not isinstance(m, nn.Conv2d)))
               for name, m in model.named_modules() if isinstance(m, _WINDOW_MODULES)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
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
        raise _Reached

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
        A float tensor (H, W) on the CPU, maximum 1.
    """
    c, h, w = _image_size(input_size, channels)
    modes = _modes(model)
    model.eval()
    try:
        device = _device(model)
        if layer is None:
            layer, where = _default_target(model, torch.zeros(1, c, h, w, device=device))
        else:
            where = "output"
        modules = dict(model.named_modules())
        if layer not in modules:
            close = difflib.get_close_matches(layer, [n for n in modules if n], n=3)
            raise ValueError(f"{type(model).__name__} has no module named {layer!r}"
                             + (f"; did you mean {', '.join(map(repr, close))}?" if close else ""))
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(samples, c, h, w, generator=generator).to(device).requires_grad_()
        with torch.enable_grad():
            out = _forward_to(model, modules[layer], x, where)
            weight = torch.zeros_like(out)
            weight[:, :, out.shape[-2] // 2, out.shape[-1] // 2] = 1.0
            (grad,) = torch.autograd.grad(out, x, weight)
    finally:
        _restore(modes)
    heat = grad.detach().abs().sum(dim=1).mean(dim=0).float().cpu()
    peak = heat.max()
    return heat / peak if peak > 0 else heat


def plot_effective_receptive_field(
    heatmap: torch.Tensor,
    *,
    ax: plt.Axes | None = None,
    title: str | None = None,
    field: LayerField | None = None,
) -> Figure:
    """Show an effective-receptive-field heatmap, optionally with the theoretical field of its unit.

    Args:
        heatmap: the (H, W) result of `effective_receptive_field`.
        ax: the axes to draw on; by default a new figure.
        title: the title; by default "effective receptive field".
        field: the `LayerField` of the same layer at the same input size: its centre unit's field is
            drawn as a box (clipped to the image).

    Returns:
        The figure (a new figure is closed, so that a notebook shows it once).
    """
    values = heatmap.detach().float().cpu().numpy() if isinstance(heatmap, torch.Tensor) else np.asarray(heatmap)
    fig, ax, created = _new_axes(ax, (4.5, 4))
    image = ax.imshow(values, cmap="magma", vmin=0, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if field is not None:
        _draw_box(ax, field, None, values.shape, "#33ccff")
    ax.set_xlim(-0.5, values.shape[1] - 0.5)
    ax.set_ylim(values.shape[0] - 0.5, -0.5)
    ax.set_title(title or "effective receptive field", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    if created:
        plt.close(fig)
    return fig
