#!/usr/bin/env python3
"""Rewrite two cells of every notebook in book/: the Colab set-up cell and the fallback before `import lib`.

    python apply_notebook_cells.py [--root REPO] [--check]

1. The first code cell of each notebook (the Colab cell) is replaced whole. It takes the repository's address
   and branch from `_config.yml` (`repository.url`, `repository.branch`, the same values jupyter-book's
   launch buttons use), so there is one place to change them; tests/test_platforms.py checks that every
   notebook's first cell agrees with `_config.yml`. In Colab the cell clones that repository and branch (or
   the ones named by CNNBOOK_REPO / CNNBOOK_BRANCH, or by REPO / BRANCH edited at its top, for a fork),
   prints what it cloned, installs torchinfo, and on a CPU runtime prints what this chapter's full mode will
   cost there and how to choose quick mode. Outside Colab it does nothing and prints nothing.
2. In the first later code cell with a top-level `import lib`, a short block is inserted before that line
   (or the block a previous run inserted is replaced): when the kernel does not run in book/ (an editor set
   to run notebooks from the repository's root, for one), it finds `lib` next to the notebook or in book/, or
   prints one line saying how to start Jupyter. In book/, where Jupyter runs the notebooks, it prints nothing.

Only the `source` of these two cells changes: their outputs stay. The script refuses a notebook whose first
code cell is not the Colab cell or has stored outputs (the cell must print nothing outside Colab).
`--check` writes nothing and exits 1 when a notebook would change.

The CPU figures (CPU_FULL_MODE) are the full-mode training times of issue #19, estimated from CPU throughput
measured on real-size data; a chapter without a figure says its CPU time is not measured.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat
import yaml

# Full mode on Colab's CPU runtime (2 vCPUs), from the measured throughput on real-size data (issue #19).
CPU_FULL_MODE = {
    "01_lenet": "8-14 min",
    "04_googlenet": "about 30 min",
    "06_comparison": "16-35 min",
}
# The other chapters cap their CPU runs by steps; what their full mode took on one core of the book's
# 2-core build machine on the offline sets (.ci/execute_notebooks.py, 2026-12-06). The real sets' test
# splits are larger (10,000 images), so evaluation adds to it there.
CPU_FULL_MODE_OFFLINE = {
    "02_alexnet": "6 min",
    "03_vgg": "2 min",
    "05_resnet": "7 min",
    "07_distributed": "2 min",
}
TRAINS_NOTHING = {"00_introduction"}

COLAB_CELL = '''\
# Colab set-up (does nothing elsewhere): fetch the book's code, make `lib` importable, install what
# Colab lacks (never torch: Colab's own build stays), and check that a GPU runtime is selected.
# Opened from a fork or another branch? Point REPO and BRANCH at it (or set the environment
# variables CNNBOOK_REPO and CNNBOOK_BRANCH) and run this cell again.
REPO = "{url}"
BRANCH = "{branch}"
import os, shutil, subprocess, sys
if "google.colab" in sys.modules and not os.path.isdir("lib"):
    REPO = os.environ.get("CNNBOOK_REPO", REPO)
    BRANCH = os.environ.get("CNNBOOK_BRANCH", BRANCH)
    clone = os.path.abspath(os.path.basename(REPO.rstrip("/")).removesuffix(".git"))

    def git(*args):  # what a git command prints about the clone ("" while there is none)
        done = subprocess.run(["git", "-C", clone, *args], capture_output=True, text=True)
        return done.stdout.strip()

    cloned = [git("remote", "get-url", "origin"), git("branch", "--show-current")]
    if os.path.isdir(clone) and cloned != [REPO, BRANCH]:
        shutil.rmtree(clone)  # a clone of another repository or branch: replace it
    if not os.path.isdir(clone):
        subprocess.run(["git", "clone", "-q", "--depth=1", "-b", BRANCH, REPO, clone], check=True)
    print(f"lib comes from {{REPO}}, branch {{BRANCH}} (commit {{git('rev-parse', '--short', 'HEAD')}})")
    os.chdir(os.path.join(clone, "book"))
    sys.path.insert(0, os.getcwd())
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "torchinfo"], check=True)
    import torch
    if torch.cuda.is_available():
        print("GPU:", torch.cuda.get_device_name(0))
    else:
{no_gpu}'''

QUICK_ADVICE = ("Choose Runtime > Change runtime type > T4 GPU, or quick mode (a few steps per\\n",
                "training run, to try the code): before `import lib`, run\\n",
                "os.environ['CNNBOOK_QUICK'] = '1'")

IMPORT_MARKER = "# Where `lib` is:"
IMPORT_FALLBACK = '''\
# Where `lib` is: in book/, next to the notebooks, where Jupyter runs them. An editor may start
# the kernel elsewhere (in the repository's root, say): then look next to this notebook, in book/.
import os, sys
if not os.path.isdir("lib"):
    _notebook = (globals().get("__vsc_ipynb_file__")  # VS Code
                 or os.environ.get("JPY_SESSION_NAME") or "")  # Jupyter
    _places = [os.path.dirname(_notebook), "book"]
    _found = [d for d in _places if d and os.path.isdir(os.path.join(d, "lib"))]
    if _found:
        sys.path.insert(0, os.path.abspath(_found[0]))
    else:
        print("lib not found: run `jupyter lab book/` in the repository (see README)")
'''
# The block as a previous run of this script inserted it (any version): from the marker to the print line.
IMPORT_FALLBACK_PATTERN = re.compile(r"^# Where `lib` is:.*?^        print\(\"lib not found:[^\n]*\n\n?",
                                     re.MULTILINE | re.DOTALL)


def no_gpu_lines(chapter: str) -> str:
    """The CPU-runtime message of one chapter (indented for its place in the cell)."""
    indent = "        "
    if chapter in TRAINS_NOTHING:
        return f'{indent}print("No GPU found: not needed here, this chapter trains nothing.")\n'
    if chapter in CPU_FULL_MODE:
        cost = [f"No GPU found: full mode trains for {CPU_FULL_MODE[chapter]} on this CPU runtime.\\n"]
    else:
        cost = [f"No GPU found: full mode took {CPU_FULL_MODE_OFFLINE[chapter]} on one CPU core with\\n",
                "the offline sets, longer with the real test sets.\\n"]
    lines = [*cost, *QUICK_ADVICE]
    return f"{indent}print(" + f"\n{indent}      ".join(f'"{line}"' for line in lines) + ")\n"


def colab_cell(chapter: str, url: str, branch: str) -> str:
    """The first code cell of notebook `chapter` (e.g. "01_lenet")."""
    return COLAB_CELL.format(url=url, branch=branch, no_gpu=no_gpu_lines(chapter)).rstrip("\n")


def with_import_fallback(source: str) -> str:
    """`source` with the fallback block right before its top-level `import lib` (replacing an older one)."""
    source = IMPORT_FALLBACK_PATTERN.sub("", source)
    match = re.search(r"^import lib\s*$", source, re.MULTILINE)
    if match is None:
        raise ValueError("no top-level `import lib` line in the cell")
    return source[:match.start()] + IMPORT_FALLBACK + source[match.start():]


def repository(root: Path) -> tuple[str, str]:
    """`_config.yml`'s repository address and branch."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    repo = config.get("repository", {})
    if not repo.get("url"):
        raise ValueError(f"{root / '_config.yml'}: repository.url is not set")
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def rewrite(path: Path, url: str, branch: str) -> tuple[nbformat.NotebookNode, list[str]]:
    """The notebook with its two cells rewritten, and what changed."""
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    if not code or "google.colab" not in code[0].source:
        raise ValueError(f"{path.name}: its first code cell is not the Colab set-up cell")
    if code[0].get("outputs"):
        raise ValueError(f"{path.name}: the Colab cell has stored outputs; it must print nothing outside Colab")
    changed = []
    new = colab_cell(path.stem, url, branch)
    if code[0].source != new:
        code[0].source = new
        changed.append("Colab cell")
    importing = [cell for cell in code[1:] if re.search(r"^import lib\s*$", cell.source, re.MULTILINE)]
    if not importing:
        raise ValueError(f"{path.name}: no code cell with a top-level `import lib`")
    new = with_import_fallback(importing[0].source)
    if importing[0].source != new:
        importing[0].source = new
        changed.append("import fallback")
    return nb, changed


def find_root(given: str | None) -> Path:
    candidates = [Path(given)] if given else [Path(__file__).resolve().parent.parent, Path.cwd(), Path("/work/main")]
    for root in candidates:
        if (root / "_config.yml").is_file() and (root / "book").is_dir():
            return root.resolve()
    raise SystemExit(f"no repository found (a folder with _config.yml and book/) among {candidates}; use --root")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="the repository (default: this script's parent's parent, or .)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a notebook would change")
    args = parser.parse_args()
    root = find_root(args.root)
    url, branch = repository(root)
    pending = 0
    for path in sorted((root / "book").glob("[0-9][0-9]_*.ipynb")):
        nb, changed = rewrite(path, url, branch)
        if changed:
            pending += 1
            if not args.check:
                nbformat.write(nb, path)
        print(f"{path.name}: {', '.join(changed) if changed else 'up to date'}"
              f"{' (would change)' if changed and args.check else ''}")
    print(f"repository {url}, branch {branch} (from {root / '_config.yml'})")
    return 1 if args.check and pending else 0


if __name__ == "__main__":
    sys.exit(main())
