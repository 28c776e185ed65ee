"""The compute-only loop: the ceiling that any training pipeline on this device can reach.

The same network, optimiser, batch size, precision and memory layout as `lib.fit`, training on one batch
that is already on the device, normalised and in place: no data movement, no augmentation, no
shuffling, no learning-rate schedule, no metrics. Each step is forward, loss, backward and the
optimiser's update, nothing else. A pipeline's throughput divided by this loop's says how much of the
device's training speed the pipeline keeps; the rest is what its data path and bookkeeping cost.
"""
from __future__ import annotations

import torch
from lib.data import ImageData
from lib.device import autocast, autocast_dtype, grad_scaler
from lib.optim import make_optimizer
from lib.training import classification_loss
from torch import nn

from .naive import OPTIMIZER
from .timing import Rate, Steps, timed_steps


def device_batch(data: ImageData, batch_size: int, device: torch.device, *,
                 channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `batch_size` training images, normalised as `lib.fit` does, and their labels, on `device`."""
    x = data.normalizer(device)(data.train_images[:batch_size].to(device))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, data.train_labels[:batch_size].to(device)


def time_compute(model: nn.Module, data: ImageData, *, batch_size: int, steps: Steps, device: torch.device,
                 options: dict) -> Rate:
    """Throughput of bare training steps on one batch on the device, with `lib.fit`'s `options`.

    `options` are the fast path's (see `fast.fast_options`): autocast on CUDA in lib.fit's precision
    (bf16, or fp16 with a gradient scaler), channels_last, torch.compile. The loss is lib.fit's
    (`classification_loss`: GoogLeNet's auxiliary heads count as in training).
    """
    dtype = autocast_dtype(device, options["amp"])
    scaler = grad_scaler(dtype)  # a pass-through unless fp16
    model.to(device).train()
    if options["channels_last"]:
        model.to(memory_format=torch.channels_last)
    runner = torch.compile(model) if options["compile"] else model
    optimizer = make_optimizer(model, OPTIMIZER["name"], lr=OPTIMIZER["lr"], momentum=OPTIMIZER["momentum"],
                               weight_decay=OPTIMIZER["weight_decay"])
    x, y = device_batch(data, batch_size, device, channels_last=options["channels_last"])

    def step() -> None:
        with autocast(device, dtype):
            loss, _, _ = classification_loss(runner(x), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return timed_steps(step, steps, device=device, batch_size=len(x))  # a split smaller than a batch
