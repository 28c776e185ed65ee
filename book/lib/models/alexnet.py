"""AlexNet (Krizhevsky, Sutskever and Hinton, NeurIPS 2012) as published, as torchvision ships it, and CIFAR-sized.

One class, `AlexNet`, builds all three from a table of five convolutions (`ConvSpec`). Each convolution
is followed by a ReLU and, where the architecture says so, a normalization layer and an overlapping
3x3/2 max pool. `LocalResponseNorm` is written from the paper's equation (section 3.3); it lives in
`lib.models.layers`, because VGG and GoogLeNet use the same module, and is importable from here too.

    builder                              conv widths           LRN   groups    parameters
    alexnet()                            64-192-384-256-256    no    1         61,100,840 (1000 classes)
    alexnet(variant="paper")             96-256-384-384-256    yes   2         60,965,224 (1000 classes)
    alexnet_cifar()                      24-64-96-96-64        yes   2            361,834 (10 classes)

The paper variant follows the 2012 paper (section 3.5, figure 2):
    - widths 96-256-384-384-256 and two hidden layers of 4096 units;
    - the two-GPU split as grouped convolutions: conv2, conv4 and conv5 see only the half of the
      previous layer's maps that lives on their GPU (`groups=2`); conv1, conv3 and the fully connected
      layers see everything;
    - response normalization after the ReLU of conv1 and conv2, then max pooling: "Max-pooling layers
      ... follow both response-normalization layers as well as the fifth convolutional layer"
      (section 3.5; section 3.3: "after applying the ReLU nonlinearity"). Caffe's reference model later
      swapped the two (pool, then normalize);
    - dropout 0.5 on the outputs of the two hidden fully connected layers (section 4.2), so the
      classifier reads Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear (`classifier.{0,3,6}`).

Where the paper variant departs from the paper:
    - conv1 pads by 2 pixels. The paper gives a 224x224 input and a 55x55 first map without a padding;
      (224 + 2*2 - 11) // 4 + 1 = 55, the same as torchvision's layer. (Caffe instead feeds 227 pixels
      without padding: (227 - 11) / 4 + 1 = 55 exactly.)
    - An adaptive average pool to 6x6 sits before the classifier (a no-op at 224 pixels), as in
      torchvision, so larger images work.
    - Weights start from PyTorch's default initialisation, not a normal distribution of standard deviation 0.01 with biases of 1 (section 5).
    - `norm="none" | "batchnorm"` and `groups=1` are ablation options the paper does not have
      ("none" keeps an `nn.Identity` in the slot, so the layer indices do not move).

Where the torchvision variant departs from torchvision: nothing in the layers or their names
(`features.N`, `avgpool`, `classifier.{1,4,6}`), so torchvision's state_dict loads with strict=True and
gives identical outputs. The ReLUs are not in-place, so that a forward hook on a convolution sees its
output before the ReLU; and `forward` starts with an input check that names the smallest image the
network accepts (63x63) instead of failing inside the last pool.

`alexnet_cifar` keeps the paper's design at a size that trains on a CPU, for 32x32 images:
    - conv1 is 5x5 with stride 1 (instead of 11x11 with stride 4, which would leave a 32-pixel image
      with a 7x7 map after one layer, padded by 2 as in this library); all convolutions keep the map size ("same" padding);
    - a quarter of the paper's widths (24-64-96-96-64) and hidden layers of 256 instead of 4096, so
      that an ablation of four networks trains in minutes on a CPU;
    - the three overlapping pools shrink 32 -> 15 -> 7 -> 3, and the classifier reads 3x3x64 = 576
      numbers (the paper: 6x6x256 = 9,216);
    - LRN (paper constants), grouping, pool placement and dropout as in the paper variant, with the
      ablation options `norm` in {"lrn", "none", "batchnorm"} and `groups` in {1, 2}.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..lookup import unknown
from ._checks import check_image_batch
from .layers import LocalResponseNorm

__all__ = [
    "AlexNet", "CONVS", "ConvSpec", "LocalResponseNorm", "NORMS", "VARIANTS", "alexnet", "alexnet_cifar",
]

VARIANTS = ("torchvision", "paper")
NORMS = ("lrn", "none", "batchnorm")


@dataclass(frozen=True)
class ConvSpec:
    """One convolution of the feature extractor and what follows its ReLU."""

    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    grouped: bool = False  # sees only its own GPU's half of the previous maps (two-GPU split)
    normalized: bool = False  # a response-normalization slot after the ReLU
    pooled: bool = False  # an overlapping 3x3 max pool with stride 2 at the end


_TORCHVISION = (
    ConvSpec(64, 11, stride=4, padding=2, pooled=True),
    ConvSpec(192, 5, padding=2, pooled=True),
    ConvSpec(384, 3, padding=1),
    ConvSpec(256, 3, padding=1),
    ConvSpec(256, 3, padding=1, pooled=True),
)
_PAPER = (
    ConvSpec(96, 11, stride=4, padding=2, normalized=True, pooled=True),  # 224 -> 55 -> 27
    ConvSpec(256, 5, padding=2, grouped=True, normalized=True, pooled=True),  # 27 -> 13
    ConvSpec(384, 3, padding=1),
    ConvSpec(384, 3, padding=1, grouped=True),
    ConvSpec(256, 3, padding=1, grouped=True, pooled=True),  # 13 -> 6
)
_CIFAR = (
    ConvSpec(24, 5, padding=2, normalized=True, pooled=True),  # 32 -> 32 -> 15
    ConvSpec(64, 5, padding=2, grouped=True, normalized=True, pooled=True),  # 15 -> 7
    ConvSpec(96, 3, padding=1),
    ConvSpec(96, 3, padding=1, grouped=True),
    ConvSpec(64, 3, padding=1, grouped=True, pooled=True),  # 7 -> 3
)

# The tables the builders use, by name: "torchvision" and "paper" (`alexnet`), "cifar" (`alexnet_cifar`).
CONVS: dict[str, tuple[ConvSpec, ...]] = {"torchvision": _TORCHVISION, "paper": _PAPER, "cifar": _CIFAR}


def _normalization(norm: str, channels: int) -> nn.Module:
    if norm == "lrn":
        return LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)  # the paper's constants (section 3.3)
    if norm == "batchnorm":
        return nn.BatchNorm2d(channels)
    if norm == "none":
        return nn.Identity()
    raise unknown("norm", norm, NORMS)


def _smallest_input(convs: tuple[ConvSpec, ...]) -> int:
    """The smallest image side for which every convolution and pool still has an output pixel."""
    side = 1
    while True:
        size = side
        for spec in convs:
            size = (size + 2 * spec.padding - spec.kernel_size) // spec.stride + 1
            if spec.pooled:
                size = (size - 3) // 2 + 1
            if size < 1:
                break
        else:
            return side
        side += 1


class AlexNet(nn.Module):
    """Five convolutions, three overlapping max pools and three fully connected layers.

    Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep Convolutional Neural
    Networks", NeurIPS 2012, section 3. Use the builders `alexnet` and `alexnet_cifar`.

    Args:
        convs: the five convolutions (widths, kernels, strides, where to normalize and pool).
        num_classes: the width of the last layer.
        hidden: the width of the two hidden fully connected layers.
        pooled_size: the side of the map the classifier reads (adaptive average pool).
        norm: what fills the normalization slots: "lrn", "batchnorm" or "none".
        groups: how many groups the `grouped` convolutions use (2 = the paper's two GPUs).
        dropout: the dropout probability of the classifier.
        dropout_first: True puts each dropout before its hidden layer (torchvision), False after it
            (the paper).
        name: the network's name in error messages.
    """

    def __init__(
        self,
        convs: tuple[ConvSpec, ...],
        *,
        num_classes: int = 1000,
        hidden: int = 4096,
        pooled_size: int = 6,
        norm: str = "lrn",
        groups: int = 2,
        dropout: float = 0.5,
        dropout_first: bool = False,
        name: str = "AlexNet",
    ) -> None:
        super().__init__()
        self.name = name
        self.min_size = _smallest_input(convs)
        layers: list[nn.Module] = []
        in_channels = 3
        for spec in convs:
            layers += [
                nn.Conv2d(
                    in_channels, spec.out_channels, spec.kernel_size, stride=spec.stride,
                    padding=spec.padding, groups=groups if spec.grouped else 1,
                ),
                nn.ReLU(),
            ]
            if spec.normalized:
                layers.append(_normalization(norm, spec.out_channels))
            if spec.pooled:
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2))  # overlapping: stride < size
            in_channels = spec.out_channels
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((pooled_size, pooled_size))
        flat = in_channels * pooled_size * pooled_size
        if dropout_first:
            self.classifier = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(flat, hidden), nn.ReLU(),
                nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(),
                nn.Linear(hidden, num_classes),
            )
        else:
            self.classifier = nn.Sequential(
                nn.Linear(flat, hidden), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(hidden, num_classes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, model=self.name, channels=3, min_size=self.min_size)
        x = self.features(x)  # N x 256 x 6 x 6 at 224 pixels (ImageNet variants)
        x = self.avgpool(x)
        return self.classifier(torch.flatten(x, 1))


def alexnet(
    *,
    num_classes: int = 1000,
    variant: str = "torchvision",
    norm: str | None = None,
    groups: int | None = None,
    dropout: float = 0.5,
) -> AlexNet:
    """AlexNet for 224x224 images (any side of at least 63 pixels).

    Krizhevsky, Sutskever and Hinton, NeurIPS 2012, section 3.5 and figure 2.

    Args:
        num_classes: the number of classes (1000 for ImageNet).
        variant: "torchvision", the later single-GPU network torchvision ships (64-192-384-256-256,
            no normalization; its state_dict loads with strict=True), or "paper", the 2012 network
            (96-256-384-384-256, LRN after conv1 and conv2, conv2/4/5 in two groups).
        norm: "lrn", "batchnorm" or "none" in the paper variant's two normalization slots; None means
            the variant's own ("lrn" for the paper; the torchvision variant has no slots).
        groups: the groups of conv2, conv4 and conv5 in the paper variant (2, or 1 for one GPU);
            None means the variant's own.
        dropout: the dropout probability of the classifier.

    Returns:
        An `AlexNet`; at the defaults, torchvision's architecture with 61,100,840 parameters.
    """
    if variant == "torchvision":
        if norm not in (None, "none") or groups not in (None, 1):
            raise ValueError(
                "the torchvision variant has no normalization and no groups; "
                "use variant='paper' to choose norm or groups"
            )
        return AlexNet(
            _TORCHVISION, num_classes=num_classes, norm="none", groups=1, dropout=dropout,
            dropout_first=True, name="AlexNet (torchvision variant)",
        )
    if variant == "paper":
        return AlexNet(
            _PAPER, num_classes=num_classes, norm="lrn" if norm is None else norm,
            groups=2 if groups is None else groups, dropout=dropout, name="AlexNet (paper variant)",
        )
    raise unknown("variant", variant, VARIANTS)


def alexnet_cifar(
    *,
    num_classes: int = 10,
    norm: str = "lrn",
    groups: int = 2,
    dropout: float = 0.5,
) -> AlexNet:
    """The paper's AlexNet scaled down for 32x32 images (any side of at least 15 pixels).

    Same structure as `alexnet(variant="paper")`: five convolutions, LRN after conv1 and conv2 (paper
    constants), overlapping 3x3/2 max pools after conv1, conv2 and conv5, conv2/4/5 grouped, two hidden
    layers with dropout. Smaller: conv1 is 5x5 with stride 1, the widths are a quarter of the paper's
    (24-64-96-96-64) and the hidden layers have 256 units (see the module docstring).

    Args:
        num_classes: the number of classes (10 for CIFAR-10).
        norm: "lrn" (the paper), "none" or "batchnorm" in the two normalization slots.
        groups: the groups of conv2, conv4 and conv5: 2 (the paper's two GPUs) or 1.
        dropout: the dropout probability after each hidden layer.

    Returns:
        An `AlexNet` with 361,834 parameters at the defaults.
    """
    return AlexNet(
        _CIFAR, num_classes=num_classes, hidden=256, pooled_size=3, norm=norm, groups=groups,
        dropout=dropout, name="AlexNet-CIFAR",
    )
