"""LeNet-5's layers as a strip of feature maps: C1 S2 C3 S4 C5 F6 and the output (LeCun et al. 1998)."""
from __future__ import annotations

import math

from matplotlib.figure import Figure

from .layers import Chain, Layer
from .primitives import COLORS, arrow, box, canvas, color_of, finish, label

# The widths of lib.models.lenet.LeNet5 (section II.B of the paper); tests/test_diagrams.py holds this
# list against the built model.
C1, C3, C5, F6 = 6, 16, 120, 84


def lenet_layers(*, num_classes: int = 10, variant: str = "relu", in_channels: int = 1,
                 padding: int = 2) -> list[Layer]:
    """The layers of `lib.models.lenet5(...)` with the same arguments, in forward order."""
    pool = "maxpool" if variant == "relu" else "avgpool"
    chain = Chain(in_channels, 32 - 2 * padding)
    chain.conv("c1", C1, 5, padding=padding).pool("s2", pool, 2, 2)
    chain.conv("c3", C3, 5).pool("s4", pool, 2, 2).conv("c5", C5, 5)
    return chain.linear("f6", F6).linear("output", num_classes).layers


def _map_stack(ax, x: float, y_mid: float, side: float, color: str, copies: int) -> float:
    """Squares of side `side` (inches) stacked with an offset, as a pile of feature maps; its width."""
    step = 0.05
    for k in reversed(range(copies)):
        box(ax, x + k * step, y_mid - side / 2 + k * step, side, side, color, edge="white")
    return side + (copies - 1) * step


def draw_lenet(**config) -> Figure:
    """LeNet-5 as a strip of feature maps: each map drawn with a side proportional to its size.

    Args:
        **config: the arguments of `lib.models.lenet5` (e.g. `padding=0` for the paper's 32x32 input).
    """
    layers = lenet_layers(**config)
    fig, ax = canvas(8.0, 2.6)
    y_mid, x = 1.3, 0.15
    first = layers[0]
    size = 32 - 2 * config.get("padding", 2)
    width = _map_stack(ax, x, y_mid, 1.4 * size / 32, COLORS["input"], 1)
    label(ax, x + width / 2, y_mid - 0.8, f"input\n{first.in_channels}@{size}×{size}", fontsize=8)
    x += width
    for layer in layers:
        x += 0.42
        arrow(ax, (x - 0.36, y_mid), (x - 0.06, y_mid))
        if layer.kind == "linear":
            height = 0.22 * math.log2(layer.out_channels)
            box(ax, x, y_mid - height / 2, 0.16, height, COLORS["linear"])
            width, shape = 0.16, f"{layer.out_channels}"
        else:
            copies = 3 if layer.out_channels > 6 else 2
            width = _map_stack(ax, x, y_mid, max(0.12, 1.4 * layer.side / 32), color_of(layer.kind), copies)
            shape = f"{layer.out_channels}@{layer.side}×{layer.side}"
        name = layer.name.upper() if layer.name != "output" else "output"
        what = {"conv": f"conv {layer.kernel}×{layer.kernel}", "linear": "full"}.get(layer.kind, "pool 2×2")
        label(ax, x + width / 2, 2.35, f"{name}\n{what}", fontsize=8, va="top")
        label(ax, x + width / 2, y_mid - 0.8, shape, fontsize=8)
        x += width
    return finish(fig)
