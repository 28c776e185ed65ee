"""A model's trainable parameters and how they are updated: the optimisers and learning-rate schedules of `fit`."""
from __future__ import annotations

import math

import torch
from torch import nn

from .lookup import unknown

SCHEDULES = ("onecycle", "cosine", "constant")
OPTIMIZERS = ("sgd", "adam", "adamw")


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """The number of parameters (scalars) of `model`, or only of those with `requires_grad`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def check_schedule(schedule: str) -> str:
    """`schedule` if it is one of SCHEDULES; otherwise a ValueError naming the closest ones."""
    if schedule not in SCHEDULES:
        raise unknown("schedule", schedule, SCHEDULES)
    return schedule


def check_optimizer(name: str) -> str:
    """`name` in lower case if it is one of OPTIMIZERS; otherwise a ValueError naming the closest ones."""
    if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
        raise unknown("optimizer", str(name), OPTIMIZERS)
    return name.lower()


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
    raise unknown("schedule", schedule, SCHEDULES)


def make_optimizer(
    model: nn.Module, name: str, *, lr: float, momentum: float = 0.9, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """SGD (with Nesterov momentum when momentum > 0), Adam or AdamW over `model`'s trainable parameters.

    Weight decay applies only to weight matrices and convolution kernels: parameters with one dimension
    (biases, BatchNorm's scale and shift) are not decayed, the "no bias decay" of He et al. 2019 (Bag
    of Tricks for Image Classification, section 3.1).

    Args:
        model: the network whose `requires_grad` parameters are optimised.
        name: "sgd", "adam" or "adamw" (any case).
        lr: the learning rate (the peak of the schedule, which `fit` applies on top).
        momentum: SGD's momentum; ignored by Adam and AdamW.
        weight_decay: the L2 penalty of the weight group.
    """
    name = check_optimizer(name)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    return torch.optim.AdamW(groups, lr=lr)


def lambda_schedule(
    optimizer: torch.optim.Optimizer, schedule: str, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler that multiplies the peak rate by `lr_factor(schedule, step, total_steps)`, stepped per batch."""
    check_schedule(schedule)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(schedule, step, total_steps))
