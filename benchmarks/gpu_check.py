"""One GPU check for a CUDA machine: `python benchmarks/gpu_check.py` (see benchmarks/gpu.py).

    python benchmarks/gpu_check.py                      # on a CUDA machine: benchmark, training steps, notebook
    python benchmarks/gpu_check.py --output $OUT/gpu_results.json
    python benchmarks/gpu_check.py --dry-run            # anywhere: the training steps, a few, on the CPU

Without CUDA (and without --dry-run) it prints one line saying so and exits 0.
"""
import sys
from pathlib import Path

if __name__ == "__main__":
    # As in bench.py: the repository first on the path, instead of benchmarks/ itself.
    HERE = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    sys.path.insert(0, str(HERE.parent))

    from benchmarks.gpu import main

    sys.exit(main())
