"""The expected full-mode training time of a chapter on Colab's T4 GPU, as the benchmark estimated it."""
from __future__ import annotations

import json
import os
from typing import Any

from .lookup import unknown

_REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # book/lib/ -> root
BENCHMARK_RESULTS = os.path.join(_REPOSITORY, "benchmarks", "results.json")


def t4_estimate(chapter: str, results: str | os.PathLike | None = None) -> dict[str, Any]:
    """The benchmark's estimate of a chapter's full-mode training time on a Colab T4 GPU.

    `benchmarks/bench.py` writes it to `benchmarks/results.json`: each `lib.fit` call of the chapter,
    its network's mult-adds per image and layer count (measured with torchinfo), turned into seconds
    from the T4's fp16 peak, an assumed utilisation and a per-step launch overhead, at the real
    datasets' sizes (see `GPUAssumptions` in benchmarks/t4.py). An estimate, not a measurement.

    Args:
        chapter: the notebook's name without its extension, e.g. "02_alexnet".
        results: the results file (default: the repository's benchmarks/results.json).

    Returns:
        {"chapter", "seconds", "runs", "gpu"}: the total, each run's entry, and the GPU's name.

    Raises:
        FileNotFoundError: no results file (run the benchmark first).
        ValueError: the file has no T4 estimate, or none for `chapter`.
    """
    path = os.fspath(results) if results is not None else BENCHMARK_RESULTS
    if not os.path.exists(path):
        raise FileNotFoundError(f"no benchmark results at {path}: run `python benchmarks/bench.py` first")
    with open(path) as file:
        estimate = json.load(file).get("t4_estimate")
    if not estimate:
        raise ValueError(f"{path} holds no T4 estimate: it was written by an older bench.py")
    chapters = {entry["chapter"]: entry for entry in estimate["chapters"]}
    if chapter not in chapters:
        raise unknown("chapter", chapter, sorted(chapters))
    entry = chapters[chapter]
    return {"chapter": chapter, "seconds": entry["seconds"], "runs": entry["runs"],
            "gpu": estimate["assumptions"]["name"]}


def print_t4_estimate(chapter: str, results: str | os.PathLike | None = None) -> dict[str, Any]:
    """Print what `t4_estimate` says in two lines, e.g. before a chapter's training, and return it."""
    estimate = t4_estimate(chapter, results)
    calls = sum(run["count"] for run in estimate["runs"])
    print(f"Full mode on a {estimate['gpu']}: about {_duration(estimate['seconds'])} of training "
          f"in {calls} lib.fit call{'s' * (calls != 1)}")
    print("(an estimate from each network's mult-adds, not a measurement: benchmarks/README.md)")
    return estimate


def _duration(seconds: float) -> str:
    """Seconds under a minute and a half, minutes under an hour and a half, hours beyond."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
