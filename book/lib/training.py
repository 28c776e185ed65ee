"""Training and evaluation for in-memory image datasets, fast on a GPU and usable on a CPU.

`fit` follows the recipe of the CIFAR-10 speed runs (Page's ResNet-9, airbench): the whole dataset
lives on the device as one tensor, moved there once; every epoch draws a seeded permutation and slices
batches out of it; augmentation (random crop with zero padding + horizontal flip) and normalisation
run on the device, on the whole batch at once. On CUDA the forward pass runs under bf16 autocast (fp16
with a GradScaler on GPUs without bf16). Nothing here is specific to one network: any `nn.Module`
mapping (N, C, H, W) images to class scores trains, including GoogLeNet, whose auxiliary heads make
it return a tuple in train mode.

Quick mode: when the environment variable CNNBOOK_QUICK is set (the test suite sets it), `fit` caps
every epoch at a few steps and evaluates on at most 512 test images, so a notebook runs in seconds;
`pick(full=..., quick=...)` chooses budgets the same way.

Output of `fit`: a plain-text tqdm bar on stdout while an epoch runs (removed when it ends) and one
line per finished epoch:

    epoch 1/5  train loss 1.234 acc 0.553  test loss 1.012 acc 0.641  12.3 s
"""
from __future__ import annotations

import dataclasses
import math
import os
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from . import distributed

if TYPE_CHECKING:  # annotations only
    from matplotlib.figure import Figure

    from .data import ImageData

QUICK_ENV = "CNNBOOK_QUICK"
QUICK_STEPS = 5  # training steps per epoch in quick mode
QUICK_TEST_IMAGES = 512  # test images evaluated per epoch in quick mode
SCHEDULES = ("onecycle", "cosine", "constant")
OPTIMIZERS = ("sgd", "adam", "adamw")

T = TypeVar("T")


# ----------------------------------------------------------------------------------- mode, device, seed

def quick_mode() -> bool:
    """True when the environment variable CNNBOOK_QUICK is set to anything but "" or "0"."""
    return os.environ.get(QUICK_ENV, "") not in ("", "0")


def pick(*, full: T, quick: T) -> T:
    """Return `quick` in quick mode and `full` otherwise, e.g. `epochs = pick(full=10, quick=1)`."""
    return quick if quick_mode() else full


def get_device() -> torch.device:
    """The fastest device available: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_name(device: torch.device | str | None = None) -> str:
    """A readable name for `device` (default: `get_device()`): "NVIDIA H200", "Apple MPS", "CPU (2 threads)"."""
    device = torch.device(device) if device is not None else get_device()
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"CPU ({threads} thread{'s' if threads != 1 else ''})"
    return str(device)


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python's, NumPy's and PyTorch's random generators (all devices) with `seed`.

    On the CPU this makes a run repeatable. On a GPU some kernels (cuDNN's convolution algorithms,
    atomic adds in backward passes) stay non-deterministic: `deterministic=True` also asks cuDNN for
    deterministic algorithms and turns off its benchmarking, which costs some speed.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds the CPU and every CUDA/MPS device
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """The number of parameters (scalars) of `model`, or only of those with `requires_grad`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a timer measures the work and not only its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _normalizer(data: ImageData, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """(x - mean) / std per channel with `data`'s statistics, the tensors built once on `device`."""
    mean = torch.tensor(data.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return lambda x: (x - mean) / std


# ------------------------------------------------------------------------------------------ history

@dataclass
class History:
    """What `fit` measured, one list entry per epoch.

    `train_loss` and `train_acc` are averages over the epoch's training steps (augmented batches, train
    mode; the loss of the main output, with label smoothing if any, without auxiliary terms);
    `test_loss` and `test_acc` come from evaluating the test split (plain cross-entropy, eval mode)
    after the epoch. `epoch_seconds` covers training plus evaluation, `seconds` the whole `fit` call,
    `images_per_second` only the training steps after the very first one (a warm-up that includes
    cuDNN's autotuning and compilation). `lr` is the learning rate of each epoch's last step.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    device: str = ""
    images_per_second: float = 0.0
    seconds: float = 0.0

    @property
    def final_test_acc(self) -> float:
        """Test accuracy after the last epoch (nan before any epoch)."""
        return self.test_acc[-1] if self.test_acc else math.nan

    def summary(self) -> str:
        """One line: final and best test accuracy, epochs, time, throughput and device."""
        if not self.test_acc:
            return "no epochs trained"
        epochs = len(self.test_acc)
        return (
            f"test acc {self.final_test_acc:.3f} (best {max(self.test_acc):.3f}), "
            f"train {self.train_acc[-1]:.3f}, {epochs} epoch{'s' if epochs != 1 else ''}, "
            f"{self.seconds:.1f} s, {self.images_per_second:,.0f} img/s, {self.device}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers, e.g. to save as JSON."""
        return dataclasses.asdict(self)

    def plot(self) -> Figure:
        """Accuracy and loss curves (see `lib.visualize.plot_history`)."""
        from .visualize import plot_history  # visualize imports this module

        return plot_history(self)


# ------------------------------------------------------------------------------- pieces of fit

def random_crop_flip(
    images: torch.Tensor, *, padding: int = 4, flip: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Augment a batch on its own device: a random crop from the zero-padded image, then a random flip.

    Every image gets its own shift (up to `padding` pixels each way) and, if `flip`, a coin toss for a
    horizontal flip; all of it is done with whole-batch tensor operations, no loop over images.
    With `padding=0` and `flip=False` the batch comes back unchanged.
    """
    n, c, h, w = images.shape
    device = images.device
    draw_on = generator.device if generator is not None else device  # random numbers where the generator is
    if padding > 0:
        padded = F.pad(images, (padding, padding, padding, padding))  # zeros: black borders
        # offsets in [0, 2 * padding] for the top-left corner of each image's crop
        offsets = torch.randint(0, 2 * padding + 1, (2, n), device=draw_on, generator=generator).to(device)
        rows = offsets[0].view(n, 1) + torch.arange(h, device=device)  # (N, H)
        cols = offsets[1].view(n, 1) + torch.arange(w, device=device)  # (N, W)
        padded = padded.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w + 2 * padding))
        images = padded.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))
    if flip:
        flipped = (torch.rand(n, device=draw_on, generator=generator) < 0.5).to(device)
        images = torch.where(flipped.view(n, 1, 1, 1), images.flip(3), images)
    return images


def lr_factor(schedule: str, step: int, total_steps: int, *, warmup: float = 0.25) -> float:
    """The learning rate at `step` (counted from 0) as a fraction of the peak rate.

    "constant": 1 throughout. "cosine": from 1 down to 0 along half a cosine. "onecycle" (Smith's
    one-cycle policy as in the CIFAR-10 speed runs): linear warm-up from 1/25 to 1 over the first
    `warmup` fraction of the steps, then linear decay to 0 at `total_steps`.
    """
    t = min(max(step / max(total_steps, 1), 0.0), 1.0)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "onecycle":
        start = 1 / 25
        if t < warmup:
            return start + (1.0 - start) * t / warmup
        return (1.0 - t) / (1.0 - warmup)
    raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")


def make_optimizer(
    model: nn.Module, name: str, *, lr: float, momentum: float = 0.9, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """SGD (with Nesterov momentum when momentum > 0), Adam or AdamW over `model`'s trainable parameters.

    Weight decay applies only to weight matrices and convolution kernels: parameters with one dimension
    (biases, BatchNorm's scale and shift) are not decayed, the "no bias decay" of He et al. 2019 (Bag
    of Tricks for Image Classification, section 3.1).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    name = name.lower()
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def _autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """bf16 on CUDA GPUs with bf16 tensor cores (Ampere, compute capability 8.0, and later), fp16 on older
    ones such as Colab's T4, None (full precision) elsewhere.

    `torch.cuda.is_bf16_supported()` is not the test: it also counts bf16 that a Turing GPU only emulates,
    which is slow there (and cuDNN has no bf16 convolutions below compute capability 8.0).
    """
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else torch.float16


def _grad_scaler():
    """fp16 gradients underflow without loss scaling (bf16 has fp32's range and needs none)."""
    if hasattr(torch.amp, "GradScaler"):  # torch >= 2.3
        return torch.amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def _split_outputs(outputs: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(main, [aux...]) from a model's output: a tensor, or a tuple/namedtuple whose first entry is main."""
    if isinstance(outputs, (tuple, list)):
        main, *aux = outputs
        return main, [a for a in aux if a is not None]
    return outputs, []


def classification_loss(
    outputs: Any, labels: torch.Tensor, *, aux_weight: float = 0.3, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training loss for a model's output: CE(main) + aux_weight * sum of CE(aux).

    `outputs` is a tensor of class scores, or a tuple whose first entry is the main output and whose
    others are auxiliary heads' scores (GoogLeNet in train mode). The losses are computed in float32.

    Returns:
        (total loss, main output's loss, main output's scores).
    """
    main, aux = _split_outputs(outputs)
    main_loss = F.cross_entropy(main.float(), labels, label_smoothing=label_smoothing)
    total = main_loss
    for scores in aux:
        total = total + aux_weight * F.cross_entropy(scores.float(), labels, label_smoothing=label_smoothing)
    return total, main_loss, main


def _device_generator(device: torch.device, seed: int) -> torch.Generator:
    """A generator on `device` for the augmentation's random numbers (CPU generator if there is none)."""
    try:
        return torch.Generator(device=device).manual_seed(seed)
    except RuntimeError:
        return torch.Generator().manual_seed(seed)


@torch.no_grad()
def _evaluate_tensors(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    normalize: Callable[[torch.Tensor], torch.Tensor],
    *,
    batch_size: int,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` (already in eval mode) on `images` in batches."""
    if len(images) == 0:
        return math.nan, math.nan
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for start in range(0, len(images), batch_size):
        x = normalize(images[start:start + batch_size].to(device, non_blocking=True))
        y = labels[start:start + batch_size].to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp_dtype):
            logits, _ = _split_outputs(model(x))
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    return loss_sum.item() / len(images), correct.item() / len(images)


# ---------------------------------------------------------------------------------------------- fit

def fit(
    model: nn.Module,
    data: ImageData,
    *,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 0.05,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    schedule: str = "onecycle",
    label_smoothing: float = 0.0,
    augment: bool = False,
    aux_weight: float = 0.3,
    amp: bool = True,
    channels_last: bool | None = None,
    compile: bool = False,
    device: torch.device | str | None = None,
    seed: int = 0,
    max_steps_per_epoch: int | None = None,
    progress: bool = True,
    verbose: bool = True,
    checkpoint: str | os.PathLike | None = None,
    resume: bool | str | os.PathLike = False,
    stop_after: int | None = None,
) -> History:
    """Train `model` on `data.train_*` and evaluate it on `data.test_*` after every epoch.

    The model is moved to `device` (default: `get_device()`) and stays there. Each epoch shuffles the
    training set with a generator seeded from `seed` and takes `len(train) // batch_size` full batches
    (the remainder differs every epoch, so no image is skipped for good; a set smaller than one batch is
    one batch).

    Under torchrun with several processes (WORLD_SIZE > 1), every process calls `fit` with the same
    arguments and trains data-parallel (see `lib.distributed`): each takes its GPU (LOCAL_RANK) or the
    CPU, joins the process group, wraps the model in DistributedDataParallel and trains on its slice of
    every global batch; the processes evaluate a share of the test set each and add up the results, so
    every process returns the same `History`, and only rank 0 prints and writes the checkpoint. With
    one process nothing of this happens.

    Args:
        model: maps normalised (N, C, H, W) batches to class scores. If it returns a tuple in train
            mode (GoogLeNet: main output first, then the auxiliary heads), the loss is
            CE(main) + aux_weight * sum of CE(aux); evaluation uses eval mode and the main output only.
        data: an `ImageData`; images in [0, 1], normalised per batch with `data.mean` and `data.std`.
        epochs: passes over the training set.
        batch_size: images per step. Under torchrun this is the global batch: each of the WORLD_SIZE
            processes takes batch_size / WORLD_SIZE of them (a ValueError if that is not a whole number).
        lr: the peak learning rate of the schedule.
        optimizer: "sgd" (Nesterov momentum), "adam" or "adamw".
        momentum: SGD's momentum (ignored by Adam and AdamW).
        weight_decay: L2 penalty on weights; biases and BatchNorm parameters are never decayed
            (see `make_optimizer`).
        schedule: "onecycle", "cosine" or "constant", stepped after every batch (see `lr_factor`).
        label_smoothing: passed to the cross-entropy loss (training only).
        augment: random crop from the image padded by 4 black pixels plus a random horizontal flip,
            done on the device for the whole batch (see `random_crop_flip`).
        aux_weight: weight of each auxiliary loss (0.3 in the GoogLeNet paper).
        amp: on CUDA, run forward passes under bf16 autocast (fp16 with gradient scaling on GPUs
            without bf16). Ignored on the CPU and MPS.
        channels_last: store the model and batches as NHWC, which tensor cores prefer. None (the
            default) means on CUDA only: there it pairs with autocast. On a CPU the gain depends on the
            network (1.6x for LeNet-5 here, through oneDNN's NHWC kernels) and the stored outputs of the
            chapters were computed without it; pass True to try it.
        compile: wrap the model in `torch.compile`; if that fails, say so in one line and train
            without it.
        device: where to train; default `get_device()`. Under torchrun: "cuda" (the default when
            there are GPUs) means each process's own GPU, "cpu" trains every process on the CPU.
        seed: seeds Python, NumPy and PyTorch (`seed_everything`), then the shuffling and augmentation
            generators; dropout draws from PyTorch's global generator. Under torchrun the shuffling is
            the same in every process and the other draws differ per rank (`lib.distributed.rank_seed`).
        max_steps_per_epoch: cap on the steps per epoch (quick mode caps at 5 in any case).
        progress: show a tqdm bar during each epoch.
        verbose: print one line per epoch (and the quick-mode notice).
        checkpoint: a file to write after every epoch (on rank 0, atomically): the weights, the
            optimiser's and the schedule's state, the `History` so far and the state of every random
            generator of every process.
        resume: True continues from `checkpoint` if the file exists (and starts from epoch 1 if not);
            a path continues from that file. The run must have the settings the file was written with
            (epochs, batch size, steps per epoch, learning rate, optimiser, schedule, seed). A run
            interrupted after an epoch and resumed ends with the weights of an uninterrupted run.
        stop_after: return after this epoch, as if interrupted there; the schedule still spans `epochs`,
            and a later call with `resume=True` trains the remaining epochs.

    Returns:
        A `History` with per-epoch losses, accuracies and timings (after a resume: of all epochs).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if optimizer.lower() not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be positive, got {epochs} and {batch_size}")
    if stop_after is not None and not 1 <= stop_after <= epochs:
        raise ValueError(f"stop_after must be an epoch from 1 to {epochs}, got {stop_after}")
    resume_from = _resume_path(checkpoint, resume)
    started = time.perf_counter()
    # Under torchrun: this process's rank and the number of processes; checked before any waiting.
    launch = distributed.launch_from_env()
    world = launch.world_size
    distributed.local_batch_size(batch_size, world)
    if launch.distributed:
        device = distributed.device_for(launch, device)
        distributed.init(launch, device)
        progress, verbose = progress and launch.main, verbose and launch.main
    else:
        device = torch.device(device) if device is not None else get_device()
    if device.type == "cuda" and not torch.backends.cudnn.deterministic:
        torch.backends.cudnn.benchmark = True  # batch shapes are fixed: let cuDNN pick the fastest kernels
    process_seed = distributed.rank_seed(seed, launch.rank)  # `seed` itself in a single process
    seed_everything(process_seed)

    # The whole dataset on the device, once.
    train_x = data.train_images.to(device)
    train_y = data.train_labels.to(device)
    test_x, test_y = data.test_images, data.test_labels
    n_train, n_test = len(train_x), len(test_x)
    if n_train == 0:
        raise ValueError("the training split is empty")
    if batch_size > n_train:  # one batch of everything (that the processes can share evenly)
        batch_size = n_train - n_train % world
        if batch_size == 0:
            raise ValueError(f"{n_train} training images cannot be shared by {world} processes")
    local_batch = batch_size // world
    steps = n_train // batch_size
    if max_steps_per_epoch is not None:
        steps = max(1, min(steps, max_steps_per_epoch))
    if quick_mode():
        steps = min(steps, QUICK_STEPS)
        n_test = min(n_test, QUICK_TEST_IMAGES)
        if verbose:
            print(f"{QUICK_ENV} is set: training capped at {steps} of {n_train // batch_size} steps per epoch, "
                  f"evaluation at {n_test:,} of {len(test_x):,} test images")
    test_x, test_y = test_x[:n_test], test_y[:n_test]
    if launch.distributed:  # each process evaluates its share of the test images
        test_x, test_y = test_x.tensor_split(world)[launch.rank], test_y.tensor_split(world)[launch.rank]
    test_x, test_y = test_x.to(device), test_y.to(device)
    normalize = _normalizer(data, device)

    model.to(device)
    if channels_last is None:
        channels_last = device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay)
    total_steps = epochs * steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(schedule, step, total_steps))
    amp_dtype = _autocast_dtype(device, amp)
    scaler = _grad_scaler() if amp_dtype == torch.float16 else None
    shuffle_gen = torch.Generator().manual_seed(seed)  # on the CPU: the same order on all devices and ranks
    augment_gen = _device_generator(device, process_seed + 1)

    history = History(device=device_name(device) if world == 1 else f"{world} x {device_name(device)}")
    settings = {"epochs": epochs, "batch_size": batch_size, "steps_per_epoch": steps, "train_images": n_train,
                "lr": lr, "optimizer": optimizer.lower(), "schedule": schedule, "seed": seed}
    first_epoch, train_seconds, images_seen, seconds_before = 1, 0.0, 0, 0.0
    if resume_from is not None and os.path.exists(resume_from):
        state = _load_checkpoint(resume_from, settings)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        history = History(**{**state["history"], "device": history.device})
        first_epoch = state["epoch"] + 1
        train_seconds, images_seen, seconds_before = state["train_seconds"], state["images_seen"], state["seconds"]
        shuffle_gen.set_state(state["shuffle"])
        same_setup = len(state["rng"]) == world
        if not (same_setup and _set_rng_state(state["rng"][launch.rank], augment_gen, device)):
            # Another number of processes or another kind of device: fresh per-process streams.
            fresh = distributed.rank_seed(seed + state["epoch"], launch.rank)
            seed_everything(fresh)
            augment_gen.manual_seed(fresh + 1)
            if verbose:
                origin = (f"{len(state['rng'])} process(es), this run has {world}" if not same_setup
                          else "another kind of device")
                print(f"the checkpoint comes from {origin}: augmentation and dropout draw new random numbers")
        if verbose:
            print(f"resuming from {os.path.basename(resume_from)} after epoch {state['epoch']} of {epochs}")
    elif resume_from is not None and verbose:
        print(f"no checkpoint {os.path.basename(resume_from)} yet: training from epoch 1")

    trainer = distributed.wrap(model, device) if launch.distributed else model  # DDP: gradient all-reduce
    runner: Callable[[torch.Tensor], Any] = trainer
    if compile:
        try:
            runner = torch.compile(trainer)
        except Exception as error:  # noqa: BLE001 - any failure means: train without it
            if launch.main:
                print(f"torch.compile unavailable ({type(error).__name__}); training without it")

    def train_step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with _autocast(device, amp_dtype):
            loss, main_loss, main = classification_loss(runner(x), y, aux_weight=aux_weight,
                                                        label_smoothing=label_smoothing)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        scheduler.step()
        return main_loss.detach(), (main.argmax(1) == y).sum()

    width = len(str(epochs))
    was_training = model.training
    for epoch in range(first_epoch, (stop_after or epochs) + 1):
        epoch_start = time.perf_counter()
        model.train()
        order = torch.randperm(n_train, generator=shuffle_gen).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        bar = tqdm(total=steps, desc=f"epoch {epoch:>{width}}/{epochs}", file=sys.stdout, leave=False,
                   disable=not progress, bar_format="{l_bar}{bar:10}{r_bar}")
        refresh_every = max(1, steps // 20)  # reading the running loss waits for the GPU: not every step
        _synchronize(device)
        step_start, first_timed = time.perf_counter(), 0
        for step in range(steps):
            if epoch == first_epoch and step == 1:  # the first step is warm-up (cuDNN autotuning, compilation)
                _synchronize(device)
                step_start, first_timed = time.perf_counter(), 1
            index = order[step * batch_size:(step + 1) * batch_size]
            if launch.distributed:
                index = distributed.shard(index, launch)  # this process's slice of the global batch
            x = train_x[index]
            if augment:
                x = random_crop_flip(x, generator=augment_gen)
            x = normalize(x)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if step == steps - 1:
                last_lr = opt.param_groups[0]["lr"]
            if step == 0 and runner is not trainer:
                try:
                    step_loss, step_correct = train_step(x, train_y[index])
                except Exception as error:  # noqa: BLE001 - compilation happens at the first call
                    if launch.main:
                        print(f"torch.compile failed ({type(error).__name__}); training without it")
                    runner = trainer
                    step_loss, step_correct = train_step(x, train_y[index])
            else:
                step_loss, step_correct = train_step(x, train_y[index])
            loss_sum += step_loss
            correct += step_correct
            bar.update()
            if progress and ((step + 1) % refresh_every == 0 or step + 1 == steps):
                bar.set_postfix_str(f"loss {loss_sum.item() / (step + 1):.3f}, "
                                    f"acc {correct.item() / ((step + 1) * local_batch):.3f}", refresh=False)
        _synchronize(device)
        train_seconds += time.perf_counter() - step_start
        images_seen += (steps - first_timed) * batch_size
        bar.close()

        model.eval()
        if launch.distributed:
            distributed.broadcast_buffers(model)  # BatchNorm statistics: rank 0's everywhere
            test_loss, test_acc = _evaluate_on_all_ranks(
                model, test_x, test_y, normalize, batch_size=max(512, local_batch), device=device,
                amp_dtype=amp_dtype, channels_last=channels_last)
        else:
            test_loss, test_acc = _evaluate_tensors(
                runner, test_x, test_y, normalize, batch_size=max(512, batch_size), device=device,
                amp_dtype=amp_dtype, channels_last=channels_last)
        # Sums over the processes (the numbers themselves in a single process).
        train_loss_sum, train_correct = distributed.all_reduce_sum([loss_sum.item(), correct.item()], device)
        history.train_loss.append(train_loss_sum / (steps * world))
        history.train_acc.append(train_correct / (steps * batch_size))
        history.test_loss.append(test_loss)
        history.test_acc.append(test_acc)
        history.lr.append(last_lr)
        history.epoch_seconds.append(time.perf_counter() - epoch_start)
        if verbose:
            print(f"epoch {epoch:>{width}}/{epochs}  train loss {history.train_loss[-1]:.3f} "
                  f"acc {history.train_acc[-1]:.3f}  test loss {test_loss:.3f} acc {test_acc:.3f}  "
                  f"{history.epoch_seconds[-1]:.1f} s")
        if checkpoint is not None:
            _save_checkpoint(
                checkpoint, epoch=epoch, model=model, optimizer=opt, scheduler=scheduler, scaler=scaler,
                history=history, settings=settings, shuffle_gen=shuffle_gen, augment_gen=augment_gen,
                device=device, train_seconds=train_seconds, images_seen=images_seen,
                seconds=seconds_before + time.perf_counter() - started)
    model.train(was_training)
    history.images_per_second = images_seen / train_seconds if train_seconds > 0 else math.nan
    history.seconds = seconds_before + time.perf_counter() - started
    return history


def _evaluate_on_all_ranks(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    normalize: Callable[[torch.Tensor], torch.Tensor],
    *,
    device: torch.device,
    **options: Any,
) -> tuple[float, float]:
    """Mean loss and accuracy over the test images of all processes, each of which holds a share of them."""
    n = len(images)
    loss, accuracy = _evaluate_tensors(model, images, labels, normalize, device=device, **options) if n else (0, 0)
    loss_sum, correct, count = distributed.all_reduce_sum([loss * n, round(accuracy * n), n], device)
    return (loss_sum / count, correct / count) if count else (math.nan, math.nan)


# ------------------------------------------------------------------------------------ checkpoints

def _resume_path(checkpoint: str | os.PathLike | None, resume: bool | str | os.PathLike) -> str | None:
    """The file `fit` resumes from: None (start afresh), `checkpoint` (resume=True) or the path given."""
    if resume is False or resume is None:
        return None
    if resume is True:
        if checkpoint is None:
            raise ValueError("resume=True continues from the checkpoint file: pass checkpoint=PATH as well")
        return os.fspath(checkpoint)
    path = os.fspath(resume)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint to resume from: {os.path.basename(path)} does not exist")
    return path


def _rng_state(augment_gen: torch.Generator, device: torch.device) -> dict[str, Any]:
    """The state of every random generator this process draws from, in types `torch.load` accepts safely."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), position, has_gauss, cached),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "augment": augment_gen.get_state(),
    }


def _set_rng_state(state: dict[str, Any], augment_gen: torch.Generator, device: torch.device) -> bool:
    """Restore `_rng_state`'s generators; False if the augmentation generator's state is another device's."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    try:
        augment_gen.set_state(state["augment"])
    except RuntimeError:  # a CPU generator's state does not fit a CUDA generator, nor the reverse
        return False
    return True


def _save_checkpoint(path: str | os.PathLike, *, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                     scheduler: Any, scaler: Any, history: History, settings: dict[str, Any],
                     shuffle_gen: torch.Generator, augment_gen: torch.Generator, device: torch.device,
                     train_seconds: float, images_seen: int, seconds: float) -> None:
    """Everything a resumed run needs to go on as if never stopped; called by all processes, written by rank 0."""
    rng = distributed.gather_objects(_rng_state(augment_gen, device))  # every process's generators, by rank
    distributed.save_on_main({
        "epoch": epoch,
        "settings": settings,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "history": history.to_dict(),
        "shuffle": shuffle_gen.get_state(),
        "rng": rng,
        "train_seconds": train_seconds,
        "images_seen": images_seen,
        "seconds": seconds,
    }, path)


def _load_checkpoint(path: str, settings: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint written by `fit`, after checking that it was written by a run with these settings."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = state["settings"]
    different = [f"{name} {saved.get(name)!r} there, {value!r} here" for name, value in settings.items()
                 if saved.get(name) != value]
    if different:
        raise ValueError(f"{os.path.basename(path)} was written by a run with other settings "
                         f"({'; '.join(different)}): resume with the same ones, or start afresh")
    return state


# ---------------------------------------------------------------------------------- evaluate, predict

def evaluate(
    model: nn.Module,
    data: ImageData,
    *,
    split: str = "test",
    batch_size: int = 512,
    device: torch.device | str | None = None,
    limit: int | None = None,
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` on a split of `data` ("test" or "train").

    Runs in eval mode without gradients and restores the model's previous mode. `device` defaults to
    the device the model is on (given a device, the model is moved there). `limit` evaluates only the
    first `limit` images.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    images = data.train_images if split == "train" else data.test_images
    labels = data.train_labels if split == "train" else data.test_labels
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    device = _place(model, device)
    was_training = model.training
    model.eval()
    try:
        return _evaluate_tensors(model, images, labels, _normalizer(data, device),
                                 batch_size=batch_size, device=device)
    finally:
        model.train(was_training)


@torch.no_grad()
def predict(
    model: nn.Module,
    images: torch.Tensor,
    data: ImageData,
    *,
    device: torch.device | str | None = None,
    batch_size: int = 512,
) -> torch.Tensor:
    """Predicted class indices (int64, on the CPU) for images in [0, 1], shaped (N, C, H, W) or (C, H, W).

    The images are normalised with `data.mean` and `data.std`; the model runs in eval mode (restored
    afterwards) on `device`, by default the device it is on.
    """
    if images.dim() == 3:
        images = images.unsqueeze(0)
    device = _place(model, device)
    normalize = _normalizer(data, device)
    was_training = model.training
    model.eval()
    try:
        predictions = []
        for start in range(0, len(images), batch_size):
            logits, _ = _split_outputs(model(normalize(images[start:start + batch_size].to(device))))
            predictions.append(logits.argmax(1).cpu())
        return torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)
    finally:
        model.train(was_training)


def _place(model: nn.Module, device: torch.device | str | None) -> torch.device:
    """Move `model` to `device` if one is given; return the device it is on."""
    if device is None:
        return _model_device(model)
    device = torch.device(device)
    model.to(device)
    return device


# ------------------------------------------------------------------------------ expected time on a T4

BENCHMARK_RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                 "benchmarks", "results.json")


def t4_estimate(chapter: str, results: str | os.PathLike | None = None) -> dict:
    """The benchmark's estimate of a chapter's full-mode training time on a Colab T4 GPU.

    `benchmarks/bench.py` writes it to `benchmarks/results.json`: each `lib.fit` call of the chapter,
    its network's mult-adds per image and layer count (measured with torchinfo), turned into seconds
    from the T4's fp16 peak, an assumed utilisation and a per-step launch overhead, at the real
    datasets' sizes (see `GPUAssumptions` in bench.py). An estimate, not a measurement.

    Args:
        chapter: the notebook's name without its extension, e.g. "02_alexnet".
        results: the results file (default: the repository's benchmarks/results.json).

    Returns:
        {"chapter", "seconds", "runs", "gpu"}: the total, each run's entry, and the GPU's name.
    """
    import json

    path = os.fspath(results) if results is not None else BENCHMARK_RESULTS
    if not os.path.exists(path):
        raise FileNotFoundError(f"no benchmark results at {path}: run `python benchmarks/bench.py` first")
    with open(path) as file:
        estimate = json.load(file).get("t4_estimate")
    if not estimate:
        raise ValueError(f"{path} holds no T4 estimate: it was written by an older bench.py")
    chapters = {entry["chapter"]: entry for entry in estimate["chapters"]}
    if chapter not in chapters:
        raise ValueError(f"unknown chapter {chapter!r}: the estimate covers {sorted(chapters)}")
    entry = chapters[chapter]
    return {"chapter": chapter, "seconds": entry["seconds"], "runs": entry["runs"],
            "gpu": estimate["assumptions"]["name"]}


def print_t4_estimate(chapter: str, results: str | os.PathLike | None = None) -> dict:
    """Print what `t4_estimate` says in two lines, e.g. before a chapter's training, and return it."""
    estimate = t4_estimate(chapter, results)
    calls = sum(run["count"] for run in estimate["runs"])
    print(f"Full mode on a {estimate['gpu']}: about {_duration(estimate['seconds'])} of training "
          f"in {calls} lib.fit call{'s' * (calls != 1)}")
    print("(an estimate from each network's mult-adds, not a measurement: benchmarks/README.md)")
    return estimate


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
