"""Where a benchmark ran: the CPU, the cores this process may use, the load, the library versions."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision


def cpu_model() -> str:
    """The CPU's marketing name, as far as the operating system tells it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    """CPU cores this process may run on (the container's share, where the OS says so)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_workers() -> int:
    """DataLoader workers as usually chosen: one per core (2 on Colab), at most 8."""
    return max(1, min(8, usable_cores()))


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict:
    """The CPU, the usable cores and all logical CPUs, the platform and Python's version."""
    return {"cpu": cpu_model(), "cores": usable_cores(), "logical_cpus": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version()}


def versions() -> dict:
    """The versions of the libraries that the figures depend on (CUDA and cuDNN None without a GPU)."""
    import PIL

    cuda = torch.version.cuda if torch.cuda.is_available() else None
    cudnn = torch.backends.cudnn.version() if torch.cuda.is_available() else None
    return {"torch": torch.__version__, "torchvision": torchvision.__version__, "pillow": PIL.__version__,
            "numpy": np.__version__, "cuda": cuda, "cudnn": cudnn}
