"""How fast does `lib.fit` train, compared with the usual torchvision pipeline? One run, one machine.

Usage (from the repository root):
    python benchmarks/bench.py                  # full run, a few minutes on 2 CPU cores
    python benchmarks/bench.py --quick          # CI-sized smoke test, seconds; writes a temporary file
The last line printed is the speed-up for the LeNet/MNIST-sized workload, e.g. "... : 1.87x".
The code is the package beside this file (see benchmarks/__init__.py and benchmarks/README.md).
"""
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, Python puts benchmarks/ first on the path, where the package's modules would
    # shadow any installed module of the same name: put the repository there instead.
    HERE = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    sys.path.insert(0, str(HERE.parent))

    from benchmarks.cli import main

    main()
