"""Parity with torchvision: forward + backward of each lib.models network against torchvision's twin.

For each `lib.models` network with a torchvision twin, torchvision's state_dict is loaded into ours with
strict=True (same names and shapes, or no parity), both get the same cheap weights, and the two take
turns timing forward + backward of one batch. Ratio = our time / torchvision's time: 1.00 is the same
speed. Each one's fastest round counts: background load only ever adds time.
"""
from __future__ import annotations

import time

import lib
import torch
import torchvision
from lib.device import synchronize
from lib.training import classification_loss
from torch import nn

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
    """Seconds of each of `repeats` forward + backward passes of `model` on the batch (x, y)."""
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


def compare(name: str, tv_kwargs: dict, *, batch: int, size: int, device: torch.device, rounds: int,
            repeats: int) -> dict:
    """One network against its torchvision twin: the fastest forward + backward of each, and their ratio."""
    ours, theirs, strict = _twin_models(name, tv_kwargs, device)
    ours.train()
    theirs.train()
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    y = torch.arange(batch, device=device) % 10
    times: dict[str, list[float]] = {"lib": [], "torchvision": []}
    for model in (ours, theirs):  # warm-up: allocations, oneDNN's and cuDNN's kernel choice
        _forward_backward_seconds(model, x, y, 1)
    for r in range(rounds):
        pair = (("lib", ours), ("torchvision", theirs))
        for label, model in pair if r % 2 == 0 else pair[::-1]:
            times[label] += _forward_backward_seconds(model, x, y, repeats)
    # The fastest round of each: background load only ever adds time, and one busy round must not
    # make either implementation look slower than it is (the rounds alternate the order).
    lib_s, tv_s = min(times["lib"]), min(times["torchvision"])
    return {
        "model": name, "input_shape": [batch, 3, size, size], "state_dict_strict": strict,
        "lib_ms": round(lib_s * 1e3, 3), "torchvision_ms": round(tv_s * 1e3, 3),
        "ratio": round(lib_s / tv_s, 3), "lib_images_per_second": round(batch / lib_s, 1),
    }


def run_parity(*, quick: bool, device: torch.device, rounds: int) -> list[dict]:
    """Every network of `PARITY` (in quick mode those marked for it) against torchvision's, printed too."""
    batch = 2 if quick else 8  # at least 2: BatchNorm needs two values per channel on 1x1 maps
    repeats = 1 if quick else 2 if device.type == "cpu" else 20  # a GPU takes milliseconds per batch
    results = []
    for name, tv_kwargs, in_quick in PARITY:
        if quick and not in_quick:
            continue
        size = PARITY_SIZE.get(name, 32 if quick else 64)
        row = compare(name, tv_kwargs, batch=batch, size=size, device=device, rounds=rounds, repeats=repeats)
        results.append(row)
        print(f"  {name:10} {batch}x3x{size}x{size}  lib {row['lib_ms']:9.1f} ms   torchvision "
              f"{row['torchvision_ms']:9.1f} ms   ratio {row['ratio']:.2f}", flush=True)
    return results
