"""The shared code of the book: one module per network family and one per concern.

    lib.models            the networks (lenet, alexnet, vgg, googlenet, resnet), MODELS and get_model
    lib.data              datasets as tensors, with an offline fallback; sample photographs
    lib.training          fit / evaluate, devices, seeds, quick mode
    lib.visualize         feature maps, filters, curves, predictions
    lib.receptive_field   receptive fields (theoretical and effective)
    lib.distributed       data-parallel training under torchrun (used by lib.training.fit)
"""
from . import _compat  # noqa: F401  (display fixes for third-party tools)
from . import data, distributed, models, receptive_field, training, visualize
from .data import load_dataset
from .models import MODELS, get_model
from .training import evaluate, fit, get_device, pick, quick_mode, seed_everything

__all__ = [
    "data", "distributed", "models", "receptive_field", "training", "visualize",
    "MODELS", "get_model", "load_dataset", "fit", "evaluate", "get_device", "pick", "quick_mode",
    "seed_everything",
]
