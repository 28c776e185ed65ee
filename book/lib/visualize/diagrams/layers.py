"""The plain-data side of the diagrams: a `Layer` record and a `Chain` that computes them.

Every diagram is drawn from a list of `Layer`s, and every list is computed from the configuration
tables the models are built from (`lib.models.vgg.CONFIGS`, `lib.models.googlenet.INCEPTION_SPECS`,
...). A `Layer` names the module it stands for (its name in the built model, e.g. "features.0"), so a
test can hold the list against the model's own modules. Nothing here imports matplotlib.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

KINDS = ("conv", "maxpool", "avgpool", "adaptive_avgpool", "lrn", "linear")


@dataclass(frozen=True)
class Layer:
    """One layer of a diagram: a convolution, a pooling, a response normalization or a linear layer.

    Attributes:
        name: the module's name in the built network (`model.named_modules()`), e.g. "features.3".
        kind: one of `KINDS`.
        in_channels, out_channels: channels (or units, for a linear layer) in and out.
        kernel, stride, padding: the window; for "lrn" `kernel` is the number of channels summed.
        groups: channel groups of a convolution (2 for AlexNet's conv2, conv4 and conv5).
        side: the side of the output map for the diagram's input image; 0 after flattening.
        ceil_mode: the pool rounds its output size up (GoogLeNet, as Caffe).
    """

    name: str
    kind: str
    in_channels: int
    out_channels: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    groups: int = 1
    side: int = 0
    ceil_mode: bool = False

    def signature(self) -> tuple:
        """What the built module must have for this layer: the fields its kind defines."""
        if self.kind == "conv":
            return ("conv", self.in_channels, self.out_channels, self.kernel, self.stride, self.padding,
                    self.groups)
        if self.kind in ("maxpool", "avgpool"):
            return (self.kind, self.kernel, self.stride, self.padding, self.ceil_mode)
        if self.kind == "adaptive_avgpool":
            return (self.kind, self.side)
        if self.kind == "lrn":
            return (self.kind, self.kernel)
        return ("linear", self.in_channels, self.out_channels)

    @property
    def label(self) -> str:
        """Short text for a box: "conv 3×3, 64", "max pool 3×3/2", "FC 4096"."""
        window = f"{self.kernel}×{self.kernel}" + (f"/{self.stride}" if self.stride > 1 else "")
        if self.kind == "conv":
            return f"conv {window}, {self.out_channels}"
        if self.kind in ("maxpool", "avgpool"):
            return f"{self.kind[:3]} pool {window}"
        if self.kind == "adaptive_avgpool":
            return f"avg pool to {self.side}×{self.side}"
        if self.kind == "lrn":
            return "LRN"
        return f"FC {self.out_channels}"


def out_side(side: int, kernel: int, stride: int = 1, padding: int = 0, ceil_mode: bool = False) -> int:
    """The output side of a convolution or pooling window on a `side`-pixel map."""
    span = side + 2 * padding - kernel
    steps = math.ceil(span / stride) if ceil_mode else span // stride
    if ceil_mode and steps * stride >= side + padding:  # PyTorch: the last window must start inside
        steps -= 1
    return steps + 1


class Chain:
    """Layers applied one after another, tracking channels and map side as a forward pass would.

    Args:
        channels: the input's channels.
        side: the input's side in pixels.
        prefix: put before every layer name (e.g. "layer2.0.").
    """

    def __init__(self, channels: int, side: int, prefix: str = "") -> None:
        self.channels, self.side, self.prefix = channels, side, prefix
        self.layers: list[Layer] = []

    def conv(self, name: str, out: int, kernel: int, stride: int = 1, padding: int = 0,
             groups: int = 1) -> Chain:
        self.side = out_side(self.side, kernel, stride, padding)
        self._add(name, "conv", out, kernel, stride, padding, groups=groups)
        return self

    def pool(self, name: str, kind: str, kernel: int, stride: int, padding: int = 0,
             ceil_mode: bool = False) -> Chain:
        self.side = out_side(self.side, kernel, stride, padding, ceil_mode)
        self._add(name, kind, self.channels, kernel, stride, padding, ceil_mode=ceil_mode)
        return self

    def adaptive(self, name: str, size: int) -> Chain:
        self.side = size
        self._add(name, "adaptive_avgpool", self.channels)
        return self

    def lrn(self, name: str, size: int = 5) -> Chain:
        self._add(name, "lrn", self.channels, size)
        return self

    def linear(self, name: str, out: int) -> Chain:
        features = self.channels * self.side * self.side if self.side else self.channels
        self.channels, self.side = features, 0
        self._add(name, "linear", out)
        return self

    def _add(self, name: str, kind: str, out: int, kernel: int = 1, stride: int = 1, padding: int = 0,
             **extra) -> None:
        self.layers.append(Layer(self.prefix + name, kind, self.channels, out, kernel, stride, padding,
                                 side=self.side, **extra))
        self.channels = out
