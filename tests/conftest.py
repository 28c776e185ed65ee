"""Fixtures shared by the test files (the repository's root conftest.py sets up paths and quick mode).

They are fixtures rather than importable functions because two files are named conftest.py (the root's
and this one), so `from conftest import ...` would depend on which pytest imported last.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import torch
from torch import nn


@pytest.fixture(scope="session")
def count_params() -> Callable[[nn.Module], int]:
    """The library's parameter counter, `lib.count_parameters(model)` (works on the meta device too)."""
    from lib import count_parameters

    return count_parameters


def _build_on_meta(builder: Callable[..., nn.Module], /, *args, **kwargs) -> nn.Module:
    # Shapes only: no memory for the weights and no time spent initialising them (a VGG has 133M).
    with torch.device("meta"):
        return builder(*args, **kwargs)


@pytest.fixture(scope="session")
def on_meta() -> Callable[..., nn.Module]:
    """`on_meta(builder, *args, **kwargs)`: the model built on the meta device, for counts and shapes."""
    return _build_on_meta


def _output_shapes(model: nn.Module, x: torch.Tensor, names: Sequence[str]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    modules = dict(model.named_modules())
    hooks = [modules[name].register_forward_hook(
        lambda module, inputs, output, name=name: shapes.__setitem__(name, tuple(output.shape[1:])))
        for name in names]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return shapes


@pytest.fixture(scope="session")
def output_shapes() -> Callable[[nn.Module, torch.Tensor, Sequence[str]], dict[str, tuple[int, ...]]]:
    """`output_shapes(model, x, names)`: the per-example output shape (without N) of each named submodule."""
    return _output_shapes
