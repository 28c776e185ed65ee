"""Data-parallel training with `torch.distributed`: everything `lib.training.fit` needs to run under torchrun.

`torchrun --nproc_per_node=N script.py` starts N copies of the script and tells each one its place in
the job through environment variables:

    RANK          the process's number in the whole job, 0 .. WORLD_SIZE - 1 (rank 0 prints and saves)
    LOCAL_RANK    its number on its own machine: which GPU it drives
    WORLD_SIZE    how many processes train together
    MASTER_ADDR   the host, and MASTER_PORT the port, where the processes meet (the rendezvous)

`launch_from_env` reads them; with WORLD_SIZE unset or 1 the process trains alone and nothing here
changes what `fit` does. With several processes `fit` uses the functions below:

* `init` joins the process group: NCCL between GPUs, gloo between CPU processes;
* every process keeps the whole dataset on its device and, at every step, cuts the same global batch
  out of the same seeded permutation; `shard` keeps its own 1/WORLD_SIZE of it (what a
  `DistributedSampler` does for a data loader);
* `wrap` puts the model in `DistributedDataParallel` (DDP), which broadcasts rank 0's weights once and
  then, during each backward pass, averages the gradients of all processes with all-reduce calls, one
  per bucket of gradients, while the backward pass goes on. Every process applies the same averaged
  gradient, so the weights stay identical, and one step of N processes is one step on the global batch.
  The exception is BatchNorm: each process normalises its slice with that slice's own statistics
  (`torch.nn.SyncBatchNorm` shares them, on GPUs only);
* `all_reduce_sum` adds up losses, correct answers and counts over the processes, so that every
  process reports the metrics of the whole batch or test set;
* `print0` and `save_on_main` print and write files on rank 0 only, `save_on_main` atomically, and
  `main_first` lets rank 0 download a dataset before the others read it.

`watch_buckets` is for reading, not training: in a one-process group it records which gradient buckets
DDP hands to the all-reduce during a backward pass, and when (chapter 7).
"""
from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LAUNCH_VARIABLES", "Launch", "launch_from_env", "backend_for", "device_for", "init", "cleanup",
    "local_batch_size", "shard", "rank_seed", "wrap", "all_reduce_sum", "broadcast_buffers",
    "gather_objects", "barrier", "main_first", "is_main", "print0", "save_on_main", "same_on_all_ranks",
    "Bucket", "FIRST_LAYER_DONE", "watch_buckets",
]

LAUNCH_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
TORCHRUN_HINT = "torchrun --standalone --nproc_per_node=N script.py"


@dataclass(frozen=True)
class Launch:
    """Where this process stands in a job: its rank, its rank on this machine and the number of processes."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """True on rank 0, the process that prints and writes files."""
        return self.rank == 0


def launch_from_env(environ: Mapping[str, str] | None = None) -> Launch:
    """This process's place in the job, from torchrun's variables (or from a process group already joined).

    Without WORLD_SIZE, or with WORLD_SIZE=1, the process is alone: `Launch(0, 0, 1)`.

    Raises:
        ValueError: WORLD_SIZE > 1 but RANK, LOCAL_RANK, MASTER_ADDR or MASTER_PORT missing (the
            message names them and says to launch with torchrun), or values that are not valid.
    """
    if environ is None and dist.is_available() and dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
        return Launch(rank, int(os.environ.get("LOCAL_RANK", rank)), world_size)
    env = os.environ if environ is None else environ
    world_size = _integer(env, "WORLD_SIZE", default=1)
    if world_size < 1:
        raise ValueError(f"WORLD_SIZE must be at least 1, got {world_size}")
    if world_size == 1:
        return Launch()
    missing = [name for name in LAUNCH_VARIABLES if not env.get(name)]
    if missing:
        names = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
        raise ValueError(
            f"WORLD_SIZE={world_size} but {names} {'is' if len(missing) == 1 else 'are'} not set: start "
            f"the processes with torchrun (e.g. `{TORCHRUN_HINT}`), which sets "
            f"{', '.join(LAUNCH_VARIABLES)} for every process"
        )
    rank, local_rank = _integer(env, "RANK"), _integer(env, "LOCAL_RANK")
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} is outside 0..{world_size - 1} (WORLD_SIZE={world_size})")
    if local_rank < 0:
        raise ValueError(f"LOCAL_RANK must be at least 0, got {local_rank}")
    _integer(env, "MASTER_PORT")  # a port is a number: fail here rather than in the rendezvous
    return Launch(rank, local_rank, world_size)


def _integer(env: Mapping[str, str], name: str, default: int | None = None) -> int:
    value = env.get(name)
    if value is None or value == "":
        if default is None:
            raise ValueError(f"{name} is not set")
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def backend_for(device: torch.device) -> str:
    """The collective-communication library for `device`: NCCL between CUDA GPUs, gloo otherwise (CPU)."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def device_for(launch: Launch, device: torch.device | str | None = None) -> torch.device:
    """The device a process trains on: GPU number LOCAL_RANK when there are GPUs, else the CPU.

    `device="cuda"` also means the GPU of this process's local rank; `device="cpu"` trains every
    process on the CPU (gloo), which is how the tests run two processes on one machine.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", launch.local_rank)
        count = torch.cuda.device_count()
        if device.index >= count:
            raise ValueError(
                f"LOCAL_RANK={launch.local_rank} needs GPU {device.index}, but this machine has {count}: "
                f"start at most {count} process{'es' if count != 1 else ''} per machine (--nproc_per_node), "
                "or train on the CPU with device='cpu'"
            )
        torch.cuda.set_device(device)
    elif device.type != "cpu" and launch.distributed:
        raise ValueError(f"distributed training runs on CUDA GPUs or the CPU, not on {device.type!r}")
    return device


def init(launch: Launch, device: torch.device) -> bool:
    """Join the process group of `launch` (once per process); True if this call created it.

    The rendezvous reads MASTER_ADDR and MASTER_PORT (torchrun's `env://` method). The group is left
    open for later calls; `cleanup` closes it, and does so by itself when the process exits.
    """
    if not launch.distributed or dist.is_initialized():
        return False
    options: dict[str, Any] = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(backend_for(device), rank=launch.rank, world_size=launch.world_size, **options)
    atexit.register(cleanup)
    return True


def cleanup() -> None:
    """Leave the process group, if this process is in one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _in_group() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def local_batch_size(batch_size: int, world_size: int) -> int:
    """Images per process when `world_size` processes share a global batch of `batch_size`.

    Raises:
        ValueError: if the global batch does not split into equal parts (the message names both numbers).
    """
    if batch_size % world_size:
        lower = batch_size - batch_size % world_size
        nearest = " or ".join(str(n) for n in (lower, lower + world_size) if n > 0)
        raise ValueError(
            f"the global batch of {batch_size} images does not split evenly over {world_size} processes: "
            f"choose a multiple of {world_size} (e.g. {nearest})"
        )
    return batch_size // world_size


def shard(batch: torch.Tensor, launch: Launch) -> torch.Tensor:
    """This process's slice of a global batch (indices or images): equal part number `rank`.

    Concatenating the slices of ranks 0, 1, ... gives back the global batch.
    """
    size = local_batch_size(len(batch), launch.world_size)
    return batch[launch.rank * size:(launch.rank + 1) * size]


def rank_seed(seed: int, rank: int) -> int:
    """A seed for this process's own random draws (augmentation, dropout): `seed` itself on rank 0.

    The other ranks get seeds mixed from (seed, rank) by NumPy's SeedSequence, so that no two ranks
    draw the same crops or dropout masks for their different images.
    """
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def wrap(model: nn.Module, device: torch.device, **options: Any) -> nn.Module:
    """`model` in DistributedDataParallel when this process is in a group of several, else `model` itself.

    DDP copies rank 0's parameters and buffers to every process as it is built. `options` go to DDP
    (e.g. `bucket_cap_mb`).
    """
    if not _in_group():
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, **options)


def all_reduce_sum(values: Sequence[float] | torch.Tensor, device: torch.device) -> list[float]:
    """The sum of `values` over all processes (the values themselves in a single process), as floats.

    The numbers travel as one float64 tensor on `device` (NCCL only moves GPU tensors).
    """
    tensor = torch.as_tensor(values, dtype=torch.float64).to(device)
    if _in_group():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def broadcast_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm's running statistics) to every process.

    DDP does this at the start of every forward pass in training, so after the last step each process
    still holds the statistics its own last slice updated; this call makes them identical again.
    """
    if _in_group():
        for buffer in model.buffers():
            dist.broadcast(buffer.data, src=0)


def gather_objects(obj: Any) -> list[Any]:
    """`obj` from every process, in rank order (`[obj]` in a single process)."""
    if not _in_group():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier() -> None:
    """Wait until every process has reached this line (nothing to wait for in a single process)."""
    if _in_group():
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Run the block on rank 0 first, then on the other ranks: rank 0 downloads a dataset, the others find it."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def is_main() -> bool:
    """True on rank 0, and in a process that trains alone."""
    return not _in_group() or dist.get_rank() == 0


def print0(*args: Any, **kwargs: Any) -> None:
    """`print` on rank 0 only, so that N processes print one copy of each line."""
    if is_main():
        print(*args, **kwargs)


def save_on_main(obj: Any, path: str | os.PathLike) -> None:
    """`torch.save(obj, path)` on rank 0 only, atomically: written to a temporary file, then renamed.

    A job killed while saving leaves the previous file whole, never a truncated one.
    """
    if not is_main():
        return
    path = os.fspath(path)
    temporary = f"{path}.tmp"
    torch.save(obj, temporary)
    os.replace(temporary, path)


@torch.no_grad()
def same_on_all_ranks(model: nn.Module) -> bool:
    """True if every parameter and buffer of `model` is bit-for-bit the same in all processes.

    Compares the element-wise maximum and minimum over the processes: they are equal only where
    every process holds the same value. Call it on every rank (it is a collective operation).
    """
    if not _in_group():
        return True
    tensors = [t.detach().flatten().double() for t in list(model.parameters()) + list(model.buffers())]
    if not tensors:
        return True
    values = torch.cat(tensors)
    high, low = values.clone(), values.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    return bool(torch.equal(high, low))


class Bucket(NamedTuple):
    """One bucket of gradients as DDP hands it to its communication hook (`watch_buckets`)."""

    index: int
    tensors: int  # how many gradient tensors it holds
    values: int  # how many numbers: 4 bytes each in float32
    first: str  # the name of its first parameter: the latest layer in forward order, as backward runs
    last: str  # the name of its last parameter


# The event `watch_buckets` records when the gradient of the model's first parameter has been computed.
FIRST_LAYER_DONE = "first layer's gradient computed"


def watch_buckets(model: nn.Module, x: torch.Tensor, steps: int = 2, **options: Any) -> list[list[Bucket | str]]:
    """Watch DDP at work: the buckets it sends, in order, during `steps` backward passes of `model` on `x`.

    Wraps `model` in `DistributedDataParallel(model, **options)` (e.g. `bucket_cap_mb=0.25`) and replaces
    its all-reduce with a communication hook that records each bucket and hands it back unchanged, which
    is what the all-reduce of a single process computes. A hook on the first parameter's gradient (the
    last one backward computes) records `FIRST_LAYER_DONE` among the buckets, showing which buckets were
    sent before the backward pass ended. The loss is the cross-entropy against class 0; the gradients
    accumulate (nothing is reset and no optimiser steps).

    Args:
        model: a classifier; its first parameter should belong to its first layer.
        x: one batch of inputs on the model's device.
        steps: how many forward and backward passes to watch (DDP rebuilds its buckets after the first).
        options: passed on to `DistributedDataParallel`.

    Returns:
        For each pass, its events in order: a `Bucket` per bucket sent, and the string `FIRST_LAYER_DONE`.

    Raises:
        RuntimeError: no process group of exactly one process is initialised.
        ValueError: `steps` is not a positive int.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() != 1:
        raise RuntimeError("watch_buckets needs a process group of one process, e.g. "
                           'dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)')
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    names = {p: n for n, p in model.named_parameters()}
    events: list[Bucket | str] = []

    # No annotations: DDP checks a hook's annotations against the real classes, and this module's
    # `from __future__ import annotations` would turn them into strings that fail the check.
    def record_bucket(state, bucket):  # noqa: ANN001, ANN202
        tensors = bucket.parameters()
        events.append(Bucket(bucket.index(), len(tensors), bucket.buffer().numel(),
                             names[tensors[0]], names[tensors[-1]]))
        done = torch.futures.Future()  # a hook returns a Future, like the all-reduce it replaces
        done.set_result(bucket.buffer())
        return done

    ddp = nn.parallel.DistributedDataParallel(model, **options)
    ddp.register_comm_hook(None, record_bucket)
    handle = next(model.parameters()).register_hook(lambda grad: events.append(FIRST_LAYER_DONE))
    passes = []
    try:
        for _ in range(steps):
            events.clear()
            F.cross_entropy(ddp(x), torch.zeros(len(x), dtype=torch.long, device=x.device)).backward()
            passes.append(list(events))
    finally:
        handle.remove()
    return passes
