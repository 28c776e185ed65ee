"""What a network costs, measured without running it: mult-adds per image and layer calls per pass."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def network_profile(build: Callable[[], nn.Module], image_shape: tuple[int, ...]) -> tuple[int, int]:
    """(mult-adds per image, layer calls per forward pass) of the network `build()` returns.

    Mult-adds are torchinfo's count in train mode (GoogLeNet's auxiliary heads included); layer calls
    count the calls of leaf modules (convolutions, norms, activations, pools, linear layers). The network
    is built on the meta device, so nothing is allocated or computed.
    """
    from torchinfo import summary  # imported here: only the estimates need it

    with torch.device("meta"):
        model = build()
    calls = 0

    def count(module: nn.Module, inputs: object, output: object) -> None:
        nonlocal calls
        calls += 1

    for module in model.modules():
        if not list(module.children()) and not isinstance(module, nn.Identity):
            module.register_forward_hook(count)
    stats = summary(model, input_data=torch.zeros(2, *image_shape, device="meta"), device="meta",
                    mode="train", verbose=0)  # batch 2: BatchNorm in train mode needs two values
    return int(stats.total_mult_adds) // 2, calls
