"""How fast does `lib.fit` train, compared with the usual torchvision pipeline? One run, one machine.

The package behind `python benchmarks/bench.py` (or `python -m benchmarks`), one concern per module:

    machine     the CPU, its cores and load, the library versions
    workloads   the measured workloads, their data, and the rounds that alternate the pipelines
    naive       the usual torchvision pipeline: PIL images, transforms, a DataLoader, an fp32 loop
    fast        lib.fit on the same network (the options it is given)
    compute     the compute-only loop: one batch already on the device, nothing but training steps
    timing      throughput records and the CPU time of processes
    network     mult-adds and layer calls of a network, on the meta device
    parity      forward + backward of lib.models against torchvision's twins
    t4          the Colab T4 estimate of each chapter's full-mode training
    cli         the command line, the results file and the last line
    gpu_check   one command for a CUDA machine (`python benchmarks/gpu_check.py`)

See benchmarks/README.md for what is measured and why.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The book's library lives in book/lib and is imported as `lib`, as the notebooks import it.
if str(ROOT / "book") not in sys.path:
    sys.path.insert(0, str(ROOT / "book"))
