"""The five families of the book, one module each, with torchvision's builder names.

`MODELS` maps a builder's name to the builder; `get_model(name, **kwargs)` calls it. The registry is
spelled out, so that editors and static tools see every builder; tests/test_models.py checks that it
holds exactly the builders (lower-case functions) that the family modules list in their `__all__`.

Note that `lib.models.alexnet` and `lib.models.googlenet` are the builders, which shadow the modules of
the same name: reach a module with `importlib.import_module("lib.models.alexnet")`.
"""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..lookup import unknown
from .alexnet import alexnet, alexnet_cifar
from .googlenet import googlenet
from .lenet import lenet5
from .resnet import (
    resnet18, resnet20, resnet32, resnet34, resnet44, resnet50, resnet56, resnet101, resnet110, resnet152,
)
from .vgg import (
    vgg11, vgg11_bn, vgg11_lrn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg16_c, vgg16_c_bn, vgg19, vgg19_bn,
)

MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet5": lenet5,
    "alexnet": alexnet,
    "alexnet_cifar": alexnet_cifar,
    "vgg11": vgg11,
    "vgg11_bn": vgg11_bn,
    "vgg11_lrn": vgg11_lrn,
    "vgg13": vgg13,
    "vgg13_bn": vgg13_bn,
    "vgg16": vgg16,
    "vgg16_bn": vgg16_bn,
    "vgg16_c": vgg16_c,
    "vgg16_c_bn": vgg16_c_bn,
    "vgg19": vgg19,
    "vgg19_bn": vgg19_bn,
    "googlenet": googlenet,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnet152": resnet152,
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet44": resnet44,
    "resnet56": resnet56,
    "resnet110": resnet110,
}


def get_model(name: str, **kwargs) -> nn.Module:
    """Build the network registered as `name` in `MODELS` (e.g. "resnet18"), passing `kwargs` to its builder.

    Raises:
        ValueError: `name` is not registered; the message lists the closest names and the choices.
    """
    if name not in MODELS:
        raise unknown("model", name, MODELS)
    return MODELS[name](**kwargs)


__all__ = [
    "MODELS", "get_model",
    "lenet5", "alexnet", "alexnet_cifar",
    "vgg11", "vgg11_bn", "vgg11_lrn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg16_c", "vgg16_c_bn",
    "vgg19", "vgg19_bn",
    "googlenet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
]
