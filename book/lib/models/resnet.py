"""Residual networks: He et al. 2015 (CVPR 2016, "Deep Residual Learning") and 2016 ("Identity Mappings").

Two families share the blocks below:

* `ResNet` with the builders `resnet18` ... `resnet152`: the ImageNet networks of table 1 of the paper, with
  torchvision's layer names (`conv1, bn1, relu, maxpool, layer1..4.{i}.conv1/bn1/.../downsample.{0,1},
  avgpool, fc`), so torchvision's state_dicts load with `strict=True` and the outputs are identical.
* `CifarResNet` with the builders `resnet20` ... `resnet110`: the 6n+2-layer networks of section 4.2
  (16/32/64 channels, three stages, global average pooling), with option A or B shortcuts, a `plain`
  switch (no shortcuts: the degradation experiment) and a `preact` switch (the 2016 pre-activation block).

Where this departs from the paper:

* Bottleneck stride: the paper puts the stride 2 of a downsampling bottleneck on its first 1x1 convolution
  ("v1"); the default here is torchvision's "v1.5", stride on the 3x3 (the Torch reimplementation
  used by Goyal et al. 2017; "ResNet-B" in He et al. 2019). `version="1"` restores the paper.
* Shortcuts of the ImageNet family are projections where the shape changes and identities elsewhere
  (the paper's option B), as in torchvision; the CIFAR family defaults to the paper's option A there.
* `stem="cifar"` (not in the paper, nor in torchvision): a 3x3 stride-1 first convolution and no max-pool,
  the usual way to train the ImageNet ResNet-18 on 32x32 images; it keeps every layer name, but `conv1`
  changes shape (64x3x3x3), so ImageNet checkpoints no longer fit that layer.
* `zero_init_residual=True` (Goyal et al. 2017) starts every residual block as the identity by setting
  the scale of its last BatchNorm to zero (the paper initialises it to one).

Where it departs from torchvision: no ResNeXt/wide options (`groups`, `width_per_group`), no dilation;
the extra options above; every forward checks its input and raises a ValueError that says what the
network expects. The check adds no parameters, and torch.fx records it as one call (lib.models._checks),
so the models stay traceable.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..lookup import unknown
from ._checks import check_image_batch

__all__ = [
    "BasicBlock", "Bottleneck", "PreActBasicBlock", "ShortcutA", "ResNet", "CifarResNet", "IMAGENET_STAGES",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
]

VERSIONS = ("1", "1.5")
STEMS = ("imagenet", "cifar")
SHORTCUTS = ("A", "B")
# Table 1 of the paper: residual blocks per stage (conv2_x .. conv5_x) of the ImageNet networks, basic
# blocks for 18 and 34 layers, bottlenecks from 50 on.
IMAGENET_STAGES: dict[str, tuple[int, int, int, int]] = {
    "resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet50": (3, 4, 6, 3),
    "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3),
}


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias (the BatchNorm that follows has one)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


class ShortcutA(nn.Module):
    """The paper's option A: a parameter-free shortcut for a change of shape (section 3.3, 4.2).

    The identity, subsampled by `stride` and zero-padded with the extra channels. The subsampling is
    a 1x1 max-pool with that stride, which is exactly `x[:, :, ::stride, ::stride]` but reads as a
    pooling layer to receptive-field tools.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"option A can only add channels, got {in_channels} -> {out_channels}")
        self.extra_channels = out_channels - in_channels
        self.subsample = nn.MaxPool2d(kernel_size=1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.subsample(x)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))  # zeros after the last channel

    def extra_repr(self) -> str:
        return f"extra_channels={self.extra_channels}"


class BasicBlock(nn.Module):
    """Two 3x3 convolutions plus a shortcut: the block of ResNet-18/34 and of the CIFAR networks (fig. 2).

    out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), where the shortcut is `downsample(x)` when
    the shape changes and `x` otherwise. With `residual=False` the addition is dropped: the block of a
    "plain" network (section 3.3), otherwise identical.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 (reduce) - 3x3 - 1x1 (expand by 4) plus a shortcut: ResNet-50/101/152 (fig. 5, right).

    `stride_in_1x1=True` puts a downsampling stride on the first 1x1 convolution, as the paper ("v1");
    the default puts it on the 3x3 ("v1.5", torchvision). Same parameters either way; v1 throws away three
    quarters of the input positions before any 3x3 sees them, v1.5 lets the 3x3 look at all of them.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        residual: bool = True,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = conv1x1(in_channels, channels, stride if stride_in_1x1 else 1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, 1 if stride_in_1x1 else stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = conv1x1(channels, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class PreActBasicBlock(nn.Module):
    """The full pre-activation block of He et al. 2016 ("Identity Mappings", fig. 4e).

    out = x + conv2(relu(bn2(conv1(relu(bn1(x)))))): BatchNorm and ReLU come before each convolution and
    nothing follows the addition, so the shortcut path from any block to any later one is a pure identity.
    A projection shortcut (`downsample` with a convolution) takes the pre-activated input, as in the
    paper's code; a parameter-free one (option A) takes `x` itself.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=False)  # `x` itself is still needed for the shortcut
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.downsample = downsample
        self.project_preactivated = downsample is not None and any(
            isinstance(m, nn.Conv2d) for m in downsample.modules()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.bn1(x))
        if self.downsample is None:
            shortcut = x
        else:
            shortcut = self.downsample(pre if self.project_preactivated else x)
        out = self.conv2(self.relu(self.bn2(self.conv1(pre))))
        return out + shortcut


def _init_weights(model: nn.Module, zero_init_residual: bool) -> None:
    """He initialisation (He et al. 2015, "Delving deep") as torchvision; optionally zero each residual branch."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, Bottleneck) and m.residual:
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock) and m.residual:
                nn.init.zeros_(m.bn2.weight)
            elif isinstance(m, PreActBasicBlock):
                nn.init.zeros_(m.conv2.weight)  # its last layer is a convolution, not a BatchNorm


class ResNet(nn.Module):
    """The ImageNet residual networks of He et al. 2015, table 1 (four stages, 64-512 base channels).

    Args:
        block: `BasicBlock` (ResNet-18/34) or `Bottleneck` (ResNet-50/101/152).
        layers: blocks per stage, e.g. [3, 4, 6, 3] for ResNet-50.
        num_classes: outputs of the final linear layer.
        version: "1.5" (stride on the 3x3 of a bottleneck, torchvision) or "1" (on the first 1x1, the paper).
        zero_init_residual: start each block as the identity (last BatchNorm scale zero).
        stem: "imagenet" (7x7 stride-2 convolution and 3x3 stride-2 max-pool: 224 -> 56) or "cifar"
            (3x3 stride-1 convolution, no max-pool: 32 -> 32, for small images).
        name: the network's name in error messages.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: list[int],
        *,
        num_classes: int = 1000,
        version: str = "1.5",
        zero_init_residual: bool = False,
        stem: str = "imagenet",
        name: str = "ResNet",
    ) -> None:
        super().__init__()
        if version not in VERSIONS:
            raise unknown("version", version, VERSIONS)
        if stem not in STEMS:
            raise unknown("stem", stem, STEMS)
        self.name = name
        self.stem = stem
        self.version = version
        # The whole network divides the image size by this; smaller inputs reach layer4 as pure padding.
        self.min_size = 32 if stem == "imagenet" else 8
        self.in_channels = 64
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.conv1 = conv3x3(3, 64)
            self.maxpool = nn.Identity()  # keeps the attribute, so both stems have the same layer names
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        extra = {"stride_in_1x1": version == "1"} if block is Bottleneck else {}
        self.layer1 = self._make_stage(block, 64, layers[0], stride=1, **extra)
        self.layer2 = self._make_stage(block, 128, layers[1], stride=2, **extra)
        self.layer3 = self._make_stage(block, 256, layers[2], stride=2, **extra)
        self.layer4 = self._make_stage(block, 512, layers[3], stride=2, **extra)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        _init_weights(self, zero_init_residual)

    def _make_stage(self, block, channels: int, blocks: int, stride: int, **kwargs) -> nn.Sequential:
        out_channels = channels * block.expansion
        downsample = None
        if stride != 1 or self.in_channels != out_channels:  # option B: project only where shapes change
            downsample = nn.Sequential(
                conv1x1(self.in_channels, out_channels, stride), nn.BatchNorm2d(out_channels)
            )
        stage = [block(self.in_channels, channels, stride, downsample, **kwargs)]
        self.in_channels = out_channels
        stage += [block(out_channels, channels, **kwargs) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, model=self.name, channels=3, min_size=self.min_size)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # N x 64 x 56 x 56 at 224 (imagenet stem)
        x = self.layer1(x)  # N x 64e x 56 x 56  (e = block.expansion: 1 or 4)
        x = self.layer2(x)  # N x 128e x 28 x 28
        x = self.layer3(x)  # N x 256e x 14 x 14
        x = self.layer4(x)  # N x 512e x 7 x 7
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


class CifarResNet(nn.Module):
    """The CIFAR-10 networks of He et al. 2015, section 4.2: 6n+2 weighted layers.

    A 3x3 convolution with 16 channels, three stages of n basic blocks with 16, 32 and 64 channels on
    32x32, 16x16 and 8x8 maps (the first block of stages 2 and 3 has stride 2), global average pooling
    and a linear layer: 1 + 6n + 1 layers with weights.

    Args:
        depth: 6n+2 (20, 32, 44, 56, 110, ...).
        num_classes: outputs of the final linear layer.
        shortcut: where the shape changes, "A" (zero-padded strided identity, no parameters: the paper's
            CIFAR choice) or "B" (1x1 projection + BatchNorm).
        plain: drop every shortcut (the "plain" baseline of figure 6).
        preact: use the pre-activation block of He et al. 2016 (a final BatchNorm + ReLU is then added
            before the pooling and the stem has no BatchNorm of its own, as in that paper).
        zero_init_residual: start each block as the identity.
    """

    def __init__(
        self,
        depth: int,
        *,
        num_classes: int = 10,
        shortcut: str = "A",
        plain: bool = False,
        preact: bool = False,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"a CIFAR ResNet has 6n+2 layers (20, 32, 44, 56, 110, ...), got depth={depth}")
        if shortcut not in SHORTCUTS:
            raise unknown("shortcut", shortcut, SHORTCUTS)
        if plain and preact:
            raise ValueError("plain=True and preact=True: a plain network has no shortcut to pre-activate")
        n = (depth - 2) // 6
        self.depth, self.shortcut, self.plain, self.preact = depth, shortcut, plain, preact
        self.name = f"{'Plain' if plain else 'PreAct-ResNet' if preact else 'ResNet'}-{depth} (CIFAR)"
        self.in_channels = 16
        self.conv1 = conv3x3(3, 16)
        if preact:  # the first block normalises and activates its own input
            self.bn1: nn.Module = nn.Identity()
            self.relu: nn.Module = nn.Identity()
        else:
            self.bn1 = nn.BatchNorm2d(16)
            self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_stage(16, n, stride=1)
        self.layer2 = self._make_stage(32, n, stride=2)
        self.layer3 = self._make_stage(64, n, stride=2)
        # Pre-activation blocks end on a convolution: normalise and activate once before pooling.
        self.final_bn: nn.Module = nn.BatchNorm2d(64) if preact else nn.Identity()
        self.final_relu: nn.Module = nn.ReLU(inplace=True) if preact else nn.Identity()
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        _init_weights(self, zero_init_residual)

    def _make_stage(self, channels: int, blocks: int, stride: int) -> nn.Sequential:
        block = PreActBasicBlock if self.preact else BasicBlock
        downsample = None
        if not self.plain and (stride != 1 or self.in_channels != channels):
            if self.shortcut == "A":
                downsample = ShortcutA(self.in_channels, channels, stride)
            else:
                downsample = nn.Sequential(conv1x1(self.in_channels, channels, stride), nn.BatchNorm2d(channels))
        kwargs = {} if self.preact else {"residual": not self.plain}
        stage = [block(self.in_channels, channels, stride, downsample, **kwargs)]
        self.in_channels = channels
        stage += [block(channels, channels, **kwargs) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, model=self.name, channels=3, min_size=4)
        x = self.relu(self.bn1(self.conv1(x)))  # N x 16 x 32 x 32
        x = self.layer1(x)  # N x 16 x 32 x 32
        x = self.layer2(x)  # N x 32 x 16 x 16
        x = self.layer3(x)  # N x 64 x 8 x 8
        x = self.final_relu(self.final_bn(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def _resnet(block, layers: list[int], name: str, *, num_classes: int, version: str,
            zero_init_residual: bool, stem: str) -> ResNet:
    return ResNet(block, layers, num_classes=num_classes, version=version,
                  zero_init_residual=zero_init_residual, stem=stem, name=name)


def resnet18(*, num_classes: int = 1000, version: str = "1.5", zero_init_residual: bool = False,
             stem: str = "imagenet") -> ResNet:
    """ResNet-18 (He et al. 2015, table 1): basic blocks [2, 2, 2, 2], 11,689,512 parameters.

    Args:
        num_classes: outputs of the classifier.
        version: "1.5" or "1"; identical for basic blocks (accepted for a uniform interface).
        zero_init_residual: zero the last BatchNorm scale of every block.
        stem: "imagenet" (7x7/2 convolution + max-pool) or "cifar" (3x3/1 convolution, no max-pool).
    """
    return _resnet(BasicBlock, list(IMAGENET_STAGES["resnet18"]),
                   "ResNet-18", num_classes=num_classes, version=version,
                   zero_init_residual=zero_init_residual, stem=stem)


def resnet34(*, num_classes: int = 1000, version: str = "1.5", zero_init_residual: bool = False,
             stem: str = "imagenet") -> ResNet:
    """ResNet-34 (He et al. 2015, table 1): basic blocks [3, 4, 6, 3], 21,797,672 parameters.

    Args: as `resnet18`.
    """
    return _resnet(BasicBlock, list(IMAGENET_STAGES["resnet34"]),
                   "ResNet-34", num_classes=num_classes, version=version,
                   zero_init_residual=zero_init_residual, stem=stem)


def resnet50(*, num_classes: int = 1000, version: str = "1.5", zero_init_residual: bool = False,
             stem: str = "imagenet") -> ResNet:
    """ResNet-50 (He et al. 2015, table 1): bottlenecks [3, 4, 6, 3], 25,557,032 parameters.

    Args:
        num_classes: outputs of the classifier.
        version: "1.5" (stride on the 3x3, torchvision) or "1" (stride on the first 1x1, the paper).
        zero_init_residual: zero the last BatchNorm scale of every block.
        stem: "imagenet" (7x7/2 convolution + max-pool) or "cifar" (3x3/1 convolution, no max-pool).
    """
    return _resnet(Bottleneck, list(IMAGENET_STAGES["resnet50"]),
                   "ResNet-50", num_classes=num_classes, version=version,
                   zero_init_residual=zero_init_residual, stem=stem)


def resnet101(*, num_classes: int = 1000, version: str = "1.5", zero_init_residual: bool = False,
              stem: str = "imagenet") -> ResNet:
    """ResNet-101 (He et al. 2015, table 1): bottlenecks [3, 4, 23, 3], 44,549,160 parameters.

    Args: as `resnet50`.
    """
    return _resnet(Bottleneck, list(IMAGENET_STAGES["resnet101"]),
                   "ResNet-101", num_classes=num_classes, version=version,
                   zero_init_residual=zero_init_residual, stem=stem)


def resnet152(*, num_classes: int = 1000, version: str = "1.5", zero_init_residual: bool = False,
              stem: str = "imagenet") -> ResNet:
    """ResNet-152 (He et al. 2015, table 1): bottlenecks [3, 8, 36, 3], 60,192,808 parameters.

    Args: as `resnet50`.
    """
    return _resnet(Bottleneck, list(IMAGENET_STAGES["resnet152"]),
                   "ResNet-152", num_classes=num_classes, version=version,
                   zero_init_residual=zero_init_residual, stem=stem)


def resnet20(*, num_classes: int = 10, shortcut: str = "A", plain: bool = False, preact: bool = False,
             zero_init_residual: bool = False) -> CifarResNet:
    """ResNet-20 for CIFAR-10 (He et al. 2015, section 4.2, n=3): 269,722 parameters with option A.

    Args:
        num_classes: outputs of the classifier.
        shortcut: "A" (zero-padded identity, the paper's CIFAR choice) or "B" (projection) where the shape
            changes; identities elsewhere.
        plain: no shortcuts at all (the plain baseline of figure 6).
        preact: pre-activation blocks (He et al. 2016).
        zero_init_residual: start each block as the identity.
    """
    return CifarResNet(20, num_classes=num_classes, shortcut=shortcut, plain=plain, preact=preact,
                       zero_init_residual=zero_init_residual)


def resnet32(*, num_classes: int = 10, shortcut: str = "A", plain: bool = False, preact: bool = False,
             zero_init_residual: bool = False) -> CifarResNet:
    """ResNet-32 for CIFAR-10 (He et al. 2015, section 4.2, n=5). Args: as `resnet20`."""
    return CifarResNet(32, num_classes=num_classes, shortcut=shortcut, plain=plain, preact=preact,
                       zero_init_residual=zero_init_residual)


def resnet44(*, num_classes: int = 10, shortcut: str = "A", plain: bool = False, preact: bool = False,
             zero_init_residual: bool = False) -> CifarResNet:
    """ResNet-44 for CIFAR-10 (He et al. 2015, section 4.2, n=7). Args: as `resnet20`."""
    return CifarResNet(44, num_classes=num_classes, shortcut=shortcut, plain=plain, preact=preact,
                       zero_init_residual=zero_init_residual)


def resnet56(*, num_classes: int = 10, shortcut: str = "A", plain: bool = False, preact: bool = False,
             zero_init_residual: bool = False) -> CifarResNet:
    """ResNet-56 for CIFAR-10 (He et al. 2015, section 4.2, n=9). Args: as `resnet20`."""
    return CifarResNet(56, num_classes=num_classes, shortcut=shortcut, plain=plain, preact=preact,
                       zero_init_residual=zero_init_residual)


def resnet110(*, num_classes: int = 10, shortcut: str = "A", plain: bool = False, preact: bool = False,
              zero_init_residual: bool = False) -> CifarResNet:
    """ResNet-110 for CIFAR-10 (He et al. 2015, section 4.2, n=18). Args: as `resnet20`."""
    return CifarResNet(110, num_classes=num_classes, shortcut=shortcut, plain=plain, preact=preact,
                       zero_init_residual=zero_init_residual)
