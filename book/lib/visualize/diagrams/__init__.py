"""Diagrams of the networks, drawn from the same configuration tables the models are built from.

Each family has a pure function that lists a network's layers (`lenet_layers`, `alexnet_layers`,
`vgg_layers`, `googlenet_layers`, `inception_layers`, `residual_block_layers`, `resnet_layers`: lists
of `Layer`, without matplotlib), and drawing functions that turn such a list into a figure:

    lenet       draw_lenet (C1 S2 C3 S4 C5 F6 and the output, with map sizes and channels)
    alexnet     draw_alexnet_towers (the two GPUs and which layers read both halves)
    vgg         draw_vgg_configurations (configurations A to E as the columns of Table 1)
    googlenet   draw_inception_module (four branches with the 1x1 reductions), draw_googlenet
                (the whole network with its two auxiliary heads)
    resnet      draw_residual_blocks (basic and bottleneck blocks, identity and projection
                shortcuts, v1 against v1.5 stride placement)
    ring        ring_schedule / ring_allreduce (pure) and draw_ring_allreduce
    maps        draw_chapter_map and draw_map_legend (the landing page's chapter maps)
    overview    measure_networks (parameters, multiply-adds and receptive fields of the five
                networks, measured on the models), draw_field_map and draw_cost_map (the landing
                page's maps of the introduction and the comparison)

tests/test_diagrams.py checks every layer list against the modules of the built model, so a diagram
cannot drift from the network it shows; the overview maps measure the models themselves. Drawing
helpers live in `primitives`.
"""
from .alexnet import alexnet_layers, draw_alexnet_towers
from .googlenet import draw_googlenet, draw_inception_module, googlenet_layers, inception_layers
from .layers import Layer
from .lenet import draw_lenet, lenet_layers
from .maps import draw_chapter_map, draw_map_legend, map_items
from .overview import draw_cost_map, draw_field_map, measure_networks
from .resnet import draw_residual_blocks, residual_block_layers, resnet_layers
from .ring import draw_ring_allreduce, ring_allreduce, ring_schedule
from .vgg import draw_vgg_configurations, vgg_layers

__all__ = [
    "Layer", "alexnet_layers", "draw_alexnet_towers", "draw_chapter_map", "draw_cost_map",
    "draw_field_map", "draw_googlenet", "draw_inception_module", "draw_lenet", "draw_map_legend",
    "draw_residual_blocks", "draw_ring_allreduce", "draw_vgg_configurations", "googlenet_layers",
    "inception_layers", "lenet_layers", "map_items", "measure_networks", "residual_block_layers",
    "resnet_layers", "ring_allreduce", "ring_schedule", "vgg_layers",
]
