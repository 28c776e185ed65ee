"""Root test configuration: the test suite runs the book in quick mode and imports `lib` from book/."""
import os
import sys
from pathlib import Path

BOOK = Path(__file__).resolve().parent / "book"
sys.path.insert(0, str(BOOK))

# Inherited by the notebook kernels that nbval starts: training is capped to a few steps.
os.environ["CNNBOOK_QUICK"] = "1"
# The suite runs two workers on two cores (pytest -n 2), each test process or notebook kernel with one
# thread: two threads per process oversubscribe the cores and run several times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collectstart(collector):
    """nbval compares every stored output except PNG and JPEG images; lib.visualize stores plots as SVG,
    whose text differs between quick and full mode (and between a raster and a vector figure): skip it
    the same way."""
    if type(collector).__name__ == "IPyNbFile":
        collector.skip_compare = (*collector.skip_compare, "image/svg+xml")
