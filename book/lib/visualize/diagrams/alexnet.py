"""AlexNet's two towers (Krizhevsky et al. 2012, figure 2), drawn from `lib.models.alexnet.CONVS`."""
from __future__ import annotations

from matplotlib.figure import Figure

from ...lookup import unknown
from ...models.alexnet import CONVS
from .layers import Chain, Layer
from .primitives import COLORS, arrow, box, canvas, finish, label

# What the builders pass besides the table: (input side, hidden units, pooled side, classes).
_SIZES = {"torchvision": (224, 4096, 6, 1000), "paper": (224, 4096, 6, 1000), "cifar": (32, 256, 3, 10)}


def alexnet_layers(variant: str = "paper", *, num_classes: int | None = None, norm: str | None = None,
                   groups: int | None = None) -> list[Layer]:
    """The layers of `lib.models.alexnet(variant=...)` ("torchvision", "paper") or, for "cifar",
    `lib.models.alexnet_cifar()`, with the same `num_classes`, `norm` and `groups`, in forward order."""
    if variant not in CONVS:
        raise unknown("AlexNet variant", variant, CONVS)
    side, hidden, pooled, classes = _SIZES[variant]
    norm = norm or ("none" if variant == "torchvision" else "lrn")
    groups = groups or (1 if variant == "torchvision" else 2)
    chain, index = Chain(3, side, "features."), 0
    for spec in CONVS[variant]:
        chain.conv(str(index), spec.out_channels, spec.kernel_size, spec.stride, spec.padding,
                   groups=groups if spec.grouped else 1)
        index += 2  # the convolution and its ReLU
        if spec.normalized:
            if norm == "lrn":
                chain.lrn(str(index))
            index += 1
        if spec.pooled:
            chain.pool(str(index), "maxpool", 3, 2)
            index += 1
    chain.prefix = ""
    chain.adaptive("avgpool", pooled)
    first = 1 if variant == "torchvision" else 0  # torchvision puts a dropout before each hidden layer
    chain.linear(f"classifier.{first}", hidden).linear(f"classifier.{first + 3}", hidden)
    return chain.linear("classifier.6", num_classes or classes).layers


def _columns(layers: list[Layer]) -> list[dict]:
    """One column per convolution or FC layer: its layer, the side after it, what follows it."""
    columns: list[dict] = []
    for layer in layers:
        if layer.kind in ("conv", "linear"):
            columns.append({"layer": layer, "side": layer.side, "after": []})
        elif layer.kind in ("lrn", "maxpool") and columns:
            columns[-1]["after"].append("LRN" if layer.kind == "lrn" else "max pool 3×3/2")
            columns[-1]["side"] = layer.side
    return columns


def draw_alexnet_towers(variant: str = "paper") -> Figure:
    """AlexNet split over two GPUs: conv2, conv4 and conv5 see only their own tower's maps (grouped
    convolutions); conv3 and the fully connected layers read both towers (the crossing arrows).

    Args:
        variant: "paper" (224x224 ImageNet) or "cifar" (`lib.models.alexnet_cifar`), both in two groups.
    """
    if variant == "torchvision":
        raise ValueError("the torchvision variant runs on one GPU: draw variant='paper' or 'cifar'")
    layers = alexnet_layers(variant)
    fig, ax = canvas(8.0, 3.5)
    top, bottom, height, width = 1.85, 0.75, 0.85, 0.62
    box(ax, 0.1, bottom, 0.42, top + height - bottom, COLORS["input"],
        f"input {layers[0].in_channels}×{_SIZES[variant][0]}²", rotation=90, text_color="black")
    names = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    previous_x = 0.52
    for i, column in enumerate(_columns(layers)):
        layer, x = column["layer"], 0.85 + i * 0.9
        color = COLORS["conv"] if layer.kind == "conv" else COLORS["linear"]
        crosses = layer.groups == 1
        last = i == len(names) - 1
        if last:  # one output layer reads both towers
            box(ax, x, bottom + 0.25, width, top + height - bottom - 0.5, color,
                f"{names[i]}\n{layer.out_channels}", fontsize=8)
        else:
            text = f"{names[i]}\n" + (f"{layer.kernel}×{layer.kernel}\n" if layer.kind == "conv" else "")
            for y in (top, bottom):
                box(ax, x, y, width, height, color, text + f"{layer.out_channels // 2}", fontsize=7.5)
        middles = (top + height / 2, bottom + height / 2)
        for k, end in enumerate(middles):
            for j, start in enumerate(middles):
                if j == k or (crosses and 0 < i and not last):
                    arrow(ax, (previous_x, start), (x, end), width=0.8)
        side = layer.side
        label(ax, x + width / 2, 0.45, f"{side}×{side}" if side else "", fontsize=7.5)
        after = ",\n".join(column["after"])
        if column["side"] != side:
            after += f"\n→ {column['side']}×{column['side']}"
        label(ax, x + width / 2, 0.22, after, fontsize=6.5, color=COLORS["lrn"], va="top")
        previous_x = x + width
    label(ax, 0.85, 3.1, "GPU 1", fontsize=8, ha="left")
    label(ax, 0.85, 0.58, "GPU 2", fontsize=8, ha="left", va="bottom")
    return finish(fig)
