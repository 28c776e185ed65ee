"""The data folder: where downloads and built sets are kept, written atomically and checked when read.

A built set is stored as one file of named tensors (`torch.save` of a dict). It is written to a temporary
file in the same folder and then renamed over the final name (`os.replace`, atomic on POSIX and Windows),
so that an interrupted run or two processes building at once never leave a half-written file under the
final name. Reading checks every tensor's shape and dtype against what the builder promises; a file that
cannot be read or does not match is rebuilt with one printed line, never used.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

DATA_ENV = "CNNBOOK_DATA"

# What a built set promises: for each name, the shape and dtype of its tensor.
Spec = Mapping[str, tuple[tuple[int, ...], torch.dtype]]


class CacheInvalid(Exception):
    """A cached file cannot be used; the message says why."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: `root` if given, else `$CNNBOOK_DATA`, else `~/.cache/cnnbook`."""
    if root is None:
        root = os.environ.get(DATA_ENV) or Path("~/.cache/cnnbook")
    return Path(root).expanduser()


def save_atomic(tensors: Mapping[str, torch.Tensor], path: Path) -> None:
    """Write `tensors` to `path` through a temporary file and a rename; raises OSError when it cannot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fresh name per writer ("x": fail rather than share), created with the usual permissions (mkstemp's
    # would be owner-only, which breaks a data folder shared between users).
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "xb") as file:
            torch.save(dict(tensors), file)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the name points at them
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def load_checked(path: Path, spec: Spec) -> dict[str, torch.Tensor]:
    """The tensors stored in `path`, after checking them against `spec`; raises `CacheInvalid`."""
    try:
        # weights_only: a cache file is data, and loading it must never run code from a pickle.
        tensors = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated zip, a pickle error, an unreadable file: all mean "rebuild"
        raise CacheInvalid(f"could not be read ({type(error).__name__}: {_short(error)})") from None
    if not isinstance(tensors, dict):
        raise CacheInvalid(f"holds a {type(tensors).__name__}, not a dict of tensors")
    check_tensors(tensors, spec)
    return {key: tensors[key] for key in spec}


def cached(
    path: Path,
    spec: Spec,
    build: Callable[[], dict[str, torch.Tensor]],
    what: str,
    check: Callable[[dict[str, torch.Tensor]], str | None] | None = None,
) -> dict[str, torch.Tensor]:
    """The tensors of a built set: read from `path` when it holds a valid copy, else built and saved there.

    Prints one line when a cached file is rebuilt and one when the result cannot be saved (a read-only
    folder, a full disk); the set is still returned, built in memory. Nothing is printed otherwise.

    Args:
        path: the cache file.
        spec: the shape and dtype of every tensor `build` returns.
        build: makes the tensors (deterministically: a rebuild gives the same set).
        what: the set's name in the printed lines.
        check: an optional test of the contents beyond shapes and dtypes; it returns why a cached copy is
            unusable ("has labels that do not match its digits"), or None.
    """
    if path.exists():
        try:
            tensors = load_checked(path, spec)
            problem = check(tensors) if check else None
            if problem is None:
                return tensors
            raise CacheInvalid(problem)
        except CacheInvalid as error:
            print(f"Rebuilding the {what}: the cached file {path} {error}.")
    tensors = build()
    try:  # a builder that breaks its own promise is a bug, not a cache problem
        check_tensors(tensors, spec)
    except CacheInvalid as error:
        raise RuntimeError(f"the {what} builder broke its promise: it {error}") from None
    try:
        save_atomic(tensors, path)
    except OSError as error:
        print(f"Could not cache the {what} in {path.parent} ({_short(error)}); it was built in memory.")
    return tensors


def check_tensors(tensors: Mapping[str, object], spec: Spec) -> None:
    """Check named tensors against `spec`; raises `CacheInvalid` naming the first mismatch."""
    for key, (shape, dtype) in spec.items():
        value = tensors.get(key)
        if not isinstance(value, torch.Tensor):
            raise CacheInvalid(f"has no tensor {key!r}")
        if tuple(value.shape) != tuple(shape) or value.dtype != dtype:
            raise CacheInvalid(
                f"has {key} of shape {tuple(value.shape)} and dtype {value.dtype}, "
                f"expected {tuple(shape)} and {dtype}"
            )


def _short(error: BaseException) -> str:
    """An exception's message on one line, at most 160 characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:160]
