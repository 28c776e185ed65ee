"""The command line: `python benchmarks/bench.py [options]`, the results file and the lines printed.

The last line printed is the speed-up of `lib.fit` over the naive pipeline for the LeNet/MNIST-sized
workload, e.g. "speed-up over the naive pipeline (LeNet/MNIST-sized): 1.87x".
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import lib
import torch
import torchvision
from lib.device import device_name
from lib.quick import set_quick_mode

from . import ROOT
from .fast import LAYOUTS, fast_options
from .machine import cpu_model, default_workers, load_average, machine_info, usable_cores, versions
from .parity import run_parity
from .t4 import t4_section
from .workloads import WORKLOADS, run_workload

DEFAULT_OUTPUT = ROOT / "benchmarks" / "results.json"
SCHEMA_VERSION = 1
DESCRIPTION = "How fast does lib.fit train, compared with the usual torchvision pipeline? One run, one machine."


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options of `bench.py` (see benchmarks/README.md)."""
    parser = argparse.ArgumentParser(prog="benchmarks/bench.py", description=DESCRIPTION)
    parser.add_argument("--quick", action="store_true",
                        help="CI-sized run: tiny batches, a few steps; written to a temporary file unless "
                             "--output is given (never to the committed results.json)")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"results file (JSON; default: {DEFAULT_OUTPUT.relative_to(ROOT)}, "
                             "or a temporary file with --quick)")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the fastest available)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads of the training processes (default: one per usable core, "
                             "torch's own default, so that lib.fit gets the cores the naive pipeline's "
                             "workers get; 1 is steadier on a busy machine)")
    parser.add_argument("--workers", type=int, default=None,
                        help="DataLoader workers of the naive pipeline (default: the cores, at most 8)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="alternating measurements per workload (default 3; --quick 1)")
    parser.add_argument("--channels-last", choices=LAYOUTS, default="auto",
                        help="lib.fit(channels_last=...) on the fast path (auto: on for CUDA and CPU)")
    parser.add_argument("--compile", action="store_true", help="lib.fit(compile=True) on the fast path")
    parser.add_argument("--t4-only", action="store_true",
                        help="only recompute the T4 estimates (after CHAPTER_RUNS changed) in an existing "
                             "results file; they depend on no measurement of this machine")
    return parser.parse_args(argv)


def output_path(args: argparse.Namespace) -> Path:
    """Where the results go: --output if given; a new temporary file for --quick; else results.json.

    A quick run's figures mean nothing, so it must never replace the committed measurements.
    """
    if args.output is not None:
        return args.output
    if args.quick and not args.t4_only:
        handle, name = tempfile.mkstemp(prefix="bench-quick-", suffix=".json")
        os.close(handle)  # a unique name, kept: the results replace the empty file at the end
        return Path(name)
    return DEFAULT_OUTPUT


def shown(path: Path) -> str:
    """`path` as printed: relative to the repository when inside it, in full elsewhere (a temporary file)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def now() -> str:
    """The current UTC time, to the second, in ISO format."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def update_t4_estimate(output: Path) -> dict:
    """Replace the T4 estimates in an existing results file, leaving the measurements alone."""
    if not output.exists():
        raise SystemExit(f"--t4-only updates an existing results file, and {output} does not exist")
    results = json.loads(output.read_text())
    results["t4_estimate"] = {**t4_section(), "date": now()}
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"T4 estimates updated in {output.name}")
    return results


def measure_everything(args: argparse.Namespace, device: torch.device) -> dict:
    """The measured part of the results: the workloads, the parity check and the T4 estimates."""
    workers = default_workers() if args.workers is None else args.workers
    options = fast_options(device, channels_last=args.channels_last, compile=args.compile)
    rounds = args.rounds or (1 if args.quick else 3)
    workloads = []
    for workload in WORKLOADS:
        print(f"{workload.title}: naive pipeline vs lib.fit vs the compute-only loop", flush=True)
        workloads.append(run_workload(workload, quick=args.quick, device=device, rounds=rounds,
                                      workers=workers, options=options))
    print("forward + backward per batch, lib.models vs torchvision (ratio = lib time / torchvision time)")
    parity = run_parity(quick=args.quick, device=device, rounds=rounds)
    return {"workers": workers, "workloads": workloads, "parity": parity, "t4_estimate": t4_section()}


def run(args: argparse.Namespace, argv: list[str] | None) -> dict:
    """Measure on this machine and assemble the results file's content."""
    started = time.perf_counter()
    torch.set_num_threads(args.threads or usable_cores())
    device = torch.device(args.device) if args.device else lib.get_device()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # for every pipeline (lib.fit would switch it on anyway)
    mode = "quick" if args.quick else "full"
    load_before = load_average()
    print(f"benchmark ({mode}) on {device_name(device)}; CPU {cpu_model()}, {usable_cores()} cores, "
          f"load average {load_before}; torch {torch.__version__}, torchvision {torchvision.__version__}")
    measured = measure_everything(args, device)
    return {
        "schema": SCHEMA_VERSION,
        "date": now(),
        "mode": mode,
        "command": " ".join(["benchmarks/bench.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": {**machine_info(), "load_average_before": load_before, "load_average_after": load_average()},
        "device": {"type": device.type, "name": device_name(device), "torch_threads": torch.get_num_threads(),
                   "dataloader_workers": measured["workers"]},
        "versions": versions(),
        "workloads": measured["workloads"],
        # lib.fit's throughput as a fraction of the compute-only loop's, per workload: how close it gets.
        "limit": {w["key"]: w["fraction_of_compute"]["fast"] for w in measured["workloads"]},
        "parity": measured["parity"],
        "t4_estimate": measured["t4_estimate"],
        "seconds": round(time.perf_counter() - started, 1),
    }


def print_summary(results: dict, output: Path) -> None:
    """Where the results went, each workload's fractions of the compute-only loop, then the speed-ups."""
    print(f"results written to {shown(output)} ({results['seconds']:.0f} s in all)")
    for w in results["workloads"]:
        fractions = w["fraction_of_compute"]
        print(f"fraction of the compute-only loop ({w['title']}): lib.fit {fractions['fast']:.2f}, "
              f"naive pipeline {fractions['naive']:.2f}")
    for w in reversed(results["workloads"]):  # LeNet last: its figure is the last line
        print(f"speed-up over the naive pipeline ({w['title']}): {w['speedup']:.2f}x")


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark (or only update the T4 estimates) and return what was written."""
    args = parse_args(argv)
    output = output_path(args)
    if args.t4_only:
        return update_t4_estimate(output)
    previous = set_quick_mode(False)  # the steps are chosen here: lib.fit must not cap them
    try:
        results = run(args, argv)
    finally:
        set_quick_mode(previous)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print_summary(results, output)
    return results
