"""Pictures of a `lib.experiments.Comparison`: curves with a band over the seeds, final values.

Both keep one colour per variant, in the comparison's order, so that the two pictures of one
comparison read together; the legend sits right of the axes, where it cannot cover a curve.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..experiments import METRICS, Comparison, Metric, mean, metric_label, value_range
from ..lookup import unknown

__all__ = ["plot_final", "plot_runs"]


def _chosen(comparison: Comparison, variants: Sequence[str] | None) -> list[str]:
    if isinstance(variants, str):
        variants = [variants]
    chosen = comparison.variants if variants is None else list(variants)
    for name in chosen:
        if name not in comparison.histories:
            raise unknown("variant", name, comparison.variants)
    return chosen


def _legend_outside(ax: Axes) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False,
              fontsize=9)


def plot_runs(
    comparison: Comparison, metric: str = "test_acc", *, variants: Sequence[str] | None = None,
    yscale: str = "linear",
) -> Figure:
    """`metric` per epoch: for each variant the mean over the seeds as a line, and a band from the
    smallest to the largest seed's value.

    Where two bands overlap, the seeds alone could produce the gap between those variants at those
    epochs. Seeds that trained for different numbers of epochs are drawn up to the shortest.

    Args:
        comparison: the result of `lib.experiments.compare` or `run_variants`.
        metric: one of "test_acc", "test_loss", "train_acc", "train_loss".
        variants: the variants to draw, default all (colours stay those of the full comparison).
        yscale: "linear" or "log" (for losses that span orders of magnitude).

    Returns:
        The closed Figure (see this package's docstring).
    """
    if metric not in METRICS:
        raise unknown("metric", metric, METRICS)
    if yscale not in ("linear", "log"):
        raise ValueError(f"yscale must be 'linear' or 'log', got {yscale!r}")
    chosen, curves = _chosen(comparison, variants), comparison.curves(metric)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for name in chosen:
        color = f"C{comparison.variants.index(name) % 10}"
        runs = list(curves[name].values())
        epochs = range(1, min(map(len, runs)) + 1)
        per_epoch = [[run[e - 1] for run in runs] for e in epochs]
        bounds = [value_range(values) for values in per_epoch]
        ax.fill_between(epochs, [low for low, _ in bounds], [high for _, high in bounds],
                        color=color, alpha=0.2, linewidth=0)
        ax.plot(epochs, [mean(values) for values in per_epoch], color=color, marker="o",
                markersize=3, label=name)
    label, seeds = metric_label(metric), len(comparison.seeds)
    ax.set_xlabel("epoch")
    ax.set_ylabel(label)
    ax.set_yscale(yscale)
    ax.set_title(f"{label}: mean of {seeds} seeds, band from min to max", fontsize=10)
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    _legend_outside(ax)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_final(
    comparison: Comparison, metric: Metric = "test_acc", *, variants: Sequence[str] | None = None
) -> Figure:
    """The final `metric` of every run: a dot per seed in each variant's column, a bar at the mean.

    Args:
        comparison: the result of `lib.experiments.compare` or `run_variants`.
        metric: one of "test_acc", "test_loss", "train_acc", "train_loss", or a function of a
            History (e.g. `lambda h: max(h.test_acc)`).
        variants: the variants to draw, default all.

    Returns:
        The closed Figure (see this package's docstring).
    """
    chosen, final = _chosen(comparison, variants), comparison.final(metric)
    seeds = comparison.seeds
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * len(chosen) + 2.5), 3.6))
    ax.scatter([], [], color="grey", s=22, label="one seed")  # legend entries in neutral colours
    ax.plot([], [], color="black", linewidth=1.5, label="mean")
    # Seeds side by side (not random jitter), so that a seed has the same offset in every column.
    step = min(0.08, 0.5 / len(seeds))
    offsets = [(k - (len(seeds) - 1) / 2) * step for k in range(len(seeds))]
    for column, name in enumerate(chosen):
        color = f"C{comparison.variants.index(name) % 10}"
        values = [final[name][seed] for seed in seeds]
        ax.scatter([column + o for o in offsets], values, color=color, s=22, zorder=3)
        ax.hlines(mean(values), column - 0.3, column + 0.3, color="black", linewidth=1.5)
    crowded = len(chosen) > 4 or max(map(len, chosen)) > 10  # names that would run into each other
    ax.set_xticks(range(len(chosen)), chosen, rotation=25 if crowded else 0,
                  ha="right" if crowded else "center", rotation_mode="anchor")
    ax.set_xlim(-0.6, len(chosen) - 0.4)
    ax.set_ylabel(f"final {metric_label(metric)}")
    ax.set_title(f"final {metric_label(metric)}, seeds {', '.join(map(str, seeds))}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    _legend_outside(ax)
    fig.tight_layout()
    plt.close(fig)
    return fig
