"""The five families of the book, one module each, with torchvision's builder names.

`MODELS` maps a builder's name to the builder; `get_model(name, **kwargs)` calls it.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from . import alexnet as _alexnet
from . import googlenet as _googlenet
from . import lenet as _lenet
from . import resnet as _resnet
from . import vgg as _vgg

MODELS: dict[str, Callable[..., nn.Module]] = {}
for _module in (_lenet, _alexnet, _vgg, _googlenet, _resnet):
    for _name in _module.__all__:
        if _name.islower() and callable(getattr(_module, _name)):  # builders are lower-case functions
            MODELS[_name] = getattr(_module, _name)
globals().update(MODELS)


def get_model(name: str, **kwargs) -> nn.Module:
    """Build the network registered as `name` (e.g. "resnet18"), passing `kwargs` to its builder."""
    try:
        builder = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}") from None
    return builder(**kwargs)


__all__ = ["MODELS", "get_model", *sorted(MODELS)]
