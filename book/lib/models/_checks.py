"""Input checks shared by the model families: one clear error instead of a shape mismatch deep inside.

A check reads shapes, and torch.fx's symbolic tracing calls `forward` with `torch.fx.Proxy` placeholders that
have no shape yet, so a check run on them would fail (a Proxy is not a tensor) or stop the trace (a Proxy
cannot decide an `if`). `traced_as_one_call` makes a check traceable: given a Proxy, it adds itself to the
graph as one call instead of running, and the traced module then runs it on the real input, with the same
error as in eager mode. This works for every tracer (torch.fx.symbolic_trace or a custom `fx.Tracer`) and
needs no `torch.fx.wrap` in each module that calls a check.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import fx

__all__ = ["traced_as_one_call", "check_image_batch"]


def traced_as_one_call(check: Callable[..., None]) -> Callable[..., None]:
    """Wrap `check` (a function that raises or returns None) so that torch.fx records it as one graph node.

    Called with real values, the wrapper runs `check`. Called during a symbolic trace (some argument is an
    `fx.Proxy`), it adds a `call_function` node for itself with the same arguments and returns None, so the
    traced module runs the check on every call, as `forward` does in eager mode.
    """

    @functools.wraps(check)
    def run_or_record(*args, **kwargs) -> None:
        proxy = next((a for a in (*args, *kwargs.values()) if isinstance(a, fx.Proxy)), None)
        if proxy is None:
            return check(*args, **kwargs)
        proxy.tracer.create_proxy("call_function", run_or_record, args, kwargs)
        return None

    return run_or_record


@traced_as_one_call
def check_image_batch(
    x: torch.Tensor,
    *,
    model: str,
    channels: int,
    min_size: int | None = None,
    size: tuple[int, int] | None = None,
) -> None:
    """Raise a ValueError that says what `model` expects when `x` is not a fitting image batch.

    Args:
        x: the input, expected as (N, C, H, W).
        model: the network's name, used in the message.
        channels: the number of channels the first layer takes.
        min_size: the smallest height and width the network can process, if any.
        size: the exact (H, W) the network needs, if it has no adaptive pooling.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{model} expects a batch of images shaped (N, {channels}, H, W), got {shape}")
    _, c, h, w = x.shape
    if c != channels:
        raise ValueError(
            f"{model} expects {channels}-channel images, got {c} channels (input shape {tuple(x.shape)})"
        )
    if size is not None and (h, w) != tuple(size):
        raise ValueError(f"{model} expects {size[0]}x{size[1]} images, got {h}x{w}")
    if min_size is not None and (h < min_size or w < min_size):
        raise ValueError(f"{model} needs images of at least {min_size}x{min_size} pixels, got {h}x{w}")
