"""The expected full-mode training time of a chapter on Colab's T4 GPU, as the benchmark estimated it."""
from __future__ import annotations

import json
import os
from typing import Any

from .lookup import unknown

_REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # book/lib/ -> root
BENCHMARK_RESULTS = os.path.join(_REPOSITORY, "benchmarks", "results.json")


def t4_estimate(chapter: str, results: str | os.PathLike | None = None) -> dict[str, Any]:
    """The benchmark's estimate of a chapter's full-mode time on a Colab T4 GPU.

    `benchmarks/bench.py` writes it to `benchmarks/results.json`: each `lib.fit` call of the chapter at
    the real datasets' sizes, priced by its network's mult-adds per image (torchinfo) at an assumed
    share of the T4's fp16 peak, or by its operators per step (counted) at 10-20 us of CPU time each,
    whichever is larger; plus the first cell's clone and install and the dataset download (see
    `GPUAssumptions` in benchmarks/t4.py). An estimate, not a measurement.

    Args:
        chapter: the notebook's name without its extension, e.g. "02_alexnet".
        results: the results file (default: the repository's benchmarks/results.json).

    Returns:
        {"chapter", "seconds", "setup_seconds", "runs", "gpu"}: the training time and the setup's, each
        [low, high], each run's entry, and the GPU's name.

    Raises:
        FileNotFoundError: no results file (run the benchmark first).
        ValueError: the file has no T4 estimate, or none for `chapter`.
    """
    path = os.fspath(results) if results is not None else BENCHMARK_RESULTS
    if not os.path.exists(path):
        raise FileNotFoundError(f"no benchmark results at {path}: run `python benchmarks/bench.py` first")
    with open(path) as file:
        estimate = json.load(file).get("t4_estimate")
    if not estimate or not isinstance(estimate["chapters"][0].get("seconds"), list):
        raise ValueError(f"{path} holds no T4 estimate with ranges: run `python benchmarks/bench.py --t4-only`")
    chapters = {entry["chapter"]: entry for entry in estimate["chapters"]}
    if chapter not in chapters:
        raise unknown("chapter", chapter, sorted(chapters))
    entry = chapters[chapter]
    return {"chapter": chapter, "seconds": entry["seconds"], "setup_seconds": entry["setup_seconds"],
            "runs": entry["runs"], "gpu": estimate["assumptions"]["name"]}


def print_t4_estimate(chapter: str, results: str | os.PathLike | None = None) -> dict[str, Any]:
    """Print what `t4_estimate` says in two lines, e.g. before a chapter's training, and return it."""
    estimate = t4_estimate(chapter, results)
    calls = sum(run["count"] for run in estimate["runs"])
    print(f"Full mode on a {estimate['gpu']}: an estimated {_span(estimate['seconds'])} of training in "
          f"{calls} lib.fit call{'s' * (calls != 1)}, plus {_span(estimate['setup_seconds'])} on a "
          f"first run to clone, install and download")
    print("(estimated from each network's mult-adds and operators per step, not measured: "
          "benchmarks/README.md)")
    return estimate


def _span(seconds: list[float]) -> str:
    """A range of seconds in one unit, e.g. "20-40 s", "3-6 min", "1.2-2.0 h"; one figure ("6 min")
    when both ends round to it."""
    low, high = seconds
    if high < 90:
        ends, unit = (f"{max(1, round(x))}" for x in (low, high)), "s"
    elif high < 5400:
        ends, unit = (f"{max(1, round(x / 60))}" for x in (low, high)), "min"
    else:
        ends, unit = (f"{x / 3600:.1f}" for x in (low, high)), "h"
    first, last = ends
    return f"{first} {unit}" if first == last else f"{first}-{last} {unit}"
