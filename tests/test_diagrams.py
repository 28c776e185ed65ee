"""lib.visualize.diagrams: every layer list equals the built model's layers, map sides included; the
ring all-reduce schedule sums; the drawings show what the lists say; the stored chapter maps are current."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib

matplotlib.use("agg")
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

from lib.models import get_model  # noqa: E402
from lib.models.layers import LocalResponseNorm  # noqa: E402
from lib.visualize import diagrams  # noqa: E402
from lib.visualize.formats import render_svg  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _pair(value) -> int:
    """One side of a square window (PyTorch stores 3 or (3, 3))."""
    if isinstance(value, tuple):
        assert value[0] == value[1], f"the diagrams draw square windows only, got {value}"
        return value[0]
    return value


def signature(module: nn.Module) -> tuple | None:
    """What `Layer.signature()` must equal for this module; None for modules a diagram leaves out
    (activations, BatchNorm, dropout, containers)."""
    if isinstance(module, nn.Conv2d):
        return ("conv", module.in_channels, module.out_channels, _pair(module.kernel_size),
                _pair(module.stride), _pair(module.padding), module.groups)
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        kind = "maxpool" if isinstance(module, nn.MaxPool2d) else "avgpool"
        return (kind, _pair(module.kernel_size), _pair(module.stride), _pair(module.padding),
                module.ceil_mode)
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return ("adaptive_avgpool", _pair(module.output_size))
    if isinstance(module, LocalResponseNorm):
        return ("lrn", module.size)
    if isinstance(module, nn.Linear):
        return ("linear", module.in_features, module.out_features)
    return None


def model_layers(model: nn.Module, prefix: str = "") -> dict[str, tuple]:
    return {prefix + name: sig for name, module in model.named_modules() if (sig := signature(module))}


def mismatches(layers: list[diagrams.Layer], model: nn.Module, prefix: str = "") -> list[str]:
    """Every difference between a diagram's layers and the model's: missing, extra or different."""
    drawn = {layer.name: layer.signature() for layer in layers}
    built = model_layers(model, prefix)
    problems = [f"not drawn: {name} {sig}" for name, sig in built.items() if name not in drawn]
    problems += [f"not in the model: {name} {sig}" for name, sig in drawn.items() if name not in built]
    problems += [f"{name}: drawn {drawn[name]}, built {sig}" for name, sig in built.items()
                 if name in drawn and drawn[name] != sig]
    return problems


CASES = [
    ("lenet5", {}, diagrams.lenet_layers, {}, 28),
    ("lenet5", {"variant": "tanh", "padding": 0, "c3": "table"}, diagrams.lenet_layers,
     {"variant": "tanh", "padding": 0}, 32),
    ("alexnet", {}, diagrams.alexnet_layers, {"variant": "torchvision"}, 224),
    ("alexnet", {"variant": "paper"}, diagrams.alexnet_layers, {"variant": "paper"}, 224),
    ("alexnet_cifar", {"norm": "none", "groups": 1}, diagrams.alexnet_layers,
     {"variant": "cifar", "norm": "none", "groups": 1}, 32),
    ("vgg11_lrn", {}, diagrams.vgg_layers, {"config": "A-LRN"}, 224),
    ("vgg16_c_bn", {}, diagrams.vgg_layers, {"config": "C", "batch_norm": True}, 224),
    ("vgg16", {}, diagrams.vgg_layers, {"config": "D"}, 224),
    ("vgg19_bn", {"classifier": "cifar", "num_classes": 10}, diagrams.vgg_layers,
     {"config": "E", "batch_norm": True, "classifier": "cifar", "num_classes": 10}, 32),
    ("googlenet", {}, diagrams.googlenet_layers, {}, 224),
    ("googlenet", {"variant": "paper"}, diagrams.googlenet_layers, {"variant": "paper"}, 224),
    ("googlenet", {"stem": "cifar", "width": 0.25, "num_classes": 10}, diagrams.googlenet_layers,
     {"stem": "cifar", "width": 0.25, "num_classes": 10}, 32),
    ("resnet18", {}, diagrams.resnet_layers, {"name": "resnet18"}, 224),
    ("resnet50", {"version": "1"}, diagrams.resnet_layers, {"name": "resnet50", "version": "1"}, 224),
    ("resnet50", {"stem": "cifar"}, diagrams.resnet_layers, {"name": "resnet50", "stem": "cifar"}, 32),
    ("resnet20", {}, diagrams.resnet_layers, {"name": "resnet20"}, 32),
    ("resnet32", {"shortcut": "B"}, diagrams.resnet_layers, {"name": "resnet32", "shortcut": "B"}, 32),
]


def _build(name: str, kwargs: dict) -> nn.Module:
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        return get_model(name, **kwargs).eval()


@pytest.mark.parametrize("name, model_kwargs, layers_of, kwargs, side", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_every_diagram_lists_exactly_the_model_s_layers(name, model_kwargs, layers_of, kwargs, side):
    model, layers = _build(name, model_kwargs), layers_of(**kwargs)
    assert not mismatches(layers, model)
    assert len({layer.name for layer in layers}) == len(layers), "a layer drawn twice"


@pytest.mark.parametrize("name, model_kwargs, layers_of, kwargs, side", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_the_drawn_map_sides_are_the_forward_pass_s(name, model_kwargs, layers_of, kwargs, side):
    model, layers = _build(name, model_kwargs), layers_of(**kwargs)
    modules, seen = dict(model.named_modules()), {}
    hooks = [modules[layer.name].register_forward_hook(
        lambda m, i, out, name=layer.name: seen.__setitem__(name, tuple(out.shape[1:])))
        for layer in layers]
    model(torch.zeros(1, layers[0].in_channels, side, side, device="meta"))
    for hook in hooks:
        hook.remove()
    for layer in layers:
        if layer.name in seen:  # eval mode: the auxiliary heads do not run
            expected = (layer.out_channels,) if layer.kind == "linear" else (layer.out_channels, layer.side,
                                                                             layer.side)
            assert seen[layer.name] == expected, layer.name
    assert len(seen) >= len(layers) - 8


def test_a_wrong_configuration_is_caught():
    assert mismatches(diagrams.vgg_layers("A"), _build("vgg16", {}))  # 8 convolutions drawn, 13 built
    one_gpu = diagrams.alexnet_layers("paper", groups=1)
    problems = mismatches(one_gpu, _build("alexnet", {"variant": "paper"}))
    assert len(problems) == 3 and all("groups" not in p and p.startswith("features.") for p in problems)
    v1 = diagrams.resnet_layers("resnet50", version="1")
    assert len(mismatches(v1, _build("resnet50", {}))) == 2 * 3  # conv1 and conv2 of three blocks
    wrong_width = diagrams.googlenet_layers(width=0.5)
    assert mismatches(wrong_width, _build("googlenet", {}))


def test_inception_module_and_bottleneck_stride_placement():
    model = _build("googlenet", {"variant": "paper"})
    layers = diagrams.inception_layers("inception3a", variant="paper")
    assert not mismatches(layers, model.inception3a, prefix="inception3a.")
    assert [layer.out_channels for layer in layers] == [64, 96, 128, 16, 32, 192, 32]
    assert [layer.kernel for layer in layers] == [1, 1, 3, 1, 5, 3, 1]

    def strides(version: str) -> dict[str, int]:
        block = diagrams.residual_block_layers("bottleneck", in_channels=256, channels=128, stride=2,
                                               version=version)
        return {layer.name: layer.stride for layer in block}

    assert strides("1") == {"conv1": 2, "conv2": 1, "conv3": 1, "downsample.0": 2}
    assert strides("1.5") == {"conv1": 1, "conv2": 2, "conv3": 1, "downsample.0": 2}
    identity = diagrams.residual_block_layers("basic", in_channels=64, channels=64)
    assert [layer.name for layer in identity] == ["conv1", "conv2"]  # no shortcut layers


@pytest.mark.parametrize("devices", [2, 3, 4, 7])
def test_ring_schedule_sums_in_two_n_minus_one_steps(devices):
    schedule = diagrams.ring_schedule(devices)
    assert len(schedule) == 2 * (devices - 1)
    for step in schedule:
        assert sorted(t.sender for t in step) == list(range(devices))  # everyone sends once per step
        assert sorted(t.receiver for t in step) == list(range(devices))
        assert all(t.receiver == (t.sender + 1) % devices for t in step)
    phases = [t.phase for step in schedule for t in step]
    assert phases == ["reduce-scatter"] * devices * (devices - 1) + ["all-gather"] * devices * (devices - 1)
    chunks = [[10.0 ** d * (c + 1) for c in range(devices)] for d in range(devices)]
    sums = [sum(chunks[d][c] for d in range(devices)) for c in range(devices)]
    assert diagrams.ring_allreduce(chunks) == [sums] * devices
    after_reduce_scatter = diagrams.ring._contributions(devices)[devices - 1]
    for d in range(devices):  # device d then holds the whole sum of chunk d + 1
        assert after_reduce_scatter[d][(d + 1) % devices] == frozenset(range(devices))
    with pytest.raises(ValueError, match="at least 2"):
        diagrams.ring_schedule(1)


def test_a_wrong_ring_schedule_does_not_sum(monkeypatch):
    right = diagrams.ring.ring_schedule
    monkeypatch.setattr(diagrams.ring, "ring_schedule", lambda n: right(n)[:-1])  # one step short
    chunks = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]
    assert diagrams.ring.ring_allreduce(chunks) != [[12.0, 15.0, 18.0]] * 3


def _texts(fig: Figure) -> list[str]:
    return [text.get_text() for text in fig.findobj(matplotlib.text.Text)]


def test_the_drawings_show_the_listed_numbers():
    vgg = _texts(diagrams.draw_vgg_configurations())
    assert vgg.count("conv1-256") == 1 and vgg.count("conv3-512") == 4 + 4 + 4 + 4 + 6 + 8  # A .. E
    assert "16 weight layers" in "".join(vgg) and "19 weight layers" in "".join(vgg)
    inception = "".join(_texts(diagrams.draw_inception_module("inception4a")))
    assert "192 + 208 + 48 + 64 = 512 channels" in inception and "480 channels" in inception
    towers = _texts(diagrams.draw_alexnet_towers())
    assert sum("conv2" in t and "128" in t for t in towers) == 2  # 256 channels, 128 per GPU
    googlenet = "".join(_texts(diagrams.draw_googlenet("paper")))
    assert "aux1" in googlenet and "aux2" in googlenet and "avg pool 5×5/3" in googlenet
    lenet = _texts(diagrams.draw_lenet())
    assert "16@5×5" in lenet and "120@1×1" in lenet
    blocks = "".join(_texts(diagrams.draw_residual_blocks()))
    assert "conv 1×1/2, 128" in blocks and "conv 3×3/2, 128" in blocks
    assert isinstance(diagrams.draw_ring_allreduce(3), Figure)


def _draw_maps_script():
    spec = importlib.util.spec_from_file_location("draw_maps", ROOT / ".ci" / "draw_maps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_stored_chapter_maps_are_what_the_code_draws_now():
    script = _draw_maps_script()
    maps = script.chapter_maps()
    assert {"map_01_lenet.svg", "map_05_resnet.svg", "map_legend.svg"} <= set(maps)
    for filename, svg in maps.items():
        stored = (ROOT / "book" / "_static" / filename).read_text(encoding="utf-8")
        assert stored == svg, f"book/_static/{filename} is stale: run python .ci/draw_maps.py"
    assert render_svg(diagrams.draw_chapter_map("vgg16")) != maps["map_01_lenet.svg"]
