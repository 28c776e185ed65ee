"""benchmarks/bench.py: a --quick run end to end (last line, results schema) and the T4 estimator by hand.

The quick run takes seconds of CPU; no test here asserts a speed, only that every figure is there,
positive and consistent with the others.
"""
from __future__ import annotations

import datetime
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench.py"
sys.path.insert(0, str(BENCH.parent))

import bench  # noqa: E402

LAST_LINE = re.compile(r"^speed-up over the naive pipeline \(LeNet/MNIST-sized\): \d+\.\d\dx$")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict]:
    committed = bench.DEFAULT_OUTPUT.read_bytes() if bench.DEFAULT_OUTPUT.exists() else None
    output = tmp_path_factory.mktemp("bench") / "results.json"
    process = subprocess.run([sys.executable, str(BENCH), "--quick", "--threads", "1", "--output", str(output)],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-2000:]
    after = bench.DEFAULT_OUTPUT.read_bytes() if bench.DEFAULT_OUTPUT.exists() else None
    assert after == committed, "--quick --output must leave the committed results file alone"
    return process, json.loads(output.read_text())


def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_quick_run_prints_the_speedup_last_and_nothing_on_stderr(quick_run):
    process, results = quick_run
    lines = process.stdout.strip().splitlines()
    assert LAST_LINE.match(lines[-1]), lines[-1]
    lenet = next(w for w in results["workloads"] if w["key"] == "lenet_mnist")
    assert lines[-1].endswith(f"{lenet['speedup']:.2f}x")
    assert "Traceback" not in process.stdout
    assert "Warning" not in process.stderr and "Traceback" not in process.stderr, process.stderr[-2000:]


def test_quick_results_say_where_they_were_measured(quick_run):
    _, results = quick_run
    assert results["schema"] == bench.SCHEMA_VERSION and results["mode"] == "quick"
    datetime.datetime.fromisoformat(results["date"])
    machine = results["machine"]
    assert machine["cpu"] and isinstance(machine["cores"], int) and machine["cores"] >= 1
    assert "load_average_before" in machine and "load_average_after" in machine
    device = results["device"]
    assert device["type"] == "cpu" or torch.cuda.is_available() or torch.backends.mps.is_available()
    assert device["name"] and device["torch_threads"] == 1 and device["dataloader_workers"] >= 1
    assert results["versions"]["torch"] == torch.__version__
    import torchvision

    assert results["versions"]["torchvision"] == torchvision.__version__
    assert positive(results["seconds"])


def test_quick_results_have_both_workloads_with_positive_throughput(quick_run):
    _, results = quick_run
    workloads = {w["key"]: w for w in results["workloads"]}
    assert set(workloads) == {"lenet_mnist", "resnet18_cifar"}
    assert workloads["lenet_mnist"]["image_shape"] == [1, 28, 28]
    assert workloads["resnet18_cifar"]["augment"] is True
    for w in workloads.values():
        naive, fast = w["naive"]["images_per_second"], w["fast"]["images_per_second"]
        assert positive(naive) and positive(fast) and positive(w["mult_adds_per_image"])
        assert len(w["naive"]["per_round"]) == len(w["fast"]["per_round"]) == w["rounds"] >= 1
        assert w["speedup"] == pytest.approx(fast / naive, rel=1e-2)
        if sys.platform.startswith("linux"):  # CPU time of the workers comes from /proc
            naive_cpu, fast_cpu = w["naive"]["images_per_cpu_second"], w["fast"]["images_per_cpu_second"]
            assert positive(naive_cpu) and positive(fast_cpu)
            assert w["speedup_cpu"] == pytest.approx(fast_cpu / naive_cpu, rel=1e-2)
        assert w["fast"]["options"] == bench.fast_options(torch.device(results["device"]["type"]))
        assert "pipeline" in w["naive"] and "pipeline" in w["fast"]


def test_quick_results_have_parity_ratios(quick_run):
    _, results = quick_run
    parity = {p["model"]: p for p in results["parity"]}
    in_quick = {name for name, _, quick in bench.PARITY if quick}
    assert set(parity) == in_quick == {"alexnet", "googlenet", "resnet18", "resnet50"}
    for p in parity.values():
        assert p["state_dict_strict"] is True, p
        assert positive(p["lib_ms"]) and positive(p["torchvision_ms"])
        assert p["ratio"] == pytest.approx(p["lib_ms"] / p["torchvision_ms"], rel=1e-2)


def test_quick_results_estimate_each_listed_chapter(quick_run):
    _, results = quick_run
    estimate = results["t4_estimate"]
    assert estimate["assumptions"]["peak_flops"] == bench.T4.peak_flops
    chapters = {c["chapter"]: c for c in estimate["chapters"]}
    assert set(chapters) == {run.chapter for run in bench.CHAPTER_RUNS}
    for chapter in chapters.values():
        assert chapter["seconds"] == pytest.approx(sum(r["seconds"] for r in chapter["runs"]), abs=0.2)
        assert all(positive(r["seconds"]) and positive(r["mult_adds_per_image"]) for r in chapter["runs"])


def test_t4_only_updates_the_estimates_and_nothing_else(quick_run, tmp_path):
    _, results = quick_run
    stale = dict(results, t4_estimate={"assumptions": {}, "chapters": []})
    output = tmp_path / "results.json"
    output.write_text(json.dumps(stale))
    updated = bench.main(["--t4-only", "--output", str(output)])
    assert json.loads(output.read_text()) == updated
    assert {k: v for k, v in updated.items() if k != "t4_estimate"} == \
        {k: v for k, v in results.items() if k != "t4_estimate"}
    assert updated["t4_estimate"]["chapters"] == results["t4_estimate"]["chapters"]
    with pytest.raises(SystemExit, match="does not exist"):
        bench.main(["--t4-only", "--output", str(tmp_path / "missing.json")])


def test_committed_estimates_follow_the_chapter_table(quick_run):
    # The chapters print the committed estimates; they must be those of the current CHAPTER_RUNS.
    _, results = quick_run
    committed = json.loads(bench.DEFAULT_OUTPUT.read_text())["t4_estimate"]["chapters"]
    assert committed == results["t4_estimate"]["chapters"], "run: python benchmarks/bench.py --t4-only"


# ----------------------------------------------------------------------------- the estimator by hand

GPU = bench.GPUAssumptions(name="test", peak_flops=1e12, utilization=0.5, step_overhead_s=0.01,
                           layer_overhead_s=0.001)  # 5e11 FLOP/s; 0.02 s per step with 10 layers


def test_t4_seconds_compute_bound_by_hand():
    # 1,000 training images in batches of 100: 10 steps of 6 * 1e9 * 100 = 6e11 FLOP -> 1.2 s each.
    # 600 test images in batches of 512 and 88: 2 * 1e9 * (512 + 88) = 1.2e12 FLOP -> 2.4 s.
    # (1.2 * 10 + 2.4) * 2 epochs = 28.8 s.
    seconds = bench.t4_seconds(1e9, layers=10, train_images=1_000, test_images=600, epochs=2,
                               batch_size=100, gpu=GPU)
    assert seconds == pytest.approx(28.8)


def test_t4_seconds_overhead_bound_by_hand():
    # A tiny network: every step costs its launch overhead, 0.01 + 10 * 0.001 = 0.02 s (10 steps),
    # every evaluation batch a third of it (2 batches): 0.2 + 2 * 0.02 / 3 per epoch.
    seconds = bench.t4_seconds(1e3, layers=10, train_images=1_000, test_images=600, epochs=1,
                               batch_size=100, gpu=GPU)
    assert seconds == pytest.approx(0.2 + 0.04 / 3)


def test_t4_seconds_max_steps_per_epoch_caps_the_training_steps():
    # As in the compute-bound case, but 4 of the 10 steps: (1.2 * 4 + 2.4) * 2 epochs = 14.4 s.
    seconds = bench.t4_seconds(1e9, layers=10, train_images=1_000, test_images=600, epochs=2,
                               batch_size=100, max_steps_per_epoch=4, gpu=GPU)
    assert seconds == pytest.approx(14.4)


def test_t4_assumptions_reproduce_their_anchor():
    # 15% of 65 TFLOP/s is what NVIDIA's ResNet-50 figure on a T4 implies: 1,198 img/s x 2 x 4.09 GMACs.
    assert bench.T4.peak_flops * bench.T4.utilization == pytest.approx(1_198 * 2 * 4.09e9, rel=0.01)


def test_network_profile_counts_mult_adds_and_layer_calls():
    # torchinfo counts every parameter once per output position, biases included: the conv (1 -> 2
    # channels, 3x3, 4x4 -> 2x2) 4 positions x (18 weights + 2 biases) = 80; the linear layer 24 + 3 = 27.
    # Layer calls: conv, the shared ReLU twice, flatten, linear (containers and identities launch nothing).
    relu = nn.ReLU()

    def build() -> nn.Module:
        return nn.Sequential(nn.Conv2d(1, 2, 3), relu, relu, nn.Sequential(nn.Flatten(), nn.Identity()),
                             nn.Linear(8, 3))

    assert bench.network_profile(build, (1, 4, 4)) == (80 + 27, 5)


def test_tiled_repeats_and_scales():
    from lib.data import ImageData

    images = torch.rand(3, 3, 32, 32)
    data = ImageData(name="t", source="test", classes=["a", "b", "c"], train_images=images,
                     train_labels=torch.arange(3), test_images=images[:2], test_labels=torch.arange(2),
                     mean=(0.5,) * 3, std=(0.25,) * 3, offline=True)
    big = bench.tiled(data, 7, 5)
    assert big.train_images.shape == (7, 3, 32, 32) and big.train_labels.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert torch.equal(big.train_images[6], images[0]) and big.test_labels.tolist() == [0, 1, 0, 1, 0]
    small = bench.tiled(data, 3, 2, side=16)
    assert small.train_images.shape == (3, 3, 16, 16)
    torch.testing.assert_close(small.train_images.mean(), images.mean())


def test_pil_dataset_gives_back_the_pixels():
    from torchvision import transforms

    images = torch.rand(4, 3, 32, 32)
    colour = bench.PILDataset(images, torch.arange(4), transforms.ToTensor())
    x, label = colour[2]
    assert label == 2 and x.shape == (3, 32, 32)
    torch.testing.assert_close(x, images[2], atol=0.5 / 255 + 1e-6, rtol=0)
    gray = bench.PILDataset(images[:, :1], torch.arange(4), transforms.ToTensor())
    assert gray.data.shape == (4, 32, 32) and gray[0][0].shape == (1, 32, 32)


def test_fast_options_by_device():
    assert bench.fast_options(torch.device("cpu")) == {"amp": True, "channels_last": True, "compile": False}
    assert bench.fast_options(torch.device("mps"))["channels_last"] is False
    assert bench.fast_options(torch.device("cuda"), channels_last="off", compile=True) == {
        "amp": True, "channels_last": False, "compile": True}


def test_constant_init_keeps_values_normal():
    model = bench.constant_init(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2)))
    conv, norm, linear = model
    assert torch.all(conv.weight == 1 / 27) and torch.all(conv.bias == 0)
    assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)
    assert torch.all(norm.running_var == 1) and torch.all(norm.running_mean == 0)
    assert torch.all(linear.weight == 0.25)
