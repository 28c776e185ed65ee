"""An estimate of each chapter's full-mode training time on a Colab T4, from its networks' mult-adds.

Why FLOPs and not the measured CPU throughput scaled by a factor: the ratio between a GPU and a CPU is
not one number. LeNet on a GPU is bound by kernel launches, a ResNet-18 by arithmetic; one factor would
be wrong for one of them by an order of magnitude. See `GPUAssumptions` and benchmarks/README.md.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import lib
from torch import nn

from .network import network_profile
from .workloads import REAL_SIZES


@dataclass(frozen=True)
class GPUAssumptions:
    """What the training-time estimate assumes about a GPU; the defaults describe a Colab Tesla T4.

    peak_flops: 65 TFLOP/s, the T4's fp16 tensor-core peak (NVIDIA T4 datasheet). lib.fit autocasts
        to fp16 (with a GradScaler) on a T4: it picks bf16 only from compute capability 8.0.
    utilization: the fraction of the peak a training step sustains. 15%: NVIDIA's own ResNet-50 v1.5
        figures for a T4 (DeepLearningExamples, PyTorch, mixed precision, batch 256) are 1,198 images/s
        in inference; at 4.09 GMACs = 8.2 GFLOP per image that is 9.8 TFLOP/s, 15% of the peak, with
        well-fed 224x224 convolutions. Small CIFAR networks and short runs are unlikely to do better.
    step_overhead_s, layer_overhead_s: the floor below which a step cannot go however few FLOPs it
        has, because every kernel is launched from Python: about 0.3 ms per step (loss, optimiser,
        augmentation, schedule: some 30 launches of about 10 us) plus 30 us per layer call (a forward
        and two backward kernels). A step takes the longer of its compute time and this floor.
    """

    name: str = "Tesla T4 (Colab)"
    peak_flops: float = 65e12
    utilization: float = 0.15
    step_overhead_s: float = 3e-4
    layer_overhead_s: float = 3e-5


T4 = GPUAssumptions()


def t4_seconds(mult_adds_per_image: float, *, layers: int, train_images: int, test_images: int,
               epochs: int, batch_size: int, max_steps_per_epoch: int | None = None,
               gpu: GPUAssumptions = T4) -> float:
    """Estimated seconds of `lib.fit(..., epochs=epochs, batch_size=batch_size)` on `gpu`.

    A training step costs 3 forward passes' worth of FLOPs (forward, then backward for the inputs and
    for the weights), 6 * mult_adds per image; an evaluation batch (lib.fit evaluates the test split
    after every epoch, batches of max(512, batch_size)) costs 2 * mult_adds per image. Each step or
    batch takes the longer of its FLOPs at `peak_flops * utilization` and its launch overhead
    (`step_overhead_s + layers * layer_overhead_s`; a third of that for a forward-only batch).

    Args:
        mult_adds_per_image: torchinfo's "Total mult-adds" for one image, in train mode.
        layers: layer calls per forward pass (see `network_profile`).
        train_images, test_images: the sizes of the splits (lib.fit takes train_images // batch_size
            full batches per epoch).
        epochs, batch_size, max_steps_per_epoch: as passed to lib.fit.
        gpu: the assumptions (see `GPUAssumptions`).
    """
    flop_rate = gpu.peak_flops * gpu.utilization
    overhead = gpu.step_overhead_s + layers * gpu.layer_overhead_s
    steps = max(1, train_images // batch_size)
    if max_steps_per_epoch is not None:
        steps = min(steps, max_steps_per_epoch)
    batch = min(batch_size, train_images)
    train = steps * max(6 * mult_adds_per_image * batch / flop_rate, overhead)
    eval_batch = max(512, batch_size)
    full, rest = divmod(test_images, eval_batch)
    sizes = [eval_batch] * full + ([rest] if rest else [])
    evaluate = sum(max(2 * mult_adds_per_image * n / flop_rate, overhead / 3) for n in sizes)
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


def estimate_run_seconds(run: ChapterRun, gpu: GPUAssumptions = T4) -> dict:
    """Measure the run's network (torchinfo mult-adds, layer calls) and estimate its time on `gpu`."""
    shape = (1, 28, 28) if run.dataset in ("mnist", "fashion_mnist") else (3, 32, 32)
    n_train, n_test = REAL_SIZES[run.dataset]
    macs, layers = network_profile(run.build, shape)
    seconds = run.count * t4_seconds(macs, layers=layers, train_images=n_train, test_images=n_test,
                                     epochs=run.epochs, batch_size=run.batch_size,
                                     max_steps_per_epoch=run.max_steps_per_epoch, gpu=gpu)
    return {"chapter": run.chapter, "label": run.label, "count": run.count, "dataset": run.dataset,
            "epochs": run.epochs, "batch_size": run.batch_size,
            "max_steps_per_epoch": run.max_steps_per_epoch, "mult_adds_per_image": macs,
            "layers": layers, "seconds": round(seconds, 1)}


def _quarter_vgg_a() -> nn.Module:
    """VGG-11 (configuration A) with a quarter of the channels, BatchNorm and the CIFAR classifier."""
    from lib.models.vgg import VGG

    stages = (("conv3-16",), ("conv3-32",), ("conv3-64",) * 2, ("conv3-128",) * 2, ("conv3-128",) * 2)
    return VGG(stages, batch_norm=True, num_classes=10, classifier="cifar")


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
    # 01_lenet: epochs=12, batch_size=64: the step-by-step network and its "no activation after F6"
    # twin (the same cost), the tanh variant and the tanh + Table I variant.
    ChapterRun("01_lenet", "LeNet-5 (relu)", lambda: lib.models.lenet5(), "mnist", 12, 64, count=2),
    ChapterRun("01_lenet", "LeNet-5 (tanh)", lambda: lib.models.lenet5(variant="tanh"), "mnist", 12, 64),
    ChapterRun("01_lenet", "LeNet-5 (tanh, Table I)", lambda: lib.models.lenet5(variant="tanh", c3="table"),
               "mnist", 12, 64),
    # 02_alexnet: the ablation, five CIFAR-sized AlexNets (LRN's constant alone costs what "none" does),
    # epochs=4 of at most 39 steps, batch_size=64.
    *(ChapterRun("02_alexnet", f"AlexNet-CIFAR ({norm}, {groups} group{'s' * (groups > 1)})",
                 _alexnet_cifar(norm, groups), "cifar10", 4, 64, count=2 if norm == "none" else 1,
                 max_steps_per_epoch=39)
      for norm, groups in (("lrn", 2), ("none", 2), ("batchnorm", 2), ("lrn", 1))),
    # 03_vgg: the softmax-in-forward pair (quarter-width VGG-11-BN, epochs=4) and VGG-11 without and
    # with BatchNorm (full width, CIFAR classifier, epochs=3), batch_size=64; a GPU takes the whole split.
    ChapterRun("03_vgg", "VGG-11/4-BN (softmax demo)", _quarter_vgg_a, "cifar10", 4, 64, count=2),
    ChapterRun("03_vgg", "VGG-11 (CIFAR head)", lambda: lib.models.vgg11(num_classes=10, classifier="cifar"),
               "cifar10", 3, 64),
    ChapterRun("03_vgg", "VGG-11-BN (CIFAR head)",
               lambda: lib.models.vgg11_bn(num_classes=10, classifier="cifar"), "cifar10", 3, 64),
    # 04_googlenet: both variants with and without auxiliary heads, CIFAR stem, width 0.25,
    # epochs=4, batch_size=128.
    *(ChapterRun("04_googlenet", f"GoogLeNet/4 ({variant}, {'with' if aux else 'without'} heads)",
                 _googlenet_cifar(variant, aux), "cifar10", 4, 128)
      for variant in ("paper", "torchvision") for aux in (True, False)),
    # 05_resnet on CUDA: the degradation experiment (plain and residual, depth 20 and 56, epochs=10,
    # batch_size=128) and ResNet-18 with the CIFAR stem (epochs=18, batch_size=512).
    ChapterRun("05_resnet", "plain-20", lambda: lib.models.resnet20(plain=True), "cifar10", 10, 128),
    ChapterRun("05_resnet", "ResNet-20", lambda: lib.models.resnet20(), "cifar10", 10, 128),
    ChapterRun("05_resnet", "plain-56", lambda: lib.models.resnet56(plain=True), "cifar10", 10, 128),
    ChapterRun("05_resnet", "ResNet-56", lambda: lib.models.resnet56(), "cifar10", 10, 128),
    ChapterRun("05_resnet", "ResNet-18 (CIFAR stem)",
               lambda: lib.models.resnet18(num_classes=10, stem="cifar"), "cifar10", 18, 512),
    # 06_comparison: the five CIFAR-sized networks, epochs=2, batch_size=64.
    ChapterRun("06_comparison", "LeNet-5 (3x32x32)", lambda: lib.models.lenet5(in_channels=3, padding=0),
               "cifar10", 2, 64),
    ChapterRun("06_comparison", "AlexNet-CIFAR", lambda: lib.models.alexnet_cifar(), "cifar10", 2, 64),
    ChapterRun("06_comparison", "VGG-11/4-BN", _quarter_vgg_a, "cifar10", 2, 64),
    ChapterRun("06_comparison", "GoogLeNet/4", _googlenet_cifar("torchvision", True), "cifar10", 2, 64),
    ChapterRun("06_comparison", "ResNet-20", lambda: lib.models.resnet20(), "cifar10", 2, 64),
)


def estimate_chapters(runs: tuple[ChapterRun, ...] = CHAPTER_RUNS, gpu: GPUAssumptions = T4) -> list[dict]:
    """Per chapter: its runs' estimates and their total seconds on `gpu`."""
    chapters: dict[str, dict] = {}
    for run in runs:
        entry = chapters.setdefault(run.chapter, {"chapter": run.chapter, "runs": [], "seconds": 0.0})
        estimate = estimate_run_seconds(run, gpu)
        entry["runs"].append(estimate)
        entry["seconds"] = round(entry["seconds"] + estimate["seconds"], 1)
    return list(chapters.values())


def t4_section() -> dict:
    """The results file's "t4_estimate": the assumptions and each chapter's estimate, printed as well."""
    print(f"estimated full-mode training time on a {T4.name} (real dataset sizes)")
    chapters = estimate_chapters()
    for chapter in chapters:
        calls = sum(r["count"] for r in chapter["runs"])
        print(f"  {chapter['chapter']:14} {chapter['seconds']:6.0f} s   ({calls} lib.fit calls)")
    return {"assumptions": dataclasses.asdict(T4), "chapters": chapters}
