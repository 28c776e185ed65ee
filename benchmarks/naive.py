"""The naive pipeline: what a reader writes with torchvision (PIL images, transforms, a DataLoader, fp32).

What it shares with a reader's: `PILDataset.__getitem__` does what torchvision's MNIST and CIFAR10
classes do (take one uint8 image from an in-memory array, make a PIL image of it, apply the
transforms); the transforms, the DataLoader (shuffle, default collate, workers, pinned memory on CUDA)
and the training loop are the usual ones. What differs: the pixels (offline stand-ins; PIL's cost per
image does not depend on them) and the optimiser, which is lib's (SGD with Nesterov momentum), so that
only the data path differs from `lib.fit`.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from lib.data import ImageData
from lib.optim import make_optimizer
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from .timing import Rate, Steps, process_cpu_seconds, timed_steps

# The optimiser of all three pipelines: lib.fit's defaults (SGD, Nesterov momentum 0.9, lr 0.05).
OPTIMIZER = {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}


class PILDataset(Dataset):
    """A torchvision-style dataset: uint8 images in memory, handed out one PIL image at a time.

    Like torchvision's MNIST (a (N, 28, 28) array, grayscale "L" images) and CIFAR10 (a (N, 32, 32, 3)
    array, RGB images): `__getitem__` converts one image to PIL and applies `transform` to it.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable) -> None:
        pixels = (images * 255).round_().to(torch.uint8)  # (N, C, H, W) in [0, 1] -> uint8
        if pixels.shape[1] == 1:
            self.data = pixels[:, 0].numpy()  # (N, H, W)
        else:
            self.data = pixels.permute(0, 2, 3, 1).contiguous().numpy()  # (N, H, W, C)
        self.targets = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = Image.fromarray(self.data[index])
        return self.transform(image), self.targets[index]


def naive_transform(data: ImageData, augment: bool) -> transforms.Compose:
    """The transforms a reader writes: PIL augmentation (if any), ToTensor, Normalize."""
    steps = [transforms.RandomCrop(data.image_shape[-1], padding=4), transforms.RandomHorizontalFlip()]
    return transforms.Compose([*(steps if augment else []), transforms.ToTensor(),
                               transforms.Normalize(data.mean, data.std)])


def workers_cpu_seconds(batches: object) -> float | None:
    """CPU time so far of a DataLoader iterator's worker processes (0 without workers)."""
    times = [process_cpu_seconds(worker.pid) for worker in getattr(batches, "_workers", [])]
    return None if None in times else sum(times)


def time_naive(model: nn.Module, dataset: Dataset, *, batch_size: int, steps: Steps, device: torch.device,
               workers: int) -> Rate:
    """Throughput of the usual loop: DataLoader batches to the device, fp32 forward and backward.

    The warm-up steps start the workers and fill their queue. The loop does not call `loss.item()`
    every step (many readers do, which on a GPU waits for every step).
    """
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda", drop_last=True)
    model.to(device).train()
    optimizer = make_optimizer(model, OPTIMIZER["name"], lr=OPTIMIZER["lr"], momentum=OPTIMIZER["momentum"],
                               weight_decay=OPTIMIZER["weight_decay"])
    batches = iter(loader)

    def step() -> None:
        x, y = next(batches)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return timed_steps(step, steps, device=device, batch_size=batch_size,
                       helper_cpu_seconds=lambda: workers_cpu_seconds(batches))
