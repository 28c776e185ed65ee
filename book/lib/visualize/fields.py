"""Receptive fields drawn on images: the box of one unit, and the effective field as a heatmap.

The fields themselves come from `lib.receptive_field`; this module only draws them.
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..receptive_field.geometry import FieldTable, LayerField, Pair
from .images import as_display_image

_BOX = "#ffcc00"  # the theoretical field on a photograph
_BOX_ON_HEATMAP = "#33ccff"  # the theoretical field on the magma colour map


def _edges(first: int, last: int, limit: int) -> tuple[float, float, bool]:
    """Pixel indices first..last as edges for imshow (pixel i spans i - 0.5 .. i + 0.5), clipped."""
    lo, hi = max(first, 0), min(last, limit - 1)
    return lo - 0.5, hi + 0.5, (lo, hi) != (first, last)


def _new_axes(ax: Axes | None, size: tuple[float, float] = (5, 5)) -> tuple[Figure, Axes, bool]:
    """The given axes and their figure, or a new figure's; True when the figure is new (ours to close)."""
    if ax is not None:
        return ax.figure, ax, False
    fig, ax = plt.subplots(figsize=size)
    return fig, ax, True


def _draw_box(ax: Axes, field: LayerField, position: tuple[int, int] | None, hw: Pair,
              color: str) -> tuple[tuple[int, int, int, int], bool]:
    """Outline the field of unit `position` (default: the centre unit), clipped to an image of size `hw`.

    Returns the unclipped box (top, left, bottom, right) and whether it had to be clipped.
    """
    row, col = position if position is not None else (None, None)
    top, left, bottom, right = field.box(row, col)
    y0, y1, clipped_y = _edges(top, bottom, hw[0])
    x0, x1, clipped_x = _edges(left, right, hw[1])
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, linewidth=2))
    return (top, left, bottom, right), clipped_x or clipped_y


def _mark_unit_centres(ax: Axes, field: LayerField, hw: Pair) -> None:
    """A dot at the centre of every unit's field inside the image: the spacing of the dots is the jump."""
    ys = field.start_hw[0] + field.jump_hw[0] * np.arange(field.output_hw[0])
    xs = field.start_hw[1] + field.jump_hw[1] * np.arange(field.output_hw[1])
    grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
    inside = (grid_y >= 0) & (grid_y <= hw[0] - 1) & (grid_x >= 0) & (grid_x <= hw[1] - 1)
    ax.scatter(grid_x[inside], grid_y[inside], s=4, c="white", edgecolors="none", alpha=0.7)


def _check_position(field: LayerField, position: tuple[int, int] | None) -> tuple[int, int]:
    """The unit to draw: `position`, checked against the layer's output size, or the centre unit."""
    if position is None:
        return field.output_hw[0] // 2, field.output_hw[1] // 2
    if not all(0 <= p < n for p, n in zip(position, field.output_hw)):
        raise ValueError(f"position {position} is outside the {field.output_hw[0]}x{field.output_hw[1]} "
                         f"output of {field.name}")
    return tuple(position)


def draw_receptive_field(
    image: Any,
    table: FieldTable,
    layer: str | int | LayerField,
    *,
    position: tuple[int, int] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draw the receptive field of one unit of `layer` on `image`.

    The box shows the input pixels that unit (row, col) of the layer sees, clipped to the image
    (the rest is padding). When the layer has at most 32x32 units, the centres of all its units are
    marked, which shows the jump.

    Args:
        image: the input image, (C, H, W) or (1, C, H, W) tensor or an (H, W[, C]) array, of the size
            the table was computed for.
        table: the result of `lib.receptive_field.receptive_field`.
        layer: a layer name, a position in the table or a `LayerField`.
        position: (row, col) of the unit in the layer's output; default the centre unit.
        ax: the axes to draw on; by default a new figure.

    Returns:
        The figure (a new figure is closed, so that a notebook shows it once, as the cell's value).
    """
    field = layer if isinstance(layer, LayerField) else table[layer]
    picture = as_display_image(image)
    hw = picture.shape[:2]
    if tuple(hw) != tuple(table.input_size[-2:]):
        raise ValueError(f"the image is {hw[0]}x{hw[1]} but the table was computed for "
                         f"{table.input_size[-2]}x{table.input_size[-1]} inputs")
    row, col = _check_position(field, position)
    fig, ax, created = _new_axes(ax)
    ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1)
    (top, left, bottom, right), clipped = _draw_box(ax, field, (row, col), hw, _BOX)
    if max(field.output_hw) <= 32:
        _mark_unit_centres(ax, field, hw)
    ax.plot([(left + right) / 2], [(top + bottom) / 2], marker="+", color=_BOX, markersize=10)
    ax.set_xlim(-0.5, hw[1] - 0.5)
    ax.set_ylim(hw[0] - 0.5, -0.5)
    ax.set_axis_off()
    size = "x".join(map(str, field.size_hw)) if field.size_hw[0] != field.size_hw[1] else f"{field.size}"
    ax.set_title(f"{field.name}, unit ({row}, {col}): {size} px" + (" (clipped)" if clipped else ""),
                 fontsize=10)
    if created:
        plt.close(fig)
    return fig


def plot_effective_receptive_field(
    heatmap: torch.Tensor | np.ndarray,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    field: LayerField | None = None,
) -> Figure:
    """Show an effective-receptive-field heatmap, optionally with the theoretical field of its unit.

    Args:
        heatmap: the (H, W) result of `lib.receptive_field.effective_receptive_field`.
        ax: the axes to draw on; by default a new figure.
        title: the title; by default "effective receptive field".
        field: the `LayerField` of the same layer at the same input size: its centre unit's field is
            drawn as a box (clipped to the image).

    Returns:
        The figure (a new figure is closed, so that a notebook shows it once).
    """
    values = heatmap.detach().float().cpu().numpy() if isinstance(heatmap, torch.Tensor) else np.asarray(heatmap)
    if values.ndim != 2:
        raise ValueError(f"expected an (H, W) heatmap, got shape {tuple(values.shape)}")
    fig, ax, created = _new_axes(ax, (4.5, 4))
    image = ax.imshow(values, cmap="magma", vmin=0, interpolation="nearest")
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("|gradient|, share of the largest", fontsize=8)
    if field is not None:
        _draw_box(ax, field, None, values.shape, _BOX_ON_HEATMAP)
    ax.set_xlim(-0.5, values.shape[1] - 0.5)
    ax.set_ylim(values.shape[0] - 0.5, -0.5)
    ax.set_title(title or "effective receptive field", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    if created:
        plt.close(fig)
    return fig
