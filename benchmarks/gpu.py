"""One GPU check, for a session that is lent a CUDA machine: everything the CPU could not verify.

Three parts, each recorded with the GPU's name in one results file (benchmarks/gpu_results.json):

    benchmark   `bench.py --device cuda`, the full run, into a file of its own, embedded in the results
    steps       every model family trained a few steps on one small batch under fp16 autocast with the
                gradient scaler, under bf16, with channels_last and with torch.compile: the loss must be
                finite and fall
    notebook    one chapter in full mode through .ci/execute_notebooks.py, run on a copy of the notebook

Without CUDA it prints one line saying so and exits 0. `--dry-run` runs the training steps on the CPU for
a few steps (torch.compile with its "eager" backend, which traces but generates no code), so that the
test suite covers that code path; bf16 and fp16 autocast then run on the CPU and no gradient scaler
is needed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import lib
import torch
from lib.device import autocast, autocast_dtype, grad_scaler
from lib.optim import make_optimizer
from lib.training import classification_loss

from . import ROOT
from .machine import versions

DEFAULT_OUTPUT = ROOT / "benchmarks" / "gpu_results.json"
NO_CUDA = ("no CUDA device here: the GPU check needs one, nothing was run "
           "(--dry-run tries its training steps on the CPU)")
PARTS = ("benchmark", "steps", "notebook")

# family -> (lib.models builder, its keyword arguments, the image shape it trains on): small inputs.
# No dropout: over a few steps its noise can hide the fall of the loss (AlexNet's most of all).
FAMILIES = {
    "lenet": ("lenet5", {}, (1, 28, 28)),
    "alexnet": ("alexnet_cifar", {"dropout": 0.0}, (3, 32, 32)),
    "vgg": ("vgg11_bn", {"num_classes": 10, "classifier": "cifar", "dropout": 0.0}, (3, 32, 32)),
    "googlenet": ("googlenet", {"num_classes": 10, "stem": "cifar", "width": 0.25}, (3, 32, 32)),
    "resnet": ("resnet20", {}, (3, 32, 32)),
    "resnet18": ("resnet18", {"num_classes": 10, "stem": "cifar"}, (3, 32, 32)),
}
DRY_RUN_FAMILIES = ("lenet", "resnet")  # a CPU covers the code path with the two smallest


@dataclass(frozen=True)
class Mode:
    """How a family is trained: the autocast dtype ("lib" = lib.fit's choice), the layout, compilation."""

    name: str
    dtype: str  # "float16", "bfloat16" or "lib"
    channels_last: bool
    compile: bool


MODES = (
    Mode("fp16", "float16", channels_last=False, compile=False),
    Mode("bf16", "bfloat16", channels_last=False, compile=False),
    Mode("channels_last", "lib", channels_last=True, compile=False),
    Mode("compile", "lib", channels_last=True, compile=True),  # what lib.fit(compile=True) runs on CUDA
)


def mode_dtype(mode: Mode, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of `mode` on `device` (None: full precision)."""
    if mode.dtype == "lib":
        return autocast_dtype(device, True)
    return getattr(torch, mode.dtype)


def small_batch(shape: tuple[int, ...], batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed batch of normal noise and labels 0..9: a network learns it by heart, so its loss must fall."""
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0))
    return x.to(device), (torch.arange(batch) % 10).to(device)


def train_steps(family: str, mode: Mode, *, device: torch.device, steps: int, batch: int,
                compile_backend: str) -> list[float]:
    """The training loss of each of `steps` steps of `family` in `mode`, on one small batch."""
    name, kwargs, shape = FAMILIES[family]
    torch.manual_seed(0)
    model = lib.get_model(name, **kwargs).to(device).train()
    x, y = small_batch(shape, batch, device)
    if mode.channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    runner = torch.compile(model, backend=compile_backend) if mode.compile else model
    optimizer = make_optimizer(model, "sgd", lr=0.05, momentum=0.9)
    dtype = mode_dtype(mode, device)
    scaler = grad_scaler(dtype if device.type == "cuda" else None)  # loss scaling is for CUDA's fp16
    losses = []
    for _ in range(steps):
        with autocast(device, dtype):
            loss, _, _ = classification_loss(runner(x), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)  # skipped by the scaler when fp16 gradients overflowed
        scaler.update()
        losses.append(loss.item())
    return losses


def check_steps(family: str, mode: Mode, **options: object) -> dict:
    """Train `family` in `mode` and judge it: finite losses that fall (the last below the first)."""
    device = options["device"]
    entry = {"family": family, "model": FAMILIES[family][0], "mode": mode.name,
             "dtype": str(mode_dtype(mode, device)).replace("torch.", ""),
             "channels_last": mode.channels_last, "compile": mode.compile}
    start = time.perf_counter()
    try:
        losses = train_steps(family, mode, **options)
    except Exception as error:  # noqa: BLE001 - a failure is a result: record it, go on with the others
        return {**entry, "ok": False, "error": f"{type(error).__name__}: {error}"[:2000],
                "seconds": round(time.perf_counter() - start, 2)}
    finite = all(math.isfinite(loss) for loss in losses)
    falls = finite and losses[-1] < losses[0]
    return {**entry, "ok": finite and falls, "finite": finite, "falls": falls,
            "losses": [round(loss, 4) for loss in losses], "seconds": round(time.perf_counter() - start, 2)}


def run_steps(families: tuple[str, ...], *, device: torch.device, steps: int, batch: int,
              compile_backend: str) -> list[dict]:
    """Every family in every mode, one line printed per check."""
    results = []
    for family in families:
        for mode in MODES:
            entry = check_steps(family, mode, device=device, steps=steps, batch=batch,
                                compile_backend=compile_backend)
            results.append(entry)
            detail = entry.get("error") or " ".join(f"{loss:.3f}" for loss in entry["losses"])
            print(f"  {family:10} {mode.name:14} {'ok' if entry['ok'] else 'FAILED':6} "
                  f"{entry['seconds']:6.1f} s  {detail}", flush=True)
    return results


def tail(text: str, characters: int = 3000) -> str:
    """The end of a long output, where the error or the summary is."""
    return text[-characters:]


def run_command(command: list[str], timeout: int) -> tuple[int | None, str, str]:
    """(exit status, stdout, stderr) of `command` run from the repository; status None if it timed out."""
    try:
        process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        out, err = (s.decode(errors="replace") if isinstance(s, bytes) else s or ""
                    for s in (expired.stdout, expired.stderr))
        return None, out, err + f"\ntimed out after {timeout} s"
    return process.returncode, process.stdout, process.stderr


def run_benchmark(folder: Path, timeout: int) -> dict:
    """`bench.py --device cuda` (a full run) into a file in `folder`; its results embedded in ours."""
    output = folder / "bench_cuda.json"
    start = time.perf_counter()
    bench = ROOT / "benchmarks" / "bench.py"
    command = [sys.executable, str(bench), "--device", "cuda", "--output", str(output)]
    status, stdout, stderr = run_command(command, timeout)
    lines = stdout.strip().splitlines()
    return {"command": "benchmarks/bench.py --device cuda", "returncode": status,
            "seconds": round(time.perf_counter() - start, 1), "last_line": lines[-1] if lines else "",
            "results": json.loads(output.read_text()) if status == 0 else None,
            "log": tail(stdout + stderr), "ok": status == 0}


def run_notebook(chapter: str, folder: Path, timeout: int) -> dict:
    """One chapter in full mode, executed in a copy beside it (kept in `folder`); the notebook is untouched."""
    source = ROOT / "book" / f"{chapter}.ipynb"
    if not source.exists():
        raise ValueError(f"no chapter {chapter!r}: expected a notebook at book/{chapter}.ipynb")
    copy = source.with_name(f".gpu_check_{chapter}.ipynb")  # beside it: `import lib` and ../ paths work
    kept = folder / f"gpu_check_{chapter}.ipynb"
    shutil.copyfile(source, copy)
    start = time.perf_counter()
    try:
        command = [sys.executable, str(ROOT / ".ci" / "execute_notebooks.py"), str(copy)]
        status, stdout, stderr = run_command(command, timeout)
        if status == 0:  # execute_notebooks.py writes the executed notebook only when it ran cleanly
            shutil.move(copy, kept)
    finally:
        copy.unlink(missing_ok=True)
    return {"chapter": chapter, "returncode": status, "seconds": round(time.perf_counter() - start, 1),
            "executed_copy": str(kept) if status == 0 else None, "log": tail(stdout + stderr),
            "ok": status == 0}


def gpu_info(device: torch.device) -> dict | None:
    """The GPU's name, compute capability and memory (None on the CPU)."""
    if device.type != "cuda":
        return None
    properties = torch.cuda.get_device_properties(device)
    return {"name": properties.name, "capability": list(torch.cuda.get_device_capability(device)),
            "memory_gib": round(properties.total_memory / 2**30, 1)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options of `gpu_check.py`."""
    parser = argparse.ArgumentParser(prog="benchmarks/gpu_check.py", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="the training steps only, on the CPU, a few steps of the two smallest families")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"results file (default: {DEFAULT_OUTPUT.relative_to(ROOT)}; "
                             "with --dry-run a temporary file)")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated parts to run on the GPU (default: {','.join(PARTS)})")
    parser.add_argument("--chapter", default="01_lenet", help="the notebook run in full mode (default 01_lenet)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps per check (default 10; dry run 3)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds allowed to the benchmark and notebook")
    args = parser.parse_args(argv)
    args.parts = tuple(part.strip() for part in args.parts.split(",") if part.strip())
    unknown = [part for part in args.parts if part not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    return args


def run_parts(args: argparse.Namespace, device: torch.device, folder: Path) -> dict:
    """The parts asked for (the dry run: the training steps alone), each recorded under its name."""
    dry = device.type != "cuda"
    results: dict = {}
    if "steps" in args.parts or dry:
        print("training steps: loss finite and falling in every mode", flush=True)
        results["steps"] = run_steps(DRY_RUN_FAMILIES if dry else tuple(FAMILIES), device=device,
                                     steps=args.steps or (3 if dry else 10), batch=4 if dry else 32,
                                     compile_backend="eager" if dry else "inductor")
    if dry:
        return results
    if "benchmark" in args.parts:
        print("benchmark: bench.py --device cuda", flush=True)
        results["benchmark"] = run_benchmark(folder, args.timeout)
        print(f"  {results['benchmark']['last_line']}", flush=True)
    if "notebook" in args.parts:
        print(f"notebook: {args.chapter} in full mode", flush=True)
        results["notebook"] = run_notebook(args.chapter, folder, args.timeout)
        print(f"  {'ok' if results['notebook']['ok'] else 'FAILED'} in {results['notebook']['seconds']:.0f} s",
              flush=True)
    return results


def passed(parts: dict) -> tuple[int, int]:
    """(checks passed, checks run): each training-steps entry, the benchmark and the notebook count once."""
    checks = [*parts.get("steps", []), *(parts[name] for name in ("benchmark", "notebook") if name in parts)]
    return sum(bool(check["ok"]) for check in checks), len(checks)


def main(argv: list[str] | None = None) -> int:
    """Run the check; 0 when every part passed (or there is no CUDA device and no dry run), 1 otherwise."""
    args = parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    device = torch.device("cpu" if args.dry_run else "cuda")
    output = args.output or (Path(tempfile.mkdtemp(prefix="gpu-check-")) / "gpu_results.json" if args.dry_run
                             else DEFAULT_OUTPUT)
    output.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    parts = run_parts(args, device, output.parent)
    ok, total = passed(parts)
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "dry_run": args.dry_run, "device": device.type, "gpu": gpu_info(device), "versions": versions(),
               "command": " ".join(["benchmarks/gpu_check.py", *(argv if argv is not None else sys.argv[1:])]),
               **parts, "passed": ok, "checks": total, "seconds": round(time.perf_counter() - started, 1)}
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"GPU check{' (dry run, CPU)' if args.dry_run else ''}: {ok} of {total} checks passed; "
          f"results in {output}")
    return 0 if ok == total else 1
