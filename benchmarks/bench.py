"""How fast does `lib.training` train, compared with the usual torchvision pipeline? One run, one machine.

Measures, with the figures written to a JSON results file (default: benchmarks/results.json):

1. Training images per second of two pipelines, for two workloads:
     LeNet/MNIST-sized       lenet5 on 1x28x28 images, batch 256, no augmentation
     ResNet-18/CIFAR-sized   resnet18(stem="cifar") on 3x32x32 images, batch 128, random crop + flip
   (a) the naive pipeline: a torchvision-style dataset that hands out one PIL image per item, PIL
       transforms, `ToTensor`, `Normalize`, a `DataLoader` with worker processes, an fp32 training loop;
   (b) `lib.fit`: the whole dataset as one tensor on the device, augmentation and normalisation on the
       device per batch, channels_last on CUDA and the CPU, autocast on CUDA.
   Both train the same network with the same optimiser, loss and batch size. The pipelines take turns
   (naive, fast, fast, naive, ...) so that both see the same background load; the median over the
   rounds is reported, warm-up steps excluded, as images per second of wall-clock time and per second
   of CPU time (all processes: the training process and the DataLoader's workers). On a busy machine
   the naive pipeline's three processes get a larger share of the cores than lib.fit's one, which
   flatters it in wall-clock time; CPU time is less affected by the load (though not immune to it).
2. Parity with torchvision: forward + backward time per batch of each `lib.models` network that has a
   torchvision twin (alexnet, vgg11, vgg16, googlenet, resnet18, resnet50), against torchvision's own
   model with the same weights (torchvision's state_dict is loaded into ours with strict=True).
3. An estimate of each chapter's full-mode training time on a Colab T4, from torchinfo's mult-adds and
   the assumptions in `T4` (see `t4_seconds` and the README).

What the naive pipeline shares with a reader's and what it does not. No dataset can be downloaded
here, so the images are the offline sets of `lib.data`, repeated to the size of the real training sets
(60,000 and 50,000 images). `PILDataset.__getitem__` does what torchvision's MNIST and CIFAR10 classes
do: take one uint8 image from an in-memory array (torchvision also holds the whole split in memory),
turn it into a PIL image and apply the transforms. The transforms, the DataLoader (shuffle, default
collate, workers, pinned memory on CUDA) and the training loop are the usual ones. What differs: the
pixels (offline stand-ins; PIL's cost per image does not depend on them), and the optimiser, which is
lib.training's (SGD with Nesterov momentum) so that only the data path differs.

Usage (from the repository root):
    python benchmarks/bench.py                  # full run, a few minutes on 2 CPU cores
    python benchmarks/bench.py --quick --output /tmp/results.json   # CI-sized smoke test, seconds
The last line printed is the speed-up for the LeNet/MNIST-sized workload, e.g. "... : 1.87x".
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "book") not in sys.path:
    sys.path.insert(0, str(ROOT / "book"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402
from torchvision import transforms  # noqa: E402

import lib  # noqa: E402
from lib.data import ImageData  # noqa: E402
from lib.training import classification_loss, device_name, make_optimizer  # noqa: E402

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"
SCHEMA_VERSION = 1

# Sizes of the real training and test splits: the benchmark's data and the T4 estimates use them.
REAL_SIZES = {"mnist": (60_000, 10_000), "fashion_mnist": (60_000, 10_000), "cifar10": (50_000, 10_000)}


# ------------------------------------------------------------------------------------------ machine

def cpu_model() -> str:
    """The CPU's marketing name, as far as the operating system tells it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    """CPU cores this process may run on (the container's share, where the OS says so)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict:
    return {"cpu": cpu_model(), "cores": usable_cores(), "logical_cpus": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version()}


def versions() -> dict:
    import PIL

    cuda = torch.version.cuda if torch.cuda.is_available() else None
    cudnn = torch.backends.cudnn.version() if torch.cuda.is_available() else None
    return {"torch": torch.__version__, "torchvision": torchvision.__version__, "pillow": PIL.__version__,
            "numpy": np.__version__, "cuda": cuda, "cudnn": cudnn}


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a timer measures the work and not only its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


# ---------------------------------------------------------------------------------------- workloads

@dataclass(frozen=True)
class Steps:
    """Training steps per measurement: `warmup` untimed ones, then `timed` ones; at most `max_rounds`."""

    warmup: int
    timed: int
    max_rounds: int | None = None


@dataclass(frozen=True)
class Workload:
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


class PILDataset(Dataset):
    """A torchvision-style dataset: uint8 images in memory, handed out one PIL image at a time.

    Like torchvision's MNIST (a (N, 28, 28) array, grayscale "L" images) and CIFAR10 (a (N, 32, 32, 3)
    array, RGB images): `__getitem__` converts one image to PIL and applies `transform` to it.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable) -> None:
        pixels = (images * 255).round_().to(torch.uint8)  # (N, C, H, W) in [0, 1] -> uint8
        if pixels.shape[1] == 1:
            self.data = pixels[:, 0].numpy()  # (N, H, W)
        else:
            self.data = pixels.permute(0, 2, 3, 1).contiguous().numpy()  # (N, H, W, C)
        self.targets = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = Image.fromarray(self.data[index])
        return self.transform(image), self.targets[index]


def naive_transform(data: ImageData, augment: bool) -> transforms.Compose:
    """The transforms a reader writes: PIL augmentation (if any), ToTensor, Normalize."""
    steps = [transforms.RandomCrop(data.image_shape[-1], padding=4), transforms.RandomHorizontalFlip()]
    return transforms.Compose([*(steps if augment else []), transforms.ToTensor(),
                               transforms.Normalize(data.mean, data.std)])


def default_workers() -> int:
    """DataLoader workers as usually chosen: one per core (2 on Colab), at most 8."""
    return max(1, min(8, usable_cores()))


@dataclass(frozen=True)
class Rate:
    """Training throughput: images per second of wall-clock time and per second of CPU time.

    CPU time adds up every process of the pipeline (the training process and the DataLoader's
    workers), so `per_cpu_second` says how much CPU work an image costs; it changes less than
    wall-clock time when other programs load the machine. None where the OS does not tell (not Linux).
    """

    per_second: float
    per_cpu_second: float | None


def _process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process `pid` so far, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _workers_cpu_seconds(batches) -> float | None:
    """CPU time of a DataLoader iterator's worker processes so far (0 without workers)."""
    times = [_process_cpu_seconds(worker.pid) for worker in getattr(batches, "_workers", [])]
    return None if None in times else sum(times)


def time_naive(model: nn.Module, dataset: Dataset, *, batch_size: int, steps: Steps, device: torch.device,
               workers: int) -> Rate:
    """Throughput of the usual loop: DataLoader batches to the device, fp32 forward and backward."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda", drop_last=True)
    model.to(device).train()
    optimizer = make_optimizer(model, "sgd", lr=0.05, momentum=0.9, weight_decay=5e-4)
    batches = iter(loader)

    def step() -> None:
        x, y = next(batches)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(steps.warmup):  # starts the workers and fills their queue
        step()
    synchronize(device)
    start, cpu_start, workers_start = time.perf_counter(), time.process_time(), _workers_cpu_seconds(batches)
    for _ in range(steps.timed):
        step()
    synchronize(device)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    workers_end = _workers_cpu_seconds(batches)
    images = steps.timed * batch_size
    if workers_start is None or workers_end is None:
        return Rate(images / seconds, None)
    return Rate(images / seconds, images / (cpu + workers_end - workers_start))


def fast_options(device: torch.device, *, channels_last: str = "auto", compile: bool = False) -> dict:
    """lib.fit's settings for the fast path.

    amp: autocast on CUDA (lib.fit ignores it elsewhere). channels_last "auto": on for CUDA (tensor
    cores want NHWC) and for the CPU (oneDNN's convolutions and max-pooling are faster in NHWC: LeNet's
    training step takes about 1.6x less CPU time), off for MPS.
    """
    layout = device.type in ("cuda", "cpu") if channels_last == "auto" else channels_last == "on"
    return {"amp": True, "channels_last": layout, "compile": compile}


def time_fast(model: nn.Module, data: ImageData, *, batch_size: int, augment: bool, steps: Steps,
              device: torch.device, options: dict) -> Rate:
    """Throughput of `lib.fit`'s training steps, after `steps.warmup` untimed ones.

    `fit` leaves its own first step out of `images_per_second`; with more warm-up steps, a first,
    short `fit` call runs the others (cuDNN's autotuning, compilation happen in the very first step).
    The CPU time is that of the whole second call (its untimed first step and its evaluation of a
    few test images included), which errs against `fit`.
    """
    common = dict(epochs=1, batch_size=batch_size, lr=0.05, augment=augment, device=device,
                  progress=False, verbose=False, **options)
    if steps.warmup > 1:
        lib.fit(model, data, max_steps_per_epoch=steps.warmup - 1, **common)
    cpu_start = time.process_time()
    history = lib.fit(model, data, max_steps_per_epoch=steps.timed + 1, **common)
    cpu = time.process_time() - cpu_start
    return Rate(history.images_per_second, (steps.timed + 1) * batch_size / cpu)


def network_profile(build: Callable[[], nn.Module], image_shape: tuple[int, ...]) -> tuple[int, int]:
    """(mult-adds per image, layer calls per forward pass) of the network `build()` returns.

    Mult-adds are torchinfo's count in train mode (GoogLeNet's auxiliary heads included); layer calls
    count the calls of leaf modules (convolutions, norms, activations, pools, linear layers). The network
    is built on the meta device, so nothing is allocated or computed.
    """
    from torchinfo import summary

    with torch.device("meta"):
        model = build()
    calls = 0

    def count(module: nn.Module, inputs, output) -> None:
        nonlocal calls
        calls += 1

    for module in model.modules():
        if not list(module.children()) and not isinstance(module, nn.Identity):
            module.register_forward_hook(count)
    stats = summary(model, input_data=torch.zeros(2, *image_shape, device="meta"), device="meta",
                    mode="train", verbose=0)  # batch 2: BatchNorm in train mode needs two values
    return int(stats.total_mult_adds) // 2, calls


def run_workload(workload: Workload, *, quick: bool, device: torch.device, rounds: int, workers: int,
                 options: dict) -> dict:
    source = lib.load_dataset(workload.dataset, offline=True)
    n_train = QUICK_TRAIN_IMAGES if quick else REAL_SIZES[workload.dataset][0]
    data = tiled(source, n_train, TEST_IMAGES, side=workload.quick_side if quick else None)
    batch_size = workload.quick_batch if quick else workload.batch_size
    steps = QUICK_STEPS if quick else workload.steps.get(device.type, workload.steps["cpu"])
    rounds = min(rounds, steps.max_rounds or rounds)
    dataset = PILDataset(data.train_images, data.train_labels, naive_transform(data, workload.augment))

    torch.manual_seed(0)
    naive_model = lib.get_model(workload.model, **workload.model_kwargs)
    fast_model = copy.deepcopy(naive_model)
    naive, fast = [], []
    for r in range(rounds):
        order = ("naive", "fast") if r % 2 == 0 else ("fast", "naive")  # ABBA: both see the same load
        for which in order:
            if which == "naive":
                naive.append(time_naive(naive_model, dataset, batch_size=batch_size, steps=steps,
                                        device=device, workers=workers))
            else:
                fast.append(time_fast(fast_model, data, batch_size=batch_size, augment=workload.augment,
                                      steps=steps, device=device, options=options))
        print(f"  round {r + 1}/{rounds}: naive {_rate(naive[-1])}   lib.fit {_rate(fast[-1])}", flush=True)
    naive_ips, fast_ips = (statistics.median(r.per_second for r in rates) for rates in (naive, fast))
    naive_cpu, fast_cpu = (_median_per_cpu_second(rates) for rates in (naive, fast))
    real_train = REAL_SIZES[workload.dataset][0]
    augment = "RandomCrop(padding=4), RandomHorizontalFlip, " if workload.augment else ""
    on_device = "crop + flip and normalisation" if workload.augment else "normalisation"
    return {
        "key": workload.key,
        "title": workload.title,
        "model": workload.model,
        "model_kwargs": workload.model_kwargs,
        "image_shape": list(data.image_shape),
        "batch_size": batch_size,
        "augment": workload.augment,
        "mult_adds_per_image": network_profile(
            lambda: lib.get_model(workload.model, **workload.model_kwargs), data.image_shape)[0],
        "data": f"{source.source}, repeated to {n_train:,} training images",
        "train_images": n_train,
        "steps": {"warmup": steps.warmup, "timed": steps.timed},
        "rounds": rounds,
        "naive": {
            "images_per_second": round(naive_ips, 1),
            "epoch_seconds": round(real_train / naive_ips, 2),
            "per_round": [round(r.per_second, 1) for r in naive],
            "images_per_cpu_second": naive_cpu,
            "per_round_cpu": [r.per_cpu_second and round(r.per_cpu_second, 1) for r in naive],
            "pipeline": f"PIL image per item, {augment}ToTensor, Normalize; "
                        f"DataLoader(shuffle=True, num_workers={workers}"
                        f"{', pin_memory=True' if device.type == 'cuda' else ''}); fp32",
        },
        "fast": {
            "images_per_second": round(fast_ips, 1),
            "epoch_seconds": round(real_train / fast_ips, 2),
            "per_round": [round(r.per_second, 1) for r in fast],
            "images_per_cpu_second": fast_cpu,
            "per_round_cpu": [r.per_cpu_second and round(r.per_cpu_second, 1) for r in fast],
            "pipeline": f"lib.fit: the dataset as one tensor on the device, {on_device} on the device",
            "options": options,
        },
        "speedup": round(fast_ips / naive_ips, 3),
        "speedup_cpu": round(fast_cpu / naive_cpu, 3) if naive_cpu and fast_cpu else None,
    }


def _rate(rate: Rate) -> str:
    cpu = f"{rate.per_cpu_second:7,.0f}" if rate.per_cpu_second else "      ?"
    return f"{rate.per_second:7,.0f} img/s ({cpu} per CPU-s)"


def _median_per_cpu_second(rates: list[Rate]) -> float | None:
    values = [r.per_cpu_second for r in rates]
    return None if None in values else round(statistics.median(values), 1)


# ------------------------------------------------------------------------------ torchvision parity

PARITY = (  # lib.models name, torchvision builder's keyword arguments, also in --quick
    ("alexnet", {}, True),
    ("vgg11", {}, False),  # 2 x 130 million parameters (fc6: 25088 x 4096) and their gradients: 2 GB
    ("vgg16", {}, False),
    ("googlenet", {"aux_logits": True, "init_weights": False}, True),
    ("resnet18", {}, True),
    ("resnet50", {}, True),
)
PARITY_SIZE = {"alexnet": 64}  # AlexNet needs at least 63 pixels; 32 elsewhere in quick mode


def constant_init(model: nn.Module) -> nn.Module:
    """Cheap, deterministic weights: every weight 1/fan_in, biases 0, BatchNorm statistics (0, 1).

    Random initialisation of VGG's 138 million parameters takes seconds; a fill is a memset. Timing does
    not depend on the values as long as they stay normal numbers (no denormals), which 1/fan_in ensures.
    """
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            leaf = name.rsplit(".", 1)[-1]
            if tensor.ndim > 1:
                tensor.fill_(1.0 / tensor[0].numel())
            elif leaf in ("weight", "running_var"):
                tensor.fill_(1.0)
            else:  # biases, running means, num_batches_tracked
                tensor.zero_()
    return model


def _twin_models(name: str, tv_kwargs: dict, device: torch.device) -> tuple[nn.Module, nn.Module, bool]:
    """(ours, torchvision's) with identical weights on `device`; whether the state_dict loaded strictly."""
    with torch.device("meta"):  # no memory, no initialisation: build in an instant
        ours = lib.get_model(name, num_classes=10)
        theirs = getattr(torchvision.models, name)(weights=None, num_classes=10, **tv_kwargs)
    try:
        ours.load_state_dict(theirs.state_dict(), strict=True)  # same names and shapes, or an error
        strict = True
    except RuntimeError:
        strict = False
    ours, theirs = (constant_init(m.to_empty(device=device)) for m in (ours, theirs))
    return ours, theirs, strict


def _forward_backward_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                              repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        synchronize(x.device)
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        loss, _, _ = classification_loss(model(x), y)  # GoogLeNet: main + 0.3 * auxiliary losses
        loss.backward()
        synchronize(x.device)
        times.append(time.perf_counter() - start)
    return times


def run_parity(*, quick: bool, device: torch.device, rounds: int) -> list[dict]:
    batch = 2 if quick else 8  # at least 2: BatchNorm needs two values per channel on 1x1 maps
    repeats = 1 if quick else 2 if device.type == "cpu" else 20  # a GPU takes milliseconds per batch
    results = []
    for name, tv_kwargs, in_quick in PARITY:
        if quick and not in_quick:
            continue
        size = PARITY_SIZE.get(name, 32 if quick else 64)
        ours, theirs, strict = _twin_models(name, tv_kwargs, device)
        ours.train()
        theirs.train()
        x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
        y = torch.arange(batch, device=device) % 10
        times = {"lib": [], "torchvision": []}
        for model in (ours, theirs):  # warm-up: allocations, oneDNN's and cuDNN's kernel choice
            _forward_backward_seconds(model, x, y, 1)
        for r in range(rounds):
            pair = (("lib", ours), ("torchvision", theirs))
            for label, model in pair if r % 2 == 0 else pair[::-1]:
                times[label] += _forward_backward_seconds(model, x, y, repeats)
        # The fastest round of each: background load only ever adds time, and one busy round must not
        # make either implementation look slower than it is (the rounds alternate the order).
        lib_s, tv_s = min(times["lib"]), min(times["torchvision"])
        results.append({
            "model": name, "input_shape": [batch, 3, size, size], "state_dict_strict": strict,
            "lib_ms": round(lib_s * 1e3, 3), "torchvision_ms": round(tv_s * 1e3, 3),
            "ratio": round(lib_s / tv_s, 3), "lib_images_per_second": round(batch / lib_s, 1),
        })
        print(f"  {name:10} {batch}x3x{size}x{size}  lib {lib_s * 1e3:9.1f} ms   torchvision "
              f"{tv_s * 1e3:9.1f} ms   ratio {lib_s / tv_s:.2f}", flush=True)
        del ours, theirs
    return results


# ---------------------------------------------------------------------------------- T4 estimate

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
    return lambda: lib.models.alexnet_cifar(norm=norm, groups=groups)


def _googlenet_cifar(variant: str, aux_logits: bool) -> Callable[[], nn.Module]:
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


# --------------------------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized run: tiny batches, a few steps")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results file (JSON)")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the fastest available)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads of the training processes (default: one per usable core, "
                             "torch's own default, so that lib.fit gets the cores the naive pipeline's "
                             "workers get; 1 is steadier on a busy machine)")
    parser.add_argument("--workers", type=int, default=None,
                        help="DataLoader workers of the naive pipeline (default: the cores, at most 8)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="alternating measurements per workload (default 3; --quick 1)")
    parser.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto",
                        help="lib.fit(channels_last=...) on the fast path (auto: on for CUDA and CPU)")
    parser.add_argument("--compile", action="store_true", help="lib.fit(compile=True) on the fast path")
    parser.add_argument("--t4-only", action="store_true",
                        help="only recompute the T4 estimates (after CHAPTER_RUNS changed) in an existing "
                             "results file; they depend on no measurement of this machine")
    return parser.parse_args(argv)


def t4_section() -> dict:
    """The results file's "t4_estimate": the assumptions and each chapter's estimate, printed as well."""
    print(f"estimated full-mode training time on a {T4.name} (real dataset sizes)")
    chapters = estimate_chapters()
    for chapter in chapters:
        calls = sum(r["count"] for r in chapter["runs"])
        print(f"  {chapter['chapter']:14} {chapter['seconds']:6.0f} s   ({calls} lib.fit calls)")
    return {"assumptions": dataclasses.asdict(T4), "chapters": chapters}


def update_t4_estimate(output: Path) -> dict:
    """Replace the T4 estimates in an existing results file, leaving the measurements alone."""
    if not output.exists():
        raise SystemExit(f"--t4-only updates an existing results file, and {output} does not exist")
    results = json.loads(output.read_text())
    results["t4_estimate"] = {**t4_section(),
                              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"T4 estimates updated in {output.name}")
    return results


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.t4_only:
        return update_t4_estimate(args.output)
    os.environ.pop(lib.training.QUICK_ENV, None)  # steps are chosen here; lib.fit must not cap them
    started = time.perf_counter()
    torch.set_num_threads(args.threads or usable_cores())
    device = torch.device(args.device) if args.device else lib.get_device()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # for both pipelines (lib.fit would switch it on anyway)
    workers = default_workers() if args.workers is None else args.workers
    options = fast_options(device, channels_last=args.channels_last, compile=args.compile)
    rounds = args.rounds or (1 if args.quick else 3)
    mode = "quick" if args.quick else "full"
    load_before = load_average()
    print(f"benchmark ({mode}) on {device_name(device)}; CPU {cpu_model()}, {usable_cores()} cores, "
          f"load average {load_before}; torch {torch.__version__}, torchvision {torchvision.__version__}")

    workloads = []
    for workload in WORKLOADS:
        print(f"{workload.title}: naive pipeline vs lib.fit", flush=True)
        workloads.append(run_workload(workload, quick=args.quick, device=device, rounds=rounds,
                                      workers=workers, options=options))
    print("forward + backward per batch, lib.models vs torchvision (ratio = lib time / torchvision time)")
    parity = run_parity(quick=args.quick, device=device, rounds=rounds)
    t4_estimate = t4_section()

    results = {
        "schema": SCHEMA_VERSION,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": mode,
        "command": " ".join(["benchmarks/bench.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": {**machine_info(), "load_average_before": load_before,
                    "load_average_after": load_average()},
        "device": {"type": device.type, "name": device_name(device), "torch_threads": torch.get_num_threads(),
                   "dataloader_workers": workers},
        "versions": versions(),
        "workloads": workloads,
        "parity": parity,
        "t4_estimate": t4_estimate,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.output.name} ({results['seconds']:.0f} s in all)")
    for workload in reversed(workloads):  # LeNet last: its figure is the last line
        print(f"speed-up over the naive pipeline ({workload['title']}): {workload['speedup']:.2f}x")
    return results


if __name__ == "__main__":
    main()
