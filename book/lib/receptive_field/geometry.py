"""The arithmetic of receptive fields, one axis at a time, and the table that holds a model's fields.

Along one spatial axis, every layer's output is described by three numbers, all in input pixels
(Araujo et al., 2019; Dumoulin and Visin, 2016):

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

Everything here is plain arithmetic on numbers: no torch, no graph.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..lookup import close_matches

Pair = tuple[int, int]


# --------------------------------------------------------------------------------------------------
# One axis.
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


def unit_span(field: AxisField, index: int) -> tuple[int, int]:
    """First and last input pixel seen by unit `index` along one axis (not clipped to the image)."""
    centre = field.start + index * field.jump
    return round(centre - (field.size - 1) / 2), round(centre + (field.size - 1) / 2)


# --------------------------------------------------------------------------------------------------
# One layer: both axes.
# --------------------------------------------------------------------------------------------------
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

    @property
    def axes(self) -> tuple[AxisField, AxisField]:
        """The (vertical, horizontal) fields."""
        return tuple(AxisField(*values) for values in zip(self.size_hw, self.jump_hw, self.start_hw))

    def box(self, row: int | None = None, col: int | None = None) -> tuple[int, int, int, int]:
        """The input pixels (top, left, bottom, right), inclusive, seen by unit (row, col).

        The default is the centre unit (output_size // 2 along each axis). The box is not clipped:
        parts of it may lie in the padding outside the image.
        """
        row = self.output_hw[0] // 2 if row is None else row
        col = self.output_hw[1] // 2 if col is None else col
        (top, bottom), (left, right) = (unit_span(axis, index) for axis, index in zip(self.axes, (row, col)))
        return top, left, bottom, right

    def __repr__(self) -> str:  # the square case without its repeated (v, h) pairs
        shown = [f"name={self.name!r}", f"kind={self.kind!r}", f"size={self.size}", f"jump={self.jump}",
                 f"start={self.start}", f"output_size={self.output_size}"]
        for name in ("size_hw", "jump_hw", "start_hw", "output_hw", "kernel_hw", "stride_hw", "dilation_hw"):
            value = getattr(self, name)
            if value is not None and (value[0] != value[1] or name in ("kernel_hw", "stride_hw")):
                shown.append(f"{name}={value}")
        return f"LayerField({', '.join(shown)})"


class Window(NamedTuple):
    """The geometry of a conv or pool layer, (vertical, horizontal) each."""

    kind: str
    kernel: Pair
    stride: Pair
    padding: Pair  # before the first unit (top, left)
    dilation: Pair


Field = tuple[AxisField, AxisField]  # (vertical, horizontal)


def apply_window(field: Field, window: Window) -> Field:
    """`window_field` along both axes."""
    return tuple(window_field(f, k, s, p, d) for f, k, s, p, d in
                 zip(field, window.kernel, window.stride, window.padding, window.dilation))


def layer_field(name: str, kind: str, field: Field, out_hw: Pair, window: Window | None = None) -> LayerField:
    """A `LayerField` from (vertical, horizontal) fields, with the window of a conv or pool layer."""
    vertical, horizontal = field
    return LayerField(
        name=name, kind=kind,
        size=vertical.size, jump=vertical.jump, start=vertical.start, output_size=out_hw[0],
        size_hw=(vertical.size, horizontal.size), jump_hw=(vertical.jump, horizontal.jump),
        start_hw=(vertical.start, horizontal.start), output_hw=tuple(out_hw),
        kernel_hw=window.kernel if window else None, stride_hw=window.stride if window else None,
        dilation_hw=window.dilation if window else None,
    )


# --------------------------------------------------------------------------------------------------
# A model: the table.
# --------------------------------------------------------------------------------------------------
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
        # A KeyError (a table is a mapping too), so not lookup.unknown's ValueError; the same hint, and the
        # layers listed in forward order, which say more about a network than an alphabetical list would.
        close = close_matches(key, [*self._by_name, *self._modules])
        names = self.names
        shown = ", ".join(names if len(names) <= 8 else [*names[:4], "...", *names[-2:]])
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        return f"no layer or module named {key!r}{hint}; the {len(names)} layers are: {shown}"

    def __str__(self) -> str:
        return format_table(self._rows, self.input_size, self.note)

    __repr__ = __str__


# --------------------------------------------------------------------------------------------------
# The text table.
# --------------------------------------------------------------------------------------------------
TABLE_WIDTH = 80
_HEADER = ("layer", "kind", "window", "output", "RF", "jump", "start")
_LEFT_ALIGNED = {0, 1, 2}  # text columns; numbers are right-aligned


def pair_text(pair: tuple, fmt: Callable[[Any], str] = str, sep: str = "x") -> str:
    """One value for a square pair ("3"), both otherwise ("3x5")."""
    return fmt(pair[0]) if pair[0] == pair[1] else f"{fmt(pair[0])}{sep}{fmt(pair[1])}"


def _number(value: float) -> str:
    return f"{value:g}"


def _window_text(row: LayerField) -> str:
    if row.kernel_hw is None:
        return ""
    text = f"{row.kernel_hw[0]}x{row.kernel_hw[1]}/{pair_text(row.stride_hw)}"
    if row.dilation_hw != (1, 1):
        text += f" d{pair_text(row.dilation_hw)}"
    return text


def _shorten(name: str, width: int) -> str:
    """Cut the middle out of a long name: "inception5b.branch3.1.conv" -> "incep…ch3.1.conv"."""
    if len(name) <= width:
        return name
    head = (width - 1) // 2
    return name[:head] + "…" + name[len(name) - (width - 1 - head):]


def _cells(row: LayerField) -> tuple[str, ...]:
    return (row.name, row.kind, _window_text(row), "x".join(map(str, row.output_hw)),
            pair_text(row.size_hw), pair_text(row.jump_hw), pair_text(row.start_hw, _number, ","))


def _column_widths(cells: Sequence[Sequence[str]]) -> list[int]:
    """The widest cell of each column; the name column gives up what the table needs to fit TABLE_WIDTH."""
    widths = [max(len(_HEADER[i]), *(len(c[i]) for c in cells)) for i in range(len(_HEADER))]
    spare = TABLE_WIDTH - (sum(widths) + 2 * (len(widths) - 1))
    if spare < 0:
        widths[0] = max(len(_HEADER[0]), widths[0] + spare)
    return widths


def _line(values: Sequence[str], widths: Sequence[int]) -> str:
    parts = []
    for i, (value, width) in enumerate(zip(values, widths)):
        value = _shorten(value, width) if i == 0 else value
        parts.append(value.ljust(width) if i in _LEFT_ALIGNED else value.rjust(width))
    return "  ".join(parts).rstrip()


def format_table(rows: Sequence[LayerField], input_size: tuple[int, ...], note: str | None = None) -> str:
    """The rows as an aligned text table of at most TABLE_WIDTH columns, under a title, with `note` last."""
    shape = "x".join(map(str, input_size))
    title = f"Receptive fields in input pixels, for a {shape} input"
    if not rows:
        return f"{title}: no convolution or pooling layers." + (f"\n{note}" if note else "")
    cells = [_cells(row) for row in rows]
    widths = _column_widths(cells)
    lines = [title, _line(_HEADER, widths), "  ".join("-" * w for w in widths), *(_line(c, widths) for c in cells)]
    if note:
        lines.append(note)
    return "\n".join(lines)
