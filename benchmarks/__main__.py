"""`python -m benchmarks [options]`: the same as `python benchmarks/bench.py [options]`."""
from .cli import main

main()
