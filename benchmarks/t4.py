"""An estimate of each chapter's full-mode time on a Colab T4: training from its networks' mult-adds and
operator counts, plus the first cell's clone and install and the dataset download.

Why FLOPs and operators and not the measured CPU throughput scaled by a factor: the ratio between a GPU
and a CPU is not one number. LeNet on a GPU is bound by the CPU work of launching its operators, a
ResNet-18 by arithmetic; one factor would be wrong for one of them by an order of magnitude. See
`GPUAssumptions` and benchmarks/README.md.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass

import lib
from torch import nn

from .network import network_profile
from .operators import step_operators
from .workloads import REAL_SIZES


@dataclass(frozen=True)
class GPUAssumptions:
    """What the estimate assumes about a GPU and a Colab session; the defaults describe a Colab Tesla T4.

    peak_flops: 65 TFLOP/s, the T4's fp16 tensor-core peak (NVIDIA T4 datasheet). lib.fit autocasts
        to fp16 (with a GradScaler) on a T4: it picks bf16 only from compute capability 8.0.
    utilization: the fraction of the peak a training step sustains. 15%: NVIDIA's own ResNet-50 v1.5
        figures for a T4 (DeepLearningExamples, PyTorch, mixed precision, batch 256) are 1,198 images/s
        in inference; at 4.09 GMACs = 8.2 GFLOP per image that is 9.8 TFLOP/s, 15% of the peak, with
        well-fed 224x224 convolutions. Small CIFAR networks and short runs are unlikely to do better.
    operator_seconds: the CPU time of dispatching and launching one operator in eager PyTorch on Colab's
        CPUs, as a range: 10 to 20 us (issue 19). A step takes the longer of its compute time and its
        operators (counted by `step_operators`) times this.
    setup_seconds: the notebook's first cell in a fresh runtime (clone the repository, install torchinfo
        and mlxtend), as a range. Assumed, not measured: nothing here reaches Colab.
    download_seconds: the first download of each dataset into the data folder, as a range (MNIST: 4 files,
        11 MB; CIFAR-10: one 163 MB archive, then its extraction). Assumed, not measured.
    """

    name: str = "Tesla T4 (Colab)"
    peak_flops: float = 65e12
    utilization: float = 0.15
    operator_seconds: tuple[float, float] = (10e-6, 20e-6)
    setup_seconds: tuple[float, float] = (15.0, 45.0)
    download_seconds: tuple[tuple[str, float, float], ...] = (("mnist", 5.0, 20.0), ("cifar10", 20.0, 60.0))


T4 = GPUAssumptions()


def t4_seconds(mult_adds_per_image: float, *, step_ops: int, eval_ops: int, train_images: int,
               test_images: int, epochs: int, batch_size: int, max_steps_per_epoch: int | None = None,
               operator_s: float = T4.operator_seconds[0], gpu: GPUAssumptions = T4) -> float:
    """Estimated seconds of `lib.fit(..., epochs=epochs, batch_size=batch_size)` on `gpu`.

    A training step costs 3 forward passes' worth of FLOPs (forward, then backward for the inputs and
    for the weights), 6 * mult_adds per image; an evaluation batch (lib.fit evaluates the test split
    after every epoch, batches of max(512, batch_size)) costs 2 * mult_adds per image. Each step or
    batch takes the longer of its FLOPs at `peak_flops * utilization` and its operators' CPU time
    (`step_ops * operator_s`, or `eval_ops * operator_s` for an evaluation batch).

    Args:
        mult_adds_per_image: torchinfo's "Total mult-adds" for one image, in train mode.
        step_ops, eval_ops: operators per training step and per evaluation batch (`step_operators`).
        train_images, test_images: the sizes of the splits (lib.fit takes train_images // batch_size
            full batches per epoch).
        epochs, batch_size, max_steps_per_epoch: as passed to lib.fit.
        operator_s: seconds of CPU time per operator (one end of `gpu.operator_seconds`).
        gpu: the assumptions (see `GPUAssumptions`).
    """
    flop_rate = gpu.peak_flops * gpu.utilization
    steps = max(1, train_images // batch_size)
    if max_steps_per_epoch is not None:
        steps = min(steps, max_steps_per_epoch)
    batch = min(batch_size, train_images)
    train = steps * max(6 * mult_adds_per_image * batch / flop_rate, step_ops * operator_s)
    eval_batch = max(512, batch_size)
    full, rest = divmod(test_images, eval_batch)
    sizes = [eval_batch] * full + ([rest] if rest else [])
    evaluate = sum(max(2 * mult_adds_per_image * n / flop_rate, eval_ops * operator_s) for n in sizes)
    return epochs * (train + evaluate)


@dataclass(frozen=True)
class ChapterRun:
    """One `lib.fit` call of a chapter in full mode (as the notebook stood when this table was written)."""

    chapter: str
    label: str
    build: Callable[[], nn.Module]
    dataset: str
    epochs: int
    batch_size: int
    count: int = 1  # identical calls (e.g. variants with the same cost)
    max_steps_per_epoch: int | None = None
    images: tuple[int, int] | None = None  # (train, test) of a fixed subset; default: the real dataset's
    image_size: int | None = None  # side of a downsampled input; default: the dataset's
    augment: bool = False  # lib.fit's augment=True (random crops and flips) adds their operators


def estimate_run_seconds(run: ChapterRun, gpu: GPUAssumptions = T4) -> dict:
    """Measure the run's network (mult-adds, operators per step) and estimate its time on `gpu`.

    "seconds" is a range, [at the cheaper, at the dearer operator price of `gpu.operator_seconds`].
    """
    channels, side = (1, 28) if run.dataset in ("mnist", "fashion_mnist") else (3, 32)
    shape = (channels, run.image_size or side, run.image_size or side)
    n_train, n_test = run.images or REAL_SIZES[run.dataset]
    macs, layers = network_profile(run.build, shape)
    step_ops, eval_ops = step_operators(run.build, shape, augment=run.augment)
    seconds = [run.count * t4_seconds(macs, step_ops=step_ops, eval_ops=eval_ops, train_images=n_train,
                                      test_images=n_test, epochs=run.epochs, batch_size=run.batch_size,
                                      max_steps_per_epoch=run.max_steps_per_epoch, operator_s=price,
                                      gpu=gpu)
               for price in gpu.operator_seconds]
    return {"chapter": run.chapter, "label": run.label, "count": run.count, "dataset": run.dataset,
            "epochs": run.epochs, "batch_size": run.batch_size,
            "max_steps_per_epoch": run.max_steps_per_epoch,
            "images": list(run.images) if run.images else None,
            "image_size": run.image_size, "mult_adds_per_image": macs, "layers": layers,
            "step_operators": step_ops, "eval_operators": eval_ops,
            "seconds": [round(s, 1) for s in seconds]}


def setup_seconds(datasets: set[str], gpu: GPUAssumptions = T4) -> list[float]:
    """[low, high] seconds of a first run's clone and install and of downloading `datasets`."""
    low, high = gpu.setup_seconds
    for name, fast, slow in gpu.download_seconds:
        if name in datasets:
            low, high = low + fast, high + slow
    return [low, high]


def _quarter_vgg_a() -> nn.Module:
    """VGG-11 (configuration A) with a quarter of the channels, BatchNorm and the CIFAR classifier."""
    from lib.models.vgg import VGG

    stages = (("conv3-16",), ("conv3-32",), ("conv3-64",) * 2, ("conv3-128",) * 2, ("conv3-128",) * 2)
    return VGG(stages, batch_norm=True, num_classes=10, classifier="cifar")


def _mlp_784_78_10() -> nn.Module:
    """Chapter 1's MLP with as many parameters as LeNet-5 (62,020)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 78), nn.ReLU(), nn.Linear(78, 10))


def _eighth_vgg(column: str, batch_norm: bool) -> Callable[[], nn.Module]:
    """A builder of VGG's column `column` with an eighth of the channels and the CIFAR classifier."""
    from lib.models.vgg import CONFIGS, VGG

    def eighth(spec: str) -> str:
        kind, width = spec.split("-")
        return f"{kind}-{int(width) // 8}"

    stages = tuple(tuple(eighth(spec) for spec in stage) for stage in CONFIGS[column])
    return lambda: VGG(stages, batch_norm=batch_norm, num_classes=10, classifier="cifar")


def _alexnet_cifar(norm: str, groups: int) -> Callable[[], nn.Module]:
    """A builder of the CIFAR-sized AlexNet with this normalisation and these groups."""
    return lambda: lib.models.alexnet_cifar(norm=norm, groups=groups)


def _googlenet_cifar(variant: str, aux_logits: bool) -> Callable[[], nn.Module]:
    """A builder of the quarter-width GoogLeNet with the CIFAR stem, of this variant, with or without heads."""
    return lambda: lib.models.googlenet(num_classes=10, variant=variant, stem="cifar", width=0.25,
                                        aux_logits=aux_logits)


# The lib.fit calls of each chapter in full mode on a CUDA GPU, read from the notebooks on 2026-11-24
# (update this table when a chapter's budget changes). Networks that a chapter builds step by step
# are replaced by the library builder of the same architecture.
CHAPTER_RUNS = (
    # 01_lenet: epochs=12, batch_size=64: the step-by-step network, then five seeds of the ReLU network,
    # its "no activation after F6" twin (the same cost), the tanh and tanh + Table I variants and an MLP.
    ChapterRun("01_lenet", "LeNet-5 (relu)", lambda: lib.models.lenet5(), "mnist", 12, 64, count=11),
    ChapterRun("01_lenet", "LeNet-5 (tanh)", lambda: lib.models.lenet5(variant="tanh"), "mnist", 12, 64,
               count=5),
    ChapterRun("01_lenet", "LeNet-5 (tanh, Table I)", lambda: lib.models.lenet5(variant="tanh", c3="table"),
               "mnist", 12, 64, count=5),
    ChapterRun("01_lenet", "MLP 784-78-10", _mlp_784_78_10, "mnist", 12, 64, count=5),
    # 02_alexnet: the ablation, five CIFAR-sized AlexNets without dropout (LRN; none; BatchNorm; LRN's
    # constant alone, which costs what "none" does; none with one group) over five seeds: epochs=4 of at
    # most 40 steps, batch_size=32. (The ReLU/tanh runs train a 4-layer CNN for 150 steps: negligible.)
    *(ChapterRun("02_alexnet", f"AlexNet-CIFAR ({norm}, {groups} group{'s' * (groups > 1)})",
                 _alexnet_cifar(norm, groups), "cifar10", 4, 32, count=10 if norm == "none" else 5,
                 max_steps_per_epoch=40)
      for norm, groups in (("lrn", 2), ("none", 2), ("batchnorm", 2), ("none", 1))),
    # 03_vgg: the softmax-in-forward pair (quarter-width VGG-11-BN, epochs=4), then columns A and E at an
    # eighth of the width, with and without BatchNorm, three seeds (epochs=6), batch_size=64; a GPU takes
    # the whole split.
    ChapterRun("03_vgg", "VGG-11/4-BN (softmax demo)", _quarter_vgg_a, "cifar10", 4, 64, count=2),
    *(ChapterRun("03_vgg", f"VGG-{column}/8{'-BN' * bn}", _eighth_vgg(column, bn), "cifar10", 6, 64,
                 count=3)
      for column in ("A", "E") for bn in (False, True)),
    # 04_googlenet: the paper variant (no BatchNorm), CIFAR stem, width 0.25, with and without auxiliary
    # heads, five seeds: epochs=3 of at most 100 steps, batch_size=64, augment=True.
    *(ChapterRun("04_googlenet", f"GoogLeNet/4 (paper, {'with' if aux else 'without'} heads)",
                 _googlenet_cifar("paper", aux), "cifar10", 3, 64, count=5, max_steps_per_epoch=100,
                 augment=True)
      for aux in (True, False)),
    # 05_resnet: the degradation experiment, three seeds of five networks (plain and residual 20 and 56,
    # ResNet-56 with zero-initialised last BatchNorms) on 256 training and 100 test images average-pooled
    # to 16x16, epochs=32, batch_size=64; on CUDA, ResNet-18 with the CIFAR stem (epochs=18, batch 512).
    *(ChapterRun("05_resnet", name, build, "cifar10", 32, 64, count=count, images=(256, 100),
                 image_size=16)
      for name, build, count in (("plain-20", lambda: lib.models.resnet20(plain=True), 3),
                                 ("ResNet-20", lambda: lib.models.resnet20(), 3),
                                 ("plain-56", lambda: lib.models.resnet56(plain=True), 3),
                                 ("ResNet-56", lambda: lib.models.resnet56(), 6))),
    ChapterRun("05_resnet", "ResNet-18 (CIFAR stem)",
               lambda: lib.models.resnet18(num_classes=10, stem="cifar"), "cifar10", 18, 512, augment=True),
    # 06_comparison: the five CIFAR-sized networks and LeNet-5 again with ten times the steps, three seeds:
    # one epoch of at most 128 (1,280) steps, batch_size=32.
    *(ChapterRun("06_comparison", label, build, "cifar10", 1, 32, count=3, max_steps_per_epoch=steps)
      for label, build, steps in (
          ("LeNet-5 (3x32x32)", lambda: lib.models.lenet5(in_channels=3, padding=0), 128),
          ("LeNet-5 (3x32x32), 10x steps", lambda: lib.models.lenet5(in_channels=3, padding=0), 1280),
          ("AlexNet-CIFAR", lambda: lib.models.alexnet_cifar(), 128),
          ("VGG-11/4-BN", _quarter_vgg_a, 128),
          ("GoogLeNet/4", _googlenet_cifar("torchvision", True), 128),
          ("ResNet-20", lambda: lib.models.resnet20(), 128))),
)


def estimate_chapters(runs: tuple[ChapterRun, ...] = CHAPTER_RUNS, gpu: GPUAssumptions = T4) -> list[dict]:
    """Per chapter: its runs' estimates, their total training seconds and the setup's, each [low, high]."""
    chapters: dict[str, dict] = {}
    for run in runs:
        entry = chapters.setdefault(run.chapter, {"chapter": run.chapter, "runs": [], "seconds": [0.0, 0.0]})
        estimate = estimate_run_seconds(run, gpu)
        entry["runs"].append(estimate)
        entry["seconds"] = [round(a + b, 1) for a, b in zip(entry["seconds"], estimate["seconds"])]
    for entry in chapters.values():
        entry["setup_seconds"] = setup_seconds({run["dataset"] for run in entry["runs"]}, gpu)
    return list(chapters.values())


def t4_section() -> dict:
    """The results file's "t4_estimate": the assumptions and each chapter's estimate, printed as well."""
    print(f"estimated full-mode training time on a {T4.name} (real dataset sizes), "
          f"at {T4.operator_seconds[0] * 1e6:.0f}-{T4.operator_seconds[1] * 1e6:.0f} us per operator")
    chapters = estimate_chapters()
    for chapter in chapters:
        calls = sum(r["count"] for r in chapter["runs"])
        low, high = chapter["seconds"]
        print(f"  {chapter['chapter']:14} {low:6.0f} - {high:6.0f} s   ({calls} lib.fit calls)")
    # through JSON, so that the returned dict equals the file's (tuples become lists)
    return json.loads(json.dumps({"assumptions": dataclasses.asdict(T4), "chapters": chapters}))
