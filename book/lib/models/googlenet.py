"""GoogLeNet, the Inception v1 network of Szegedy et al. ("Going deeper with convolutions", CVPR 2015,
arXiv 1409.4842): nine Inception modules (Table 1), two auxiliary classifiers for training (section 5).

The paper's Table 1 is kept as plain data (`INCEPTION_SPECS`, one row per module in the paper's columns);
what differs between the paper and torchvision's port is plain data too (`VARIANTS`). One class,
`GoogLeNet`, builds either; the builder `googlenet(variant=...)` picks one.

    variant         BatchNorm   LRN   "5x5" branch   max pool 4   aux pooling    dropout   parameters
    "torchvision"   yes         no    3x3            2x2/2        adaptive 4x4   0.2       13,004,888
    "paper"         no          yes   5x5            3x3/2        5x5/3          0.4       13,378,280

(parameters with both auxiliary heads and 1000 classes; without them 6,624,904 and 6,998,552.)

Where this departs from the paper, in both variants:
    - The last pooling is adaptive (`AdaptiveAvgPool2d(1)`), so any input of at least 32x32 works; at
      224x224 it is the paper's 7x7/1 average pool.
    - The max pools round up (`ceil_mode=True`), as Caffe does: that is how 112 becomes 56 with a 3x3/2
      pool, as Table 1 says. PyTorch's default rounding down would give 55.
    - LRN (the "paper" variant, after the first max pool and after conv3, as in figure 3): the paper gives
      no constants, so AlexNet's module and constants are used (k=2, n=5, alpha=1e-4, beta=0.75), as in
      lib.models.vgg: `lib.models.layers.LocalResponseNorm`, which is `torch.nn.LocalResponseNorm` with
      alpha=5e-4 (torch divides alpha by n).
    - Weights: He initialisation (normal, fan-in) for convolutions, N(0, 0.01) for linear layers, zero
      biases. The paper does not say; torchvision draws every weight from a truncated N(0, 0.01), which
      BatchNorm tolerates; without BatchNorm the signal then vanishes on its way up (the outputs of
      inception (5b) are of order 1e-12 for a unit-variance input, against order 1 with He's scaling).
    - `stem="cifar"` (not in the paper): the 7x7/2 first convolution becomes a 3x3/1 one, so a 32x32
      image reaches inception (3a) as 8x8 instead of 4x4 (and stage 5 as 2x2 instead of 1x1); the
      auxiliary heads then pool adaptively to 4x4 in both variants (the paper's 5x5/3 pool needs the
      14x14 maps of a 224 input).
      `width` scales every channel count (0.25 keeps a CPU-trainable network with the same shape).

Where this departs from torchvision (the "torchvision" variant otherwise loads its state_dicts with
strict=True and gives the same outputs): He initialisation (above); `stem`, `width` and `variant`;
every forward checks its input and raises a ValueError that says what the network expects (the check
adds no parameters, and torch.fx records it as one call). Train mode returns the same named tuple
(logits, aux_logits2, aux_logits1), main output first; eval mode returns the logits alone.
`transform_input=True` exists, as in torchvision, for weights trained on images scaled to [-1, 1].
"""
from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from ..lookup import unknown
from ._checks import check_image_batch, traced_as_one_call
from .layers import LocalResponseNorm

__all__ = [
    "BasicConv2d", "Inception", "InceptionAux", "GoogLeNet", "GoogLeNetOutputs", "InceptionSpec",
    "Variant", "googlenet",
]

STEMS = ("imagenet", "cifar")
AUX_POOLS = ("adaptive", "5x5/3")  # torchvision's adaptive pool to 4x4, or the paper's 5x5/3 (section 5)

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])
GoogLeNetOutputs.__doc__ = "Train-mode output: the main logits first, then the heads on (4d) and (4a)."


class InceptionSpec(NamedTuple):
    """One row of Table 1: the input width and the six channel columns of an Inception module."""

    in_channels: int
    ch1x1: int  # "#1x1": branch 1
    ch3x3red: int  # "#3x3 reduce": the 1x1 before the 3x3 of branch 2
    ch3x3: int  # "#3x3"
    ch5x5red: int  # "#5x5 reduce": the 1x1 before the 5x5 of branch 3
    ch5x5: int  # "#5x5"
    pool_proj: int  # "pool proj": the 1x1 after the 3x3 max pool of branch 4

    @property
    def out_channels(self) -> int:
        return self.ch1x1 + self.ch3x3 + self.ch5x5 + self.pool_proj


# Table 1 of the paper. Each module's input is the previous module's output (the max pools keep widths).
INCEPTION_SPECS: dict[str, InceptionSpec] = {
    "inception3a": InceptionSpec(192, 64, 96, 128, 16, 32, 32),  # 28x28 at 224
    "inception3b": InceptionSpec(256, 128, 128, 192, 32, 96, 64),
    "inception4a": InceptionSpec(480, 192, 96, 208, 16, 48, 64),  # 14x14
    "inception4b": InceptionSpec(512, 160, 112, 224, 24, 64, 64),
    "inception4c": InceptionSpec(512, 128, 128, 256, 24, 64, 64),
    "inception4d": InceptionSpec(512, 112, 144, 288, 32, 64, 64),
    "inception4e": InceptionSpec(528, 256, 160, 320, 32, 128, 128),
    "inception5a": InceptionSpec(832, 256, 160, 320, 32, 128, 128),  # 7x7
    "inception5b": InceptionSpec(832, 384, 192, 384, 48, 128, 128),
}


@dataclass(frozen=True)
class Variant:
    """What differs between the paper's GoogLeNet and torchvision's port of it."""

    batch_norm: bool  # BatchNorm (eps=0.001) after every convolution: torchvision; the paper predates it
    lrn: bool  # LocalResponseNorm after max pool 1 and after conv3: the paper (figure 3)
    branch3_kernel: int  # the paper's 5x5; torchvision's 3x3 (a known slip, kept for its weights)
    maxpool4_kernel: int  # before inception (5a): 3x3/2 in Table 1, 2x2/2 in torchvision
    aux_pool: str  # "5x5/3" (section 5) or "adaptive" (torchvision: an adaptive pool to 4x4)
    dropout: float  # before the last linear layer: 40% in Table 1, 20% in torchvision
    dropout_aux: float  # in the auxiliary heads: 70% in both


VARIANTS: dict[str, Variant] = {
    "torchvision": Variant(batch_norm=True, lrn=False, branch3_kernel=3, maxpool4_kernel=2,
                           aux_pool="adaptive", dropout=0.2, dropout_aux=0.7),
    "paper": Variant(batch_norm=False, lrn=True, branch3_kernel=5, maxpool4_kernel=3,
                     aux_pool="5x5/3", dropout=0.4, dropout_aux=0.7),
}


def _lrn() -> LocalResponseNorm:
    # AlexNet's module and constants (GoogLeNet gives none): n=5, alpha=1e-4, beta=0.75, k=2.
    return LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)


class BasicConv2d(nn.Module):
    """A convolution followed by ReLU, with BatchNorm (eps=0.001) in between when `batch_norm`.

    Without BatchNorm the convolution has a bias and `bn` is an identity, so both variants share the
    attribute names `conv` and `bn` (torchvision's checkpoint format).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
                 padding: int = 0, batch_norm: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              bias=not batch_norm)  # a BatchNorm's shift makes a bias redundant
        self.bn: nn.Module = nn.BatchNorm2d(out_channels, eps=0.001) if batch_norm else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """The Inception module with dimension reductions (figure 2b): four branches, concatenated.

    branch1: 1x1; branch2: 1x1 (reduce) -> 3x3; branch3: 1x1 (reduce) -> 5x5 (3x3 in torchvision);
    branch4: 3x3/1 max pool -> 1x1 (pool proj). Every branch keeps H and W, so the outputs stack along
    the channels: ch1x1 + ch3x3 + ch5x5 + pool_proj of them.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int, *, batch_norm: bool = False, branch3_kernel: int = 5) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1, batch_norm=batch_norm)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, 1, batch_norm=batch_norm),
            BasicConv2d(ch3x3red, ch3x3, 3, padding=1, batch_norm=batch_norm),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, 1, batch_norm=batch_norm),
            BasicConv2d(ch5x5red, ch5x5, branch3_kernel, padding=branch3_kernel // 2, batch_norm=batch_norm),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, 1, batch_norm=batch_norm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)  # N x (ch1x1 + ch3x3 + ch5x5 + pool_proj) x H x W


class InceptionAux(nn.Module):
    """An auxiliary classifier (section 5): pool, 1x1 conv (128), FC (1024) + ReLU, dropout, FC.

    `pool` is the paper's 5x5/3 average pool (14x14 -> 4x4) or torchvision's adaptive pool to 4x4; the
    first linear layer sees 128 x 4 x 4 = 2048 values either way.
    """

    def __init__(self, in_channels: int, num_classes: int, *, batch_norm: bool = True,
                 pool: str = "adaptive", dropout: float = 0.7, width: float = 1.0) -> None:
        super().__init__()
        if pool not in AUX_POOLS:
            raise unknown("auxiliary pooling", pool, AUX_POOLS)
        channels, hidden = _scaled(128, width), _scaled(1024, width)
        self.pool: nn.Module = nn.AvgPool2d(5, stride=3) if pool == "5x5/3" else nn.AdaptiveAvgPool2d(4)
        self.conv = BasicConv2d(in_channels, channels, 1, batch_norm=batch_norm)
        self.fc1 = nn.Linear(channels * 4 * 4, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(p=dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(x)  # N x C x 4 x 4
        _check_aux_pooling(x, pooled)
        x = torch.flatten(self.conv(pooled), 1)  # N x 2048
        x = self.dropout(self.relu(self.fc1(x)))  # N x 1024
        return self.fc2(x)  # N x num_classes


@traced_as_one_call
def _check_aux_pooling(x: torch.Tensor, pooled: torch.Tensor) -> None:
    """One clear error where an auxiliary head's pool misses 4x4 (only the paper's fixed 5x5/3 pool can)."""
    if pooled.shape[-2:] != (4, 4):
        raise ValueError(
            f"the paper's auxiliary classifier pools a 14x14 map to 4x4, but its {x.shape[-2]}x{x.shape[-1]} "
            f"input gives {pooled.shape[-2]}x{pooled.shape[-1]}: in train mode the paper variant needs images "
            f"of 223x223 to 270x270 (224 in the paper); or use variant='torchvision' or aux_logits=False"
        )


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


class GoogLeNet(nn.Module):
    """GoogLeNet (Szegedy et al. 2014, Table 1 and figure 3), the paper's or torchvision's variant.

    Args:
        num_classes: outputs of the classifier and of the auxiliary heads.
        variant: "torchvision" or "paper", a key of `VARIANTS`.
        aux_logits: build the two auxiliary classifiers (on inception 4a and 4d). They run in train mode
            only; in eval mode the network returns the main logits alone.
        transform_input: rescale ImageNet-normalised inputs to [-1, 1] first, as torchvision does for the
            weights it ported (trained on such inputs). Off by default.
        stem: "imagenet" (7x7/2 convolution) or "cifar" (3x3/1 convolution, for 32x32 images).
        width: multiplies every channel count (1.0: the paper's).
        dropout, dropout_aux: override the variant's dropout probabilities.
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        variant: str = "torchvision",
        aux_logits: bool = True,
        transform_input: bool = False,
        stem: str = "imagenet",
        width: float = 1.0,
        dropout: float | None = None,
        dropout_aux: float | None = None,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise unknown("GoogLeNet variant", variant, VARIANTS)
        if stem not in STEMS:
            raise unknown("stem", stem, STEMS)
        if not width > 0:
            raise ValueError(f"width must be positive, got {width}")
        v = VARIANTS[variant]
        self.variant, self.stem, self.width = variant, stem, width
        self.transform_input = transform_input
        self.name = f"GoogLeNet ({variant}{', CIFAR stem' if stem == 'cifar' else ''})"
        # The network divides the image size by 32 (16 with the CIFAR stem): below that, stage 5 sees padding.
        self.min_size = 32 if stem == "imagenet" else 16
        self._add_stem(v)
        self._add_inception_stages(v)

        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        if aux_logits:
            aux_pool = v.aux_pool if stem == "imagenet" else "adaptive"
            kwargs = dict(batch_norm=v.batch_norm, pool=aux_pool, width=width,
                          dropout=v.dropout_aux if dropout_aux is None else dropout_aux)
            self.aux1 = InceptionAux(self._channels(512), num_classes, **kwargs)  # on inception (4a)
            self.aux2 = InceptionAux(self._channels(528), num_classes, **kwargs)  # on inception (4d)

        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=v.dropout if dropout is None else dropout)
        self.fc = nn.Linear(self._channels(1024), num_classes)
        self._init_weights()

    def _channels(self, channels: int) -> int:
        """The paper's channel count `channels` scaled by `width`."""
        return _scaled(channels, self.width)

    def _add_stem(self, v: Variant) -> None:
        """The layers before inception (3a): Table 1's first rows, with figure 3's LRNs in the paper variant."""
        c, bn = self._channels, v.batch_norm
        if self.stem == "imagenet":
            self.conv1 = BasicConv2d(3, c(64), 7, stride=2, padding=3, batch_norm=bn)
        else:  # 32x32 images: keep the resolution here, so that inception (3a) still sees 8x8
            self.conv1 = BasicConv2d(3, c(64), 3, padding=1, batch_norm=bn)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.norm1: nn.Module = _lrn() if v.lrn else nn.Identity()
        self.conv2 = BasicConv2d(c(64), c(64), 1, batch_norm=bn)  # Table 1's "#3x3 reduce" of the stem
        self.conv3 = BasicConv2d(c(64), c(192), 3, padding=1, batch_norm=bn)
        self.norm2: nn.Module = _lrn() if v.lrn else nn.Identity()
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

    def _add_inception_stages(self, v: Variant) -> None:
        """Inception (3a) to (5b), with the max pools between the three stages (Table 1)."""

        def inception(name: str) -> Inception:
            return Inception(*(self._channels(n) for n in INCEPTION_SPECS[name]), batch_norm=v.batch_norm,
                             branch3_kernel=v.branch3_kernel)

        self.inception3a = inception("inception3a")
        self.inception3b = inception("inception3b")
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = inception("inception4a")
        self.inception4b = inception("inception4b")
        self.inception4c = inception("inception4c")
        self.inception4d = inception("inception4d")
        self.inception4e = inception("inception4e")
        self.maxpool4 = nn.MaxPool2d(v.maxpool4_kernel, stride=2, ceil_mode=True)
        self.inception5a = inception("inception5a")
        self.inception5b = inception("inception5b")

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=0.01)
                nn.init.zeros_(m.bias)

    @property
    def aux_logits(self) -> bool:
        """Whether the auxiliary classifiers exist (they produce outputs in train mode only)."""
        return self.aux1 is not None

    def _transform_input(self, x: torch.Tensor) -> torch.Tensor:
        # x was normalised with ImageNet's mean and std; return (pixel - 0.5) / 0.5 instead.
        mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return (x * std + mean - 0.5) / 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:
        check_image_batch(x, model=self.name, channels=3, min_size=self.min_size)
        if self.transform_input:
            x = self._transform_input(x)
        # Shapes for a 224x224 input at width 1 (a 32x32 input with the CIFAR stem: 32, 16, 8, 4, 2).
        x = self.maxpool1(self.conv1(x))  # N x 64 x 56 x 56
        x = self.norm1(x)
        x = self.conv3(self.conv2(x))  # N x 192 x 56 x 56
        x = self.maxpool2(self.norm2(x))  # N x 192 x 28 x 28
        x = self.inception3a(x)  # N x 256 x 28 x 28
        x = self.inception3b(x)  # N x 480 x 28 x 28
        x = self.maxpool3(x)  # N x 480 x 14 x 14
        x = self.inception4a(x)  # N x 512 x 14 x 14
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4b(x)  # N x 512 x 14 x 14
        x = self.inception4c(x)  # N x 512 x 14 x 14
        x = self.inception4d(x)  # N x 528 x 14 x 14
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.inception4e(x)  # N x 832 x 14 x 14
        x = self.maxpool4(x)  # N x 832 x 7 x 7
        x = self.inception5a(x)  # N x 832 x 7 x 7
        x = self.inception5b(x)  # N x 1024 x 7 x 7
        x = torch.flatten(self.avgpool(x), 1)  # N x 1024
        x = self.fc(self.dropout(x))  # N x num_classes
        if aux1 is not None and aux2 is not None:  # train mode with heads: the loss uses all three
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


def googlenet(
    *,
    num_classes: int = 1000,
    variant: str = "torchvision",
    aux_logits: bool = True,
    transform_input: bool = False,
    stem: str = "imagenet",
    width: float = 1.0,
    dropout: float | None = None,
    dropout_aux: float | None = None,
) -> GoogLeNet:
    """GoogLeNet (Szegedy et al., "Going deeper with convolutions", 2014, Table 1 and section 5).

    22 layers with weights, nine Inception modules, two auxiliary classifiers used in training only
    (their losses weighted 0.3 each, section 5). `variant="torchvision"` (13,004,888 parameters with the
    auxiliary heads, 6,624,904 without) loads torchvision's state_dicts with strict=True;
    `variant="paper"` has a real 5x5 branch, LRN in the stem and no BatchNorm.

    Args:
        num_classes: outputs of the classifier and of the auxiliary heads.
        variant: "torchvision" (BatchNorm, 3x3 in the "5x5" branch) or "paper".
        aux_logits: build the auxiliary classifiers; train mode then returns
            `GoogLeNetOutputs(logits, aux_logits2, aux_logits1)`.
        transform_input: map ImageNet-normalised inputs to [-1, 1] first (torchvision's option).
        stem: "imagenet" (7x7/2 first convolution) or "cifar" (3x3/1, for 32x32 images).
        width: multiplies every channel count; 0.25 with the CIFAR stem trains on a CPU.
        dropout, dropout_aux: override the variant's dropout before the classifier and in the heads.
    """
    return GoogLeNet(num_classes=num_classes, variant=variant, aux_logits=aux_logits,
                     transform_input=transform_input, stem=stem, width=width, dropout=dropout,
                     dropout_aux=dropout_aux)
