"""Training curves: accuracy and loss per epoch of one run or several."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..history import History


def _legend_below(fig: Figure, ax: plt.Axes, columns: int) -> None:
    """One legend for both panels, under them, where it cannot cover a curve: a run's colour, then test
    (solid, dots) and train (dashed)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2 * columns, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.0))


def plot_history(histories: History | dict[str, History], *, loss_scale: str = "linear") -> Figure:
    """Accuracy (left) and loss (right) per epoch; test solid, train dashed, one colour per run.

    Pass one `History`, or a dict {label: History} to compare runs. `loss_scale="log"` draws the loss
    on a log scale: useful when one early value (e.g. the first test loss of a BatchNorm network,
    evaluated with running statistics that have barely moved) would squash all the others.
    """
    if loss_scale not in ("linear", "log"):
        raise ValueError(f"loss_scale must be 'linear' or 'log', got {loss_scale!r}")
    runs = {"": histories} if isinstance(histories, History) else dict(histories)
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (label, history) in enumerate(runs.items()):
        color = f"C{i % 10}"
        epochs = range(1, len(history.test_acc) + 1)
        prefix = f"{label} " if label else ""
        for ax, train, test in ((acc_ax, history.train_acc, history.test_acc),
                                (loss_ax, history.train_loss, history.test_loss)):
            ax.plot(epochs, test, color=color, marker="o", markersize=3, label=f"{prefix}test")
            ax.plot(epochs, train, color=color, linestyle="--", label=f"{prefix}train")
    for ax, name in ((acc_ax, "accuracy"), (loss_ax, "loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    loss_ax.set_yscale(loss_scale)
    if loss_scale == "log":
        loss_ax.set_ylabel("loss (log scale)")
    fig.tight_layout(rect=(0, 0.06 + 0.06 * ((len(runs) - 1) // 3), 1, 1))
    _legend_below(fig, acc_ax, columns=min(len(runs), 3))
    plt.close(fig)
    return fig
