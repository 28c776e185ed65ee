"""Receptive fields of convolutional networks: theoretical (layer arithmetic) and effective (gradients).

The *receptive field* of a unit is the patch of input pixels that can influence it. The package has
three layers, each using only the ones before it:

    geometry    the arithmetic along one axis (`AxisField`, `window_field`, `union_field`,
                `adaptive_window`, `same_padding`) and its results: `LayerField` per layer,
                `FieldTable` per model, with its text table. Plain numbers, no torch.
    graph       `receptive_field(model, input_size)`: follows the model's torch.fx graph and applies
                the arithmetic node by node.
    effective   `effective_receptive_field`: how much each input pixel actually influences the
                centre unit (Luo et al., 2016), from the gradient.

Pictures of fields are drawn by `lib.visualize` (`draw_receptive_field`,
`plot_effective_receptive_field`); nothing here imports matplotlib.
"""
from .effective import effective_receptive_field
from .geometry import (
    AxisField, FieldTable, LayerField, adaptive_window, same_padding, union_field, window_field,
)
from .graph import receptive_field

__all__ = [
    "AxisField",
    "LayerField",
    "FieldTable",
    "window_field",
    "union_field",
    "adaptive_window",
    "same_padding",
    "receptive_field",
    "effective_receptive_field",
]
