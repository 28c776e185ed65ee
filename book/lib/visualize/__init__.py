"""Pictures of what a network computes; the only part of `lib` that imports matplotlib.

One module per kind of picture:

    features   feature_maps (the outputs of named layers, recorded with hooks), plot_feature_maps,
               plot_filters (the kernels of a convolution)
    images     show_images, plot_predictions, confusion_matrix and plot_confusion_matrix, and
               as_display_image, the one conversion of an image (tensor or array) for imshow
    curves     plot_history (accuracy and loss per epoch of one run or several)
    experiments  plot_runs (curves with a band over the seeds) and plot_final (final values per seed)
                 of a `lib.experiments.Comparison`
    diagrams   the networks drawn from their configuration tables: draw_lenet, draw_alexnet_towers,
               draw_vgg_configurations, draw_inception_module, draw_googlenet, draw_residual_blocks,
               draw_ring_allreduce (and the layer lists they draw, e.g. `diagrams.vgg_layers`)
    fields     draw_receptive_field (the box of one unit on an image) and
               plot_effective_receptive_field (the gradient heatmap), for `lib.receptive_field`'s results

Everything else in `lib` computes and returns numbers or tensors; the functions here draw them.

Every plotting function builds its figure with `plt.subplots`, closes it with `plt.close(fig)` and
returns it. Closed, the figure is not drawn again by the inline backend at the end of the cell; returned,
it is drawn exactly once when it is the cell's last expression (IPython renders a Figure result as a
PNG). So in a notebook write

    lib.visualize.plot_history(history)          # last line of the cell: shown once

and `fig = plot_history(history)` shows nothing until `fig` (or `display(fig)`) is evaluated; to show
several figures from one cell, call `display(...)` on each. The two field drawings also take `ax=`:
they then draw on those axes and leave the figure, which is the caller's, open.

Under IPython, importing this package makes figures display sharp and light (`formats`): SVG for plots,
a 2x PNG or JPEG for pictures; see `lib.visualize.formats` for the rule.
"""
from .curves import plot_history
from .diagrams import (
    draw_alexnet_towers, draw_googlenet, draw_inception_module, draw_lenet, draw_residual_blocks,
    draw_ring_allreduce, draw_vgg_configurations,
)
from .experiments import plot_final, plot_runs
from .features import feature_maps, plot_feature_maps, plot_filters
from .fields import draw_receptive_field, plot_effective_receptive_field
from .formats import figure_bundle, use_sharp_figures
from .images import as_display_image, confusion_matrix, plot_confusion_matrix, plot_predictions, show_images

__all__ = [
    "as_display_image",
    "confusion_matrix",
    "draw_alexnet_towers",
    "draw_googlenet",
    "draw_inception_module",
    "draw_lenet",
    "draw_receptive_field",
    "draw_residual_blocks",
    "draw_ring_allreduce",
    "draw_vgg_configurations",
    "feature_maps",
    "figure_bundle",
    "plot_confusion_matrix",
    "plot_effective_receptive_field",
    "plot_feature_maps",
    "plot_filters",
    "plot_final",
    "plot_history",
    "plot_predictions",
    "plot_runs",
    "show_images",
    "use_sharp_figures",
]

use_sharp_figures()  # under IPython: figures stored as SVG or a 2x raster (does nothing elsewhere)
