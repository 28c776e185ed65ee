"""Drawing primitives shared by the diagrams: a canvas in inches, boxes, arrows, colours by layer kind.

A canvas is one axes filling its figure, with data coordinates in inches (x to the right, y up), so a
box of width 1 is one inch wide whatever the figure's size, and text sizes stay comparable between
diagrams. Every drawing function closes its figure and returns it (see `lib.visualize`).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

# The colours of the chapter maps' key (one per kind of layer), in the seaborn "deep" palette.
COLORS = {
    "conv": "#4C72B0",
    "reduce": "#8FAADC",  # a 1x1 convolution that reduces channels (Inception, bottleneck)
    "pool": "#DD8452",
    "lrn": "#C44E52",
    "inception": "#55A868",
    "residual": "#8172B3",
    "linear": "#937860",
    "input": "#BBBBBB",
    "add": "#FFFFFF",
}
TEXT = "#222222"
LINE = "#444444"


def color_of(kind: str) -> str:
    """The fill colour of a `Layer.kind` (all poolings share one)."""
    if kind.endswith("pool"):
        return COLORS["pool"]
    return COLORS.get(kind, COLORS["input"])


def canvas(width: float, height: float) -> tuple[Figure, plt.Axes]:
    """A figure `width` x `height` inches whose axes coordinates are inches, without frame or ticks."""
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    return fig, ax


def finish(fig: Figure) -> Figure:
    """Close `fig` (so that a notebook shows it once, as the cell's value) and return it."""
    plt.close(fig)
    return fig


def box(ax: plt.Axes, x: float, y: float, width: float, height: float, color: str, text: str = "",
        *, fontsize: float = 8, text_color: str = "white", rotation: float = 0,
        edge: str | None = None, dashed: bool = False) -> FancyBboxPatch:
    """A rounded box with its lower left corner at (x, y) and `text` centred in it."""
    patch = FancyBboxPatch((x, y), width, height, boxstyle="round,pad=0,rounding_size=0.04",
                           facecolor=color, edgecolor=edge or color, linewidth=1.0,
                           linestyle="--" if dashed else "-")
    ax.add_patch(patch)
    if text:
        ax.text(x + width / 2, y + height / 2, text, ha="center", va="center", fontsize=fontsize,
                color=text_color, rotation=rotation, linespacing=1.15)
    return patch


def arrow(ax: plt.Axes, start: tuple[float, float], end: tuple[float, float], *, dashed: bool = False,
          color: str = LINE, curve: float = 0.0, width: float = 1.0, head: bool = True) -> None:
    """An arrow from `start` to `end`; `curve` bends it (an arc of that relative height)."""
    ax.add_patch(FancyArrowPatch(
        start, end, arrowstyle="-|>,head_length=4,head_width=2.2" if head else "-",
        connectionstyle=f"arc3,rad={curve}", color=color, linewidth=width,
        linestyle=(0, (3, 2)) if dashed else "-", shrinkA=0, shrinkB=0, mutation_scale=1.5))


def add_node(ax: plt.Axes, x: float, y: float, radius: float = 0.11) -> None:
    """The circle with a plus where a shortcut meets its residual branch."""
    ax.add_patch(Circle((x, y), radius, facecolor="white", edgecolor=LINE, linewidth=1.0))
    ax.text(x, y, "+", ha="center", va="center", fontsize=10, color=TEXT)


def label(ax: plt.Axes, x: float, y: float, text: str, *, fontsize: float = 8, ha: str = "center",
          va: str = "center", color: str = TEXT, **kwargs) -> None:
    """Plain text at (x, y), in the diagram's text colour."""
    ax.text(x, y, text, ha=ha, va=va, fontsize=fontsize, color=color, **kwargs)
