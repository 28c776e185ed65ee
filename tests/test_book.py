"""Checks of the book as a whole: table of contents, Colab set-up cells, stored outputs, CI wiring."""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
        for chapter in part["chapters"]:
            files += [s["file"] for s in chapter.get("sections", [])]
    return files


def _executor():
    spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / ".ci" / "execute_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_toc_and_notebooks_match():
    toc = _toc_files()
    for path in NOTEBOOKS:
        assert f"book/{path.stem}" in toc, f"{path.name} is missing from _toc.yml"
    for entry in toc:
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".md", ".ipynb")), f"_toc.yml names {entry}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_sets_up_colab_from_this_repository(path):
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    first = "".join(_code_cells(_load(path))[0]["source"])
    assert '"google.colab" in sys.modules' in first
    assert f'REPO = "{url}"' in first, "the Colab cell must clone the repository named in _config.yml"
    assert "pip" in first and "torch\"" not in first and "install -q torch" not in first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_come_from_one_clean_run(path):
    nb = _load(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    counts = [c.get("execution_count") for c in _code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), "re-run the notebook top to bottom"
    problems = _executor().problems_in(__import__("nbformat").reads(path.read_text(), as_version=4))
    assert not problems, problems
    for cell in nb["cells"]:
        assert "execution" not in cell.get("metadata", {}), "per-cell timing metadata is stored"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_output_figure_has_alt_text(path):
    # myst-nb reads a figure's alt text from the cell metadata; without it the <img> says only a file name.
    missing = []
    for index, cell in enumerate(_load(path)["cells"]):
        images = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        alt = cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt", "")
        if images and len(alt.strip()) < 40:
            missing.append(f"cell {index} ({cell.get('id')}): {''.join(cell['source'])[:60]!r}")
    assert not missing, 'set "mystnb": {"image": {"alt": "..."}} on:\n' + "\n".join(missing)


HIDDEN = {"remove-cell", "remove-input"}  # myst-nb leaves these cells' code out of the book
HARNESS = re.compile(r"\blib\.pick\(|\bquick_mode\(|CNNBOOK_QUICK")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_rendered_book_shows_no_quick_mode_plumbing(path):
    # The test suite's small budgets live in hidden cells: a reader sees the budget the book ran.
    # The first code cell (Colab's set-up) may tell a reader how to turn quick mode on.
    shown = []
    for cell in _code_cells(_load(path))[1:]:
        tags = set(cell.get("metadata", {}).get("tags", []))
        source = "".join(cell["source"])
        if not tags & HIDDEN and HARNESS.search(source):
            shown.append(source[:80])
    assert not shown, "move these into a cell tagged remove-cell:\n" + "\n".join(shown)


def test_executor_keeps_the_last_state_of_progress_bars_and_merges_streams():
    ex = _executor()
    assert ex.collapse_carriage_returns("\r 10%|#\r 50%|#####\r100%|##########\nnext\n") == "100%|##########\nnext\n"
    assert ex.collapse_carriage_returns("\r 10%|#\r100%|##\r        \repoch 1 done\n") == "epoch 1 done\n"
    assert ex.collapse_carriage_returns("\r 50%|#\r         \r\nepoch 1 done\n") == "epoch 1 done\n"
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": "a\r"},
        {"output_type": "stream", "name": "stdout", "text": "b\n"},
        {"output_type": "stream", "name": "stderr", "text": "c\n"},
    ]
    merged = ex.clean_outputs([__import__("nbformat").from_dict(o) for o in outputs])
    assert [(o["name"], o["text"]) for o in merged] == [("stdout", "b\n"), ("stderr", "c\n")]


def test_executor_rejects_tracebacks_warnings_and_machine_paths():
    nbformat = __import__("nbformat")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("1/0", outputs=[nbformat.v4.new_output("error", ename="ZeroDivisionError",
                                                                           evalue="division by zero", traceback=[])]),
        nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output("stream", name="stderr",
                                                                         text="UserWarning: careful\n")]),
        nbformat.v4.new_code_cell("y", outputs=[nbformat.v4.new_output("stream", name="stdout",
                                                                         text="saved to /tmp/x.pt\n")]),
    ]
    problems = _executor().problems_in(nb)
    assert len(problems) == 3 and "ZeroDivisionError" in problems[0]
    nb.cells[0].metadata["tags"] = ["raises-exception"]
    assert len(_executor().problems_in(nb)) == 2


def test_ci_runs_the_readme_commands():
    script = (ROOT / ".ci" / "run").read_text()
    fn = re.search(r"readme_command\(\) \{.*?\n\}", script, re.S).group(0)
    out = subprocess.run(["bash", "-c", f"{fn}\nreadme_command test"], cwd=ROOT, capture_output=True, text=True)
    assert "pytest" in out.stdout
    assert 'eval "$tests"' in script and "-W" in script
    readme = (ROOT / "README.md").read_text()
    assert out.stdout.strip() in readme


def test_library_docstring_lists_every_module_and_nothing_else():
    """lib/__init__'s table of modules (`lib.name  what it holds`) matches the public modules on disk."""
    import lib

    listed = set(re.findall(r"^\s+lib\.(\w+)\s", lib.__doc__, flags=re.MULTILINE))
    folder = Path(lib.__file__).parent
    on_disk = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
    on_disk |= {p.parent.name for p in folder.glob("*/__init__.py")}
    assert listed == on_disk, f"listed but missing: {listed - on_disk}; not listed: {on_disk - listed}"
    exported = {name for name in lib.__all__ if not name[0].isupper() and hasattr(lib, name)}
    assert on_disk <= exported, f"modules not exported by lib: {on_disk - exported}"
