"""The record of a training run: per-epoch losses, accuracies, learning rates and timings.

`lib.training.fit` fills a `History`; `lib.visualize.plot_history` draws one (plotting lives there, so
that this module, and everything that trains, imports no matplotlib).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class History:
    """What `fit` measured, one list entry per epoch.

    `train_loss` and `train_acc` are averages over the epoch's training steps (augmented batches, train
    mode; the loss of the main output, with label smoothing if any, without auxiliary terms);
    `test_loss` and `test_acc` come from evaluating the test split (plain cross-entropy, eval mode)
    after the epoch. `epoch_seconds` covers training plus evaluation, `seconds` the whole `fit` call,
    `images_per_second` only the training steps after the very first one (a warm-up that includes
    cuDNN's autotuning and compilation). `lr` is the learning rate of each epoch's last step.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    device: str = ""
    images_per_second: float = 0.0
    seconds: float = 0.0

    @property
    def final_test_acc(self) -> float:
        """Test accuracy after the last epoch (nan before any epoch)."""
        return self.test_acc[-1] if self.test_acc else math.nan

    def summary(self) -> str:
        """One line: final and best test accuracy, epochs, time, throughput and device."""
        if not self.test_acc:
            return "no epochs trained"
        epochs = len(self.test_acc)
        return (
            f"test acc {self.final_test_acc:.3f} (best {max(self.test_acc):.3f}), "
            f"train {self.train_acc[-1]:.3f}, {epochs} epoch{'s' if epochs != 1 else ''}, "
            f"{self.seconds:.1f} s, {self.images_per_second:,.0f} img/s, {self.device}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers, e.g. to save as JSON or in a checkpoint."""
        return dataclasses.asdict(self)
