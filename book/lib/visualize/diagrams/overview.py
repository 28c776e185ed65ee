"""The landing page's two overview maps: the book's five networks measured and plotted together.

Unlike the chapter maps (`maps`), which draw layer lists, these two plot measurements, made here on
the networks of `lib.models` built on the "meta" device (shapes only, no weights):

    measure, measure_networks   a network's parameters and multiply-adds for one image at its
                                natural input size (`lib.inspection.describe`), and the receptive
                                field of every conv and pool layer in forward order
                                (`lib.receptive_field.receptive_field`)
    draw_field_map              the introduction's map: the receptive field, layer by layer
    draw_cost_map               the comparison's map: parameters against multiply-adds

Each network keeps one colour, that of the kind of layer it brought in the chapter maps' key:
AlexNet LRN, VGG the 3x3 convolution, GoogLeNet the Inception module, ResNet the residual block,
LeNet-5 the fully connected layers of its classifier. .ci/draw_maps.py writes both maps to
book/_static, and tests/test_diagrams.py checks their numbers against the models.
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from ...inspection import describe
from ...models import get_model
from ...receptive_field import receptive_field
from .primitives import COLORS, TEXT, finish

SIZE = (7.0, 2.8)  # inches: the chapter maps' proportions, larger text
FONT = 14  # points: the maps are shown about 400 pixels wide, half their size
GREY = "#777777"


class Network(NamedTuple):
    """A network of the overview maps: label, `lib.models` name and options, input, colour."""

    label: str
    model: str
    options: tuple[tuple[str, object], ...]
    input_size: tuple[int, int, int]
    color: str


NETWORKS = (
    Network("LeNet-5", "lenet5", (), (1, 28, 28), COLORS["linear"]),
    Network("AlexNet (2012)", "alexnet", (("variant", "paper"),), (3, 224, 224), COLORS["lrn"]),
    Network("VGG-16", "vgg16", (), (3, 224, 224), COLORS["conv"]),
    Network("GoogLeNet", "googlenet", (("aux_logits", False),), (3, 224, 224), COLORS["inception"]),
    Network("ResNet-18", "resnet18", (), (3, 224, 224), COLORS["residual"]),
)


class Measures(NamedTuple):
    """What the overview maps show of one network."""

    params: int  # every parameter, biases included
    mult_adds: int  # for one image, torchinfo's count
    fields: tuple[int, ...]  # the field (px) of every conv and pool layer, in forward order

    @property
    def field(self) -> int:
        """The largest receptive field before the global pooling, in pixels."""
        return max(self.fields)


@functools.lru_cache(maxsize=None)
def measure(network: Network) -> Measures:
    """Parameters, multiply-adds and receptive fields of `network`, measured on its "meta" model."""
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        model = get_model(network.model, **dict(network.options))
    facts = describe(model, network.input_size)
    table = receptive_field(model, network.input_size)
    fields = tuple(row.size for row in table if not row.kind.startswith("adaptive"))
    return Measures(facts["params"], facts["macs"], fields)


def measure_networks() -> dict[str, Measures]:
    """{label: Measures} of the five networks of `NETWORKS`, in their order."""
    return {network.label: measure(network) for network in NETWORKS}


def short_count(count: int) -> str:
    """A count to 3 significant digits with an SI prefix: 61706 -> "61.7 k", 1.498e9 -> "1.5 G"."""
    value = float(f"{count:.3g}")
    for power, prefix in ((9, "G"), (6, "M"), (3, "k")):
        if value >= 10 ** power:
            return f"{value / 10 ** power:g} {prefix}"
    return f"{value:g}"


def _axes() -> tuple[Figure, plt.Axes]:
    """A figure of the maps' size with one plot, framed on the left and at the bottom only."""
    fig, ax = plt.subplots(figsize=SIZE)
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.2, top=0.97)  # the plot spans the width
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=FONT, colors=TEXT)
    return fig, ax


def draw_field_map() -> Figure:
    """The receptive field after every conv and pool layer of the five networks, first to last.

    Each line is one network, its layers spread evenly from "first" to "last". Inside an Inception
    module or a residual block the branches see different fields, so a line shows the largest field
    so far (what the block's output sees). The dotted line is the side of a 224 x 224 input.
    """
    fig, ax = _axes()
    for network, measures in ((n, measure(n)) for n in NETWORKS):
        fields = list(itertools.accumulate(measures.fields, max))
        steps = [i / len(fields) for i in range(len(fields) + 1)]
        ax.plot(steps, [*fields, fields[-1]], drawstyle="steps-post", color=network.color,
                linewidth=2.2, label=f"{network.label} {fields[-1]}")
    side = max(network.input_size[-1] for network in NETWORKS)
    ax.axhline(side, color=GREY, linestyle=":", linewidth=1.2)
    ax.text(0.01, side * 1.12, f"{side} px input", fontsize=FONT - 1, color=GREY, va="bottom")
    _field_axes(ax, top=max(measure(network).field for network in NETWORKS))
    ax.legend(loc="upper left", ncol=3, frameon=False, fontsize=FONT - 1, handlelength=1.2,
              handletextpad=0.5, columnspacing=1.0, borderaxespad=0.1, labelspacing=0.2)
    return finish(fig)


def _field_axes(ax: plt.Axes, top: int) -> None:
    """Fields on a log2 scale, ticks at powers of 4 up to `top`; layers from "first" to "last"."""
    ax.set_yscale("log", base=2)
    ticks = [4 ** k for k in range(1, math.ceil(math.log(top, 4)) + 1)]
    ax.set_yticks(ticks, [str(tick) for tick in ticks])
    ax.minorticks_off()
    ax.set_ylim(2, ticks[-1] * 16)  # room for the legend above the highest tick
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1], ["first", "¼", "½", "¾", "last"])
    ax.set_xlabel("conv and pool layers, first to last", fontsize=FONT, color=TEXT)
    ax.set_ylabel("receptive field (px)", fontsize=FONT, color=TEXT)


# Where each label sits beside its point, in points: (dx, dy, horizontal alignment).
_LABEL_PLACES = {"LeNet-5": (11, 0, "left"), "AlexNet (2012)": (-12, 6, "right"),
                 "VGG-16": (10, 4, "left"), "GoogLeNet": (-10, -14, "right"),
                 "ResNet-18": (12, -8, "left")}


def draw_cost_map() -> Figure:
    """Parameters against multiply-adds per image of the five networks, both on log scales.

    Each network runs at its natural input size (28 x 28 for LeNet-5, 224 x 224 for the others),
    and its label gives both numbers, "parameters · multiply-adds".
    """
    fig, ax = _axes()
    measured = [(network, measure(network)) for network in NETWORKS]
    for network, measures in measured:
        ax.scatter(measures.mult_adds, measures.params, s=170, color=network.color, zorder=3,
                   edgecolors="white", linewidths=1.0)
        dx, dy, ha = _LABEL_PLACES.get(network.label, (11, 0, "left"))
        ax.annotate(f"{network.label}\n{short_count(measures.params)} · "
                    f"{short_count(measures.mult_adds)}", (measures.mult_adds, measures.params),
                    xytext=(dx, dy), textcoords="offset points", ha=ha, va="center",
                    fontsize=FONT - 0.5, color=network.color, linespacing=1.25)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*_decades([m.mult_adds for _, m in measured], extra=1))
    ax.set_ylim(*_decades([m.params for _, m in measured], extra=0))
    ax.grid(True, which="major", color="#E3E3E3", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.text(0.98, 0.05, "labels: parameters · multiply-adds", transform=ax.transAxes,
            fontsize=FONT - 1, color=GREY, ha="right", va="bottom")
    ax.set_xlabel("multiply-adds per image (log)", fontsize=FONT, color=TEXT)
    ax.set_ylabel("parameters (log)", fontsize=FONT, color=TEXT)
    return finish(fig)


def _decades(values: list[int], extra: int) -> tuple[float, float]:
    """The powers of ten around `values`, with `extra` more decades above (room for labels)."""
    low = math.floor(math.log10(min(values)))
    high = math.ceil(math.log10(max(values))) + extra
    return 10.0 ** low, 10.0 ** high
