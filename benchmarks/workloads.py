"""The measured workloads, their data, and the rounds in which the three pipelines take turns.

Each workload trains one network three ways, from the same initial weights: the naive torchvision
pipeline (`naive`), `lib.fit` (`fast`) and the compute-only loop (`compute`, the ceiling). The
pipelines take turns (naive, fast, compute, then compute, fast, naive, ...) so that all of them see
the same background load, and the median over the rounds is reported.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import lib
import torch
import torch.nn.functional as F
from lib.data import ImageData
from torch import nn

from .compute import time_compute
from .fast import time_fast
from .naive import PILDataset, naive_transform, time_naive
from .network import network_profile
from .timing import Rate, Steps, describe, median_per_cpu_second, median_per_second

# Sizes of the real training and test splits: the benchmark's data and the T4 estimates use them.
REAL_SIZES = {"mnist": (60_000, 10_000), "fashion_mnist": (60_000, 10_000), "cifar10": (50_000, 10_000)}
PIPELINES = ("naive", "fast", "compute")
COMPARED = ("naive", "fast")  # the two pipelines measured against the compute-only loop


@dataclass(frozen=True)
class Workload:
    """A network, its data set and batch size, and how many steps each measurement takes per device."""

    key: str
    title: str
    model: str  # a name in lib.MODELS
    model_kwargs: dict
    dataset: str  # a name in lib.data.DATASETS
    batch_size: int
    augment: bool  # random crop (padding 4) + horizontal flip in both pipelines
    steps: dict  # device type -> Steps
    quick_batch: int  # --quick: batch size
    quick_side: int | None = None  # --quick: images scaled down to this side (None: unchanged)


WORKLOADS = (
    Workload("lenet_mnist", "LeNet/MNIST-sized", "lenet5", {}, "mnist", batch_size=256, augment=False,
             steps={"cpu": Steps(10, 40), "cuda": Steps(20, 200), "mps": Steps(20, 100)},
             quick_batch=32),
    Workload("resnet20_cifar", "ResNet-20/CIFAR-sized", "resnet20", {"num_classes": 10}, "cifar10",
             batch_size=128, augment=True,
             steps={"cpu": Steps(2, 4), "cuda": Steps(20, 100), "mps": Steps(10, 40)},
             quick_batch=4, quick_side=16),
    Workload("resnet18_cifar", "ResNet-18/CIFAR-sized", "resnet18", {"num_classes": 10, "stem": "cifar"},
             "cifar10", batch_size=128, augment=True,
             # On a CPU a step of 128 images takes seconds and the data pipeline hardly matters.
             steps={"cpu": Steps(1, 1, max_rounds=2), "cuda": Steps(10, 50), "mps": Steps(5, 20)},
             quick_batch=4, quick_side=16),
)
QUICK_STEPS = Steps(1, 2)
QUICK_TRAIN_IMAGES = 256
TEST_IMAGES = 16  # lib.fit evaluates the test split after its steps (not timed): keep it small


def tiled(data: ImageData, n_train: int, n_test: int, side: int | None = None) -> ImageData:
    """`data` with its training images repeated to `n_train` items and its test split cut to `n_test`.

    With `side`, the images are also scaled down (average pooling) to side x side pixels.
    """
    train = torch.arange(n_train) % len(data.train_images)
    test = torch.arange(n_test) % len(data.test_images)
    train_images, test_images = data.train_images[train], data.test_images[test]
    if side is not None and side != train_images.shape[-1]:
        train_images, test_images = (F.adaptive_avg_pool2d(x, side) for x in (train_images, test_images))
    return dataclasses.replace(
        data, train_images=train_images, train_labels=data.train_labels[train],
        test_images=test_images, test_labels=data.test_labels[test])


@dataclass(frozen=True)
class Setup:
    """A workload made concrete for one run: its data, batch size, steps and rounds."""

    workload: Workload
    source: ImageData  # the offline set the data repeats
    data: ImageData
    batch_size: int
    steps: Steps
    rounds: int
    device: torch.device
    workers: int
    options: dict  # lib.fit's options on the fast path (see fast.fast_options)


def make_setup(workload: Workload, *, quick: bool, device: torch.device, rounds: int, workers: int,
               options: dict) -> Setup:
    """The workload's data (the offline set repeated to the real size, or small in quick mode) and budget."""
    source = lib.load_dataset(workload.dataset, offline=True)
    n_train = QUICK_TRAIN_IMAGES if quick else REAL_SIZES[workload.dataset][0]
    data = tiled(source, n_train, TEST_IMAGES, side=workload.quick_side if quick else None)
    steps = QUICK_STEPS if quick else workload.steps.get(device.type, workload.steps["cpu"])
    return Setup(workload, source, data, batch_size=workload.quick_batch if quick else workload.batch_size,
                 steps=steps, rounds=min(rounds, steps.max_rounds or rounds), device=device, workers=workers,
                 options=options)


def measure(setup: Setup) -> dict[str, list[Rate]]:
    """Each pipeline's throughput per round, the three taking turns, each from the same initial weights."""
    w, kwargs = setup.workload, dict(batch_size=setup.batch_size, steps=setup.steps, device=setup.device)
    data = setup.data
    dataset = PILDataset(data.train_images, data.train_labels, naive_transform(data, w.augment))
    torch.manual_seed(0)
    initial = lib.get_model(w.model, **w.model_kwargs)
    models: dict[str, nn.Module] = {name: copy.deepcopy(initial) for name in PIPELINES}
    timers = {
        "naive": lambda: time_naive(models["naive"], dataset, workers=setup.workers, **kwargs),
        "fast": lambda: time_fast(models["fast"], data, augment=w.augment, options=setup.options, **kwargs),
        "compute": lambda: time_compute(models["compute"], data, options=setup.options, **kwargs),
    }
    rates: dict[str, list[Rate]] = {name: [] for name in PIPELINES}
    for r in range(setup.rounds):
        for name in PIPELINES if r % 2 == 0 else PIPELINES[::-1]:  # ABBA: all see the same load
            rates[name].append(timers[name]())
        print(f"  round {r + 1}/{setup.rounds}: naive {describe(rates['naive'][-1])}   "
              f"lib.fit {describe(rates['fast'][-1])}   compute-only {describe(rates['compute'][-1])}",
              flush=True)
    return rates


def pipeline_entry(rates: list[Rate], real_train: int, description: str, **extra: object) -> dict:
    """A pipeline's figures in the results file: medians, each round, and what the pipeline is."""
    per_second = median_per_second(rates)
    return {
        "images_per_second": round(per_second, 1),
        "epoch_seconds": round(real_train / per_second, 2),
        "per_round": [round(r.per_second, 1) for r in rates],
        "images_per_cpu_second": median_per_cpu_second(rates),
        "per_round_cpu": [r.per_cpu_second and round(r.per_cpu_second, 1) for r in rates],
        "pipeline": description,
        **extra,
    }


def descriptions(setup: Setup) -> dict[str, str]:
    """What each pipeline does, in words, for the results file."""
    augment = "RandomCrop(padding=4), RandomHorizontalFlip, " if setup.workload.augment else ""
    on_device = "crop + flip and normalisation" if setup.workload.augment else "normalisation"
    pinned = ", pin_memory=True" if setup.device.type == "cuda" else ""
    return {
        "naive": f"PIL image per item, {augment}ToTensor, Normalize; "
                 f"DataLoader(shuffle=True, num_workers={setup.workers}{pinned}); fp32",
        "fast": f"lib.fit: the dataset as one tensor on the device, {on_device} on the device",
        "compute": "one normalised batch kept on the device; forward, loss, backward and optimiser step only, "
                   "in lib.fit's precision and layout",
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator rounded to 3 decimals; None if either is missing."""
    return round(numerator / denominator, 3) if numerator and denominator else None


def report(setup: Setup, rates: dict[str, list[Rate]]) -> dict:
    """The workload's entry in the results file."""
    w, data = setup.workload, setup.data
    real_train = REAL_SIZES[w.dataset][0]
    text = descriptions(setup)
    per_second = {name: median_per_second(rates[name]) for name in PIPELINES}
    per_cpu = {name: median_per_cpu_second(rates[name]) for name in PIPELINES}
    return {
        "key": w.key, "title": w.title, "model": w.model, "model_kwargs": w.model_kwargs,
        "image_shape": list(data.image_shape), "batch_size": setup.batch_size, "augment": w.augment,
        "mult_adds_per_image": network_profile(lambda: lib.get_model(w.model, **w.model_kwargs),
                                               data.image_shape)[0],
        "data": f"{setup.source.source}, repeated to {len(data.train_images):,} training images",
        "train_images": len(data.train_images),
        "steps": {"warmup": setup.steps.warmup, "timed": setup.steps.timed},
        "rounds": setup.rounds,
        "naive": pipeline_entry(rates["naive"], real_train, text["naive"]),
        "fast": pipeline_entry(rates["fast"], real_train, text["fast"], options=setup.options),
        "compute": pipeline_entry(rates["compute"], real_train, text["compute"], options=setup.options),
        "speedup": ratio(per_second["fast"], per_second["naive"]),
        "speedup_cpu": ratio(per_cpu["fast"], per_cpu["naive"]),
        # Each pipeline's throughput as a fraction of the compute-only loop's, in the same run.
        "fraction_of_compute": {name: ratio(per_second[name], per_second["compute"]) for name in COMPARED},
        "fraction_of_compute_cpu": {name: ratio(per_cpu[name], per_cpu["compute"]) for name in COMPARED},
    }


def run_workload(workload: Workload, *, quick: bool, device: torch.device, rounds: int, workers: int,
                 options: dict) -> dict:
    """Measure the three pipelines on `workload` and return its entry in the results file."""
    setup = make_setup(workload, quick=quick, device=device, rounds=rounds, workers=workers, options=options)
    return report(setup, measure(setup))
