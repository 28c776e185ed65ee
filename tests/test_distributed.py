"""lib.distributed, checkpoints in fit, and book/train_resnet.py: two real processes with gloo on the CPU.

Two launches of `python -m torch.distributed.run --standalone --nproc_per_node=2` (a free port is
picked by torchrun): one runs this file itself as the worker (its `__main__` part at the end), which
calls `fit` on tiny data; the other runs the book's script on a ResNet-20. Everything else runs in the
test process. The whole file takes about half a minute on two busy cores, most of it starting the
four Python processes and torchrun's launchers.
"""
from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
if str(BOOK) not in sys.path:  # run as torchrun's worker script (pytest's conftest does this otherwise)
    sys.path.insert(0, str(BOOK))

import lib  # noqa: E402
from lib import distributed, training  # noqa: E402
from lib.data import ImageData  # noqa: E402
from lib.distributed import LAUNCH_VARIABLES, Launch, launch_from_env  # noqa: E402
from lib.history import History  # noqa: E402
from lib.quick import QUICK_ENV, set_quick_mode  # noqa: E402
from lib.training import fit  # noqa: E402

SCRIPT = BOOK / "train_resnet.py"
# Both runs of the comparison: 4 steps of a global batch of 16 per epoch, no augmentation, a network
# without BatchNorm or dropout, so that two processes compute what one does.
PLAIN = dict(epochs=3, batch_size=16, lr=0.05, device="cpu", progress=False, verbose=False)
# The resume runs add everything that draws random numbers or keeps state besides the weights.
NOISY = dict(PLAIN, augment=True)


def tiny_data(n_train: int = 64, n_test: int = 37, *, classes: int = 4, size: int = 12) -> ImageData:
    """Each class is a fixed random pattern plus noise; 37 test images do not split evenly over 2 processes."""
    g = torch.Generator().manual_seed(0)
    patterns = torch.rand(classes, 1, size, size, generator=g)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % classes
        return 0.6 * patterns[labels] + 0.4 * torch.rand(n, 1, size, size, generator=g), labels

    (train_x, train_y), (test_x, test_y) = split(n_train), split(n_test)
    return ImageData(name="tiny", source="synthetic patterns", classes=[str(i) for i in range(classes)],
                     train_images=train_x, train_labels=train_y, test_images=test_x, test_labels=test_y,
                     mean=(train_x.mean().item(),), std=(train_x.std().item(),), offline=True)


def tiny_net(*, batchnorm: bool = False, dropout: float = 0.0) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6) if batchnorm else nn.Identity(), nn.ReLU(),
        nn.MaxPool2d(3), nn.Flatten(), nn.Dropout(dropout), nn.Linear(6 * 4 * 4, 4),
    )


class Interrupted(Exception):
    """Stands for a job killed in the middle of an epoch."""


def interrupt_at(model: nn.Module, step: int) -> None:
    """Make `model` raise `Interrupted` at its `step`-th training forward pass (counted from 1)."""
    calls = itertools.count(1)

    def hook(module: nn.Module, inputs) -> None:
        if module.training and next(calls) == step:
            raise Interrupted

    model.register_forward_pre_hook(hook)


def interrupted_then_resumed(checkpoint: Path, seed: int = 0) -> tuple[nn.Module, History]:
    """Train with NOISY, die in the middle of epoch 2, resume on a differently initialised model."""
    torch.manual_seed(seed)
    model = tiny_net(batchnorm=True, dropout=0.25)
    interrupt_at(model, step=6)  # 4 steps per epoch: the second step of epoch 2
    with pytest.raises(Interrupted):
        fit(model, tiny_data(), checkpoint=checkpoint, **NOISY)
    torch.manual_seed(seed + 100)
    resumed = tiny_net(batchnorm=True, dropout=0.25)
    history = fit(resumed, tiny_data(), checkpoint=checkpoint, resume=True, **NOISY)
    return resumed, history


def uninterrupted(seed: int = 0) -> tuple[nn.Module, History]:
    torch.manual_seed(seed)
    model = tiny_net(batchnorm=True, dropout=0.25)
    return model, fit(model, tiny_data(), **NOISY)


def assert_same_training(first: History, second: History) -> None:
    for name in ("train_loss", "train_acc", "test_loss", "test_acc", "lr"):
        assert getattr(first, name) == getattr(second, name), name


def assert_same_weights(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def torchrun(*args: str | os.PathLike, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Two processes on this machine, through torchrun's own launcher, each with one thread."""
    env = {name: value for name, value in os.environ.items() if name not in LAUNCH_VARIABLES}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               *map(str, args)]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"torchrun failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def full_mode():
    previous = set_quick_mode(False)
    yield
    set_quick_mode(previous)


@pytest.fixture
def torchrun_env(monkeypatch):
    """This process posing as rank 0 of 2, as torchrun would start it."""
    for name, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "localhost",
                        "MASTER_PORT": "29500"}.items():
        monkeypatch.setenv(name, value)


# ------------------------------------------------------------------------------------------ the worker

def worker(out: Path) -> None:
    """What each of the two processes runs: three `fit` calls, then its weights and histories to a file."""
    launch = launch_from_env()
    assert launch.world_size == 2
    results = {"launch": (launch.rank, launch.local_rank, launch.world_size)}
    torch.manual_seed(launch.rank)  # different initial weights per process: DDP starts all from rank 0's
    model = tiny_net()
    history = fit(model, tiny_data(), **PLAIN)
    results["plain"] = (model.state_dict(), history.to_dict())
    model, history = uninterrupted()
    results["uninterrupted"] = (model.state_dict(), history.to_dict())
    writes, real_save = [], torch.save

    def counting_save(obj, file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)):  # torch also saves into buffers, when pickling tensors
            writes.append(os.fspath(file))
        return real_save(obj, file, *args, **kwargs)

    torch.save = counting_save
    try:
        model, history = interrupted_then_resumed(out / "checkpoint.pt")
    finally:
        torch.save = real_save
    results["resumed"] = (model.state_dict(), history.to_dict())
    results["checkpoint_writes"] = len(writes)
    torch.save(results, out / f"rank{launch.rank}.pt")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> dict[int, dict]:
    out = tmp_path_factory.mktemp("ddp")
    torchrun(Path(__file__), "worker", out)
    assert sorted(os.listdir(out)) == ["checkpoint.pt", "rank0.pt", "rank1.pt"]  # no temporary file left
    return {rank: torch.load(out / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)}


# --------------------------------------------------------------------------------- two real processes

def test_both_ranks_end_with_identical_weights(two_processes):
    assert two_processes[0]["launch"] == (0, 0, 2) and two_processes[1]["launch"] == (1, 1, 2)
    for run in ("plain", "uninterrupted", "resumed"):  # the last two with BatchNorm, dropout, augmentation
        assert_same_weights(two_processes[0][run][0], two_processes[1][run][0])
        assert two_processes[0][run][1]["test_acc"] == two_processes[1][run][1]["test_acc"]
    assert two_processes[0]["plain"][1]["device"] == "2 x CPU (1 thread)"


def test_two_processes_match_one_process_on_the_same_global_batch(two_processes, full_mode):
    torch.manual_seed(0)  # rank 0's initial weights, which DDP gave both processes
    model = tiny_net()
    history = fit(model, tiny_data(), **PLAIN)
    state, distributed_history = two_processes[0]["plain"]
    # One process averages the loss over 16 images; two average over 8 each, and DDP averages the two
    # gradients: the same number in exact arithmetic, rounded differently in float32 (float32 keeps about
    # 7 digits). After twelve SGD steps the weights differ by at most 6e-8 here, well inside the
    # tolerance, while a real difference (a wrong slice, gradients summed instead of averaged, a rank
    # starting from its own weights) moves them by 1e-3 or more.
    for name, value in model.state_dict().items():
        torch.testing.assert_close(state[name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert distributed_history["train_loss"] == pytest.approx(history.train_loss, rel=1e-5)
    assert distributed_history["test_loss"] == pytest.approx(history.test_loss, rel=1e-5)
    assert distributed_history["test_acc"] == history.test_acc  # 37 test images, shared 19 + 18
    assert distributed_history["lr"] == pytest.approx(history.lr)
    assert not all(torch.equal(v, tiny_net().state_dict()[k]) for k, v in state.items())  # it did train


def test_checkpoint_of_rank_0_resumes_two_processes_exactly(two_processes):
    # Epoch 1 before the interruption, epochs 2 and 3 after the resume: written by rank 0 only.
    assert two_processes[0]["checkpoint_writes"] == 3 and two_processes[1]["checkpoint_writes"] == 0
    for rank in (0, 1):
        assert_same_weights(two_processes[rank]["resumed"][0], two_processes[rank]["uninterrupted"][0])
        for name in ("train_loss", "train_acc", "test_loss", "test_acc", "lr"):
            assert two_processes[rank]["resumed"][1][name] == two_processes[rank]["uninterrupted"][1][name]


def test_script_on_two_processes_then_resumed_on_one(tmp_path, capsys, monkeypatch):
    common = ["--model", "resnet20", "--offline", "--epochs", "2", "--batch-size", "16", "--max-steps", "2",
              "--checkpoint", "ckpt.pt"]
    result = torchrun(SCRIPT, *common, "--stop-after", "1", cwd=tmp_path)
    lines = result.stdout.splitlines()
    # The size and wording of the offline stand-in belong to lib.data (tests/test_data.py checks them).
    assert re.fullmatch(r"ResNet-20 \(CIFAR\): 269,722 parameters; [\d,]+ training images of 3x32x32", lines[1])
    assert lines[2:4] == [
        "world size 2, backend gloo, each process on CPU (1 thread)",
        "batch: 8 images per process, 16 per step; peak lr 0.00625 (= 0.1 x 16 / 256)",
    ]
    assert "offline" in lines[0].lower() and len(lines) == 10  # every line once: rank 0
    assert lines[4].startswith(f"{QUICK_ENV} is set") and lines[5].startswith("epoch 1/2  train loss")
    assert lines[6:] == [
        "weights identical in all 2 processes: yes", lines[7], "checkpoint: ckpt.pt (epoch 1 of 2)",
        "stopped as asked (--stop-after): run again with --resume to train the remaining epochs"]
    assert lines[7].startswith("test accuracy ") and " after 1 of 2 epochs " in lines[7]
    assert os.listdir(tmp_path) == ["ckpt.pt"]
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert state["epoch"] == 1 and len(state["rng"]) == 2
    lib.models.resnet20().load_state_dict(state["model"])  # the plain model's names, no "module." prefix

    monkeypatch.chdir(tmp_path)  # the checkpoint's path is relative to where the script runs
    capsys.readouterr()
    import train_resnet

    history = train_resnet.main(common + ["--resume"])
    out = capsys.readouterr().out
    assert "world size 1 (no process group), on CPU (1 thread)" in out
    assert ("the checkpoint comes from 2 process(es), this run has 1: augmentation and dropout draw new "
            "random numbers") in out
    assert "resuming from ckpt.pt after epoch 1 of 2" in out and "epoch 2/2  train loss" in out
    assert "epoch 1/2" not in out and len(history.test_acc) == 2
    assert torch.load(tmp_path / "ckpt.pt", weights_only=True)["epoch"] == 2


# --------------------------------------------------------------------------------- checkpoints, 1 process

def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, full_mode):
    model, history = interrupted_then_resumed(tmp_path / "ckpt.pt")
    reference, reference_history = uninterrupted()
    assert_same_weights(model.state_dict(), reference.state_dict())
    assert_same_training(history, reference_history)
    assert history.seconds >= sum(history.epoch_seconds) * 0.99 and history.images_per_second > 0


def test_stop_after_then_resume_equals_one_call(tmp_path, full_mode, capsys):
    torch.manual_seed(0)
    model = tiny_net(batchnorm=True, dropout=0.25)
    first = fit(model, tiny_data(), checkpoint=tmp_path / "ckpt.pt", stop_after=2, **NOISY)
    assert len(first.test_acc) == 2
    second = fit(tiny_net(batchnorm=True, dropout=0.25), tiny_data(), checkpoint=tmp_path / "ckpt.pt",
                 resume=True, **dict(NOISY, verbose=True))
    assert capsys.readouterr().out.splitlines()[0] == "resuming from ckpt.pt after epoch 2 of 3"
    reference_model, reference = uninterrupted()
    assert_same_training(second, reference)
    assert second.train_loss[:2] == first.train_loss


def test_checkpoint_holds_everything_and_loads_safely(tmp_path, full_mode):
    path = tmp_path / "ckpt.pt"
    torch.manual_seed(0)
    model = tiny_net(batchnorm=True)
    history = fit(model, tiny_data(), checkpoint=path, **dict(PLAIN, epochs=2))
    assert os.listdir(tmp_path) == ["ckpt.pt"]
    state = torch.load(path, weights_only=True)  # plain tensors, numbers and strings only
    assert {"epoch", "settings", "model", "optimizer", "scheduler", "history", "shuffle", "rng"} <= state.keys()
    assert state["epoch"] == 2 and len(state["rng"]) == 1
    assert state["settings"] == {"epochs": 2, "batch_size": 16, "steps_per_epoch": 4, "train_images": 64,
                                 "lr": 0.05, "optimizer": "sgd", "schedule": "onecycle", "seed": 0}
    assert state["history"]["test_acc"] == history.test_acc
    assert state["scheduler"]["last_epoch"] == 8  # stepped after each of the 2 x 4 batches
    assert_same_weights(state["model"], model.state_dict())


def test_resume_checks_settings_and_files(tmp_path, full_mode, capsys):
    path = tmp_path / "ckpt.pt"
    fit(tiny_net(), tiny_data(), checkpoint=path, **dict(PLAIN, epochs=2))
    with pytest.raises(ValueError, match=r"other settings \(epochs 2 there, 3 here\)"):
        fit(tiny_net(), tiny_data(), checkpoint=path, resume=True, **PLAIN)
    with pytest.raises(ValueError, match="checkpoint=PATH"):
        fit(tiny_net(), tiny_data(), resume=True, **PLAIN)
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist"):
        fit(tiny_net(), tiny_data(), resume=tmp_path / "missing.pt", **PLAIN)
    with pytest.raises(ValueError, match="stop_after must be an epoch from 1 to 3"):
        fit(tiny_net(), tiny_data(), stop_after=4, **PLAIN)
    fit(tiny_net(), tiny_data(), checkpoint=tmp_path / "new.pt", resume=True, **dict(PLAIN, verbose=True))
    assert capsys.readouterr().out.splitlines()[0] == "no checkpoint new.pt yet: training from epoch 1"


def test_resume_from_another_kind_of_device(tmp_path, full_mode, capsys):
    path = tmp_path / "ckpt.pt"
    fit(tiny_net(), tiny_data(), checkpoint=path, stop_after=1, **NOISY)
    state = torch.load(path, weights_only=True)
    state["rng"][0]["augment"] = torch.zeros(16, dtype=torch.uint8)  # a CUDA generator's state
    torch.save(state, path)
    history = fit(tiny_net(), tiny_data(), checkpoint=path, resume=True, **dict(NOISY, verbose=True))
    assert capsys.readouterr().out.splitlines()[:2] == [
        "the checkpoint comes from another kind of device: augmentation and dropout draw new random numbers",
        "resuming from ckpt.pt after epoch 1 of 3"]
    assert len(history.test_acc) == 3


def test_checkpoint_carries_an_enabled_gradient_scaler(tmp_path, full_mode, monkeypatch):
    # CUDA's fp16 path played on the CPU: an enabled scaler that doubles its scale every 3 finite steps.
    monkeypatch.setattr(training, "grad_scaler",
                        lambda dtype: torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3))
    path, reference = tmp_path / "ckpt.pt", tmp_path / "reference.pt"
    torch.manual_seed(0)
    fit(tiny_net(), tiny_data(), checkpoint=path, stop_after=1, **NOISY)
    assert torch.load(path, weights_only=True)["scaler"]["scale"] == 2048.0  # 4 steps: grown once
    fit(tiny_net(), tiny_data(), checkpoint=path, resume=True, **NOISY)
    torch.manual_seed(0)
    fit(tiny_net(), tiny_data(), checkpoint=reference, **NOISY)
    resumed, uninterrupted_state = (torch.load(p, weights_only=True) for p in (path, reference))
    assert resumed["scaler"] == uninterrupted_state["scaler"] and resumed["scaler"]["scale"] == 1024.0 * 2 ** 4
    assert_same_weights(resumed["model"], uninterrupted_state["model"])


def test_save_on_main_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    distributed.save_on_main({"epoch": 1}, path)
    real_save = torch.save

    def dies_while_writing(obj, file):
        real_save(obj, file)
        with open(file, "r+b") as handle:
            handle.truncate(10)  # half-written
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_while_writing)
    with pytest.raises(KeyboardInterrupt):
        distributed.save_on_main({"epoch": 2}, path)
    assert torch.load(path, weights_only=True) == {"epoch": 1}  # the previous checkpoint is intact


# -------------------------------------------------------------------------------- launch and bad input

def test_launch_from_env():
    assert launch_from_env({}) == Launch(0, 0, 1) and not launch_from_env({"WORLD_SIZE": "1"}).distributed
    env = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}
    launch = launch_from_env(env)
    assert launch == Launch(3, 1, 4) and launch.distributed and not launch.main
    with pytest.raises(ValueError, match=r"RANK=4 is outside 0\.\.3"):
        launch_from_env({**env, "RANK": "4"})
    with pytest.raises(ValueError, match="WORLD_SIZE must be an integer, got 'two'"):
        launch_from_env({**env, "WORLD_SIZE": "two"})
    with pytest.raises(ValueError, match=r"WORLD_SIZE=2 but RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT are "
                                         r"not set: start the processes with torchrun"):
        launch_from_env({"WORLD_SIZE": "2"})


def test_fit_without_rendezvous_variables_says_to_use_torchrun(torchrun_env, monkeypatch):
    monkeypatch.delenv("MASTER_ADDR")
    with pytest.raises(ValueError, match=r"WORLD_SIZE=2 but MASTER_ADDR is not set: .*torchrun --standalone"):
        fit(tiny_net(), tiny_data(), **PLAIN)
    monkeypatch.delenv("MASTER_PORT")
    with pytest.raises(ValueError, match="MASTER_ADDR and MASTER_PORT are not set"):
        fit(tiny_net(), tiny_data(), **PLAIN)


def test_batch_that_does_not_split_over_the_processes(torchrun_env, capsys):
    # Checked before joining the process group, so the test needs no second process.
    message = r"global batch of 15 images does not split evenly over 2 processes: .* \(e\.g\. 14 or 16\)"
    with pytest.raises(ValueError, match=message):
        fit(tiny_net(), tiny_data(), **dict(PLAIN, batch_size=15))
    import train_resnet

    with pytest.raises(SystemExit) as exit_info:
        train_resnet.main(["--batch-size", "15"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith(
        "train_resnet.py: error: the global batch of 15 images does not split evenly over 2 processes")


def test_script_rejects_unknown_models(capsys):
    import train_resnet

    with pytest.raises(SystemExit):
        train_resnet.main(["--model", "vgg16"])
    assert capsys.readouterr().err.splitlines()[-1] == (
        "train_resnet.py: error: argument --model: unknown ResNet 'vgg16'; choose one of: resnet18, resnet34, "
        "resnet50, resnet101, resnet152, resnet20, resnet32, resnet44, resnet56, resnet110")


def test_sharding_and_seeds():
    batch = torch.arange(12)
    slices = [distributed.shard(batch, Launch(rank, rank, 3)) for rank in range(3)]
    assert torch.equal(torch.cat(slices), batch) and [len(s) for s in slices] == [4, 4, 4]
    assert distributed.local_batch_size(12, 3) == 4
    with pytest.raises(ValueError, match="12 images does not split evenly over 5 processes"):
        distributed.local_batch_size(12, 5)
    seeds = [distributed.rank_seed(7, rank) for rank in range(4)]
    assert seeds[0] == 7 and len(set(seeds)) == 4 and seeds == [distributed.rank_seed(7, r) for r in range(4)]


def test_single_process_helpers_do_nothing():
    model = tiny_net()
    assert distributed.wrap(model, torch.device("cpu")) is model
    assert distributed.all_reduce_sum([1.5, 2.0], torch.device("cpu")) == [1.5, 2.0]
    assert distributed.gather_objects({"a": 1}) == [{"a": 1}]
    assert distributed.same_on_all_ranks(model) and distributed.is_main()
    assert distributed.backend_for(torch.device("cpu")) == "gloo"
    assert distributed.backend_for(torch.device("cuda", 0)) == "nccl"


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    worker(Path(sys.argv[2]))
