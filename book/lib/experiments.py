"""Network variants compared over several seeds, each seed's variants from the same weights.

One run per variant cannot show that LRN helps AlexNet: another seed can move the final accuracy
by as much as the effect. So each variant trains with several seeds, and under one seed all
variants start from the same weights wherever they have the same layers (`matched_models`): the
difference between two variants under one seed is paired (same start, same batches). Its mean over
the seeds says how large the effect is, its spread how much a seed alone moves it
(`Comparison.verdict`). The weights are copied (`lib.initial_weights.share_initial_weights`, also
importable from here), not re-drawn under one seed: a builder's draws follow the order it creates
layers in, so one inserted layer (an LRN, a BatchNorm, an auxiliary head) changes every later draw.

Example:

    from lib import experiments, models

    builders = {
        "LRN": lambda: models.alexnet_cifar(norm="lrn"),
        "none": lambda: models.alexnet_cifar(norm="none"),
    }
    result = experiments.compare(builders, data, seeds=(0, 1, 2), epochs=10, lr=0.02)
    print(result.table("test_acc"))
    print(result.verdict("LRN", "none"))

For runs that are not one `fit` call per variant (a different schedule per variant, say), pass a
function `(variant, seed) -> History` to `run_variants`; the result is the same `Comparison`.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .device import seed_everything
from .history import History
from .initial_weights import corresponding_modules, share_initial_weights
from .lookup import unknown
from .training import fit

__all__ = [
    "METRICS", "Comparison", "Metric", "PairedDifference", "compare", "corresponding_modules",
    "matched_models", "mean", "metric_label", "run_variants", "sample_std",
    "share_initial_weights", "value_range",
]

METRICS = ("test_acc", "test_loss", "train_acc", "train_loss")
_LABELS = dict(zip(METRICS, ("test accuracy", "test loss", "training accuracy", "training loss")))
_WIDTH = 100  # the longest line a table may have (the book's code-line limit)

Metric = str | Callable[[History], float]  # a name from METRICS, or a function of a History


# ------------------------------------------------------------------------------------ statistics

def mean(values: Iterable[float]) -> float:
    """The arithmetic mean: mean([1, 2, 6]) == 3.0. A ValueError for no values."""
    values = _as_floats(values)
    return math.fsum(values) / len(values)


def sample_std(values: Iterable[float]) -> float:
    """The sample standard deviation (divisor n - 1): sample_std([1, 2, 6]) == sqrt(7) = 2.6458.

    One value has no spread to estimate: the result is nan, never 0, so that a single seed cannot
    pass for a precise one.
    """
    values = _as_floats(values)
    if len(values) < 2:
        return math.nan
    centre = mean(values)
    return math.sqrt(math.fsum((v - centre) ** 2 for v in values) / (len(values) - 1))


def value_range(values: Iterable[float]) -> tuple[float, float]:
    """The smallest and the largest value: value_range([1, 2, 6]) == (1.0, 6.0)."""
    values = _as_floats(values)
    return min(values), max(values)


def _as_floats(values: Iterable[float]) -> list[float]:
    if not (values := [float(v) for v in values]):
        raise ValueError("expected at least one value, got none")
    return values


# -------------------------------------------------------------------------------- matched models

def matched_models(
    builders: Mapping[str, Callable[[], nn.Module]], seed: int, reference: str | None = None
) -> dict[str, nn.Module]:
    """Build every variant under `seed`, then give each the reference variant's matching weights.

    Each builder runs right after `seed_everything(seed)`; then `share_initial_weights` copies the
    reference variant into every other one. So every layer that two variants share starts from the
    same tensors (the reference's), and a layer only one variant has starts from its own draw.

    Args:
        builders: {variant name: a function without arguments that returns a new network}.
        seed: the seed of this round of variants.
        reference: the variant whose weights the others receive; default the first of `builders`.

    Returns:
        {variant name: network} in the order of `builders`.
    """
    names = _distinct("variant names", builders, str)
    reference = names[0] if reference is None else reference
    if reference not in builders:
        raise unknown("reference variant", reference, names)
    models = {}
    for name in names:
        seed_everything(seed)
        if not isinstance(model := builders[name](), nn.Module):
            raise TypeError(
                f"builder {name!r} returned {type(model).__name__}, expected an nn.Module")
        models[name] = model
    for name, model in models.items():
        if name != reference:
            share_initial_weights(models[reference], model)
    return models


def _distinct(what: str, items: Iterable[Any], kind: type) -> list[Any]:
    """`items` as a list; an error if it is empty, has repeats or holds other than `kind`."""
    items = list(items)
    if not all(isinstance(item, kind) and not isinstance(item, bool) for item in items):
        raise TypeError(f"{what} must all be of type {kind.__name__}, got {items!r}")
    if not items or len(set(items)) != len(items):
        raise ValueError(f"expected one or more distinct {what}, got {items!r}")
    return items


# -------------------------------------------------------------------------------------- running

def run_variants(
    variants: Sequence[str],
    train_one: Callable[[str, int], History],
    *,
    seeds: Sequence[int] = (0, 1, 2),
    verbose: bool = True,
) -> Comparison:
    """Call `train_one(variant, seed)` for every seed and variant and collect the Histories.

    The seeds are the outer loop, so an interrupted comparison has whole seeds done. After each run
    one line reports it ("LRN   seed 1  test acc 0.612  41.3 s"), so that a long cell shows
    progress.

    Args:
        variants: the variant names, in the order the table lists them.
        train_one: trains one variant under one seed and returns its `History`.
        seeds: the seeds; the same seed should mean the same initial weights in every variant (see
            `matched_models`), so that differences are paired.
        verbose: print the line per run.

    Returns:
        A `Comparison` of the Histories.
    """
    names, seeds = _distinct("variant names", variants, str), _distinct("seeds", seeds, int)
    width = max(len(name) for name in names)
    histories: dict[str, dict[int, History]] = {name: {} for name in names}
    for seed in seeds:
        for name in names:
            start = time.perf_counter()
            history = train_one(name, seed)
            if not isinstance(history, History):
                raise TypeError(f"train_one({name!r}, {seed}) returned {type(history).__name__}, "
                                "expected a History")
            histories[name][seed] = history
            if verbose:
                print(f"{name:<{width}}  seed {seed}  test acc {history.final_test_acc:.3f}  "
                      f"{time.perf_counter() - start:.1f} s", flush=True)
    return Comparison(histories)


def compare(
    builders: Mapping[str, Callable[[], nn.Module]],
    data: Any,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    train: Callable[..., History] = fit,
    reference: str | None = None,
    verbose: bool = True,
    **fit_kwargs: Any,
) -> Comparison:
    """Train every variant with every seed, each seed's variants from the same initial weights.

    For each seed, `matched_models(builders, seed, reference)` builds the variants, and each trains
    with `train(model, data, seed=seed, progress=False, verbose=False, **fit_kwargs)`: the seed
    fixes the initial weights, the order of the batches and the augmentation. One seed's networks
    exist at a time, and each is let go once trained.

    Args:
        builders: {variant name: a function without arguments that returns a new network}.
        data: the dataset, passed on to `train` (an `ImageData` for `lib.training.fit`).
        seeds: the seeds, at least two for a spread (three by default).
        train: a function with `fit`'s signature; default `lib.training.fit`.
        reference: the variant whose weights the others receive; default the first.
        verbose: print one line per finished run.
        **fit_kwargs: the budget and settings for `train` (epochs, lr, batch_size, quick, ...).

    Returns:
        A `Comparison`; its `settings` record `fit_kwargs`, the seeds and the reference.
    """
    names = _distinct("variant names", builders, str)
    for reserved in ("seed", "progress"):
        if reserved in fit_kwargs:
            raise TypeError(f"compare sets {reserved}= itself for every run; "
                            "pass seeds=(...) instead")
    built: dict[int, dict[str, nn.Module]] = {}

    def train_one(name: str, seed: int) -> History:
        if seed not in built:
            built.clear()  # run_variants finishes a seed before the next: drop its networks
            built[seed] = matched_models(builders, seed, reference)
        model = built[seed].pop(name)
        return train(model, data, seed=seed, progress=False, verbose=False, **fit_kwargs)

    comparison = run_variants(names, train_one, seeds=seeds, verbose=verbose)
    comparison.settings = {"seeds": list(seeds), "reference": reference or names[0],
                           **{key: _plain(value) for key, value in fit_kwargs.items()}}
    return comparison


def _plain(value: Any) -> Any:
    return value if isinstance(value, (bool, int, float, str, type(None))) else str(value)  # JSON


# ----------------------------------------------------------------------------------------- results

def metric_label(metric: Metric) -> str:
    """Words for a metric: "test accuracy" for "test_acc", a function's name for a function."""
    if isinstance(metric, str):
        return _LABELS.get(metric, metric)
    name = getattr(metric, "__name__", "value")
    return "value" if name == "<lambda>" else name.replace("_", " ")


def _final_value(history: History, metric: Metric) -> float:
    if callable(metric):
        return float(metric(history))
    if metric not in METRICS:
        raise unknown("metric", metric, METRICS)
    values = getattr(history, metric)
    return float(values[-1]) if values else math.nan


@dataclass(frozen=True)
class PairedDifference:
    """The differences a - b of one metric, {seed: difference}, with their mean, sample standard
    deviation (nan for one seed), smallest and largest; `metric` names the metric in words."""

    a: str
    b: str
    metric: str
    differences: dict[int, float]
    mean: float
    std: float
    low: float
    high: float

    @property
    def same_sign(self) -> bool:
        """True when every seed's difference is positive, or every one negative (no zero)."""
        values = self.differences.values()
        return all(d > 0 for d in values) or all(d < 0 for d in values)

    @property
    def exceeds_spread(self) -> bool:
        """True when |mean| is larger than the standard deviation and all seeds agree in sign."""
        return self.same_sign and abs(self.mean) > self.std  # nan (one seed) compares False


@dataclass(repr=False)
class Comparison:
    """The Histories of a comparison, `histories[variant][seed]`; every variant has the same seeds.

    Attributes:
        histories: {variant: {seed: History}}, variants in the order of the table.
        settings: what the runs had in common (budget, seeds, reference), to print and store.
    """

    histories: dict[str, dict[int, History]]
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = _distinct("variant names", self.histories, str)
        seeds = list(self.histories[names[0]])
        for name in names:
            if sorted(self.histories[name]) != sorted(seeds):
                raise ValueError(f"every variant needs the same seeds: {names[0]!r} has {seeds}, "
                                 f"{name!r} has {list(self.histories[name])}")

    def __repr__(self) -> str:
        return (f"Comparison({len(self.variants)} variants x {len(self.seeds)} seeds: "
                f"{', '.join(self.variants)})")

    @property
    def variants(self) -> list[str]:
        """The variant names, in table order."""
        return list(self.histories)

    @property
    def seeds(self) -> list[int]:
        """The seeds, in the order they ran."""
        return list(next(iter(self.histories.values())))

    def final(self, metric: Metric = "test_acc") -> dict[str, dict[int, float]]:
        """{variant: {seed: value after the last epoch}} of `metric`, one of `METRICS`, or of
        `metric(history)` for a function (best test accuracy: `lambda h: max(h.test_acc)`)."""
        return {name: {seed: _final_value(runs[seed], metric) for seed in self.seeds}
                for name, runs in self.histories.items()}

    def curves(self, metric: str = "test_acc") -> dict[str, dict[int, list[float]]]:
        """{variant: {seed: per-epoch values}} of one of `METRICS`, for plotting."""
        if metric not in METRICS:
            raise unknown("metric", metric, METRICS)
        return {name: {seed: list(getattr(runs[seed], metric)) for seed in self.seeds}
                for name, runs in self.histories.items()}

    def summary(self, metric: Metric = "test_acc") -> dict[str, dict[str, float]]:
        """{variant: {"mean", "std", "min", "max"}} of the final `metric` over the seeds."""
        result = {}
        for name, values in self.final(metric).items():
            low, high = value_range(values.values())
            result[name] = {"mean": mean(values.values()), "std": sample_std(values.values()),
                            "min": low, "max": high}
        return result

    def table(self, metric: Metric = "test_acc", digits: int = 3) -> str:
        """One row per variant: each seed's final `metric`, their mean, sample sd and min-max.

        Lines are at most 100 characters: with too many seeds for that, the per-seed columns are
        left out (`final` has them).
        """
        final, summary = self.final(metric), self.summary(metric)
        names = {name: name if len(name) <= 24 else name[:23] + "…" for name in self.variants}
        num = f"{{:.{digits}f}}".format
        columns = [[f"seed {seed}"] + [num(final[n][seed]) for n in names] for seed in self.seeds]
        stats = [["mean"] + [num(summary[n]["mean"]) for n in names],
                 ["sd"] + [num(summary[n]["std"]) for n in names],
                 ["min–max"] + [f"{num(summary[n]['min'])}–{num(summary[n]['max'])}"
                                for n in names]]
        title = f"final {metric_label(metric)} over seeds {', '.join(map(str, self.seeds))}"
        lines = _grid(["variant", *names.values()], columns + stats)
        if max(map(len, lines)) > _WIDTH:
            title = f"final {metric_label(metric)}, {len(self.seeds)} seeds (per seed: .final())"
            lines = _grid(["variant", *names.values()], stats)
        return "\n".join([title[:_WIDTH], *lines])

    def paired_difference(self, a: str, b: str, metric: Metric = "test_acc") -> PairedDifference:
        """The per-seed differences a - b of the final `metric` (same seed: same start)."""
        for name in (a, b):
            if name not in self.histories:
                raise unknown("variant", name, self.variants)
        final = self.final(metric)
        differences = {seed: final[a][seed] - final[b][seed] for seed in self.seeds}
        values = differences.values()
        return PairedDifference(a, b, metric_label(metric), differences, mean(values),
                                sample_std(values), *value_range(values))

    def verdict(self, a: str, b: str, metric: Metric = "test_acc", digits: int = 3) -> str:
        """Whether the difference a - b exceeds what the seeds alone produce, in a phrase.

        It does when |mean difference| > the sd of the paired differences and every seed agrees in
        sign; otherwise "this budget cannot tell" (and why). E.g. "LRN vs none: +0.012 final test
        accuracy (mean of 3 paired seeds, sd 0.004, all the same sign): the difference exceeds the
        spread".
        """
        d = self.paired_difference(a, b, metric)
        n = len(d.differences)
        sd = "sd undefined" if math.isnan(d.std) else f"sd {d.std:.{digits}f}"
        agree = "all the same sign" if d.same_sign else "signs differ"
        head = (f"{a} vs {b}: {d.mean:+.{digits}f} final {d.metric} "
                f"(mean of {n} paired seed{'s' if n != 1 else ''}, {sd}, {agree})")
        if d.exceeds_spread:
            return f"{head}: the difference exceeds the spread"
        why = ("one seed has no spread" if n < 2 else "the seeds disagree" if not d.same_sign
               else "the difference is within the spread")
        return f"{head}: this budget cannot tell ({why})"

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists and numbers (seeds as strings, as JSON keys must be), for storing."""
        histories = {name: {str(seed): run.to_dict() for seed, run in runs.items()}
                     for name, runs in self.histories.items()}
        return {"settings": dict(self.settings), "histories": histories}

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> Comparison:
        """The `Comparison` that `to_dict` returned `stored` for."""
        histories = {name: {int(seed): History(**fields) for seed, fields in runs.items()}
                     for name, runs in stored["histories"].items()}
        return cls(histories, dict(stored.get("settings", {})))


def _grid(first: list[str], columns: list[list[str]]) -> list[str]:
    """Text lines: `first` left-aligned, then each column (header first) right-aligned."""
    name_width = max(map(len, first))
    widths = [max(map(len, column)) for column in columns]
    rows = []
    for row, name in enumerate(first):
        cells = [column[row].rjust(width) for column, width in zip(columns, widths)]
        rows.append("  ".join([name.ljust(name_width), *cells]).rstrip())
    return rows
