"""Throughput records, and the CPU time of the processes that produce it."""
from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from lib.device import synchronize


@dataclass(frozen=True)
class Steps:
    """Training steps per measurement: `warmup` untimed ones, then `timed` ones; at most `max_rounds`."""

    warmup: int
    timed: int
    max_rounds: int | None = None


@dataclass(frozen=True)
class Rate:
    """Training throughput: images per second of wall-clock time and per second of CPU time.

    CPU time adds up every process of the pipeline (the training process and the DataLoader's
    workers), so `per_cpu_second` says how much CPU work an image costs; it changes less than
    wall-clock time when other programs load the machine. None where the OS does not tell (not Linux).
    """

    per_second: float
    per_cpu_second: float | None


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process `pid` so far, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def timed_steps(step: Callable[[], None], steps: Steps, *, device: torch.device, batch_size: int,
                helper_cpu_seconds: Callable[[], float | None] = lambda: 0.0) -> Rate:
    """Run `step` `steps.warmup` times untimed, then `steps.timed` times timed; the throughput of the latter.

    The device is synchronised before and after the timed steps, so that queued GPU work is counted.
    `helper_cpu_seconds` gives the CPU time so far of the helper processes (a DataLoader's workers);
    their share of the timed steps is added to this process's CPU time.
    """
    for _ in range(steps.warmup):
        step()
    synchronize(device)
    start, cpu_start, helpers_start = time.perf_counter(), time.process_time(), helper_cpu_seconds()
    for _ in range(steps.timed):
        step()
    synchronize(device)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    helpers_end = helper_cpu_seconds()
    images = steps.timed * batch_size
    if helpers_start is None or helpers_end is None:
        return Rate(images / seconds, None)
    return Rate(images / seconds, images / (cpu + helpers_end - helpers_start))


def median_per_second(rates: Iterable[Rate]) -> float:
    """The median wall-clock throughput of several measurements."""
    return statistics.median(r.per_second for r in rates)


def median_per_cpu_second(rates: list[Rate]) -> float | None:
    """The median CPU-time throughput, rounded to 0.1 image; None if any measurement lacks it."""
    values = [r.per_cpu_second for r in rates]
    return None if None in values else round(statistics.median(values), 1)


def describe(rate: Rate) -> str:
    """One measurement as printed after each round, e.g. " 16,621 img/s (  8,501 per CPU-s)"."""
    cpu = f"{rate.per_cpu_second:7,.0f}" if rate.per_cpu_second else "      ?"
    return f"{rate.per_second:7,.0f} img/s ({cpu} per CPU-s)"
