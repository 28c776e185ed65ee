"""Layers that more than one family uses: local response normalization, written from AlexNet's equation.

AlexNet introduced it (Krizhevsky et al. 2012, section 3.3); VGG's configuration A-LRN reuses AlexNet's
constants (Simonyan and Zisserman 2015, section 2.1) and so does the stem of the paper's GoogLeNet here
(Szegedy et al. 2014 give none). All three use this one module, in the paper's convention for alpha.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["LocalResponseNorm"]


class LocalResponseNorm(nn.Module):
    """Local response normalization across channels, as written in the paper (section 3.3).

        b[i] = a[i] / (k + alpha * sum_{j = max(0, i - n//2)}^{min(N - 1, i + n//2)} a[j]^2) ** beta

    where a[i] is the activity of channel i at one position and N the number of channels. Unlike
    `torch.nn.LocalResponseNorm`, alpha multiplies the sum itself: torch divides alpha by n, so this
    module with alpha=1e-4 equals torch's with alpha=5e-4 (for n=5).

    Args:
        size: n, the number of neighbouring channels in the sum (odd, so the window is centred).
        alpha: the paper's alpha (default 1e-4).
        beta: the exponent (default 0.75).
        k: the additive constant (default 2).
    """

    def __init__(self, size: int = 5, *, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0) -> None:
        super().__init__()
        if size < 1 or size % 2 == 0:
            raise ValueError(f"size must be a positive odd number (the window i - n//2 .. i + n//2), got {size}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        half = self.size // 2
        # Zero channels beyond both ends stand for the sum's limits max(0, .) and min(N - 1, .).
        squares = F.pad(a.pow(2), (0, 0, 0, 0, half, half))          # N x (C + 2 half) x H x W
        window_sum = squares.unfold(1, self.size, 1).sum(dim=-1)      # N x C x H x W
        return a / (self.k + self.alpha * window_sum).pow(self.beta)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
