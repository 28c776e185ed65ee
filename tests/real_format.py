"""Writers for tiny dataset files in the real formats that torchvision reads.

MNIST and Fashion-MNIST: the four extracted IDX files under `<root>/<Folder>/raw`. CIFAR-10: the Python
pickles under `<root>/cifar-10-batches-py`. Used by tests/test_data.py (exact pixels and labels) and by
tests/test_real_data_notebooks.py (every notebook run on such files).
"""
from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format of the MNIST files (big-endian header, then the raw bytes)."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_idx_set(raw: Path, train_x, train_y, test_x, test_y) -> None:
    """The four files of an MNIST-format set, as torchvision leaves them after extracting the .gz files."""
    raw.mkdir(parents=True, exist_ok=True)
    write_idx(raw / "train-images-idx3-ubyte", train_x)
    write_idx(raw / "train-labels-idx1-ubyte", train_y)
    write_idx(raw / "t10k-images-idx3-ubyte", test_x)
    write_idx(raw / "t10k-labels-idx1-ubyte", test_y)


def write_cifar_pickles(folder: Path, batches: list[dict], test: dict, names: list[str]) -> None:
    """Five training batches, the test batch and the metadata, pickled as CIFAR-10's Python version is.

    Each batch is {"data": uint8 rows of 3,072 bytes (red plane, green, blue), "labels": [...]}.
    """
    folder.mkdir(parents=True)
    for i, batch in enumerate(batches, start=1):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(test, f)
    meta = {"label_names": names, "num_cases_per_batch": len(batches[0]["labels"]), "num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f)


def balanced_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` labels, each class 0-9 as often as `n` allows, in a shuffled order."""
    return rng.permutation(np.arange(n) % 10).astype(np.uint8)


def write_random_mnist(root: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    """An MNIST-format set of random 28x28 images with balanced labels under `root/MNIST/raw`."""
    rng = np.random.default_rng(seed)
    write_idx_set(
        root / "MNIST" / "raw",
        rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8), balanced_labels(n_train, rng),
        rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8), balanced_labels(n_test, rng),
    )


def write_random_cifar10(root: Path, per_batch: int, n_test: int, seed: int = 0) -> None:
    """A CIFAR-10-format set of random 32x32 colour images with balanced labels under `root`."""
    rng = np.random.default_rng(seed)

    def batch(n: int) -> dict:
        return {"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
                "labels": balanced_labels(n, rng).tolist()}

    batches = [batch(per_batch) for _ in range(5)]
    write_cifar_pickles(root / "cifar-10-batches-py", batches, batch(n_test), CIFAR_NAMES)
