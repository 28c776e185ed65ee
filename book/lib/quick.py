"""Quick mode: the test suite runs every notebook with tiny training budgets.

The environment variable CNNBOOK_QUICK (set by the repository's root conftest.py) is read once, when
`lib` is imported; `set_quick_mode` changes it for the process, for the benchmarks and for tests.
Functions that train take `quick=None`, meaning "the process-wide mode". The notebooks show the
full-mode budget and shrink it for the test suite in a cell tagged `remove-cell` (hidden in the rendered
book) that starts `if lib.quick_mode():`.
"""
from __future__ import annotations

import os

QUICK_ENV = "CNNBOOK_QUICK"

_quick = os.environ.get(QUICK_ENV, "") not in ("", "0")


def quick_mode() -> bool:
    """True when quick mode is on: CNNBOOK_QUICK was set (to anything but "" or "0"), or `set_quick_mode(True)`."""
    return _quick


def set_quick_mode(on: bool) -> bool:
    """Turn quick mode on or off for this process; returns the previous setting."""
    global _quick
    previous, _quick = _quick, bool(on)
    return previous


def resolve(quick: bool | None) -> bool:
    """`quick` if given, otherwise the process-wide mode."""
    return quick_mode() if quick is None else bool(quick)

