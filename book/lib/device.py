"""Devices, seeds and precision: where a model runs and how it is made repeatable."""
from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn


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


def model_device(model: nn.Module) -> torch.device:
    """The device of `model`'s first parameter (or buffer); the CPU for a model that has neither."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


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


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a timer measures the work and not only its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every module of `model` in eval mode inside the block and restore each one's own mode after it.

    `model.train(previous)` would not do: it sets every submodule alike, and a model may have been left
    with some modules in eval mode on purpose (frozen BatchNorm statistics).
    """
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes.items():
            module.training = training


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """bf16 on CUDA GPUs with bf16 tensor cores (Ampere, compute capability 8.0, and later), fp16 on older
    ones such as Colab's T4, None (full precision) elsewhere.

    `torch.cuda.is_bf16_supported()` is not the test: it also counts bf16 that a Turing GPU only emulates,
    which is slow there (and cuDNN has no bf16 convolutions below compute capability 8.0).
    """
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to `dtype` on `device`, or nothing when `dtype` is None (full precision)."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def grad_scaler(dtype: torch.dtype | None):
    """A gradient scaler, enabled only for fp16: its gradients underflow without loss scaling, while bf16
    has fp32's range and needs none. One code path: a disabled scaler passes every call through."""
    enabled = dtype == torch.float16
    if hasattr(torch.amp, "GradScaler"):  # torch >= 2.3
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)
