"""Residual blocks (He et al. 2016, figures 2 and 5) with identity and projection shortcuts, and v1
against v1.5 stride placement in the bottleneck, drawn from `lib.models.resnet`."""
from __future__ import annotations

from matplotlib.figure import Figure

from ...lookup import unknown
from ...models.resnet import IMAGENET_STAGES, SHORTCUTS, VERSIONS, Bottleneck
from .layers import Chain, Layer
from .primitives import COLORS, LINE, TEXT, add_node, arrow, box, canvas, finish, label

BLOCKS = ("basic", "bottleneck")
STAGE_CHANNELS = (64, 128, 256, 512)  # ResNet's four stages (conv2_x .. conv5_x, table 1)
CIFAR_CHANNELS = (16, 32, 64)  # the three stages of the CIFAR networks (section 4.2)


def residual_block_layers(block: str = "basic", *, in_channels: int = 64, channels: int = 64,
                          stride: int = 1, version: str = "1.5", shortcut: str = "B", side: int = 56,
                          prefix: str = "") -> list[Layer]:
    """The layers of one `BasicBlock` or `Bottleneck` as `lib.models.resnet` builds it: the residual
    branch (conv1, conv2[, conv3]) and, where the shape changes, the shortcut's layers ("downsample").

    Args:
        block: "basic" (two 3x3) or "bottleneck" (1x1, 3x3, 1x1 with 4x the channels out).
        in_channels, channels, stride: as the block's constructor (`channels` before expansion).
        version: for a bottleneck, "1.5" (stride on the 3x3) or "1" (on the first 1x1, the paper).
        shortcut: "B" (a 1x1 projection) or "A" (subsampled identity padded with zeros).
        side: the input's side in pixels; prefix: put before each name (e.g. "layer2.0.").
    """
    if block not in BLOCKS:
        raise unknown("block", block, BLOCKS)
    if version not in VERSIONS:
        raise unknown("version", version, VERSIONS)
    if shortcut not in SHORTCUTS:
        raise unknown("shortcut", shortcut, SHORTCUTS)
    branch = Chain(in_channels, side, prefix)
    if block == "basic":
        out = channels
        branch.conv("conv1", channels, 3, stride, 1).conv("conv2", channels, 3, 1, 1)
    else:
        out = channels * Bottleneck.expansion
        first, middle = (stride, 1) if version == "1" else (1, stride)
        branch.conv("conv1", channels, 1, first).conv("conv2", channels, 3, middle, 1).conv("conv3", out, 1)
    if stride == 1 and in_channels == out:
        return branch.layers  # identity shortcut: no layers
    if shortcut == "A":
        padded = Chain(in_channels, side, prefix).pool("downsample.subsample", "maxpool", 1, stride)
        return branch.layers + padded.layers
    return branch.layers + Chain(in_channels, side, prefix).conv("downsample.0", out, 1, stride).layers


def resnet_layers(name: str = "resnet18", *, version: str = "1.5", stem: str = "imagenet",
                  shortcut: str = "A", num_classes: int | None = None) -> list[Layer]:
    """The layers of `lib.models.get_model(name, ...)` for the ImageNet ResNets ("resnet18" ...
    "resnet152", with `version` and `stem`) and the CIFAR ones ("resnet20" ... "resnet110", with
    `shortcut`), in forward order."""
    if name in IMAGENET_STAGES:
        block = "basic" if name in ("resnet18", "resnet34") else "bottleneck"
        blocks, widths, classes = IMAGENET_STAGES[name], STAGE_CHANNELS, 1000
        chain = Chain(3, 224 if stem == "imagenet" else 32)
        if stem == "imagenet":
            chain.conv("conv1", 64, 7, 2, 3).pool("maxpool", "maxpool", 3, 2, 1)
        else:
            chain.conv("conv1", 64, 3, 1, 1)
        shortcut = "B"
    else:
        depth = int(name.removeprefix("resnet")) if name.removeprefix("resnet").isdigit() else 0
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"unknown ResNet {name!r}: resnet18 ... resnet152 or resnet{{6n+2}} (CIFAR)")
        block, blocks, widths, classes = "basic", ((depth - 2) // 6,) * 3, CIFAR_CHANNELS, 10
        chain = Chain(3, 32).conv("conv1", 16, 3, 1, 1)
    for s, (count, width) in enumerate(zip(blocks, widths)):
        for b in range(count):
            stride = 2 if s > 0 and b == 0 else 1
            layers = residual_block_layers(block, in_channels=chain.channels, channels=width, stride=stride,
                                           version=version, shortcut=shortcut, side=chain.side,
                                           prefix=f"layer{s + 1}.{b}.")
            chain.layers += layers
            last = [layer for layer in layers if ".downsample." not in layer.name][-1]
            chain.channels, chain.side = last.out_channels, last.side
    return chain.adaptive("avgpool", 1).linear("fc", num_classes or classes).layers


def _block_panel(ax, x: float, layers: list[Layer], title: str, side: int = 56) -> None:
    """One block, bottom to top: input, the residual branch, the addition; the shortcut on the right."""
    branch = [layer for layer in layers if ".downsample" not in "." + layer.name]
    projection = [layer for layer in layers if layer not in branch]
    label(ax, x + 0.7, 3.2, title, fontsize=8, va="top", weight="bold")
    box(ax, x + 0.15, 0.1, 1.1, 0.32, COLORS["input"], f"in: {layers[0].in_channels}, {side}×{side}",
        fontsize=7.5, text_color="black")
    y = 0.62
    arrow(ax, (x + 0.7, 0.42), (x + 0.7, y))
    for layer in branch:
        reduce = layer.kernel == 1 and layer is branch[0]
        color = COLORS["reduce"] if reduce else COLORS["conv"]
        box(ax, x + 0.15, y, 1.1, 0.38, color, layer.label, fontsize=7.5,
            text_color=TEXT if reduce else "white")
        y += 0.58
        arrow(ax, (x + 0.7, y - 0.2), (x + 0.7, y if layer is not branch[-1] else y + 0.06))
    add_node(ax, x + 0.7, y + 0.17)
    out = branch[-1]
    label(ax, x + 0.7, y + 0.5, f"ReLU → out: {out.out_channels}, {out.side}×{out.side}", fontsize=7.5)
    right = x + 1.62
    arrow(ax, (x + 1.25, 0.26), (right, 0.26), head=False)
    if projection:
        arrow(ax, (right, 0.26), (right, 1.0), head=False, dashed=True)
        box(ax, right - 0.3, 1.0, 0.6, 0.5, "white", projection[0].label.replace(", ", "\n"), fontsize=7,
            text_color=TEXT, edge=LINE, dashed=True)
        arrow(ax, (right, 1.5), (right, y + 0.17), head=False, dashed=True)
    else:
        arrow(ax, (right, 0.26), (right, y + 0.17), head=False)
        label(ax, right + 0.05, (y + 0.43) / 2, "identity", fontsize=7, rotation=90, ha="left")
    arrow(ax, (right, y + 0.17), (x + 0.81, y + 0.17), dashed=bool(projection))


def draw_residual_blocks() -> Figure:
    """Four residual blocks as `lib.models.resnet` builds them, each conv followed by BatchNorm (and a
    ReLU, except the last before the addition): a basic block with an identity shortcut, a basic block
    that halves the map with a 1x1 projection shortcut, and a downsampling bottleneck in v1 (stride 2
    on the first 1x1, the paper) and v1.5 (stride 2 on the 3x3, torchvision)."""
    panels = (
        (residual_block_layers("basic", in_channels=64, channels=64), "basic, identity"),
        (residual_block_layers("basic", in_channels=64, channels=128, stride=2), "basic, projection"),
        (residual_block_layers("bottleneck", in_channels=256, channels=128, stride=2, version="1"),
         "bottleneck v1"),
        (residual_block_layers("bottleneck", in_channels=256, channels=128, stride=2, version="1.5"),
         "bottleneck v1.5"),
    )
    fig, ax = canvas(8.0, 3.3)
    for i, (layers, title) in enumerate(panels):
        _block_panel(ax, 0.05 + i * 2.0, layers, title)
    return finish(fig)
