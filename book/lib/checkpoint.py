"""Checkpoints of a training run: save after an epoch, resume later as if the run had never stopped.

A checkpoint holds the weights, the optimiser's state, the schedule's position, the `History` so far,
the shuffling generator and the state of every random generator of every process (Python, NumPy,
PyTorch's CPU and CUDA generators, the augmentation generator). Everything is stored as tensors,
numbers, strings and lists, so that `torch.load(..., weights_only=True)` reads it without unpickling
arbitrary objects. `lib.training.fit` is the only writer and reader; its private run state has the
attributes listed in `Resumable`.
"""
from __future__ import annotations

import os
import random
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from . import distributed
from .device import seed_everything
from .history import History


class Resumable(Protocol):
    """What a run exposes to be saved and resumed (the attributes `fit`'s run state has)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any  # a torch.optim.lr_scheduler.LRScheduler
    scaler: Any  # a GradScaler, enabled or not
    history: History
    shuffle_gen: torch.Generator
    augment_gen: torch.Generator
    device: torch.device
    launch: distributed.Launch
    seed: int
    settings: dict[str, Any]
    first_epoch: int
    train_seconds: float
    images_seen: int
    seconds_before: float


def resume_path(checkpoint: str | os.PathLike | None, resume: bool | str | os.PathLike | None) -> str | None:
    """The file a run resumes from: None (start afresh), `checkpoint` (resume=True) or the path given.

    Raises:
        ValueError: resume=True without a checkpoint path.
        FileNotFoundError: `resume` names a file that does not exist.
    """
    if resume is False or resume is None:
        return None
    if resume is True:
        if checkpoint is None:
            raise ValueError("resume=True continues from the checkpoint file: pass checkpoint=PATH as well")
        return os.fspath(checkpoint)
    path = os.fspath(resume)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint to resume from: {os.path.basename(path)} does not exist")
    return path


def rng_state(augment_gen: torch.Generator, device: torch.device) -> dict[str, Any]:
    """The state of every random generator this process draws from, in types `torch.load` accepts safely."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), position, has_gauss, cached),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "augment": augment_gen.get_state(),
    }


def set_rng_state(state: dict[str, Any], augment_gen: torch.Generator, device: torch.device) -> bool:
    """Restore `rng_state`'s generators; False if the augmentation generator's state is another device's."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    try:
        augment_gen.set_state(state["augment"])
    except RuntimeError:  # a CPU generator's state does not fit a CUDA generator, nor the reverse
        return False
    return True


def save(path: str | os.PathLike, run: Resumable, *, epoch: int, seconds: float) -> None:
    """Write everything a resumed run needs after `epoch`; called by all processes, written by rank 0.

    `seconds` is the run's wall time so far, including the time before an earlier resume.
    """
    rng = distributed.gather_objects(rng_state(run.augment_gen, run.device))  # every process's, by rank
    distributed.save_on_main({
        "epoch": epoch,
        "settings": run.settings,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),  # empty for a disabled scaler (no fp16)
        "history": run.history.to_dict(),
        "shuffle": run.shuffle_gen.get_state(),
        "rng": rng,
        "train_seconds": run.train_seconds,
        "images_seen": run.images_seen,
        "seconds": seconds,
    }, path)


def load(path: str | os.PathLike, settings: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint written by `save`, after checking that it was written by a run with these settings.

    Raises:
        ValueError: a setting differs; the message names each one with both values.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = state["settings"]
    different = [f"{name} {saved.get(name)!r} there, {value!r} here" for name, value in settings.items()
                 if saved.get(name) != value]
    if different:
        raise ValueError(f"{os.path.basename(path)} was written by a run with other settings "
                         f"({'; '.join(different)}): resume with the same ones, or start afresh")
    return state


def restore(path: str | os.PathLike, run: Resumable) -> tuple[int, str | None]:
    """Load the checkpoint at `path` into `run`, which must have been built with the same settings.

    Returns:
        The epoch the checkpoint was written after, and None, or a phrase saying why this process's
        random generators could not be restored and were seeded afresh instead.
    """
    state = load(path, run.settings)
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    if state["scaler"]:  # empty (or None, from older files) when the run had no fp16 scaling
        run.scaler.load_state_dict(state["scaler"])
    run.history = History(**{**state["history"], "device": run.history.device})
    run.first_epoch = state["epoch"] + 1
    run.train_seconds, run.images_seen = state["train_seconds"], state["images_seen"]
    run.seconds_before = state["seconds"]
    run.shuffle_gen.set_state(state["shuffle"])
    return state["epoch"], _restore_rng(state["rng"], run, state["epoch"])


def _restore_rng(saved: list[dict[str, Any]], run: Resumable, epoch: int) -> str | None:
    """This process's generators from `saved` (one entry per rank), or fresh streams if they do not fit."""
    world, rank = run.launch.world_size, run.launch.rank
    same_setup = len(saved) == world
    if same_setup and set_rng_state(saved[rank], run.augment_gen, run.device):
        return None
    # Another number of processes or another kind of device: fresh per-process streams, still repeatable.
    fresh = distributed.rank_seed(run.seed + epoch, rank)
    seed_everything(fresh)
    run.augment_gen.manual_seed(fresh + 1)
    return f"{len(saved)} process(es), this run has {world}" if not same_setup else "another kind of device"
