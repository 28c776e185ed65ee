"""The chapter maps of the landing page: each network as a strip of boxes, computed from the layer lists.

A box is a layer (or one Inception module, or one residual block) in forward order. Its height grows
with the side of its feature map and its width with its channels, both on a log scale; a fully
connected layer is a bar whose height grows with its units. .ci/draw_maps.py writes them to
book/_static/map_*.svg, and tests/test_diagrams.py checks that the stored files are what this draws.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from matplotlib.figure import Figure

from ...models.googlenet import INCEPTION_SPECS
from .alexnet import alexnet_layers
from .googlenet import googlenet_layers
from .layers import Layer
from .lenet import lenet_layers
from .primitives import COLORS, arrow, box, canvas, finish, label
from .resnet import resnet_layers
from .vgg import vgg_layers

CHAPTERS = {"01_lenet": "lenet5", "02_alexnet": "alexnet", "03_vgg": "vgg16", "04_googlenet": "googlenet",
            "05_resnet": "resnet18"}


@dataclass(frozen=True)
class MapItem:
    """One box of a map: a layer kind ("conv", "pool", "lrn", "inception", "residual", "linear")."""

    kind: str
    channels: int
    side: int
    groups: int = 1
    projection: bool = False  # a residual block whose shortcut is a 1x1 projection
    shares: tuple[int, ...] = ()  # an Inception module's channels per branch


def _layers(network: str) -> list[Layer]:
    builders = {"lenet5": lenet_layers, "alexnet": lambda: alexnet_layers("paper"), "vgg16": vgg_layers,
                "googlenet": lambda: googlenet_layers(aux_logits=False),
                "resnet18": resnet_layers}
    return builders[network]()


def map_items(network: str) -> list[MapItem]:
    """The boxes of `network`'s map ("lenet5", "alexnet" (the paper's), "vgg16", "googlenet",
    "resnet18"): modules and blocks merged into one box, the adaptive pools left out (no-ops here)."""
    items: list[MapItem] = []
    seen: set[str] = set()
    for layer in _layers(network):
        parts = layer.name.split(".")
        if network == "googlenet" and parts[0] in INCEPTION_SPECS:
            if parts[0] not in seen:
                seen.add(parts[0])
                spec = INCEPTION_SPECS[parts[0]]
                items.append(MapItem("inception", spec.out_channels, layer.side,
                                     shares=(spec.ch1x1, spec.ch3x3, spec.ch5x5, spec.pool_proj)))
        elif network == "resnet18" and parts[0].startswith("layer"):
            block = ".".join(parts[:2])
            if block not in seen:
                seen.add(block)
                items.append(MapItem("residual", 0, 0))
            if parts[2] == "downsample":
                items[-1] = MapItem("residual", items[-1].channels, items[-1].side, projection=True)
            else:
                projection = items[-1].projection
                items[-1] = MapItem("residual", layer.out_channels, layer.side, projection=projection)
        elif layer.kind != "adaptive_avgpool":
            kind = "pool" if layer.kind.endswith("pool") else layer.kind
            items.append(MapItem(kind, layer.out_channels, layer.side, layer.groups))
    return items


def _height(item: MapItem) -> float:
    if item.kind == "linear":
        return 0.2 + 0.16 * math.log2(item.channels)
    return 0.3 + 0.2 * math.log2(max(item.side, 1))


def _width(item: MapItem) -> float:
    if item.kind == "linear":
        return 0.1
    if item.kind == "lrn":
        return 0.06
    return 0.12 + 0.045 * math.log2(item.channels)


def _draw_item(ax, x: float, item: MapItem, width: float, height: float, mid: float) -> None:
    color = COLORS["pool" if item.kind == "pool" else item.kind]
    y = mid - height / 2
    box(ax, x, y, width, height, color)
    if item.groups > 1:  # two towers: a gap between the halves
        ax.plot([x, x + width], [mid, mid], color="white", linewidth=1.5)
    if item.shares:
        bottom = y
        for share in item.shares[:-1]:
            bottom += height * share / item.channels
            ax.plot([x, x + width], [bottom, bottom], color="white", linewidth=0.8)
    if item.kind == "residual":
        arrow(ax, (x + 0.03, y + height + 0.05), (x + width - 0.03, y + height + 0.05), curve=-0.6,
              dashed=item.projection, width=0.9)


def draw_chapter_map(network: str, *, input_side: int | None = None) -> Figure:
    """The map of one network, in the style of the landing page (8 x 3.2 inches)."""
    items = map_items(network)
    first = _layers(network)[0]
    side = input_side or (32 - 2 * first.padding if network == "lenet5" else 224)
    natural = sum(_width(item) for item in items)
    scale = min(1.0, 6.0 / natural)
    gap = min(0.6, (7.1 - natural * scale) / len(items))
    fig, ax = canvas(8.0, 3.2)
    mid = 1.75
    box(ax, 0.1, mid - 1.0, 0.24, 2.0, COLORS["input"], f"input {side}×{side}", rotation=90, fontsize=9,
        text_color="#333333")
    x, last_side, last_channels, last_label = 0.5, None, None, (-1.0, 0)
    for item in items:
        width, height = _width(item) * scale, _height(item)
        _draw_item(ax, x, item, width, height, mid)
        if item.kind in ("conv", "inception", "residual") and item.channels != last_channels:
            label(ax, x + width / 2, mid + height / 2 - 0.14, str(item.channels), fontsize=8.5,
                  color="white", weight="bold")
            last_channels = item.channels
        if item.kind != "linear" and item.side != last_side:
            row = 1 - last_label[1] if x < last_label[0] + 0.75 else 0  # too close: the other row
            label(ax, x, 0.42 - 0.28 * row, f"{item.side}×{item.side}", fontsize=10, ha="left")
            last_side, last_label = item.side, (x, row)
        x += width + gap
    units = ", ".join(str(item.channels) for item in items if item.kind == "linear")
    label(ax, x - gap, 3.0, units, fontsize=10, ha="right")
    return finish(fig)


def draw_map_legend() -> Figure:
    """The colour key of the chapter maps, on one line."""
    keys = (("conv", "convolution"), ("pool", "pooling"), ("lrn", "LRN"), ("inception", "Inception module"),
            ("residual", "residual block"), ("linear", "fully connected"))
    fig, ax = canvas(9.0, 0.35)
    x = 0.05
    for kind, text in keys:
        box(ax, x, 0.1, 0.2, 0.15, COLORS[kind])
        label(ax, x + 0.27, 0.175, text, fontsize=9, ha="left")
        x += 0.4 + 0.075 * len(text)
    arrow(ax, (x, 0.175), (x + 0.3, 0.175), dashed=True, width=0.9)
    label(ax, x + 0.38, 0.175, "shortcut (dashed: 1×1 projection)", fontsize=9, ha="left")
    return finish(fig)
