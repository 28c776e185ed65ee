"""VGG's configurations A to E side by side, as the columns of Simonyan and Zisserman's Table 1, drawn
from `lib.models.vgg.CONFIGS`."""
from __future__ import annotations

from collections.abc import Sequence

from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from ...lookup import unknown
from ...models.vgg import CONFIGS
from .layers import Chain, Layer
from .primitives import COLORS, TEXT, box, canvas, finish, label


def _parse(spec: str) -> tuple[int, int]:
    kind, channels = spec.split("-")
    return int(kind[len("conv"):]), int(channels)


def vgg_layers(config: str = "D", *, batch_norm: bool = False, classifier: str = "imagenet",
               num_classes: int = 1000) -> list[Layer]:
    """The layers of `lib.models.vgg.VGG(config, ...)` with the same arguments, in forward order."""
    if config not in CONFIGS:
        raise unknown("VGG configuration", config, CONFIGS)
    chain, index = Chain(3, 224 if classifier == "imagenet" else 32, "features."), 0
    for stage in CONFIGS[config]:
        for spec in stage:
            if spec == "LRN":
                chain.lrn(str(index))
                index += 1
                continue
            kernel, channels = _parse(spec)
            chain.conv(str(index), channels, kernel, padding=kernel // 2)
            index += 3 if batch_norm else 2  # the convolution, its BatchNorm and its ReLU
        chain.pool(str(index), "maxpool", 2, 2)
        index += 1
    chain.prefix = ""
    if classifier == "cifar":
        return chain.adaptive("avgpool", 1).linear("classifier.0", num_classes).layers
    chain.adaptive("avgpool", 7).linear("classifier.0", 4096).linear("classifier.3", 4096)
    return chain.linear("classifier.6", num_classes).layers


def _is_new(stages: Sequence[Sequence[str]], before: Sequence[Sequence[str]] | None, s: int, j: int) -> bool:
    """Whether entry j of stage s differs from the column before (the paper prints those in bold)."""
    if before is None:
        return False
    return j >= len(before[s]) or before[s][j] != stages[s][j]


def _cell_color(spec: str) -> tuple[float, ...]:
    kind = "lrn" if spec == "LRN" else "reduce" if spec.startswith("conv1-") else "conv"
    return to_rgba(COLORS[kind], 0.35 if kind != "reduce" else 0.5)


def _spanning_row(ax, y: float, text: str, color: str, width: float, row: float) -> None:
    box(ax, 0.1, y - row + 0.02, width, row - 0.04, to_rgba(color, 0.35), text, fontsize=7.5, text_color=TEXT)


def draw_vgg_configurations(configs: Sequence[str] = ("A", "A-LRN", "B", "C", "D", "E")) -> Figure:
    """The configurations of VGG as the columns of the paper's Table 1: every convolution of each stage
    ("conv3-64": 3x3, 64 channels), the max pools between stages and the three fully connected layers.
    Layers a column adds to the column before it are in bold.

    Args:
        configs: keys of `lib.models.vgg.CONFIGS`, one column each.
    """
    for config in configs:
        if config not in CONFIGS:
            raise unknown("VGG configuration", config, CONFIGS)
    rows_per_stage = [max(len(CONFIGS[c][s]) for c in configs) for s in range(5)]
    row, col = 0.18, 7.6 / len(configs)
    height = row * (2 + sum(rows_per_stage) + 5 + 4) + 0.5
    fig, ax = canvas(7.8, height)
    y = height - 0.1
    for i, config in enumerate(configs):
        weights = sum(spec.startswith("conv") for stage in CONFIGS[config] for spec in stage) + 3
        label(ax, 0.1 + (i + 0.5) * col, y - 0.2, f"{config}\n{weights} weight layers", fontsize=8,
              weight="bold")
    y -= 0.5
    _spanning_row(ax, y, "input (224 × 224 RGB image)", COLORS["input"], 7.6, row)
    y -= row
    for s, rows in enumerate(rows_per_stage):
        for i, config in enumerate(configs):
            stages = CONFIGS[config]
            before = CONFIGS[configs[i - 1]] if i > 0 else None
            for j, spec in enumerate(stages[s]):
                top = y - j * row
                box(ax, 0.1 + i * col + 0.04, top - row + 0.02, col - 0.08, row - 0.04, _cell_color(spec))
                label(ax, 0.1 + (i + 0.5) * col, top - row / 2, spec, fontsize=7.5,
                      weight="bold" if _is_new(stages, before, s, j) else "normal")
        y -= rows * row
        _spanning_row(ax, y, "maxpool", COLORS["pool"], 7.6, row)
        y -= row
    for text in ("FC-4096", "FC-4096", "FC-1000", "soft-max"):
        _spanning_row(ax, y, text, COLORS["linear"] if text != "soft-max" else COLORS["input"], 7.6, row)
        y -= row
    return finish(fig)
