#!/usr/bin/env python3
"""Re-execute the book's notebooks cleanly, top to bottom, in full mode, and store their outputs.

    python .ci/execute_notebooks.py                 # every notebook in book/
    python .ci/execute_notebooks.py book/01_lenet.ipynb ...

What "cleanly" means here:
  * a fresh kernel per notebook, started in the notebook's folder (so `import lib` works as for readers),
    with CNNBOOK_QUICK removed from the environment: stored outputs are full-mode outputs;
  * consecutive stream outputs merged, and carriage-return updates (tqdm bars) collapsed to their final line;
  * no per-cell timing or execution metadata stored;
  * the run fails (and the notebook is not written) on an error output in a cell not tagged
    `raises-exception`, on a warning written to stderr, or on a machine path in any output.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
PATH_LEAK = re.compile(r"(/work/|/tmp/|/root/|/home/\w+|site-packages/|\\Users\\)")
WARNING = re.compile(r"\b\w*Warning\b")


def collapse_carriage_returns(text: str) -> str:
    """Keep what a terminal would finally show on each line: the text after the last carriage return."""
    lines = []
    for line in text.split("\n"):
        parts = [p for p in line.split("\r") if p]
        if len(parts) > 1 and not parts[-1].strip():
            continue  # a progress bar that cleared itself when it finished leaves nothing behind
        lines.append(parts[-1] if parts else "")
    return "\n".join(lines)


def clean_outputs(outputs: list) -> list:
    merged: list = []
    for out in outputs:
        if out.get("output_type") == "stream":
            if merged and merged[-1].get("output_type") == "stream" and merged[-1]["name"] == out["name"]:
                merged[-1]["text"] += out["text"]
                continue
            out = nbformat.from_dict({**out, "text": out["text"]})
        merged.append(out)
    for out in merged:
        if out.get("output_type") == "stream":
            out["text"] = collapse_carriage_returns(out["text"])
    return merged


def problems_in(nb: nbformat.NotebookNode) -> list[str]:
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        for out in cell.get("outputs", []):
            if out.output_type == "error" and "raises-exception" not in tags:
                found.append(f"cell {i}: {out.ename}: {out.evalue}")
            text = out.get("text", "") or out.get("data", {}).get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else text
            if PATH_LEAK.search(text):
                found.append(f"cell {i}: machine path in output: {PATH_LEAK.search(text).group(0)}")
            if out.get("name") == "stderr" and WARNING.search(text):
                found.append(f"cell {i}: warning on stderr: {text.strip()[:200]}")
    return found


def execute(path: Path, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    start = time.perf_counter()
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", record_timing=False, allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    seconds = time.perf_counter() - start
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = clean_outputs(cell.outputs)
    nb.metadata.pop("widgets", None)
    problems = problems_in(nb)
    if problems:
        raise RuntimeError(f"{path.name}: not written, its run has problems:\n  " + "\n  ".join(problems))
    nbformat.write(nb, path)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in book/")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    args = parser.parse_args()
    os.environ.pop("CNNBOOK_QUICK", None)  # the kernels inherit this environment: stored outputs are full mode
    paths = args.notebooks or sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    failed = 0
    for path in paths:
        try:
            seconds = execute(path.resolve(), args.timeout)
            print(f"{path.name}: executed in full mode in {seconds:.0f} s")
        except Exception as exc:  # report and go on with the next notebook
            failed += 1
            print(f"{path.name}: FAILED: {exc}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
