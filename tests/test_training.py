"""lib.training (fit) and the modules it is made of: quick mode, devices, lib.optim, augmentation,
lib.evaluation (evaluate, predict), lib.history and lib.estimates.

Everything runs on the CPU with networks of a few hundred parameters and datasets of a few hundred
12x12 images, so the whole file takes seconds.
"""
from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from lib import device, estimates, quick, training
from lib.data import ImageData
from lib.device import device_name, get_device, seed_everything
from lib.evaluation import evaluate, predict
from lib.history import History
from lib.optim import count_parameters, lr_factor, make_optimizer
from lib.quick import QUICK_ENV, quick_mode, set_quick_mode
from lib.training import classification_loss, fit, random_crop_flip
from lib.visualize import plot_history


def separable_data(n_train: int = 256, n_test: int = 128, *, classes: int = 4, channels: int = 1,
                   size: int = 12, seed: int = 0) -> ImageData:
    """Each class is a fixed random pattern plus a little noise: a linear classifier separates them."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.rand(classes, channels, size, size, generator=g)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % classes
        noise = torch.rand(n, channels, size, size, generator=g)
        return 0.75 * patterns[labels] + 0.25 * noise, labels

    train_images, train_labels = split(n_train)
    test_images, test_labels = split(n_test)
    return ImageData(
        name="separable", source="synthetic test patterns", classes=[f"c{i}" for i in range(classes)],
        train_images=train_images, train_labels=train_labels,
        test_images=test_images, test_labels=test_labels,
        mean=tuple(train_images.mean(dim=(0, 2, 3)).tolist()),
        std=tuple(train_images.std(dim=(0, 2, 3)).tolist()), offline=True,
    )


def tiny_cnn(channels: int = 1, classes: int = 4) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(3),
        nn.Flatten(), nn.Linear(4 * 4 * 4, classes),
    )


class WithAuxHead(nn.Module):
    """A GoogLeNet in miniature: (main, aux) in train mode, main only in eval mode."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(144, 16), nn.ReLU())
        self.fc = nn.Linear(16, classes)
        self.aux = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor):
        features = self.body(x)
        if self.training:
            return self.fc(features), self.aux(features)
        return self.fc(features)


@pytest.fixture
def full_mode():
    """The suite runs in quick mode (root conftest); these tests need fit's full behaviour."""
    previous = set_quick_mode(False)
    yield
    set_quick_mode(previous)


@pytest.fixture
def quick_on():
    previous = set_quick_mode(True)
    yield
    set_quick_mode(previous)


# ----------------------------------------------------------------------------- mode, device, counting

@pytest.fixture
def reload_quick(monkeypatch):
    """Re-import lib.quick after changing the environment (it reads CNNBOOK_QUICK once, at import)."""
    previous = quick_mode()

    def reload(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(QUICK_ENV, raising=False)
        else:
            monkeypatch.setenv(QUICK_ENV, value)
        importlib.reload(quick)  # the same module object: every `from lib.quick import ...` sees the new mode

    yield reload
    set_quick_mode(previous)


@pytest.mark.parametrize("value, expected", [("1", True), ("yes", True), ("0", False), ("", False)])
def test_quick_mode_reads_the_environment(reload_quick, value, expected):
    reload_quick(value)
    assert quick_mode() is expected


def test_quick_mode_off_without_the_variable(reload_quick):
    reload_quick(None)
    assert not quick_mode()


def test_device_names(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")
    threads = torch.get_num_threads()
    assert device_name("cpu") == (f"CPU ({threads} threads)" if threads > 1 else "CPU (1 thread)")


def test_seed_everything_repeats_random_draws():
    seed_everything(3)
    first = (torch.rand(3), torch.randn(2))
    seed_everything(3)
    assert all(torch.equal(a, b) for a, b in zip(first, (torch.rand(3), torch.randn(2))))


def test_count_parameters():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))  # 8 + 3
    assert count_parameters(model) == 11
    model[0].requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 3
    assert count_parameters(model) == 11


# ---------------------------------------------------------------------------- optimiser, schedules

def test_weight_decay_skips_biases_and_batchnorm():
    model = tiny_cnn()
    opt = make_optimizer(model, "sgd", lr=0.1, weight_decay=5e-4)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(model[0].weight), id(model[5].weight)}
    skipped = {id(p) for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    assert {id(model[0].bias), id(model[1].weight), id(model[1].bias), id(model[5].bias)} == skipped
    assert opt.param_groups[0]["nesterov"]
    assert isinstance(make_optimizer(model, "adamw", lr=1e-3), torch.optim.AdamW)
    with pytest.raises(ValueError, match="sgd"):
        make_optimizer(model, "lion", lr=1e-3)


def test_misspelt_names_get_a_suggestion():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamm' \(did you mean 'adam', 'adamw'\?\)"):
        make_optimizer(tiny_cnn(), "adamm", lr=1e-3)
    with pytest.raises(ValueError, match=r"unknown optimizer 'sgdd' \(did you mean 'sgd'\?\)"):
        fit(tiny_cnn(), separable_data(32, 8), optimizer="sgdd", device="cpu")
    with pytest.raises(ValueError, match=r"unknown schedule 'cosin' \(did you mean 'cosine'\?\)"):
        lr_factor("cosin", 0, 10)
    with pytest.raises(ValueError, match=r"unknown schedule 'one_cycle' \(did you mean 'onecycle'\?\)"):
        fit(tiny_cnn(), separable_data(32, 8), schedule="one_cycle", device="cpu")


@pytest.mark.parametrize("schedule, start, end", [("constant", 1.0, 1.0), ("cosine", 1.0, 0.0),
                                                  ("onecycle", 1 / 25, 0.0)])
def test_schedules_start_and_end(schedule, start, end):
    total = 40
    factors = [lr_factor(schedule, step, total) for step in range(total + 1)]
    assert factors[0] == pytest.approx(start)
    assert factors[-1] == pytest.approx(end, abs=1e-12)
    assert max(factors) == pytest.approx(1.0)
    if schedule == "onecycle":
        assert factors.index(max(factors)) == total // 4  # peak after the warm-up quarter
    if schedule != "constant":
        assert all(a >= b for a, b in zip(factors[total // 4:], factors[total // 4 + 1:]))  # then decays


def test_fit_steps_the_schedule_per_batch(full_mode):
    data = separable_data(64, 16)
    # 2 epochs x 4 steps; the lr recorded is the one the optimiser used for each epoch's last step
    for schedule in ("constant", "cosine", "onecycle"):
        history = fit(tiny_cnn(), data, epochs=2, batch_size=16, lr=0.1, schedule=schedule, device="cpu",
                      progress=False, verbose=False)
        expected = [0.1 * lr_factor(schedule, step, 8) for step in (3, 7)]
        assert history.lr == pytest.approx(expected)
    assert expected[-1] < 0.1 * 0.2  # one-cycle ends close to zero


def test_unknown_schedule_or_optimizer():
    data = separable_data(32, 8)
    with pytest.raises(ValueError, match="onecycle"):
        fit(tiny_cnn(), data, schedule="step", device="cpu")
    with pytest.raises(ValueError, match="adamw"):
        fit(tiny_cnn(), data, optimizer="rmsprop", device="cpu")


# ---------------------------------------------------------------------------------- augmentation

def test_augmentation_keeps_shapes_and_shifts_content():
    images = torch.ones(64, 3, 10, 10)
    g = torch.Generator().manual_seed(0)
    out = random_crop_flip(images, padding=4, flip=True, generator=g)
    assert out.shape == images.shape and out.dtype == images.dtype
    # a crop of a zero-padded image of ones: ones except black strips of at most 4 px along the border
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert (out[:, :, 4:6, 4:6] == 1).all()
    assert (out == 0).any(), "64 random shifts should leave some black border"
    assert (out == 1).all(dim=(1, 2, 3)).any(), "... and some unshifted images"


def test_flip_only_gives_each_image_or_its_mirror():
    images = torch.rand(32, 1, 6, 6)
    out = random_crop_flip(images, padding=0, flip=True, generator=torch.Generator().manual_seed(1))
    same = (out == images).all(dim=(1, 2, 3))
    mirrored = (out == images.flip(3)).all(dim=(1, 2, 3))
    assert (same | mirrored).all() and same.any() and mirrored.any()


def test_augmentation_disabled_is_identity():
    images = torch.rand(8, 3, 6, 6)
    assert torch.equal(random_crop_flip(images, padding=0, flip=False), images)


class Recorder(nn.Module):
    """Wraps a model and keeps every training batch it is given."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.batches: list[torch.Tensor] = []

    def forward(self, x):
        if self.training:
            self.batches.append(x.detach().clone())
        return self.model(x)


def test_fit_without_augmentation_feeds_normalised_training_images(full_mode):
    data = separable_data(32, 8)
    recorder = Recorder(tiny_cnn())
    fit(recorder, data, epochs=1, batch_size=32, augment=False, device="cpu", progress=False, verbose=False)
    (batch,) = recorder.batches
    expected = data.normalize(data.train_images)
    # the batch is a permutation of the whole (normalised) training set
    order = [int(torch.cdist(b.flatten()[None], expected.flatten(1)).argmin()) for b in batch]
    assert sorted(order) == list(range(32))
    torch.testing.assert_close(batch, expected[order])

    augmented = Recorder(tiny_cnn())
    fit(augmented, data, epochs=1, batch_size=32, augment=True, device="cpu", progress=False, verbose=False)
    assert augmented.batches[0].shape == batch.shape
    assert not torch.allclose(augmented.batches[0], batch)


# --------------------------------------------------------------------------------------------- fit

def test_fit_learns_separable_data(full_mode, capsys):
    data = separable_data()
    torch.manual_seed(0)
    history = fit(tiny_cnn(), data, epochs=4, batch_size=32, lr=0.05, device="cpu", progress=False)
    assert history.final_test_acc >= 0.95
    assert len(history.train_loss) == len(history.test_acc) == len(history.epoch_seconds) == 4
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.device == device_name("cpu")
    assert history.images_per_second > 0 and history.seconds >= sum(history.epoch_seconds) * 0.99
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].startswith("epoch 1/4  train loss ") and lines[-1].endswith(" s")
    assert "test loss" in lines[0] and "acc" in lines[0]


def test_fit_progress_bar_goes_to_stdout(full_mode, capsys):
    fit(tiny_cnn(), separable_data(64, 8), epochs=1, batch_size=16, device="cpu", verbose=False)
    captured = capsys.readouterr()
    assert captured.out.startswith("\repoch 1/1:") and "| 0/4 [" in captured.out
    assert captured.out.endswith("\r")  # the bar clears itself when the epoch ends
    assert captured.err == ""


def test_fit_silent(full_mode, capsys):
    fit(tiny_cnn(), separable_data(64, 8), epochs=1, batch_size=16, device="cpu", progress=False, verbose=False)
    assert capsys.readouterr().out == ""


def test_same_seed_same_history(full_mode):
    data = separable_data(64, 16)

    def run(seed: int) -> History:
        seed_everything(0)  # the same initial weights every time
        model = nn.Sequential(tiny_cnn(), nn.Dropout(0.2))
        return fit(model, data, epochs=2, batch_size=16, augment=True, seed=seed, device="cpu",
                   progress=False, verbose=False)

    first, second, other = run(1), run(1), run(2)
    for name in ("train_loss", "train_acc", "test_loss", "test_acc", "lr"):
        assert getattr(first, name) == getattr(second, name), name
    assert first.train_loss != other.train_loss


def test_quick_mode_caps_steps_and_evaluation(quick_on, capsys):
    data = separable_data(320, 600)  # 20 steps of 16 per epoch, 600 test images
    calls = {"train": 0, "eval": 0}
    model = tiny_cnn()
    model.register_forward_hook(lambda m, i, o: calls.__setitem__(
        "train" if m.training else "eval", calls["train" if m.training else "eval"] + len(i[0])))
    fit(model, data, epochs=2, batch_size=16, device="cpu", progress=False)
    assert calls == {"train": 2 * training.QUICK_STEPS * 16, "eval": 2 * training.QUICK_TEST_IMAGES}
    lines = capsys.readouterr().out.splitlines()
    notices = [line for line in lines if QUICK_ENV in line]
    assert notices == [f"{QUICK_ENV} is set: training capped at 5 of 20 steps per epoch, "
                       "evaluation at 512 of 600 test images"]
    assert len(lines) == 3  # the notice and one line per epoch


def test_quick_argument_overrides_the_process_wide_mode(capsys):
    data = separable_data(320, 600)  # 20 steps of 16 per epoch, 600 test images
    previous = quick_mode()
    try:
        for mode, quick_arg, steps in ((True, False, 20), (False, True, training.QUICK_STEPS), (True, None, training.QUICK_STEPS),
                                       (False, None, 20)):
            set_quick_mode(mode)
            recorder = Recorder(tiny_cnn())
            fit(recorder, data, epochs=1, batch_size=16, device="cpu", progress=False, quick=quick_arg)
            assert len(recorder.batches) == steps, (mode, quick_arg)
            notice = capsys.readouterr().out.splitlines()[0]
            assert notice.startswith("quick=True: training capped" if quick_arg else
                                     f"{QUICK_ENV} is set" if mode and quick_arg is None else "epoch 1/1")
    finally:
        set_quick_mode(previous)


def test_max_steps_per_epoch_in_full_mode(full_mode):
    data = separable_data(320, 16)
    recorder = Recorder(tiny_cnn())
    fit(recorder, data, epochs=2, batch_size=16, max_steps_per_epoch=3, device="cpu", progress=False,
        verbose=False)
    assert len(recorder.batches) == 6


def test_compile_failure_falls_back_to_eager(full_mode, monkeypatch, capsys):
    def broken_compile(model):
        def compiled(x):
            raise RuntimeError("no C++ compiler")
        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    history = fit(tiny_cnn(), separable_data(64, 16), epochs=2, batch_size=32, compile=True, device="cpu",
                  progress=False, verbose=False)
    assert capsys.readouterr().out == "torch.compile failed (RuntimeError); training without it\n"
    assert len(history.test_acc) == 2


def test_classification_loss_adds_weighted_aux_losses():
    torch.manual_seed(0)
    main, aux1, aux2 = torch.randn(3, 8, 5).unbind(0)
    labels = torch.randint(0, 5, (8,))
    total, main_loss, scores = classification_loss((main, aux1, aux2), labels, aux_weight=0.3)
    by_hand = F.cross_entropy(main, labels) + 0.3 * (F.cross_entropy(aux1, labels) + F.cross_entropy(aux2, labels))
    torch.testing.assert_close(total, by_hand)
    torch.testing.assert_close(main_loss, F.cross_entropy(main, labels))
    assert scores is main
    plain, plain_main, _ = classification_loss(main, labels, label_smoothing=0.1)
    torch.testing.assert_close(plain, F.cross_entropy(main, labels, label_smoothing=0.1))
    torch.testing.assert_close(plain, plain_main)


def test_fit_trains_auxiliary_heads_only_through_aux_weight(full_mode):
    data = separable_data(64, 16)
    for aux_weight, should_change in ((0.3, True), (0.0, False)):
        torch.manual_seed(0)
        model = WithAuxHead()
        before = model.aux.weight.detach().clone()
        history = fit(model, data, epochs=1, batch_size=16, weight_decay=0.0, aux_weight=aux_weight,
                      device="cpu", progress=False, verbose=False)
        changed = not torch.equal(model.aux.weight, before)
        assert changed == should_change
        assert math.isfinite(history.test_loss[0])  # evaluation ran in eval mode: one output
    assert model.training


class FlipsCudnnBenchmark(nn.Module):
    """A model whose forward pass turns cuDNN's benchmark mode on, as `fit` itself does on CUDA."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.net, self.fail = tiny_cnn(), fail

    def forward(self, x):
        torch.backends.cudnn.benchmark = True
        if self.fail:
            raise RuntimeError("out of memory")
        return self.net(x)


@pytest.mark.parametrize("fail", [False, True])
def test_fit_gives_cudnn_benchmark_back(full_mode, fail):
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    try:
        if fail:
            with pytest.raises(RuntimeError, match="out of memory"):
                fit(FlipsCudnnBenchmark(fail=True), separable_data(32, 8), epochs=1, batch_size=16, device="cpu",
                    progress=False, verbose=False)
        else:
            fit(FlipsCudnnBenchmark(), separable_data(32, 8), epochs=1, batch_size=16, device="cpu",
                progress=False, verbose=False)
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = previous


def test_fit_restores_the_training_mode(full_mode):
    data = separable_data(32, 8)
    for mode in (True, False):
        model = tiny_cnn().train(mode)
        fit(model, data, epochs=1, batch_size=16, device="cpu", progress=False, verbose=False)
        assert all(module.training is mode for module in model.modules())


# ------------------------------------------------------------------------------ evaluate, predict

def test_evaluate_and_predict_agree():
    data = separable_data(32, 40)
    torch.manual_seed(0)
    model = tiny_cnn().train()
    loss, accuracy = evaluate(model, data, batch_size=16)
    assert model.training  # mode restored
    predicted = predict(model, data.test_images, data)
    assert predicted.dtype == torch.int64 and predicted.shape == (40,)
    assert accuracy == pytest.approx((predicted == data.test_labels).float().mean().item())
    model.eval()
    with torch.no_grad():
        logits = model(data.normalize(data.test_images))
    assert loss == pytest.approx(F.cross_entropy(logits, data.test_labels).item(), rel=1e-5)
    assert predict(model, data.test_images[0], data).shape == (1,)
    _, train_accuracy = evaluate(model, data, split="train", limit=8)
    assert 0.0 <= train_accuracy <= 1.0 and train_accuracy * 8 == int(train_accuracy * 8)
    with pytest.raises(ValueError, match="split"):
        evaluate(model, data, split="val")


def partly_frozen_cnn() -> nn.Module:
    """A model in train mode with its BatchNorm left in eval mode on purpose (frozen statistics)."""
    model = tiny_cnn().train()
    model[1].eval()
    return model


def modes(model: nn.Module) -> list[bool]:
    return [module.training for module in model.modules()]


@pytest.mark.parametrize("call", ["evaluate", "predict"])
def test_evaluation_runs_in_eval_mode_and_restores_each_modules_mode(call):
    data = separable_data(32, 24)
    model = partly_frozen_cnn()
    before = modes(model)
    assert before[0] and not before[2]  # the container trains, its BatchNorm does not
    seen = []
    model.register_forward_pre_hook(lambda module, inputs: seen.append(modes(module)))
    if call == "evaluate":
        evaluate(model, data, batch_size=16)
    else:
        predict(model, data.test_images, data, batch_size=16)
    assert len(seen) == 2 and all(not any(s) for s in seen)  # every module in eval mode, for both batches
    assert modes(model) == before  # model.train(True) would have unfrozen the BatchNorm


def test_evaluation_restores_modes_when_the_model_raises():
    model = partly_frozen_cnn()
    before = modes(model)

    def boom(module, inputs):
        raise RuntimeError("boom")

    model.register_forward_pre_hook(boom)
    with pytest.raises(RuntimeError, match="boom"):
        evaluate(model, separable_data(32, 8))
    assert modes(model) == before


def test_predict_rejects_images_of_the_wrong_rank():
    data = separable_data(32, 8)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(C, H, W\), got \(12, 12\)"):
        predict(tiny_cnn(), torch.rand(12, 12), data)


# ----------------------------------------------------------------------------------------- History

def test_history_reports_and_plots():
    history = History(train_loss=[1.0, 0.5], train_acc=[0.6, 0.8], test_loss=[0.9, 0.6], test_acc=[0.7, 0.75],
                      epoch_seconds=[1.0, 1.0], lr=[0.1, 0.0], device="CPU (2 threads)",
                      images_per_second=1234.0, seconds=2.5)
    assert history.final_test_acc == 0.75
    assert math.isnan(History().final_test_acc)
    assert "0.750" in history.summary() and "1,234 img/s" in history.summary()
    assert history.to_dict()["test_acc"] == [0.7, 0.75]
    assert not hasattr(history, "plot")  # plotting lives in lib.visualize, so training needs no matplotlib
    figure = plot_history(history)
    assert isinstance(figure, Figure) and len(figure.axes) == 2


def test_autocast_picks_bf16_only_on_gpus_with_bf16_tensor_cores(monkeypatch):
    assert device.autocast_dtype(torch.device("cpu"), amp=True) is None
    cuda = torch.device("cuda", 0)
    assert device.autocast_dtype(cuda, amp=False) is None
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))  # T4 (Turing)
    assert device.autocast_dtype(cuda, amp=True) is torch.float16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))  # H100/H200
    assert device.autocast_dtype(cuda, amp=True) is torch.bfloat16


def test_grad_scaler_scales_only_fp16():
    # One training-step code path: a disabled scaler hands the loss and the step through unchanged.
    for dtype in (None, torch.bfloat16):
        scaler = device.grad_scaler(dtype)
        loss = torch.tensor(2.5)
        assert not scaler.is_enabled() and scaler.scale(loss) is loss and scaler.state_dict() == {}
    if torch.cuda.is_available():
        assert device.grad_scaler(torch.float16).is_enabled()


BOOK = Path(__file__).resolve().parents[1] / "book"


def test_t4_estimate_reads_a_chapter_from_the_results_file(tmp_path, capsys):
    results = tmp_path / "results.json"
    runs = [{"label": "a", "count": 2, "seconds": [50.0, 90.0]}, {"label": "b", "count": 1, "seconds": [70.5, 99]}]
    results.write_text(json.dumps({"t4_estimate": {
        "assumptions": {"name": "Tesla T4 (Colab)"},
        "chapters": [{"chapter": "01_lenet", "runs": runs, "seconds": [120.5, 189.0],
                      "setup_seconds": [20.0, 65.0]}]}}))
    estimate = estimates.print_t4_estimate("01_lenet", results)
    assert estimate["seconds"] == [120.5, 189.0] and estimate["gpu"] == "Tesla T4 (Colab)"
    first = capsys.readouterr().out.splitlines()[0]
    assert first == ("Full mode on a Tesla T4 (Colab): an estimated 2-3 min of training in 3 lib.fit calls, "
                     "plus 20-65 s on a first run to clone, install and download")
    old = tmp_path / "old.json"  # written by a bench.py from before the ranges
    old.write_text(json.dumps({"t4_estimate": {"assumptions": {"name": "T4"},
                                               "chapters": [{"chapter": "01_lenet", "seconds": 120.5}]}}))
    with pytest.raises(ValueError, match="--t4-only"):
        estimates.t4_estimate("01_lenet", old)
    with pytest.raises(ValueError, match=r"unknown chapter '09_x'.*01_lenet"):
        estimates.t4_estimate("09_x", results)
    with pytest.raises(FileNotFoundError, match="bench.py"):
        estimates.t4_estimate("01_lenet", tmp_path / "missing.json")


def test_t4_estimate_gives_one_figure_when_both_ends_round_alike(tmp_path, capsys):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"t4_estimate": {
        "assumptions": {"name": "T4"},
        "chapters": [{"chapter": "05_resnet", "runs": [], "seconds": [335.0, 384.0],
                      "setup_seconds": [60.0, 130.0]}]}}))
    estimates.print_t4_estimate("05_resnet", results)
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("Full mode on a T4: an estimated 6 min of training in 0 lib.fit calls")
    assert "plus 1-2 min on a first run" in first


def test_t4_estimate_covers_every_chapter_that_trains():
    # The committed results file has an estimate for every notebook that calls lib.fit.
    chapters = sorted(path.stem for path in BOOK.glob("0[1-6]_*.ipynb") if "lib.fit(" in path.read_text())
    for chapter in chapters:
        low, high = estimates.t4_estimate(chapter)["seconds"]
        assert 0 < low < high, chapter


def test_channels_last_is_on_for_cuda_only_by_default():
    data = separable_data(n_train=32, n_test=16, channels=3)  # with one channel NCHW and NHWC coincide

    def conv_is_nhwc(model: nn.Module) -> bool:
        return model[0].weight.is_contiguous(memory_format=torch.channels_last) and \
            not model[0].weight.is_contiguous()

    default = tiny_cnn(channels=3)
    fit(default, data, epochs=1, batch_size=16, device="cpu", progress=False, verbose=False)
    assert not conv_is_nhwc(default)  # the CPU keeps NCHW unless asked
    asked = tiny_cnn(channels=3)
    fit(asked, data, epochs=1, batch_size=16, device="cpu", channels_last=True, progress=False, verbose=False)
    assert conv_is_nhwc(asked)
