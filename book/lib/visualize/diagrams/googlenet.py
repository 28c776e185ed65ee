"""The Inception module and the whole GoogLeNet with its two auxiliary heads (Szegedy et al. 2015,
figure 2b, figure 3 and Table 1), drawn from `lib.models.googlenet.INCEPTION_SPECS` and `VARIANTS`."""
from __future__ import annotations

from matplotlib.figure import Figure

from ...lookup import unknown
from ...models.googlenet import INCEPTION_SPECS, VARIANTS
from .layers import Chain, Layer
from .primitives import COLORS, TEXT, arrow, box, canvas, finish, label

STAGES = (("inception3a", "inception3b"), ("inception4a", "inception4b", "inception4c", "inception4d",
                                           "inception4e"), ("inception5a", "inception5b"))
AUX_AFTER = {"inception4a": "aux1", "inception4d": "aux2"}


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))  # as lib.models.googlenet scales every width


def inception_layers(name: str = "inception3a", *, variant: str = "paper", width: float = 1.0,
                     side: int = 28) -> list[Layer]:
    """The layers of one Inception module of `lib.models.googlenet(variant=...)`: branch by branch,
    named as in the model ("inception3a.branch2.0.conv"), on a `side`-pixel input."""
    if name not in INCEPTION_SPECS:
        raise unknown("Inception module", name, INCEPTION_SPECS)
    if variant not in VARIANTS:
        raise unknown("GoogLeNet variant", variant, VARIANTS)
    spec = type(INCEPTION_SPECS[name])(*(_scaled(n, width) for n in INCEPTION_SPECS[name]))
    k = VARIANTS[variant].branch3_kernel

    def branch(n: int) -> Chain:
        return Chain(spec.in_channels, side, f"{name}.branch{n}.")

    return [
        *branch(1).conv("conv", spec.ch1x1, 1).layers,
        *branch(2).conv("0.conv", spec.ch3x3red, 1).conv("1.conv", spec.ch3x3, 3, padding=1).layers,
        *branch(3).conv("0.conv", spec.ch5x5red, 1).conv("1.conv", spec.ch5x5, k, padding=k // 2).layers,
        *branch(4).pool("0", "maxpool", 3, 1, 1, ceil_mode=True).conv("1.conv", spec.pool_proj, 1).layers,
    ]


def _aux_layers(chain: Chain, head: str, variant: str, stem: str, width: float, classes: int) -> list[Layer]:
    aux = Chain(chain.channels, chain.side, f"{head}.")
    if VARIANTS[variant].aux_pool == "5x5/3" and stem == "imagenet":
        aux.pool("pool", "avgpool", 5, 3)
    else:
        aux.adaptive("pool", 4)
    aux.conv("conv.conv", _scaled(128, width), 1)
    return aux.linear("fc1", _scaled(1024, width)).linear("fc2", classes).layers


def googlenet_layers(variant: str = "torchvision", *, stem: str = "imagenet", width: float = 1.0,
                     aux_logits: bool = True, num_classes: int = 1000) -> list[Layer]:
    """The layers of `lib.models.googlenet(...)` with the same arguments, in forward order; each
    auxiliary head's layers follow the module it reads (inception 4a and 4d)."""
    if variant not in VARIANTS:
        raise unknown("GoogLeNet variant", variant, VARIANTS)
    v, c = VARIANTS[variant], (lambda n: _scaled(n, width))
    chain = Chain(3, 224 if stem == "imagenet" else 32)
    if stem == "imagenet":
        chain.conv("conv1.conv", c(64), 7, 2, 3)
    else:
        chain.conv("conv1.conv", c(64), 3, padding=1)
    chain.pool("maxpool1", "maxpool", 3, 2, ceil_mode=True)
    if v.lrn:
        chain.lrn("norm1")
    chain.conv("conv2.conv", c(64), 1).conv("conv3.conv", c(192), 3, padding=1)
    if v.lrn:
        chain.lrn("norm2")
    chain.pool("maxpool2", "maxpool", 3, 2, ceil_mode=True)
    pools = ("maxpool3", 3), ("maxpool4", v.maxpool4_kernel)
    for s, stage in enumerate(STAGES):
        for name in stage:
            module = inception_layers(name, variant=variant, width=width, side=chain.side)
            chain.layers += module
            chain.channels = sum(layer.out_channels for layer in module  # the four branches' ends
                                 if layer.name.endswith(("branch1.conv", ".1.conv")))
            if aux_logits and name in AUX_AFTER:
                chain.layers += _aux_layers(chain, AUX_AFTER[name], variant, stem, width, num_classes)
        if s < 2:
            chain.pool(pools[s][0], "maxpool", pools[s][1], 2, ceil_mode=True)
    return chain.adaptive("avgpool", 1).linear("fc", num_classes).layers


def _branch_column(ax, x: float, layers: list[Layer], title: str) -> None:
    """One branch of the module, bottom to top, with arrows from the input and into the concatenation."""
    y = 0.85
    arrow(ax, (3.9, 0.55), (x + 0.7, y))
    for layer in layers:
        reduce = layer.kind == "conv" and layer.kernel == 1 and layer is not layers[-1]
        color = COLORS["reduce"] if reduce else COLORS["conv"] if layer.kind == "conv" else COLORS["pool"]
        text = layer.label + (" (reduce)" if reduce else "")
        box(ax, x, y, 1.4, 0.42, color, text, fontsize=8, text_color=TEXT if reduce else "white")
        y += 0.62
        if layer is not layers[-1]:
            arrow(ax, (x + 0.7, y - 0.2), (x + 0.7, y))
    arrow(ax, (x + 0.7, y - 0.2), (x + 0.7, 2.75))
    label(ax, x + 0.75, 2.45, title, fontsize=7, ha="left")


def draw_inception_module(name: str = "inception3a", *, variant: str = "paper") -> Figure:
    """One Inception module with its four branches and their channel numbers (Table 1): a 1x1
    convolution; a 1x1 reduction then a 3x3; a 1x1 reduction then a 5x5 (3x3 in torchvision's
    variant); a 3x3 max pool then a 1x1 projection. The branches' outputs are concatenated."""
    layers = inception_layers(name, variant=variant)
    branches = [[layer for layer in layers if f".branch{n}." in layer.name] for n in (1, 2, 3, 4)]
    fig, ax = canvas(7.8, 3.45)
    box(ax, 2.9, 0.12, 2.0, 0.42, COLORS["input"], f"input: {layers[0].in_channels} channels",
        text_color="black")
    titles = ("branch 1", "branch 2", "branch 3", "branch 4")
    for n, branch in enumerate(branches):
        _branch_column(ax, 0.2 + n * 1.9, branch, titles[n])
    total = sum(branch[-1].out_channels for branch in branches)
    parts = " + ".join(str(branch[-1].out_channels) for branch in branches)
    box(ax, 1.4, 2.75, 5.0, 0.5, COLORS["inception"], f"{name[-2:]}: concatenate {parts} = {total} channels",
        fontsize=8.5)
    return finish(fig)


def _main_row(layers: list[Layer]) -> list[tuple[str, str, int]]:
    """The boxes of the whole-network strip: (text, colour key, side after it), modules as one box."""
    row: list[tuple[str, str, int]] = []
    for layer in layers:
        if layer.name.startswith("aux"):
            continue
        if layer.name.startswith("inception"):
            module = layer.name.split(".")[0]
            if not row or not row[-1][0].startswith(module[-2:]):
                text = f"{module[-2:]}: {INCEPTION_SPECS[module].out_channels}"
                row.append((text, "inception", layer.side))
            continue
        kind = "pool" if layer.kind.endswith("pool") else layer.kind
        row.append((layer.label, kind, layer.side))
    return row


def _aux_box(ax, x: float, layers: list[Layer], head: str, to_left: bool) -> None:
    head_layers = [layer.label for layer in layers if layer.name.startswith(head)]
    text = "\n".join([f"{head} (training only)", *head_layers])
    left = x - 1.55 if to_left else x + 0.05
    box(ax, left, 0.1, 1.5, 0.95, COLORS["linear"], text, fontsize=7)
    arrow(ax, (x, 1.35), (left + (1.5 if to_left else 0.0), 0.6), width=0.8)


def draw_googlenet(variant: str = "torchvision", **config) -> Figure:
    """The whole GoogLeNet as a strip, one box per layer and per Inception module (with its output
    channels), the map side under each stage, and the auxiliary heads on inception (4a) and (4d).

    Args:
        variant: "torchvision" or "paper".
        **config: further arguments of `lib.models.googlenet` (stem, width).
    """
    layers = googlenet_layers(variant, **config)
    row = _main_row(layers)
    step = 7.6 / (len(row) + 1)
    fig, ax = canvas(7.8, 3.2)
    side = 224 if config.get("stem", "imagenet") == "imagenet" else 32
    box(ax, 0.1, 1.35, step - 0.06, 1.3, COLORS["input"], f"input {layers[0].in_channels}×{side}²",
        rotation=90, fontsize=7, text_color="black")
    previous_side, centres = None, {}
    for i, (text, kind, side) in enumerate(row, start=1):
        x = 0.1 + i * step
        box(ax, x, 1.35, step - 0.06, 1.3, COLORS[kind], text, rotation=90, fontsize=7)
        arrow(ax, (x - 0.06, 2.0), (x, 2.0), width=0.6)
        centres[text[:2]] = x + (step - 0.06) / 2
        settled = i == len(row) or row[i][2] == side  # the next box keeps this side: label the stage
        if side and side != previous_side and settled:
            label(ax, x, 2.8, f"{side}×{side}", fontsize=7, ha="left")
            previous_side = side
    if any(layer.name.startswith("aux") for layer in layers):
        _aux_box(ax, centres["4a"], layers, "aux1", to_left=True)
        _aux_box(ax, centres["4d"], layers, "aux2", to_left=False)
    return finish(fig)
