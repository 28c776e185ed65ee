"""The shared code of the book: one module per network family and one per concern.

    lib.models            the networks (lenet, alexnet, vgg, googlenet, resnet), MODELS and get_model
    lib.data              datasets as tensors, with an offline fallback; sample photographs
    lib.training          fit: the training loop and its phases, the loss, on-device augmentation
    lib.evaluation        evaluate and predict (inputs normalised by `ImageData.normalizer`)
    lib.history           History: the record of a run (losses, accuracies, timings)
    lib.optim             optimisers, learning-rate schedules, parameter counts
    lib.checkpoint        saving a run after an epoch and resuming it exactly
    lib.estimates         a chapter's expected training time on a Colab T4 (from the benchmark)
    lib.device            devices, seeds, mixed precision, eval mode
    lib.quick             quick mode: the tiny training budgets of the test suite
    lib.lookup            one "unknown name, did you mean" error for the whole library
    lib.distributed       data-parallel training under torchrun (used by lib.training.fit)
    lib.visualize         feature maps, filters, curves, seed bands, receptive-field drawings (the only
                          package using matplotlib)
    lib.receptive_field   receptive fields: formulas, the graph walk, the effective field
    lib.experiments       variants x seeds from matched initial weights: tables, spreads, verdicts
    lib.initial_weights   which layers of two networks correspond, and copying their initial weights
    lib.results           the book's stored comparisons, gathered by chapter 6
    lib.inspection        per-layer weights and multiply-adds, longest paths (helpers of the chapters)
"""
from . import _compat  # noqa: F401  (display fixes for third-party tools)
from . import (
    checkpoint, data, device, distributed, estimates, evaluation, experiments, history, initial_weights,
    inspection, lookup, models, optim, quick, receptive_field, results, training, visualize,
)
from .data import load_dataset
from .device import device_name, get_device, seed_everything
from .evaluation import evaluate, predict
from .history import History
from .models import MODELS, get_model
from .optim import count_parameters
from .quick import quick_mode
from .training import fit

__all__ = [
    # submodules
    "checkpoint", "data", "device", "distributed", "estimates", "evaluation", "experiments", "history",
    "initial_weights", "inspection", "lookup", "models", "optim", "quick", "receptive_field", "results", "training",
    "visualize",
    # names
    "MODELS", "get_model", "load_dataset", "fit", "evaluate", "predict", "History", "count_parameters",
    "get_device", "device_name", "seed_everything", "quick_mode",
]
