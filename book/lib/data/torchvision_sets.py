"""The real datasets through `torchvision.datasets`: MNIST, Fashion-MNIST and CIFAR-10.

This is the code that runs wherever the network is reachable (Colab, a laptop): torchvision downloads
the files once into the data folder and reads them from there afterwards. Three outcomes are told apart:

* the files are in the data folder and read correctly: the dataset is returned;
* the files are not there and cannot be downloaded (no network, `download=False`): `Unavailable` is
  raised and `load_dataset` falls back to an offline stand-in, saying so;
* the files are there but cannot be read (an interrupted or corrupted download): `DamagedFilesError` is
  raised, naming the folder to delete. Falling back here would hide the problem on every later run.
"""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import socket
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import torch

from .imagedata import ImageData, channel_stats
from .names import TITLES

# Images per real dataset, as torchvision stores them in `.data`: (H, W) for grey, (H, W, 3) for colour.
_IMAGE_SHAPES = {"mnist": (28, 28), "fashion_mnist": (28, 28), "cifar10": (32, 32, 3)}
# What reading a damaged file can raise inside torchvision: a short idx file fails in `view`
# (RuntimeError), a bad header in an assert or a dtype check, a cut pickle with EOFError or UnpicklingError.
_READ_ERRORS = (
    RuntimeError, ValueError, TypeError, KeyError, IndexError, AssertionError, EOFError, OSError,
    pickle.UnpicklingError,
)


class Unavailable(Exception):
    """The real dataset is not in the data folder and cannot be downloaded; the message says why."""


class DamagedFilesError(RuntimeError):
    """A dataset's files are in the data folder but cannot be read; the message names the folder to delete."""


def torchvision_class(name: str) -> type:
    """The torchvision dataset class for a canonical name ("mnist", "fashion_mnist" or "cifar10")."""
    from torchvision import datasets

    classes = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST, "cifar10": datasets.CIFAR10}
    return classes[name]


def dataset_folder(dataset_class: type, root: Path) -> Path:
    """The folder torchvision keeps a dataset's files in: `root/MNIST` or `root/cifar-10-batches-py`."""
    if hasattr(dataset_class, "resources"):  # MNIST and Fashion-MNIST: <root>/<class name>/raw/<files>
        return root / dataset_class.__name__
    return root / dataset_class.base_folder


def _expected_files(dataset_class: type, root: Path) -> list[Path]:
    """Every file torchvision reads for both splits, where it expects it."""
    folder = dataset_folder(dataset_class, root)
    if hasattr(dataset_class, "resources"):
        # resources are (file name or URL of a .gz, md5); torchvision reads the extracted file
        names = [os.path.splitext(os.path.basename(url))[0] for url, _ in dataset_class.resources]
        return [folder / "raw" / name for name in names]
    names = [file for file, _ in dataset_class.train_list + dataset_class.test_list]
    return [folder / file for file in [*names, dataset_class.meta["filename"]]]


def files_present(dataset_class: type, root: Path) -> bool:
    """Whether every file of the dataset is in the data folder (readable or not)."""
    return all(path.is_file() for path in _expected_files(dataset_class, root))


def first_url(dataset_class: type) -> str:
    """The first download address of a torchvision dataset class, for the connectivity probe."""
    if hasattr(dataset_class, "mirrors"):  # MNIST and Fashion-MNIST
        return dataset_class.mirrors[0] + dataset_class.resources[0][0]
    return dataset_class.url  # CIFAR-10


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the host of `url` opens within `timeout` seconds.

    torchvision's download has no timeout: behind a firewall that drops packets it can hang for minutes.
    This probe fails in milliseconds when there is no DNS and in `timeout` seconds when packets are dropped.
    With a proxy configured, the direct connection says nothing, so the download is simply tried.
    """
    if urllib.request.getproxies():
        return True
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def load_torchvision(name: str, root: Path, download: bool) -> tuple[ImageData, str]:
    """The real dataset through torchvision, and how it was had ("from the local cache", "downloaded now").

    Raises:
        Unavailable: the files are not in `root` and cannot be downloaded.
        DamagedFilesError: the files are in `root` but cannot be read.
    """
    title = TITLES[name]
    dataset_class = torchvision_class(name)
    how = "from the local cache"
    if not files_present(dataset_class, root):
        if not download:
            raise Unavailable(f"{title} is not in the data folder and download=False")
        if not reachable(first_url(dataset_class)):
            raise Unavailable(f"{title} could not be downloaded (no network)")
        failure = _download(dataset_class, root)
        if not files_present(dataset_class, root):
            raise Unavailable(f"{title} could not be downloaded ({failure or 'files missing afterwards'})")
        how = "downloaded now"
    train, test = _read(name, dataset_class, root)
    return _from_torchvision(name, train, test, dataset_folder(dataset_class, root)), how


def _download(dataset_class: type, root: Path) -> str | None:
    """Let torchvision download the dataset into `root`; None when it worked, else why it failed."""
    try:
        # Older torchvision versions print "Downloading <url> to <path>" per file; the one line that
        # load_dataset prints replaces them (the progress bar goes to stderr and stays).
        with contextlib.redirect_stdout(io.StringIO()):
            dataset_class(root, train=True, download=True)
    except (*_READ_ERRORS, tarfile.TarError) as error:
        return " ".join(str(error).split())[:160] or type(error).__name__
    return None


def _read(name: str, dataset_class: type, root: Path) -> tuple[object, object]:
    """Both splits read by torchvision from files known to be present; raises `DamagedFilesError`."""
    try:
        train = dataset_class(root, train=True, download=False)
        test = dataset_class(root, train=False, download=False)
    except _READ_ERRORS as error:
        reason = " ".join(str(error).split())[:160] or type(error).__name__
        raise damaged(name, dataset_folder(dataset_class, root), f"torchvision: {reason}") from error
    return train, test


def damaged(name: str, folder: Path, reason: str) -> DamagedFilesError:
    """The error for files that are present but unusable, telling the reader what to do about it."""
    title = TITLES[name]
    return DamagedFilesError(
        f"{title}'s files in {folder} cannot be used ({reason}); an interrupted or corrupted download "
        f"leaves them like this. Delete the folder {folder} and run this again: {title} is downloaded "
        f"afresh when the network is reachable (offline=True uses the offline stand-in instead)."
    )


def _from_torchvision(name: str, train, test, folder: Path) -> ImageData:
    """Convert torchvision datasets (uint8 HW or HWC arrays in `.data`) into an `ImageData`."""
    train_images, train_labels = _checked_arrays(name, train, "training", folder)
    test_images, test_labels = _checked_arrays(name, test, "test", folder)
    mean, std = channel_stats(train_images)
    # torchvision names MNIST's classes "0 - zero", ...; plain digits match the offline stand-in.
    classes = [str(d) for d in range(10)] if name == "mnist" else list(train.classes)
    return ImageData(
        name=name, source=f"{TITLES[name]} via torchvision", classes=classes,
        train_images=train_images, train_labels=train_labels,
        test_images=test_images, test_labels=test_labels,
        mean=mean, std=std, offline=False,
    )


def _checked_arrays(name: str, dataset, split: str, folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One split's images as float (N, C, H, W) in [0, 1] and labels as int64, after checking the sizes.

    torchvision reads images and labels from separate files and does not compare them: a truncated or
    mixed-up file can give 60,000 labels for 59,000 images, or images of the wrong size.
    """
    raw = torch.as_tensor(np.asarray(dataset.data))
    labels = torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)
    expected = _IMAGE_SHAPES[name]
    problem = None
    if tuple(raw.shape[1:]) != expected or raw.dtype != torch.uint8:
        shape = ", ".join(map(str, ("N", *expected)))
        got = f"{tuple(raw.shape)} and dtype {raw.dtype}"
        problem = f"{split} images of shape {got}, expected ({shape}) uint8"
    elif len(labels) != len(raw) or len(raw) == 0:
        problem = f"{len(raw):,} {split} images but {len(labels):,} labels"
    elif labels.min() < 0 or labels.max() >= 10:
        problem = f"{split} labels outside 0-9 (from {int(labels.min())} to {int(labels.max())})"
    if problem:
        raise damaged(name, folder, problem)
    images = raw.unsqueeze(1) if raw.dim() == 3 else raw.permute(0, 3, 1, 2)  # (N, H, W) or (N, H, W, C)
    return images.contiguous().float().div_(255), labels
