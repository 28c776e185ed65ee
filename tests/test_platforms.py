"""Where readers run the notebooks: Google Colab (simulated here, offline) and a local Jupyter.

- The first code cell of every notebook is its Colab set-up cell; the repository and branch it clones are
  `_config.yml`'s `repository.url` and `repository.branch`, which jupyter-book's launch buttons use too.
- Outside Colab that cell does nothing and prints nothing; in a simulated Colab (a fake `google.colab`
  module, the working directory a temporary folder standing for /content, `git clone` of a local bare
  repository named by CNNBOOK_REPO, pip replaced) it clones the fork and branch it is pointed at, says
  which, changes into book/, installs what Colab lacks without requirements.txt, and on a CPU runtime
  says what full mode costs there and how to choose quick mode.
- The block before `import lib` finds `lib` when the kernel runs outside book/, or says in one line what to do.
- The README's Jupyter command starts a Jupyter server that serves the book's notebooks.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import types
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
FORK_BRANCH = "a-fork-branch"


def _code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def _first_cell(path: Path) -> str:
    return _code_cells(path)[0]


def _import_fallback(path: Path) -> str:
    """The block before `import lib` in the notebook's import cell (from its marker comment to `import lib`)."""
    for source in _code_cells(path)[1:]:
        if re.search(r"^import lib\s*$", source, re.MULTILINE):
            match = re.search(r"^# Where `lib` is:.*?(?=^import lib\s*$)", source, re.MULTILINE | re.DOTALL)
            assert match, f"{path.name}: no fallback block (# Where `lib` is: ...) before `import lib`"
            return match.group(0)
    raise AssertionError(f"{path.name}: no code cell with a top-level `import lib`")


def _run(source: str) -> str:
    """Execute a cell's source as a notebook would (a fresh namespace); return what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, "<cell>", "exec"), {"__name__": "__main__"})
    return printed.getvalue()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_first_cell_clones_the_repository_and_branch_of_config_yml(path):
    source = _first_cell(path)
    assert "google.colab" in source, f"{path.name}: the first code cell is not the Colab set-up cell"
    repo = CONFIG["repository"]
    assert re.search(rf'^REPO = "{re.escape(repo["url"].rstrip("/"))}"$', source, re.MULTILINE), (
        f"{path.name}: the Colab cell does not clone _config.yml's repository.url ({repo['url']})")
    assert re.search(rf'^BRANCH = "{re.escape(repo.get("branch", "main"))}"$', source, re.MULTILINE), (
        f"{path.name}: the Colab cell does not clone _config.yml's repository.branch")
    assert "requirements.txt" not in source, "installing requirements.txt in Colab upgrades its pinned packages"


def test_launch_buttons_and_notebooks_share_one_address():
    """jupyter-book builds the Colab button from repository.url and branch: the same keys as the cells."""
    assert CONFIG["launch_buttons"]["colab_url"].rstrip("/") == "https://colab.research.google.com"
    assert CONFIG["repository"]["url"].startswith("https://github.com/")
    addresses = {re.search(r'^REPO = "(.*)"$', _first_cell(p), re.MULTILINE).group(1) for p in NOTEBOOKS}
    assert addresses == {CONFIG["repository"]["url"].rstrip("/")}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outside_colab_the_first_cell_does_nothing_and_prints_nothing(path, monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"ran a command outside Colab: {a}"))
    assert _run(_first_cell(path)) == ""
    assert Path.cwd() == tmp_path and not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------- Colab


@pytest.fixture(scope="module")
def fork(tmp_path_factory) -> str:
    """A local bare repository standing for a fork on GitHub, with this checkout's commit on FORK_BRANCH."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the repository")
    bare = tmp_path_factory.mktemp("github") / "classic-cnns-book.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "config", "receive.shallowUpdate", "true"], check=True)  # CI clones
    for branch in (FORK_BRANCH, "main"):
        subprocess.run(["git", "-C", str(ROOT), "push", "--quiet", str(bare), f"HEAD:refs/heads/{branch}"],
                       check=True, capture_output=True)
    return bare.as_uri()


@pytest.fixture
def colab(monkeypatch, tmp_path):
    """A simulated Colab: google.colab importable, /content as the working directory, pip recorded instead of
    run, git refused any address but a local one, a CPU runtime. Yields the list of commands run."""
    import torch

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    content = tmp_path / "content"
    content.mkdir()
    monkeypatch.chdir(content)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    commands: list[list[str]] = []
    real_run = subprocess.run

    def run(args, *rest, **kwargs):
        commands.append([str(a) for a in args])
        if "pip" in commands[-1]:
            return subprocess.CompletedProcess(args, 0, "", "")
        assert commands[-1][0] == "git", f"the Colab cell ran {args}"
        assert not any(a.startswith(("http:", "https:", "git@", "ssh:")) for a in commands[-1]), (
            f"the simulated Colab cell would use the network: {args}")
        return real_run(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    yield commands


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_in_colab_a_fork_and_branch_are_cloned_and_a_cpu_runtime_is_priced(path, colab, fork, monkeypatch):
    monkeypatch.setenv("CNNBOOK_REPO", fork)
    monkeypatch.setenv("CNNBOOK_BRANCH", FORK_BRANCH)
    content = Path.cwd()
    printed = _run(_first_cell(path))

    book = content / "classic-cnns-book" / "book"
    assert Path.cwd() == book and (book / "lib" / "__init__.py").is_file()
    assert sys.path[0] == str(book), "lib must be importable from the clone"
    assert f"lib comes from {fork}, branch {FORK_BRANCH} (commit " in printed, printed
    clones = [c for c in colab if c[:2] == ["git", "clone"]]
    assert len(clones) == 1 and FORK_BRANCH in clones[0] and fork in clones[0]
    pips = [c for c in colab if "pip" in c]
    assert pips and all("-r" not in c and "requirements.txt" not in " ".join(c) for c in pips)
    assert not any("torch" == c[-1] or "torchvision" in c for c in pips), "Colab's own torch stays"

    no_gpu = printed[printed.index("No GPU found:"):]
    if "trains nothing" not in no_gpu:
        assert re.search(r"\d+(-\d+)? min", no_gpu), f"no cost for full mode on a CPU: {no_gpu}"
        assert "T4 GPU" in no_gpu and "CNNBOOK_QUICK" in no_gpu and "before `import lib`" in no_gpu


def test_in_colab_the_published_cost_of_each_measured_chapter_is_printed(colab, fork, monkeypatch):
    """Issue #19's estimates (measured CPU throughput on real-size data) for the chapters that have one."""
    monkeypatch.setenv("CNNBOOK_REPO", fork)
    expected = {"01_lenet": "8-14 min", "04_googlenet": "about 30 min", "06_comparison": "16-35 min"}
    content = Path.cwd()
    for chapter, cost in expected.items():
        os.chdir(content)
        printed = _run(_first_cell(ROOT / "book" / f"{chapter}.ipynb"))
        assert f"full mode trains for {cost} on this CPU runtime" in printed, (chapter, printed)


def test_in_colab_running_the_cell_again_reuses_or_replaces_the_clone(colab, fork, monkeypatch):
    monkeypatch.setenv("CNNBOOK_REPO", fork)
    source = _first_cell(NOTEBOOKS[1])
    content = Path.cwd()
    _run(source)  # clones branch main of the fork
    assert _run(source) == "", "run again from book/, the cell has nothing to do"
    os.chdir(content)  # a new notebook of the same session starts in /content again
    assert "branch main" in _run(source)
    assert sum(c[:2] == ["git", "clone"] for c in colab) == 1, "the same repository and branch are not cloned twice"
    os.chdir(content)
    monkeypatch.setenv("CNNBOOK_BRANCH", FORK_BRANCH)
    assert f"branch {FORK_BRANCH}" in _run(source)
    assert sum(c[:2] == ["git", "clone"] for c in colab) == 2, "another branch replaces the clone"
    origin = subprocess.run(["git", "-C", str(content / "classic-cnns-book"), "branch", "--show-current"],
                            capture_output=True, text=True).stdout.strip()
    assert origin == FORK_BRANCH


def test_in_colab_on_a_gpu_runtime_the_cell_names_the_gpu(colab, fork, monkeypatch):
    import torch

    monkeypatch.setenv("CNNBOOK_REPO", fork)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Tesla T4")
    printed = _run(_first_cell(NOTEBOOKS[1]))
    assert "GPU: Tesla T4" in printed and "No GPU found" not in printed


# ---------------------------------------------------------------------------------------- local Jupyter


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_import_cell_finds_lib_from_the_repository_root_or_says_what_to_do(path, monkeypatch, tmp_path):
    block = _import_fallback(path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)

    monkeypatch.chdir(ROOT / "book")  # where Jupyter runs a notebook: nothing to do, nothing printed
    before = list(sys.path)
    assert _run(block) == "" and sys.path == before

    monkeypatch.chdir(ROOT)  # an editor running notebooks from the repository's root
    assert _run(block) == "" and sys.path[0] == str(ROOT / "book")

    monkeypatch.chdir(tmp_path)  # somewhere else, but JupyterLab says where the notebook is
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    assert _run(block) == "" and sys.path[0] == str(ROOT / "book")

    monkeypatch.delenv("JPY_SESSION_NAME")
    printed = _run(block)
    assert printed.count("\n") == 1 and "jupyter lab book/" in printed


def _readme_jupyter_command() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^(\.venv/bin/jupyter lab [^\n`]*)$", readme, re.MULTILINE)
    assert match, "README.md gives no `.venv/bin/jupyter lab ...` command to open the book"
    return match.group(1).split()


def test_the_readme_jupyter_command_serves_the_notebooks(tmp_path):
    command = _readme_jupyter_command()
    jupyter = Path(sys.executable).with_name("jupyter")
    if not Path(sys.executable).with_name("jupyter-lab").exists():
        pytest.skip("JupyterLab is not installed in this environment (requirements.txt installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "cnnbook-test"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    server = subprocess.Popen(
        [str(jupyter), *command[1:], "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],  # CI containers
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/api/contents/01_lenet.ipynb?content=0&token={token}"
        for _ in range(120):
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    listing = json.load(response)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"jupyter lab exited: {server.stderr.read().decode()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail("jupyter lab did not answer within 60 s")
        assert listing["type"] == "notebook" and listing["path"] == "01_lenet.ipynb"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10) as response:
            assert response.status == 200 and b"JupyterLab" in response.read()
    finally:
        server.terminate()
        server.wait(timeout=30)
