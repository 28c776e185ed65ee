"""benchmarks/: a --quick run end to end (last line, results schema, the committed file left alone) and the
T4 estimator by hand.

The quick run takes seconds of CPU; no test here asserts a speed, only that every figure is there,
positive and consistent with the others.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench.py"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import cli, fast, gpu, naive, network, parity, t4, workloads  # noqa: E402

LAST_LINE = re.compile(r"^speed-up over the naive pipeline \(LeNet/MNIST-sized\): \d+\.\d\dx$")
WRITTEN = re.compile(r"^results written to (.+) \(\d+ s in all\)$", re.MULTILINE)


def snapshot(path: Path) -> tuple[bytes, int] | None:
    """The file's content and modification time (ns), or None if it does not exist."""
    return (path.read_bytes(), path.stat().st_mtime_ns) if path.exists() else None


@pytest.fixture(scope="module")
def quick_run() -> tuple[subprocess.CompletedProcess, dict]:
    # Without --output: a quick run writes a temporary file and says where; results.json stays as it was.
    committed = snapshot(cli.DEFAULT_OUTPUT)
    process = subprocess.run([sys.executable, str(BENCH), "--quick", "--threads", "1"],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-2000:]
    assert snapshot(cli.DEFAULT_OUTPUT) == committed, "--quick must leave the committed results file alone"
    written = WRITTEN.search(process.stdout)
    assert written, process.stdout[-2000:]
    output = Path(written.group(1))
    assert output.is_absolute() and output.parent == Path(tempfile.gettempdir()), output
    results = json.loads(output.read_text())
    output.unlink()
    return process, results


def ratio_of_rounded(ratio: float, numerator: float, denominator: float, step: float = 0.1) -> bool:
    """Whether `ratio` (rounded to 3 decimals) can be numerator / denominator before these two were
    rounded to `step`: the results file keeps rates to 0.1 image per second and ratios of the unrounded ones.
    """
    low = (numerator - step / 2) / (denominator + step / 2)
    high = (numerator + step / 2) / (denominator - step / 2)
    return low - 5e-4 <= ratio <= high + 5e-4


def test_output_path_keeps_quick_runs_away_from_the_committed_results(tmp_path):
    assert cli.output_path(cli.parse_args([])) == cli.DEFAULT_OUTPUT
    assert cli.output_path(cli.parse_args(["--t4-only"])) == cli.DEFAULT_OUTPUT
    chosen = tmp_path / "r.json"
    assert cli.output_path(cli.parse_args(["--quick", "--output", str(chosen)])) == chosen
    first, second = (cli.output_path(cli.parse_args(["--quick"])) for _ in range(2))
    try:
        assert first != second and first != cli.DEFAULT_OUTPUT
        assert first.parent == Path(tempfile.gettempdir()) and first.suffix == ".json"
    finally:
        first.unlink(missing_ok=True)
        second.unlink(missing_ok=True)


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
    assert results["schema"] == cli.SCHEMA_VERSION and results["mode"] == "quick"
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


def test_quick_results_have_every_workload_with_positive_throughput(quick_run):
    _, results = quick_run
    measured = {w["key"]: w for w in results["workloads"]}
    assert list(measured) == [w.key for w in workloads.WORKLOADS]
    assert set(measured) == {"lenet_mnist", "resnet20_cifar", "resnet18_cifar"}
    assert measured["lenet_mnist"]["image_shape"] == [1, 28, 28] and measured["lenet_mnist"]["augment"] is False
    assert measured["resnet18_cifar"]["augment"] is True and measured["resnet20_cifar"]["augment"] is True
    for w in measured.values():
        rates = {name: w[name]["images_per_second"] for name in ("naive", "fast", "compute")}
        assert all(positive(rate) for rate in rates.values()) and positive(w["mult_adds_per_image"])
        assert len(w["naive"]["per_round"]) == len(w["fast"]["per_round"]) == len(w["compute"]["per_round"]) \
            == w["rounds"] >= 1
        # The file keeps rates rounded to 0.1 img/s and the speed-up of the unrounded ones.
        assert ratio_of_rounded(w["speedup"], rates["fast"], rates["naive"]), (w["speedup"], rates)
        if sys.platform.startswith("linux"):  # CPU time of the workers comes from /proc
            naive_cpu, fast_cpu = w["naive"]["images_per_cpu_second"], w["fast"]["images_per_cpu_second"]
            assert positive(naive_cpu) and positive(fast_cpu)
            # Here both sides are the rounded medians: the same numbers the file holds.
            assert w["speedup_cpu"] == pytest.approx(fast_cpu / naive_cpu, abs=6e-4)
        options = fast.fast_options(torch.device(results["device"]["type"]))
        assert w["fast"]["options"] == w["compute"]["options"] == options
        assert all("pipeline" in w[name] for name in ("naive", "fast", "compute"))


def test_quick_results_give_each_pipeline_as_a_fraction_of_the_compute_only_loop(quick_run):
    _, results = quick_run
    measured = {w["key"]: w for w in results["workloads"]}
    assert results["limit"] == {key: w["fraction_of_compute"]["fast"] for key, w in measured.items()}
    for w in measured.values():
        compute = w["compute"]["images_per_second"]
        for name in ("naive", "fast"):
            fraction = w["fraction_of_compute"][name]
            assert positive(fraction) and ratio_of_rounded(fraction, w[name]["images_per_second"], compute)
            if sys.platform.startswith("linux"):
                cpu = w[name]["images_per_cpu_second"] / w["compute"]["images_per_cpu_second"]
                assert w["fraction_of_compute_cpu"][name] == pytest.approx(cpu, abs=6e-4)


def test_quick_results_have_parity_ratios(quick_run):
    _, results = quick_run
    rows = {p["model"]: p for p in results["parity"]}
    in_quick = {name for name, _, quick in parity.PARITY if quick}
    assert set(rows) == in_quick == {"alexnet", "googlenet", "resnet18", "resnet50"}
    for p in rows.values():
        assert p["state_dict_strict"] is True, p
        assert positive(p["lib_ms"]) and positive(p["torchvision_ms"])
        assert p["ratio"] == pytest.approx(p["lib_ms"] / p["torchvision_ms"], rel=1e-2)


def test_quick_results_estimate_each_listed_chapter(quick_run):
    _, results = quick_run
    estimate = results["t4_estimate"]
    assert estimate["assumptions"]["peak_flops"] == t4.T4.peak_flops
    chapters = {c["chapter"]: c for c in estimate["chapters"]}
    assert set(chapters) == {run.chapter for run in t4.CHAPTER_RUNS}
    for chapter in chapters.values():
        for end in (0, 1):
            assert chapter["seconds"][end] == pytest.approx(sum(r["seconds"][end] for r in chapter["runs"]),
                                                            abs=0.2)
        assert chapter["seconds"][0] < chapter["seconds"][1]
        assert all(positive(r["seconds"][0]) and positive(r["mult_adds_per_image"]) and
                   positive(r["step_operators"]) for r in chapter["runs"])


def test_t4_only_updates_the_estimates_and_nothing_else(quick_run, tmp_path):
    _, results = quick_run
    stale = dict(results, t4_estimate={"assumptions": {}, "chapters": []})
    output = tmp_path / "results.json"
    output.write_text(json.dumps(stale))
    updated = cli.main(["--t4-only", "--output", str(output)])
    assert json.loads(output.read_text()) == updated
    assert {k: v for k, v in updated.items() if k != "t4_estimate"} == \
        {k: v for k, v in results.items() if k != "t4_estimate"}
    assert updated["t4_estimate"]["chapters"] == results["t4_estimate"]["chapters"]
    with pytest.raises(SystemExit, match="does not exist"):
        cli.main(["--t4-only", "--output", str(tmp_path / "missing.json")])


def test_committed_estimates_follow_the_chapter_table(quick_run):
    # The chapters print the committed estimates; they must be those of the current CHAPTER_RUNS.
    _, results = quick_run
    committed = json.loads(cli.DEFAULT_OUTPUT.read_text())["t4_estimate"]["chapters"]
    assert committed == results["t4_estimate"]["chapters"], "run: python benchmarks/bench.py --t4-only"


# ----------------------------------------------------------------------------- the estimator by hand

GPU = t4.GPUAssumptions(name="test", peak_flops=1e12, utilization=0.5)  # 5e11 FLOP/s
COST = dict(step_ops=200, eval_ops=60, operator_s=1e-4)  # 0.02 s per step, 0.006 s per evaluation batch


def test_t4_seconds_compute_bound_by_hand():
    # 1,000 training images in batches of 100: 10 steps of 6 * 1e9 * 100 = 6e11 FLOP -> 1.2 s each.
    # 600 test images in batches of 512 and 88: 2 * 1e9 * (512 + 88) = 1.2e12 FLOP -> 2.4 s.
    # (1.2 * 10 + 2.4) * 2 epochs = 28.8 s.
    seconds = t4.t4_seconds(1e9, train_images=1_000, test_images=600, epochs=2, batch_size=100, gpu=GPU,
                            **COST)
    assert seconds == pytest.approx(28.8)


def test_t4_seconds_operator_bound_by_hand():
    # A tiny network: every step costs its operators, 200 * 1e-4 = 0.02 s (10 steps), every evaluation
    # batch 60 * 1e-4 = 0.006 s (2 batches): 0.2 + 0.012 per epoch.
    seconds = t4.t4_seconds(1e3, train_images=1_000, test_images=600, epochs=1, batch_size=100, gpu=GPU,
                            **COST)
    assert seconds == pytest.approx(0.212)


def test_t4_seconds_max_steps_per_epoch_caps_the_training_steps():
    # As in the compute-bound case, but 4 of the 10 steps: (1.2 * 4 + 2.4) * 2 epochs = 14.4 s.
    seconds = t4.t4_seconds(1e9, train_images=1_000, test_images=600, epochs=2, batch_size=100,
                            max_steps_per_epoch=4, gpu=GPU, **COST)
    assert seconds == pytest.approx(14.4)


def test_operator_counts_grow_with_the_network():
    # A step dispatches its forward, backward and optimiser operators: deeper networks, more of them;
    # an evaluation batch only the forward pass's and the loss's.
    import lib
    from benchmarks.operators import OperatorCount, step_operators

    with OperatorCount() as count:
        torch.ones(3).add(1).mul(2)
    assert count.calls == 3
    train20, eval20 = step_operators(lambda: lib.models.resnet20(), (3, 16, 16))
    train56, eval56 = step_operators(lambda: lib.models.resnet56(), (3, 16, 16))
    assert 0 < eval20 < train20 and 0 < eval56 < train56
    assert train56 > 2 * train20 and eval56 > 2 * eval20
    assert step_operators(lambda: lib.models.resnet20(), (3, 16, 16), augment=False)[0] < train20


def test_setup_seconds_add_each_dataset_once():
    assert t4.setup_seconds(set(), GPU) == list(GPU.setup_seconds)
    low, high = t4.setup_seconds({"mnist", "cifar10"}, GPU)
    downloads = {name: (a, b) for name, a, b in GPU.download_seconds}
    assert low == GPU.setup_seconds[0] + downloads["mnist"][0] + downloads["cifar10"][0]
    assert high == GPU.setup_seconds[1] + downloads["mnist"][1] + downloads["cifar10"][1]


def test_t4_assumptions_reproduce_their_anchor():
    # 15% of 65 TFLOP/s is what NVIDIA's ResNet-50 figure on a T4 implies: 1,198 img/s x 2 x 4.09 GMACs.
    assert t4.T4.peak_flops * t4.T4.utilization == pytest.approx(1_198 * 2 * 4.09e9, rel=0.01)


def test_network_profile_counts_mult_adds_and_layer_calls():
    # torchinfo counts every parameter once per output position, biases included: the conv (1 -> 2
    # channels, 3x3, 4x4 -> 2x2) 4 positions x (18 weights + 2 biases) = 80; the linear layer 24 + 3 = 27.
    # Layer calls: conv, the shared ReLU twice, flatten, linear (containers and identities launch nothing).
    relu = nn.ReLU()

    def build() -> nn.Module:
        return nn.Sequential(nn.Conv2d(1, 2, 3), relu, relu, nn.Sequential(nn.Flatten(), nn.Identity()),
                             nn.Linear(8, 3))

    assert network.network_profile(build, (1, 4, 4)) == (80 + 27, 5)


def test_tiled_repeats_and_scales():
    from lib.data import ImageData

    images = torch.rand(3, 3, 32, 32)
    data = ImageData(name="t", source="test", classes=["a", "b", "c"], train_images=images,
                     train_labels=torch.arange(3), test_images=images[:2], test_labels=torch.arange(2),
                     mean=(0.5,) * 3, std=(0.25,) * 3, offline=True)
    big = workloads.tiled(data, 7, 5)
    assert big.train_images.shape == (7, 3, 32, 32) and big.train_labels.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert torch.equal(big.train_images[6], images[0]) and big.test_labels.tolist() == [0, 1, 0, 1, 0]
    small = workloads.tiled(data, 3, 2, side=16)
    assert small.train_images.shape == (3, 3, 16, 16)
    torch.testing.assert_close(small.train_images.mean(), images.mean())


def test_pil_dataset_gives_back_the_pixels():
    from torchvision import transforms

    images = torch.rand(4, 3, 32, 32)
    colour = naive.PILDataset(images, torch.arange(4), transforms.ToTensor())
    x, label = colour[2]
    assert label == 2 and x.shape == (3, 32, 32)
    torch.testing.assert_close(x, images[2], atol=0.5 / 255 + 1e-6, rtol=0)
    gray = naive.PILDataset(images[:, :1], torch.arange(4), transforms.ToTensor())
    assert gray.data.shape == (4, 32, 32) and gray[0][0].shape == (1, 32, 32)


def test_fast_options_by_device():
    assert fast.fast_options(torch.device("cpu")) == {"amp": True, "channels_last": True, "compile": False}
    assert fast.fast_options(torch.device("mps"))["channels_last"] is False
    assert fast.fast_options(torch.device("cuda"), channels_last="off", compile=True) == {
        "amp": True, "channels_last": False, "compile": True}


def test_constant_init_keeps_values_normal():
    model = parity.constant_init(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2)))
    conv, norm, linear = model
    assert torch.all(conv.weight == 1 / 27) and torch.all(conv.bias == 0)
    assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)
    assert torch.all(norm.running_var == 1) and torch.all(norm.running_mean == 0)
    assert torch.all(linear.weight == 0.25)


# ----------------------------------------------------------------------------- the GPU check, on a CPU

GPU_CHECK = ROOT / "benchmarks" / "gpu_check.py"
NO_GPU = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the CPU path, even on a machine with a GPU


def test_gpu_check_without_cuda_says_so_in_one_line_and_succeeds():
    process = subprocess.run([sys.executable, str(GPU_CHECK)], cwd=ROOT, capture_output=True, text=True,
                             timeout=300, env=NO_GPU)
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.strip().splitlines() == [gpu.NO_CUDA]


def test_gpu_check_dry_run_trains_every_mode_on_the_cpu(tmp_path):
    output = tmp_path / "gpu_results.json"
    process = subprocess.run([sys.executable, str(GPU_CHECK), "--dry-run", "--output", str(output)], cwd=ROOT,
                             capture_output=True, text=True, timeout=300, env=NO_GPU)
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-2000:]
    last = process.stdout.strip().splitlines()[-1]
    assert last == f"GPU check (dry run, CPU): 8 of 8 checks passed; results in {output}"
    results = json.loads(output.read_text())
    assert results["dry_run"] is True and results["gpu"] is None and results["device"] == "cpu"
    assert (results["passed"], results["checks"]) == (8, 8) and "benchmark" not in results
    steps = results["steps"]
    assert {(s["family"], s["mode"]) for s in steps} == {
        (family, mode.name) for family in gpu.DRY_RUN_FAMILIES for mode in gpu.MODES}
    for s in steps:
        assert s["ok"] and s["finite"] and s["falls"] and len(s["losses"]) == 3, s
        assert all(math.isfinite(loss) for loss in s["losses"]) and s["losses"][-1] < s["losses"][0]
    compiled = next(s for s in steps if s["mode"] == "compile")
    assert compiled["compile"] is True and compiled["channels_last"] is True


def test_gpu_check_counts_failures_and_rejects_unknown_parts():
    parts = {"steps": [{"ok": True}, {"ok": False}], "benchmark": {"ok": True}}
    assert gpu.passed(parts) == (2, 3)
    with pytest.raises(SystemExit):
        gpu.parse_args(["--parts", "steps,benchmarks"])
    assert gpu.parse_args(["--parts", "steps, notebook"]).parts == ("steps", "notebook")
    with pytest.raises(ValueError, match="no chapter 'nope'"):
        gpu.run_notebook("nope", ROOT, timeout=1)


def test_a_diverging_run_fails_its_check(monkeypatch):
    monkeypatch.setattr(gpu, "train_steps", lambda *args, **kwargs: [2.3, 2.4, float("nan")])
    entry = gpu.check_steps("lenet", gpu.MODES[0], device=torch.device("cpu"))
    assert entry["ok"] is False and entry["finite"] is False
    monkeypatch.setattr(gpu, "train_steps", lambda *args, **kwargs: [2.3, 2.4, 2.5])
    entry = gpu.check_steps("lenet", gpu.MODES[0], device=torch.device("cpu"))
    assert entry["ok"] is False and entry["finite"] is True and entry["falls"] is False
