"""lib.training: quick mode, devices, the optimiser and schedules, augmentation, fit, evaluate, predict.

Everything runs on the CPU with networks of a few hundred parameters and datasets of a few hundred
12x12 images, so the whole file takes seconds.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

import lib
from lib import training
from lib.data import ImageData
from lib.training import (
    QUICK_ENV, History, classification_loss, count_parameters, device_name, evaluate, fit, lr_factor,
    make_optimizer, pick, predict, quick_mode, random_crop_flip,
)


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
def full_mode(monkeypatch):
    """The suite runs in quick mode (root conftest); these tests need fit's full behaviour."""
    monkeypatch.delenv(QUICK_ENV, raising=False)


# ----------------------------------------------------------------------------- mode, device, counting

@pytest.mark.parametrize("value, expected", [("1", True), ("yes", True), ("0", False), ("", False)])
def test_quick_mode_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv(QUICK_ENV, value)
    assert quick_mode() is expected
    assert pick(full="full", quick="quick") == ("quick" if expected else "full")


def test_quick_mode_off_without_the_variable(monkeypatch):
    monkeypatch.delenv(QUICK_ENV, raising=False)
    assert not quick_mode()
    assert pick(full=10, quick=1) == 10


def test_device_names():
    assert training.get_device().type in ("cuda", "mps", "cpu")
    threads = torch.get_num_threads()
    assert device_name("cpu") == (f"CPU ({threads} threads)" if threads > 1 else "CPU (1 thread)")


def test_seed_everything_repeats_random_draws():
    training.seed_everything(3)
    first = (torch.rand(3), torch.randn(2))
    training.seed_everything(3)
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
        training.seed_everything(0)  # the same initial weights every time
        model = nn.Sequential(tiny_cnn(), nn.Dropout(0.2))
        return fit(model, data, epochs=2, batch_size=16, augment=True, seed=seed, device="cpu",
                   progress=False, verbose=False)

    first, second, other = run(1), run(1), run(2)
    for name in ("train_loss", "train_acc", "test_loss", "test_acc", "lr"):
        assert getattr(first, name) == getattr(second, name), name
    assert first.train_loss != other.train_loss


def test_quick_mode_caps_steps_and_evaluation(monkeypatch, capsys):
    monkeypatch.setenv(QUICK_ENV, "1")
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


# ----------------------------------------------------------------------------------------- History

def test_history_reports_and_plots():
    history = History(train_loss=[1.0, 0.5], train_acc=[0.6, 0.8], test_loss=[0.9, 0.6], test_acc=[0.7, 0.75],
                      epoch_seconds=[1.0, 1.0], lr=[0.1, 0.0], device="CPU (2 threads)",
                      images_per_second=1234.0, seconds=2.5)
    assert history.final_test_acc == 0.75
    assert math.isnan(History().final_test_acc)
    assert "0.750" in history.summary() and "1,234 img/s" in history.summary()
    assert history.to_dict()["test_acc"] == [0.7, 0.75]
    figure = history.plot()
    assert isinstance(figure, Figure) and len(figure.axes) == 2


def test_autocast_picks_bf16_only_on_gpus_with_bf16_tensor_cores(monkeypatch):
    from lib import training

    assert training._autocast_dtype(torch.device("cpu"), amp=True) is None
    cuda = torch.device("cuda", 0)
    assert training._autocast_dtype(cuda, amp=False) is None
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))  # T4 (Turing)
    assert training._autocast_dtype(cuda, amp=True) is torch.float16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))  # H100/H200
    assert training._autocast_dtype(cuda, amp=True) is torch.bfloat16


BOOK = Path(__file__).resolve().parents[1] / "book"


def test_t4_estimate_reads_a_chapter_from_the_results_file(tmp_path, capsys):
    results = tmp_path / "results.json"
    runs = [{"label": "a", "count": 2, "seconds": 50.0}, {"label": "b", "count": 1, "seconds": 70.5}]
    results.write_text(json.dumps({"t4_estimate": {
        "assumptions": {"name": "Tesla T4 (Colab)"},
        "chapters": [{"chapter": "01_lenet", "runs": runs, "seconds": 120.5}]}}))
    estimate = lib.training.print_t4_estimate("01_lenet", results)
    assert estimate["seconds"] == 120.5 and estimate["gpu"] == "Tesla T4 (Colab)"
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "Full mode on a Tesla T4 (Colab): about 2 min of training in 3 lib.fit calls"
    with pytest.raises(ValueError, match=r"unknown chapter '09_x'.*01_lenet"):
        lib.training.t4_estimate("09_x", results)
    with pytest.raises(FileNotFoundError, match="bench.py"):
        lib.training.t4_estimate("01_lenet", tmp_path / "missing.json")


def test_t4_estimate_covers_every_chapter_that_trains():
    # The committed results file has an estimate for every notebook that calls lib.fit.
    chapters = sorted(path.stem for path in BOOK.glob("0[1-6]_*.ipynb") if "lib.fit(" in path.read_text())
    for chapter in chapters:
        assert lib.training.t4_estimate(chapter)["seconds"] > 0, chapter


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
