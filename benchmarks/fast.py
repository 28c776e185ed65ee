"""The fast path: `lib.fit` itself, with the options the benchmark gives it."""
from __future__ import annotations

import time

import lib
import torch
from lib.data import ImageData
from torch import nn

from .naive import OPTIMIZER
from .timing import Rate, Steps

LAYOUTS = ("auto", "on", "off")


def fast_options(device: torch.device, *, channels_last: str = "auto", compile: bool = False) -> dict:
    """lib.fit's settings for the fast path.

    amp: autocast on CUDA (lib.fit ignores it elsewhere). channels_last "auto": on for CUDA (tensor
    cores want NHWC) and for the CPU (oneDNN's convolutions and max-pooling are faster in NHWC: LeNet's
    training step takes about 1.6x less CPU time), off for MPS.
    """
    if channels_last not in LAYOUTS:
        raise ValueError(f"channels_last must be one of {', '.join(LAYOUTS)}, got {channels_last!r}")
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
    common = dict(epochs=1, batch_size=batch_size, lr=OPTIMIZER["lr"], optimizer=OPTIMIZER["name"],
                  momentum=OPTIMIZER["momentum"], weight_decay=OPTIMIZER["weight_decay"], augment=augment,
                  device=device, progress=False, verbose=False, **options)
    if steps.warmup > 1:
        lib.fit(model, data, max_steps_per_epoch=steps.warmup - 1, **common)
    cpu_start = time.process_time()
    history = lib.fit(model, data, max_steps_per_epoch=steps.timed + 1, **common)
    cpu = time.process_time() - cpu_start
    return Rate(history.images_per_second, (steps.timed + 1) * batch_size / cpu)
