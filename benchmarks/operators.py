"""How many operators one training step dispatches: the floor of a small network's step time on a GPU.

On a GPU every operator is launched from Python through PyTorch's dispatcher, which costs 10-20 us of
CPU time per operator in eager mode on Colab's CPUs (issue 19). For a small network that CPU work, not
the arithmetic, sets the step time. This counts the ATen operators of one step as `lib.fit` runs it on
CUDA: augmentation, normalisation, the forward pass under autocast, the loss, the backward pass, the
foreach SGD update (the default on CUDA) and the GradScaler's scale, unscale and update, by running
that step on the CPU under a TorchDispatchMode that counts every call.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from lib.training import classification_loss, random_crop_flip
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode


class OperatorCount(TorchDispatchMode):
    """Counts the ATen operators dispatched while it is active (`with OperatorCount() as count:`)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def _train_step(model: nn.Module, optimizer: torch.optim.Optimizer, scaler, x: torch.Tensor,
                y: torch.Tensor, augment: bool) -> None:
    """lib.fit's step (`lib.training._train_step` and `_batch`) with CUDA's defaults, on the CPU."""
    if augment:
        x = random_crop_flip(x)
    x = (x - 0.5) / 0.25  # the normaliser: a subtraction and a division
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, main_loss, main = classification_loss(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    main_loss.detach(), (main.argmax(1) == y).sum()


def step_operators(build: Callable[[], nn.Module], image_shape: tuple[int, ...], *,
                   augment: bool = True, batch: int = 4) -> tuple[int, int]:
    """(operators per training step, operators per evaluation batch) of the network `build()` returns.

    The training step is counted after one warm-up step (which creates the momentum buffers); the
    evaluation batch is the forward pass in eval mode under autocast, the loss and the correct count.
    The counts do not depend on the batch size.
    """
    torch.manual_seed(0)
    model = build().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, foreach=True)
    scaler = torch.amp.GradScaler("cpu")
    x, y = torch.rand(batch, *image_shape), torch.arange(batch) % 10
    _train_step(model, optimizer, scaler, x, y, augment)
    with OperatorCount() as train:
        _train_step(model, optimizer, scaler, x, y, augment)
    model.eval()
    with OperatorCount() as evaluate, torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        scores = model((x - 0.5) / 0.25).float()
        torch.nn.functional.cross_entropy(scores, y, reduction="sum"), (scores.argmax(1) == y).sum()
    return train.calls, evaluate.calls
