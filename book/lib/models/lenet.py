"""LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998, "Gradient-based learning applied to document
recognition", section II.B and Appendix A).

Layers keep the paper's names: C1, S2, C3, S4, C5 (convolutions C and subsampling S), F6 and the output
layer. With `padding=2` on C1 a 28x28 MNIST digit is treated as the paper's 32x32 input (the digit
centred in a field of 32x32 with a blank border), so every later shape is the paper's.

Where this module departs from the paper:
- Output layer: a linear layer trained with cross-entropy, not the paper's 84-input Euclidean RBF units
  with hand-set +1/-1 codes and its own loss (equation 9).
- Subsampling S2/S4: plain 2x2 pooling without parameters. The paper multiplies each 2x2 sum by a
  trainable coefficient, adds a trainable bias and squashes the result (12 + 32 parameters).
- Activation: `variant="tanh"` uses the paper's scaled tanh 1.7159 tanh(2x/3) (Appendix A) after C1, C3,
  C5 and F6; `variant="relu"` (the default) is the common modern choice, ReLU with max pooling.
- C3: fully connected to the six S2 maps by default (`c3="full"`), as nearly all modern code does;
  `c3="table"` restores the paper's Table I (each C3 map sees 3, 4 or 6 S2 maps) as a masked convolution.
- Initialisation: PyTorch's default (uniform in +-1/sqrt(fan_in)), not the paper's +-2.4/fan_in.

torchvision has no LeNet, so there is no checkpoint format to follow; the attribute names are the
paper's: `c1, s2, c3, s4, c5, f6, output`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..lookup import unknown
from ._checks import check_image_batch

__all__ = ["lenet5", "LeNet5", "ConnectionTableConv2d", "ScaledTanh", "C3_TABLE", "VARIANTS", "C3_OPTIONS"]

VARIANTS = ("relu", "tanh")
C3_OPTIONS = ("full", "table")

# Table I of the paper: the S2 maps (columns 0-5) that each of the 16 C3 maps reads. Maps 0-5 see three
# contiguous maps, 6-11 four contiguous, 12-14 four non-contiguous and map 15 all six. Breaking the
# symmetry forces different C3 maps to extract different features and cuts connections (section II.B).
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


class ScaledTanh(nn.Module):
    """The paper's squashing function f(a) = A tanh(S a) with A = 1.7159 and S = 2/3 (Appendix A).

    The constants make f(1) = 1 and f(-1) = -1, and keep the gain near 1 where the inputs live, so that
    targets of +-1 sit in the steep part of the curve rather than in the flat tails.
    """

    amplitude = 1.7159
    slope = 2.0 / 3.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.4f}"


class ConnectionTableConv2d(nn.Conv2d):
    """A convolution in which output map j reads only the input maps listed in `table[j]`.

    The full weight tensor (out, in, kH, kW) is stored, as in `nn.Conv2d`, and multiplied by a fixed 0/1
    mask in every forward pass. The masked weights are zero from the start and receive zero gradient, so
    they stay zero under SGD, momentum, weight decay and Adam: they are stored but never used. The mask
    is a non-persistent buffer, so the state_dict has exactly the keys of a plain `nn.Conv2d`.

    Args:
        table: for every output map, the indices of the input maps it reads (LeCun et al. 1998, Table I).
        in_channels: the number of input maps.
        kernel_size: the side of the square kernel.
        **kwargs: passed to `nn.Conv2d` (stride, padding, bias, ...).
    """

    def __init__(self, table: tuple[tuple[int, ...], ...], in_channels: int, kernel_size: int, **kwargs):
        super().__init__(in_channels, len(table), kernel_size, **kwargs)
        mask = torch.zeros(len(table), in_channels, 1, 1)
        for j, inputs in enumerate(table):
            if not inputs or min(inputs) < 0 or max(inputs) >= in_channels:
                raise ValueError(f"table[{j}] = {inputs} must list input maps in 0..{in_channels - 1}")
            mask[j, list(inputs)] = 1.0
        self.table = tuple(tuple(inputs) for inputs in table)
        self.register_buffer("mask", mask, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if not hasattr(self, "mask"):  # nn.Conv2d.__init__ calls this before the mask exists
            return
        # PyTorch's default bound 1/sqrt(fan_in), with the fan-in each output map really has.
        with torch.no_grad():
            kernel_area = self.weight[0, 0].numel()
            for j, inputs in enumerate(self.table):
                bound = 1.0 / math.sqrt(len(inputs) * kernel_area)
                self.weight[j].uniform_(-bound, bound)
                if self.bias is not None:
                    self.bias[j].uniform_(-bound, bound)
            self.weight.mul_(self.mask)

    @property
    def connections(self) -> int:
        """How many (output map, input map) pairs are connected: 60 for Table I, 96 for a full C3."""
        return int(self.mask.sum().item())

    def effective_parameter_count(self) -> int:
        """The parameters the layer really uses: unmasked weights plus biases (1,516 for the paper's C3)."""
        kernel_area = self.weight[0, 0].numel()
        biases = self.bias.numel() if self.bias is not None else 0
        return self.connections * kernel_area + biases

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", connections={self.connections}/{self.mask.numel()}"


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998, section II.B): three convolutions, two subsamplings, two linear layers.

    Shapes for the default 28x28 input with padding=2 (the same as the paper's 32x32 with padding=0):
    C1 6x28x28, S2 6x14x14, C3 16x10x10, S4 16x5x5, C5 120x1x1, F6 84, output num_classes.

    Args:
        num_classes: the number of outputs of the last layer.
        variant: "relu" (ReLU, max pooling) or "tanh" (the paper's scaled tanh, average pooling).
        c3: "full" (every C3 map reads all six S2 maps) or "table" (the paper's Table I).
        in_channels: channels of the input images (1 for MNIST).
        padding: zero padding of C1, 0 to 2. The input must be (32 - 2 * padding) pixels square, because
            C5's 5x5 kernel has to cover exactly the 5x5 maps of S4.
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        variant: str = "relu",
        c3: str = "full",
        in_channels: int = 1,
        padding: int = 2,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise unknown("LeNet-5 variant", variant, VARIANTS)
        if c3 not in C3_OPTIONS:
            raise unknown("C3 connection scheme", c3, C3_OPTIONS)
        if not isinstance(padding, int) or not 0 <= padding <= 2:
            # More than (5 - 1) / 2 = 2 would create border outputs that see nothing but zeros.
            raise ValueError(f"padding must be 0, 1 or 2, got {padding!r}")
        self.variant = variant
        self.in_channels = in_channels
        self.input_size = 32 - 2 * padding
        pool = nn.MaxPool2d if variant == "relu" else nn.AvgPool2d

        self.c1 = nn.Conv2d(in_channels, 6, kernel_size=5, padding=padding)  # N x 6 x 28 x 28
        self.s2 = pool(kernel_size=2, stride=2)                                # N x 6 x 14 x 14
        if c3 == "full":
            self.c3 = nn.Conv2d(6, 16, kernel_size=5)                          # N x 16 x 10 x 10
        else:
            self.c3 = ConnectionTableConv2d(C3_TABLE, 6, kernel_size=5)
        self.s4 = pool(kernel_size=2, stride=2)                                # N x 16 x 5 x 5
        self.c5 = nn.Conv2d(16, 120, kernel_size=5)                            # N x 120 x 1 x 1
        self.f6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, num_classes)
        # Parameter-free, so one module can serve every layer.
        self.act = nn.ReLU() if variant == "relu" else ScaledTanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, model=self._name(), channels=self.in_channels, size=(self.input_size,) * 2)
        x = self.s2(self.act(self.c1(x)))
        x = self.s4(self.act(self.c3(x)))
        x = self.act(self.c5(x)).flatten(1)  # C5 is a convolution whose output happens to be 1x1
        x = self.act(self.f6(x))
        return self.output(x)

    def _name(self) -> str:
        return f"LeNet-5 (padding={self.c1.padding[0]})"

    def effective_parameter_count(self) -> int:
        """Parameters that influence the output: all stored ones minus the weights a C3 table masks out."""
        total = sum(p.numel() for p in self.parameters())
        if isinstance(self.c3, ConnectionTableConv2d):
            total += self.c3.effective_parameter_count() - sum(p.numel() for p in self.c3.parameters())
        return total


def lenet5(
    *,
    num_classes: int = 10,
    variant: str = "relu",
    c3: str = "full",
    in_channels: int = 1,
    padding: int = 2,
) -> LeNet5:
    """LeNet-5 from LeCun et al. (1998), "Gradient-based learning applied to document recognition", II.B.

    The default (ReLU, max pooling, full C3, padding=2) takes 1x28x28 images and has 61,706 parameters
    for 10 classes. `c3="table"` stores the same 61,706 but uses only 60,806 (900 C3 weights are masked).

    Args:
        num_classes: the number of outputs.
        variant: "relu" (ReLU + max pooling, the modern default) or "tanh" (the paper's 1.7159 tanh(2x/3)
            with average pooling).
        c3: "full" (C3 reads all six S2 maps) or "table" (the paper's sparse Table I).
        in_channels: input channels (1 for grayscale digits).
        padding: C1's zero padding: 2 for 28x28 inputs (MNIST), 0 for the paper's 32x32.

    Returns:
        A `LeNet5` module that accepts (N, in_channels, 32 - 2 * padding, 32 - 2 * padding) batches.
    """
    return LeNet5(num_classes=num_classes, variant=variant, c3=c3, in_channels=in_channels, padding=padding)
