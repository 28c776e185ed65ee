"""The book's own measured comparisons, stored so that a later chapter can gather them.

Each chapter that compares variants calls `save_summary` after the comparison; in full mode it writes
the whole `Comparison` (every seed's History) with the metric and the data it was measured on into
`book/results/<chapter>.json`. Chapter 6 reads them all back with `load_summaries` and sets the book's
ablations side by side. Quick mode (the test suite) never writes: its tiny runs would overwrite the
measured ones.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .experiments import METRICS, Comparison, Metric
from .lookup import unknown
from .quick import resolve

RESULTS = Path(__file__).resolve().parents[1] / "results"


def save_summary(chapter: str, name: str, comparison: Comparison, metric: Metric, *, data: str,
                 quick: bool | None = None, folder: str | os.PathLike | None = None) -> Path | None:
    """Store `comparison` as entry `name` of `<folder>/<chapter>.json` (full mode only).

    Args:
        chapter: the notebook's stem, e.g. "02_alexnet".
        name: what the comparison is about, e.g. "normalisation".
        comparison: the result of `lib.experiments.compare` or `run_variants`.
        metric: the metric the chapter's conclusion is about (a name from `lib.experiments.METRICS`).
        data: the data it was measured on (`ImageData.source`).
        quick: quick mode (default: the process-wide mode); nothing is written in quick mode.
        folder: where to write (default: book/results).

    Returns:
        The file written, or None in quick mode.
    """
    if resolve(quick):
        return None
    if not isinstance(metric, str):
        raise TypeError("save_summary stores a metric by name (one of lib.experiments.METRICS)")
    if metric not in METRICS:
        raise unknown("metric", metric, METRICS)
    path = Path(folder or RESULTS) / f"{chapter}.json"
    stored = _read(path)
    stored[name] = {"metric": metric, "data": data, "comparison": comparison.to_dict()}
    _write_atomic(path, stored)
    return path


def load_summaries(folder: str | os.PathLike | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """{chapter: {name: {"metric", "data", "comparison": Comparison}}} from every stored file, sorted."""
    summaries = {}
    for path in sorted(Path(folder or RESULTS).glob("*.json")):
        entries = _read(path)
        summaries[path.stem] = {
            name: {**entry, "comparison": Comparison.from_dict(entry["comparison"])}
            for name, entry in entries.items()}
    return summaries


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable results file ({error}); delete it and re-run "
                         "the chapter that writes it") from None
    if not isinstance(stored, dict):
        raise ValueError(f"{path} should hold a JSON object of comparisons; delete it and re-run "
                         "the chapter that writes it")
    return stored


def _write_atomic(path: Path, stored: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(stored, file, indent=1, sort_keys=False)
            file.write("\n")
        os.chmod(temporary, 0o644)  # mkstemp makes it private; results are for every reader
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
