"""VGG: the configurations A to E of Simonyan and Zisserman (ICLR 2015), built from one table.

The paper's Table 1 is kept as plain data (`CONFIGS`): five stages per configuration, each a list of
layers in the paper's own notation ("conv3-64", "conv1-256", "LRN"), each stage closed by a 2x2 max
pool. One class, `VGG`, builds any column with or without BatchNorm; the public builders are thin
wrappers with torchvision's names.

    builder       paper column   weight layers   parameters (1000 classes)
    vgg11         A              11              132,863,336
    vgg11_lrn     A-LRN          11              132,863,336
    vgg13         B              13              133,047,848
    vgg16_c       C              16              133,638,952
    vgg16         D              16              138,357,544
    vgg19         E              19              143,667,240
    (and vgg11_bn, vgg13_bn, vgg16_bn, vgg16_c_bn, vgg19_bn)

Where this departs from the paper:
    - The `_bn` variants (a BatchNorm after every convolution) came after the paper (Ioffe and
      Szegedy, 2015); they make training from scratch easy, which the paper achieved by initialising
      the deeper nets from a trained configuration A (section 3.1).
    - Weights are initialised as torchvision does (Kaiming normal for convolutions, N(0, 0.01) for
      the fully connected layers), not as in section 3.1.
    - An adaptive average pool to 7x7 sits before the classifier, so any input of at least 32x32
      pixels works. At 224x224 it does nothing. The paper instead turns the fully connected layers
      into convolutions for dense evaluation at test time (section 3.2).
    - `classifier="cifar"` replaces the three fully connected layers (fc6, fc7, fc8) by a single
      512 -> num_classes layer for 32x32 images: after five pools the feature map is 1x1x512, and a
      25088x4096 fc6 built for 224-pixel images would hold 103M parameters to look at 512 numbers.
    - LRN (configuration A-LRN only) is AlexNet's, as the paper says (section 2.1): the module
      `lib.models.layers.LocalResponseNorm` with k=2, n=5, alpha=1e-4, beta=0.75. (PyTorch's
      `nn.LocalResponseNorm` divides alpha by n, so it would need alpha=5e-4 for the same layer.)

Where this departs from torchvision: the same layer names and order (`features.N`, `avgpool`,
`classifier.{0,3,6}`), so torchvision's state_dicts load with strict=True and give identical
outputs; in addition there are the configurations A-LRN and C, the CIFAR head, and an input check
that names the expected shape instead of failing inside a matrix multiplication.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..lookup import unknown
from ._checks import check_image_batch
from .layers import LocalResponseNorm

# Lower-case functions in __all__ are builders, and tests/test_models.py checks that each is registered in
# lib.models.MODELS, so the helper `make_features` stays public but outside __all__.
__all__ = [
    "VGG",
    "CONFIGS",
    "PAPER_PARAMETERS",
    "vgg11",
    "vgg11_bn",
    "vgg11_lrn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg16_c",
    "vgg16_c_bn",
    "vgg19",
    "vgg19_bn",
]

# Table 1 of the paper, one column per configuration. Each inner tuple is a stage; a 2x2 max pool
# with stride 2 follows every stage. "convK-C": a KxK convolution with C output channels, stride 1,
# padding K // 2 (so the spatial size is kept), followed by a ReLU. "LRN": local response norm.
CONFIGS: dict[str, tuple[tuple[str, ...], ...]] = {
    "A": (
        ("conv3-64",),
        ("conv3-128",),
        ("conv3-256", "conv3-256"),
        ("conv3-512", "conv3-512"),
        ("conv3-512", "conv3-512"),
    ),
    "A-LRN": (
        ("conv3-64", "LRN"),
        ("conv3-128",),
        ("conv3-256", "conv3-256"),
        ("conv3-512", "conv3-512"),
        ("conv3-512", "conv3-512"),
    ),
    "B": (
        ("conv3-64", "conv3-64"),
        ("conv3-128", "conv3-128"),
        ("conv3-256", "conv3-256"),
        ("conv3-512", "conv3-512"),
        ("conv3-512", "conv3-512"),
    ),
    "C": (
        ("conv3-64", "conv3-64"),
        ("conv3-128", "conv3-128"),
        ("conv3-256", "conv3-256", "conv1-256"),
        ("conv3-512", "conv3-512", "conv1-512"),
        ("conv3-512", "conv3-512", "conv1-512"),
    ),
    "D": (
        ("conv3-64", "conv3-64"),
        ("conv3-128", "conv3-128"),
        ("conv3-256", "conv3-256", "conv3-256"),
        ("conv3-512", "conv3-512", "conv3-512"),
        ("conv3-512", "conv3-512", "conv3-512"),
    ),
    "E": (
        ("conv3-64", "conv3-64"),
        ("conv3-128", "conv3-128"),
        ("conv3-256", "conv3-256", "conv3-256", "conv3-256"),
        ("conv3-512", "conv3-512", "conv3-512", "conv3-512"),
        ("conv3-512", "conv3-512", "conv3-512", "conv3-512"),
    ),
}

# Table 2 of the paper: number of parameters in millions (1000 classes).
PAPER_PARAMETERS: dict[str, int] = {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}

_NAMES = {"A": "VGG-11", "A-LRN": "VGG-11 (A-LRN)", "B": "VGG-13", "C": "VGG-16 (C)", "D": "VGG-16", "E": "VGG-19"}
_CLASSIFIERS = ("imagenet", "cifar")


def _parse_conv(spec: str) -> tuple[int, int]:
    """Split "conv3-64" into (kernel size 3, 64 output channels)."""
    try:
        kind, channels = spec.split("-")
        if not kind.startswith("conv"):
            raise ValueError
        return int(kind[len("conv"):]), int(channels)
    except ValueError:
        raise ValueError(f"unknown layer {spec!r} in a VGG configuration; use 'convK-C' or 'LRN'") from None


def make_features(config: str | Sequence[Sequence[str]], *, batch_norm: bool = False) -> nn.Sequential:
    """The convolutional part of a VGG configuration, as torchvision lays it out in `features`.

    Args:
        config: a key of `CONFIGS` ("A", "A-LRN", "B", "C", "D", "E") or stages in the same notation.
        batch_norm: put a BatchNorm2d between every convolution and its ReLU.
    """
    stages = _stages(config)
    layers: list[nn.Module] = []
    in_channels = 3
    for stage in stages:
        for spec in stage:
            if spec == "LRN":
                # AlexNet's module and constants, as the paper says (section 2.1).
                layers.append(LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))
                continue
            kernel, out_channels = _parse_conv(spec)
            layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=kernel, padding=kernel // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
            in_channels = out_channels
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))  # halves H and W at the end of each stage
    return nn.Sequential(*layers)


def _stages(config: str | Sequence[Sequence[str]]) -> tuple[tuple[str, ...], ...]:
    if isinstance(config, str):
        if config not in CONFIGS:
            raise unknown("VGG configuration", config, CONFIGS)
        return CONFIGS[config]
    return tuple(tuple(stage) for stage in config)


class VGG(nn.Module):
    """A VGG network for one column of Table 1 (Simonyan and Zisserman, ICLR 2015, section 2).

    Five stages of 3x3 convolutions (64, 128, 256, 512, 512 channels), each closed by a 2x2 max pool,
    then the classifier: three fully connected layers 4096-4096-num_classes with dropout 0.5 on the
    first two (section 3.1), or with `classifier="cifar"` one 512 -> num_classes layer.

    Args:
        config: a key of `CONFIGS` ("A", "A-LRN", "B", "C", "D", "E"), or stages in that notation.
        batch_norm: a BatchNorm2d after every convolution (not in the paper).
        num_classes: outputs of the last layer.
        classifier: "imagenet" (the paper's fc6-fc8 after a 7x7 adaptive pool) or "cifar"
            (a global average pool and one linear layer; meant for 32x32 images).
        dropout: dropout probability in the "imagenet" classifier.
        init_weights: initialise as torchvision does; False keeps PyTorch's layer defaults.
    """

    def __init__(
        self,
        config: str | Sequence[Sequence[str]] = "D",
        *,
        batch_norm: bool = False,
        num_classes: int = 1000,
        classifier: str = "imagenet",
        dropout: float = 0.5,
        init_weights: bool = True,
    ) -> None:
        super().__init__()
        if classifier not in _CLASSIFIERS:
            raise unknown("classifier", classifier, _CLASSIFIERS)
        name = _NAMES.get(config, "VGG") if isinstance(config, str) else "VGG"
        self.name = name + ("-BN" if batch_norm else "")
        self.features = make_features(config, batch_norm=batch_norm)
        width = next(m.out_channels for m in reversed(self.features) if isinstance(m, nn.Conv2d))
        if classifier == "imagenet":
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))  # a no-op at 224x224: pool5 is already 7x7
            self.classifier = nn.Sequential(
                nn.Linear(width * 7 * 7, 4096),  # fc6
                nn.ReLU(inplace=True),
                nn.Dropout(p=dropout),
                nn.Linear(4096, 4096),  # fc7
                nn.ReLU(inplace=True),
                nn.Dropout(p=dropout),
                nn.Linear(4096, num_classes),  # fc8
            )
        else:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))  # a no-op at 32x32: pool5 is already 1x1
            self.classifier = nn.Sequential(nn.Linear(width, num_classes))
        if init_weights:
            self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, model=self.name, channels=3, min_size=32)
        x = self.features(x)  # N x 512 x H/32 x W/32
        x = self.avgpool(x)  # N x 512 x 7 x 7 ("imagenet") or N x 512 x 1 x 1 ("cifar")
        x = torch.flatten(x, 1)
        return self.classifier(x)  # N x num_classes: logits, no softmax (CrossEntropyLoss applies it)


def _vgg(config: str, batch_norm: bool, num_classes: int, classifier: str, dropout: float) -> VGG:
    return VGG(config, batch_norm=batch_norm, num_classes=num_classes, classifier=classifier, dropout=dropout)


def vgg11(*, num_classes: int = 1000, classifier: str = "imagenet", dropout: float = 0.5) -> VGG:
    """VGG-11, configuration A of Simonyan and Zisserman (ICLR 2015, Table 1): 8 convolutions + 3 FC.

    Args:
        num_classes: outputs of the last layer.
        classifier: "imagenet" (fc6-fc8, 4096 wide) or "cifar" (one 512 -> num_classes layer).
        dropout: dropout probability before fc7 and fc8 ("imagenet" classifier only).
    """
    return _vgg("A", False, num_classes, classifier, dropout)


def vgg11_bn(*, num_classes: int = 1000, classifier: str = "imagenet", dropout: float = 0.5) -> VGG:
    """VGG-11 (configuration A, Simonyan and Zisserman, Table 1) with BatchNorm after each convolution.

    Args: as for `vgg11`.
    """
    return _vgg("A", True, num_classes, classifier, dropout)


def vgg11_lrn(*, num_classes: int = 1000, classifier: str = "imagenet", dropout: float = 0.5) -> VGG:
    """VGG-11 with local response normalisation after the first convolution: configuration A-LRN
    (Simonyan and Zisserman, Table 1), which the paper found no better than A (section 4.1).

    Args: as for `vgg11`.
    """
    return _vgg("A-LRN", False, num_classes, classifier, dropout)


def vgg13(*, num_classes: int = 1000, classifier: str = "imagenet", dropout: float = 0.5) -> VGG:
    """VGG-13, configuration B of Simonyan and Zisserman (Table 1): 10 convolutions + 3 FC.

    Args: as for `vgg11`.
    """
    return _vgg("B", False, num_classes, classifier, dropout)


def vgg13_bn(*, num_classes: int = 1000, classifier: str = "imagenet", dropout: float = 0.5) -> VGG:
    """VGG-13 (configuration B, Simonyan and Zisserman, Table 1) with BatchNorm.

    Args: as for `vgg11`.
    """
    return _vgg("B", True, num_classes, classifier, dropout)


def vgg16_c(*, num_classes: int = 1000, classifier: str = "imagenet", dropout: float = 0.5) -> VGG:
    """VGG-16, configuration C of Simonyan and Zisserman (Table 1): the last convolution of stages
    3-5 is 1x1. The paper found it worse than D, whose 3x3 convolutions see more context (section 4.1).
    Not in torchvision.

    Args: as for `vgg11`.
    """
    return _vgg("C", False, num_classes, classifier, dropout)


def vgg16_c_bn(*, num_classes: int = 1000, classifier: str = "imagenet", dropout: float = 0.5) -> VGG:
    """Configuration C (Simonyan and Zisserman, Table 1) with BatchNorm. Not in torchvision.

    Args: as for `vgg11`.
    """
    return _vgg("C", True, num_classes, classifier, dropout)


def vgg16(*, num_classes: int = 1000, classifier: str = "imagenet", dropout: float = 0.5) -> VGG:
    """VGG-16, configuration D of Simonyan and Zisserman (ICLR 2015, Table 1): 13 convolutions + 3 FC.

    Args: as for `vgg11`.
    """
    return _vgg("D", False, num_classes, classifier, dropout)


def vgg16_bn(*, num_classes: int = 1000, classifier: str = "imagenet", dropout: float = 0.5) -> VGG:
    """VGG-16 (configuration D, Simonyan and Zisserman, Table 1) with BatchNorm.

    Args: as for `vgg11`.
    """
    return _vgg("D", True, num_classes, classifier, dropout)


def vgg19(*, num_classes: int = 1000, classifier: str = "imagenet", dropout: float = 0.5) -> VGG:
    """VGG-19, configuration E of Simonyan and Zisserman (Table 1): 16 convolutions + 3 FC.

    Args: as for `vgg11`.
    """
    return _vgg("E", False, num_classes, classifier, dropout)


def vgg19_bn(*, num_classes: int = 1000, classifier: str = "imagenet", dropout: float = 0.5) -> VGG:
    """VGG-19 (configuration E, Simonyan and Zisserman, Table 1) with BatchNorm.

    Args: as for `vgg11`.
    """
    return _vgg("E", True, num_classes, classifier, dropout)
