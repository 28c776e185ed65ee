"""Names that must be one of a known set: one error message, with the closest matches, for the whole library."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_matches(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Up to `n` entries of `choices` that look like `name` (difflib's ratio), best first."""
    return difflib.get_close_matches(name, [c for c in choices if c], n=n)


def unknown(what: str, name: str, choices: Iterable[str], *, show: int = 12) -> ValueError:
    """A ValueError for an unknown `name`: "unknown model 'resnt18' (did you mean 'resnet18'?); choose one of: ...".

    It is returned, not raised, so that the caller writes `raise unknown(...)` and the traceback points there.
    At most `show` of the choices are listed, with a count of the rest.
    """
    choices = list(choices)
    close = close_matches(name, choices)
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    listed = ", ".join(choices[:show]) + (f", ... ({len(choices) - show} more)" if len(choices) > show else "")
    return ValueError(f"unknown {what} {name!r}{hint}; choose one of: {listed}")
