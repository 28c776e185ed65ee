"""Training for in-memory image datasets, fast on a GPU and usable on a CPU: `fit`.

`fit` follows the recipe of the CIFAR-10 speed runs (Page's ResNet-9, airbench): the whole dataset
lives on the device as one tensor, moved there once; every epoch draws a seeded permutation and takes
`len(train) // batch_size` full batches out of it (the remainder differs every epoch, so no image is
skipped for good; a set smaller than one batch is one batch); augmentation (random crop with zero
padding + horizontal flip) and normalisation run on the device, on the whole batch at once. Nothing
here is specific to one network: any `nn.Module` mapping (N, C, H, W) images to class scores trains,
including GoogLeNet, whose auxiliary heads make it return a tuple in train mode (the loss is then
CE(main) + aux_weight * sum of CE(aux); evaluation uses eval mode and the main output only).

Precision and layout: on CUDA the forward pass runs under bf16 autocast (fp16 with gradient scaling on
GPUs without bf16 tensor cores, such as Colab's T4), batches and weights are stored channels-last
(NHWC, which tensor cores prefer), and `torch.backends.cudnn.benchmark` is on while `fit` runs (the
batch shapes are fixed, so cuDNN times its kernels once and keeps the fastest), unless cuDNN was asked
to be deterministic. On a CPU the gain of channels-last depends on the network (1.6x for LeNet-5,
through oneDNN's NHWC kernels) and the chapters' stored outputs were computed without it.

Randomness: `seed` seeds Python, NumPy and PyTorch (`lib.device.seed_everything`), then the shuffling
and augmentation generators; dropout draws from PyTorch's global generator.

Several processes: under torchrun (WORLD_SIZE > 1) every process calls `fit` with the same arguments
and trains data-parallel (`lib.distributed`): each takes its GPU (LOCAL_RANK) or the CPU, joins the
process group, wraps the model in DistributedDataParallel and trains on its slice of every global
batch (each takes batch_size / WORLD_SIZE images: a ValueError if that is not a whole number). The
shuffling is the same in every process, the other random draws differ per rank
(`lib.distributed.rank_seed`). The processes evaluate a share of the test set each and add up the
results, so every process returns the same `History`; only rank 0 prints and writes the checkpoint.

Checkpoints (`lib.checkpoint`): with `checkpoint=PATH`, rank 0 writes after every epoch, atomically,
the weights, the optimiser's and the schedule's state, the `History` so far and the state of every
random generator of every process. `resume=True` continues from it when the run has the settings it
was written with (epochs, batch size, steps per epoch, learning rate, optimiser, schedule, seed); a
run interrupted after an epoch and resumed ends with the weights of an uninterrupted run.

Quick mode (`lib.quick`; the test suite turns it on): `fit` caps every epoch at 5 steps and evaluates
on at most 512 test images, so a notebook runs in seconds.

`fit` itself is a short sequence of phases over one private run state (`_Run`): start (device, data,
optimiser, schedule, scaler, generators, resume), then per epoch: train, evaluate, record, checkpoint.
Its output: a plain-text tqdm bar on stdout while an epoch runs (removed when it ends) and one line
per finished epoch:

    epoch 1/5  train loss 1.234 acc 0.553  test loss 1.012 acc 0.641  12.3 s
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from . import checkpoint as checkpoints
from . import distributed
from .device import (
    autocast, autocast_dtype, device_name, eval_mode, get_device, grad_scaler, seed_everything, synchronize,
)
from .evaluation import Normalizer, evaluate_on_all_ranks, evaluate_tensors, split_outputs
from .history import History
from .optim import check_optimizer, check_schedule, lambda_schedule, make_optimizer
from .quick import QUICK_ENV
from .quick import resolve as resolve_quick

if TYPE_CHECKING:  # annotations only
    from .data import ImageData

QUICK_STEPS = 5  # training steps per epoch in quick mode
QUICK_TEST_IMAGES = 512  # test images evaluated per epoch in quick mode


# ------------------------------------------------------------------------------- pieces of a step

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


def classification_loss(
    outputs: Any, labels: torch.Tensor, *, aux_weight: float = 0.3, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training loss for a model's output: CE(main) + aux_weight * sum of CE(aux).

    `outputs` is a tensor of class scores, or a tuple whose first entry is the main output and whose
    others are auxiliary heads' scores (GoogLeNet in train mode). The losses are computed in float32.

    Returns:
        (total loss, main output's loss, main output's scores).
    """
    main, aux = split_outputs(outputs)
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


# ---------------------------------------------------------------------------------------------- fit

def fit(
    model: nn.Module, data: ImageData, *, epochs: int = 5, batch_size: int = 128, lr: float = 0.05,
    optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 5e-4, schedule: str = "onecycle",
    label_smoothing: float = 0.0, augment: bool = False, aux_weight: float = 0.3, amp: bool = True,
    channels_last: bool | None = None, compile: bool = False, device: torch.device | str | None = None,
    seed: int = 0, max_steps_per_epoch: int | None = None, progress: bool = True, verbose: bool = True,
    checkpoint: str | os.PathLike | None = None, resume: bool | str | os.PathLike = False,
    stop_after: int | None = None, quick: bool | None = None,
) -> History:
    """Train `model` on `data.train_*`, evaluating it on `data.test_*` after every epoch (see the module doc).

    Args:
        model: maps normalised (N, C, H, W) batches to class scores, or in train mode to (main, aux, ...).
        data: an `ImageData` with images in [0, 1]; batches are normalised with its `mean` and `std`.
        epochs: passes over the training set.
        batch_size: images per step; under torchrun the global batch, shared equally by the processes.
        lr: the peak learning rate of the schedule.
        optimizer: "sgd" (Nesterov momentum), "adam" or "adamw" (`lib.optim.make_optimizer`).
        momentum: SGD's momentum (ignored by Adam and AdamW).
        weight_decay: L2 penalty on weights; biases and BatchNorm parameters are never decayed.
        schedule: "onecycle", "cosine" or "constant", stepped after every batch (`lib.optim.lr_factor`).
        label_smoothing: passed to the cross-entropy of training (not of evaluation).
        augment: random crops (4 black pixels of padding) and horizontal flips (`random_crop_flip`).
        aux_weight: weight of each auxiliary head's loss (0.3 in the GoogLeNet paper).
        amp: on CUDA, bf16 autocast (fp16 with gradient scaling on older GPUs); ignored elsewhere.
        channels_last: NHWC weights and batches; None (the default) means on CUDA only.
        compile: wrap the model in `torch.compile`; if that fails, say so in one line and train without.
        device: default `get_device()`; under torchrun "cuda" means each process's own GPU.
        seed: seeds the global generators, then the shuffling and augmentation ones.
        max_steps_per_epoch: cap on the steps per epoch (quick mode caps at 5 in any case).
        progress: show a tqdm bar during each epoch.
        verbose: print one line per epoch (and the quick-mode and resume notices).
        checkpoint: a file written after every epoch (`lib.checkpoint`).
        resume: True continues from `checkpoint` if it exists (else starts afresh), a path from that file.
        stop_after: return after this epoch as if interrupted; `resume=True` later trains the rest.
        quick: cap steps and test images (True) or not (False); None follows `lib.quick.quick_mode()`.

    Returns:
        A `History` of every epoch (after a resume, the earlier ones too). `fit` turns on cuDNN's
        benchmark mode on CUDA and gives `torch.backends.cudnn.benchmark` back as it found it.
    """
    run = _Run(model, data, epochs=epochs, stop_after=stop_after, batch_size=batch_size, lr=lr,
               optimizer_name=check_optimizer(optimizer), momentum=momentum, weight_decay=weight_decay,
               schedule=check_schedule(schedule), label_smoothing=label_smoothing, augment=augment,
               aux_weight=aux_weight, amp=amp, channels_last=channels_last, seed=seed, progress=progress,
               verbose=verbose, resume_from=checkpoints.resume_path(checkpoint, resume))
    benchmark = torch.backends.cudnn.benchmark  # _join turns it on for CUDA; the caller's setting comes back
    try:
        _start(run, device, max_steps_per_epoch, quick, compile)
        was_training = model.training
        for epoch in range(run.first_epoch, run.last_epoch + 1):
            train_sums = _train_epoch(run, epoch)
            _record(run, epoch, train_sums, _evaluate(run))
            if checkpoint is not None:
                checkpoints.save(checkpoint, run, epoch=epoch, seconds=_seconds(run))
        model.train(was_training)
    finally:
        torch.backends.cudnn.benchmark = benchmark
    return _finish(run)


@dataclass(eq=False)
class _Run:
    """Everything one `fit` call works with: what it was asked, what its start built, what it has counted.

    It has every attribute `lib.checkpoint.Resumable` lists, so that a checkpoint saves and restores it.
    """

    # What fit was asked (batch_size shrinks to a training set smaller than one batch).
    model: nn.Module
    data: ImageData
    epochs: int
    stop_after: int | None
    batch_size: int
    lr: float
    optimizer_name: str
    momentum: float
    weight_decay: float
    schedule: str
    label_smoothing: float
    augment: bool
    aux_weight: float
    amp: bool
    channels_last: bool | None
    seed: int
    progress: bool
    verbose: bool
    resume_from: str | None
    # Set by the start phases.
    launch: distributed.Launch = field(init=False)
    device: torch.device = field(init=False)
    process_seed: int = field(init=False)  # `seed` on rank 0, a seed of its own on every other rank
    train_x: torch.Tensor = field(init=False)
    train_y: torch.Tensor = field(init=False)
    test_x: torch.Tensor = field(init=False)  # this process's share of the test images
    test_y: torch.Tensor = field(init=False)
    normalize: Normalizer = field(init=False)
    steps: int = field(init=False)  # per epoch
    optimizer: torch.optim.Optimizer = field(init=False)
    scheduler: torch.optim.lr_scheduler.LambdaLR = field(init=False)
    amp_dtype: torch.dtype | None = field(init=False)
    scaler: Any = field(init=False)  # a GradScaler, disabled unless fp16
    shuffle_gen: torch.Generator = field(init=False)
    augment_gen: torch.Generator = field(init=False)
    history: History = field(init=False)
    settings: dict[str, Any] = field(init=False)  # what a checkpoint must agree with to be resumed
    trainer: nn.Module = field(init=False)  # the model, or its DistributedDataParallel wrapper
    runner: Callable[[torch.Tensor], Any] = field(init=False)  # the trainer, or its compiled version
    # Counted while training (and restored by a resume).
    first_epoch: int = 1
    train_seconds: float = 0.0
    images_seen: int = 0
    seconds_before: float = 0.0  # wall time of the run before the checkpoint it resumed from
    last_lr: float = math.nan
    epoch_start: float = math.nan
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        """Fail before any work on numbers that cannot be trained with."""
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be positive, got {self.epochs} and {self.batch_size}")
        if self.stop_after is not None and not 1 <= self.stop_after <= self.epochs:
            raise ValueError(f"stop_after must be an epoch from 1 to {self.epochs}, got {self.stop_after}")

    @property
    def last_epoch(self) -> int:
        """The epoch this call stops after: `stop_after`, or the last one."""
        return self.stop_after or self.epochs

    @property
    def local_batch(self) -> int:
        """This process's share of each global batch."""
        return self.batch_size // self.launch.world_size


def _finish(run: _Run) -> History:
    """The History with the run's throughput and total time filled in."""
    run.history.images_per_second = run.images_seen / run.train_seconds if run.train_seconds > 0 else math.nan
    run.history.seconds = _seconds(run)
    return run.history


def _seconds(run: _Run) -> float:
    """The run's wall time so far, including the time before the checkpoint it resumed from."""
    return run.seconds_before + time.perf_counter() - run.started


# ----------------------------------------------------------------------------------- start phases

def _start(run: _Run, device: torch.device | str | None, max_steps: int | None, quick: bool | None,
           compile: bool) -> None:
    """Everything before the first epoch, in the order the random draws depend on."""
    _join(run, device)
    _place_data(run, max_steps, quick)
    _build(run)
    _resume(run)
    _wrap(run, compile)


def _join(run: _Run, device: torch.device | str | None) -> None:
    """This process's place in a torchrun job (alone without one), its device, cuDNN's autotuning, seeds."""
    run.launch = distributed.launch_from_env()
    distributed.local_batch_size(run.batch_size, run.launch.world_size)  # checked before any waiting
    if run.launch.distributed:
        run.device = distributed.device_for(run.launch, device)
        distributed.init(run.launch, run.device)
        run.progress, run.verbose = run.progress and run.launch.main, run.verbose and run.launch.main
    else:
        run.device = torch.device(device) if device is not None else get_device()
    if run.device.type == "cuda" and not torch.backends.cudnn.deterministic:
        torch.backends.cudnn.benchmark = True  # batch shapes are fixed: let cuDNN pick the fastest kernels
    run.process_seed = distributed.rank_seed(run.seed, run.launch.rank)  # `seed` itself in a single process
    seed_everything(run.process_seed)


def _place_data(run: _Run, max_steps: int | None, quick: bool | None) -> None:
    """The whole dataset on the device, once; the steps per epoch; this process's share of the test set."""
    data, device, world = run.data, run.device, run.launch.world_size
    run.train_x, run.train_y = data.train_images.to(device), data.train_labels.to(device)
    n_train, n_test = len(run.train_x), len(data.test_images)
    if n_train == 0:
        raise ValueError("the training split is empty")
    if run.batch_size > n_train:  # one batch of everything (that the processes can share evenly)
        run.batch_size = n_train - n_train % world
        if run.batch_size == 0:
            raise ValueError(f"{n_train} training images cannot be shared by {world} processes")
    run.steps = n_train // run.batch_size
    if max_steps is not None:
        run.steps = max(1, min(run.steps, max_steps))
    if resolve_quick(quick):
        run.steps, n_test = min(run.steps, QUICK_STEPS), min(n_test, QUICK_TEST_IMAGES)
        if run.verbose:
            why = f"{QUICK_ENV} is set" if quick is None else "quick=True"
            print(f"{why}: training capped at {run.steps} of {n_train // run.batch_size} steps per epoch, "
                  f"evaluation at {n_test:,} of {len(data.test_images):,} test images")
    test_x, test_y = data.test_images[:n_test], data.test_labels[:n_test]
    if run.launch.distributed:  # each process evaluates its share of the test images
        test_x, test_y = test_x.tensor_split(world)[run.launch.rank], test_y.tensor_split(world)[run.launch.rank]
    run.test_x, run.test_y = test_x.to(device), test_y.to(device)
    run.normalize = data.normalizer(device)


def _build(run: _Run) -> None:
    """The model on the device; optimiser, schedule, precision, generators, an empty History, the settings."""
    run.model.to(run.device)
    if run.channels_last is None:
        run.channels_last = run.device.type == "cuda"
    if run.channels_last:
        run.model.to(memory_format=torch.channels_last)
    run.optimizer = make_optimizer(run.model, run.optimizer_name, lr=run.lr, momentum=run.momentum,
                                   weight_decay=run.weight_decay)
    run.scheduler = lambda_schedule(run.optimizer, run.schedule, run.epochs * run.steps)
    run.amp_dtype = autocast_dtype(run.device, run.amp)
    run.scaler = grad_scaler(run.amp_dtype)
    run.shuffle_gen = torch.Generator().manual_seed(run.seed)  # on the CPU: the same order everywhere
    run.augment_gen = _device_generator(run.device, run.process_seed + 1)
    world = run.launch.world_size
    name = device_name(run.device)
    run.history = History(device=name if world == 1 else f"{world} x {name}")
    run.settings = {"epochs": run.epochs, "batch_size": run.batch_size, "steps_per_epoch": run.steps,
                    "train_images": len(run.train_x), "lr": run.lr, "optimizer": run.optimizer_name,
                    "schedule": run.schedule, "seed": run.seed}


def _resume(run: _Run) -> None:
    """Continue from the checkpoint `run.resume_from` if there is one (and say so)."""
    if run.resume_from is None:
        return
    name = os.path.basename(run.resume_from)
    if not os.path.exists(run.resume_from):
        if run.verbose:
            print(f"no checkpoint {name} yet: training from epoch 1")
        return
    epoch, fresh_because = checkpoints.restore(run.resume_from, run)
    if run.verbose:
        if fresh_because is not None:
            print(f"the checkpoint comes from {fresh_because}: augmentation and dropout draw new random numbers")
        print(f"resuming from {name} after epoch {epoch} of {run.epochs}")


def _wrap(run: _Run, compile: bool) -> None:
    """DistributedDataParallel around the model under torchrun (the gradient all-reduce), then torch.compile."""
    run.trainer = distributed.wrap(run.model, run.device) if run.launch.distributed else run.model
    run.runner = run.trainer
    if compile:
        try:
            run.runner = torch.compile(run.trainer)
        except Exception as error:  # noqa: BLE001 - any failure means: train without it
            if run.launch.main:
                print(f"torch.compile unavailable ({type(error).__name__}); training without it")


# ----------------------------------------------------------------------------------- epoch phases

def _train_epoch(run: _Run, epoch: int) -> tuple[float, int]:
    """One pass of `run.steps` batches; returns this process's sum of batch losses and its correct count."""
    run.epoch_start = time.perf_counter()
    run.model.train()
    order = torch.randperm(len(run.train_x), generator=run.shuffle_gen).to(run.device)
    loss_sum = torch.zeros((), device=run.device)
    correct = torch.zeros((), device=run.device, dtype=torch.long)
    bar = tqdm(total=run.steps, desc=f"epoch {epoch:>{len(str(run.epochs))}}/{run.epochs}", file=sys.stdout,
               leave=False, disable=not run.progress, bar_format="{l_bar}{bar:10}{r_bar}")
    refresh_every = max(1, run.steps // 20)  # reading the running loss waits for the GPU: not every step
    synchronize(run.device)
    step_start, first_timed = time.perf_counter(), 0
    for step in range(run.steps):
        if epoch == run.first_epoch and step == 1:  # the first step is warm-up (cuDNN autotuning, compilation)
            synchronize(run.device)
            step_start, first_timed = time.perf_counter(), 1
        x, y = _batch(run, order, step)
        if step == run.steps - 1:
            run.last_lr = run.optimizer.param_groups[0]["lr"]
        step_loss, step_correct = _first_step(run, x, y) if step == 0 else _train_step(run, x, y)
        loss_sum += step_loss
        correct += step_correct
        bar.update()
        if run.progress and ((step + 1) % refresh_every == 0 or step + 1 == run.steps):
            bar.set_postfix_str(f"loss {loss_sum.item() / (step + 1):.3f}, "
                                f"acc {correct.item() / ((step + 1) * run.local_batch):.3f}", refresh=False)
    synchronize(run.device)
    run.train_seconds += time.perf_counter() - step_start
    run.images_seen += (run.steps - first_timed) * run.batch_size
    bar.close()
    return loss_sum.item(), correct.item()


def _batch(run: _Run, order: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This process's images (augmented, normalised) and labels of global batch number `step`."""
    index = order[step * run.batch_size:(step + 1) * run.batch_size]
    if run.launch.distributed:
        index = distributed.shard(index, run.launch)  # this process's slice of the global batch
    x = run.train_x[index]
    if run.augment:
        x = random_crop_flip(x, generator=run.augment_gen)
    x = run.normalize(x)
    if run.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, run.train_y[index]


def _first_step(run: _Run, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An epoch's first step, where a compiled model compiles: if that fails, go on without compiling."""
    if run.runner is run.trainer:
        return _train_step(run, x, y)
    try:
        return _train_step(run, x, y)
    except Exception as error:  # noqa: BLE001 - compilation happens at the first call
        if run.launch.main:
            print(f"torch.compile failed ({type(error).__name__}); training without it")
        run.runner = run.trainer
        return _train_step(run, x, y)


def _train_step(run: _Run, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward, backward, optimiser and schedule step; the main output's loss and correct count, on the device.

    One code path for every precision: the scaler is disabled (it passes everything through) unless fp16.
    """
    with autocast(run.device, run.amp_dtype):
        loss, main_loss, main = classification_loss(run.runner(x), y, aux_weight=run.aux_weight,
                                                    label_smoothing=run.label_smoothing)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    return main_loss.detach(), (main.argmax(1) == y).sum()


def _evaluate(run: _Run) -> tuple[float, float]:
    """Test loss and accuracy after an epoch, over the test images of all processes."""
    with eval_mode(run.model):
        if run.launch.distributed:
            distributed.broadcast_buffers(run.model)  # BatchNorm statistics: rank 0's everywhere
            return evaluate_on_all_ranks(
                run.model, run.test_x, run.test_y, run.normalize, batch_size=max(512, run.local_batch),
                device=run.device, amp_dtype=run.amp_dtype, channels_last=run.channels_last)
        return evaluate_tensors(
            run.runner, run.test_x, run.test_y, run.normalize, batch_size=max(512, run.batch_size),
            device=run.device, amp_dtype=run.amp_dtype, channels_last=run.channels_last)


def _record(run: _Run, epoch: int, train: tuple[float, int], test: tuple[float, float]) -> None:
    """Append the epoch's numbers to the History (the training sums added up over the processes); print them."""
    train_loss_sum, train_correct = distributed.all_reduce_sum(list(train), run.device)
    history = run.history
    history.train_loss.append(train_loss_sum / (run.steps * run.launch.world_size))
    history.train_acc.append(train_correct / (run.steps * run.batch_size))
    history.test_loss.append(test[0])
    history.test_acc.append(test[1])
    history.lr.append(run.last_lr)
    history.epoch_seconds.append(time.perf_counter() - run.epoch_start)  # training and evaluation
    if run.verbose:
        print(f"epoch {epoch:>{len(str(run.epochs))}}/{run.epochs}  train loss {history.train_loss[-1]:.3f} "
              f"acc {history.train_acc[-1]:.3f}  test loss {test[0]:.3f} acc {test[1]:.3f}  "
              f"{history.epoch_seconds[-1]:.1f} s")
