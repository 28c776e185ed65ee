"""lib.visualize.diagrams: every layer list equals the built model's layers, map sides included; the
ring all-reduce schedule sums; the drawings show what the lists say; the overview maps show the
models' measured numbers, without overlaps; the stored chapter maps are current."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import matplotlib

matplotlib.use("agg")
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402
from torch import nn  # noqa: E402

from lib.inspection import weights_and_mult_adds  # noqa: E402
from lib.models import get_model  # noqa: E402
from lib.models.layers import LocalResponseNorm  # noqa: E402
from lib.visualize import diagrams  # noqa: E402
from lib.visualize.diagrams import overview  # noqa: E402
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
    assert {"map_01_lenet.svg", "map_05_resnet.svg", "map_legend.svg", "map_00_introduction.svg",
            "map_06_comparison.svg"} <= set(maps)
    for filename, svg in maps.items():
        stored = (ROOT / "book" / "_static" / filename).read_text(encoding="utf-8")
        assert stored == svg, f"book/_static/{filename} is stale: run python .ci/draw_maps.py"
    assert render_svg(diagrams.draw_chapter_map("vgg16")) != maps["map_01_lenet.svg"]


# --------------------------------------------------------------------------------------------------
# The overview maps of the introduction and the comparison: measured on the models.
# --------------------------------------------------------------------------------------------------
PARAMS = {"LeNet-5": 61_706, "AlexNet (2012)": 60_965_224, "VGG-16": 138_357_544,
          "GoogLeNet": 6_624_904, "ResNet-18": 11_689_512}  # AlexNet: the paper's two towers
FIELDS = {"LeNet-5": 32, "AlexNet (2012)": 195, "VGG-16": 212, "GoogLeNet": 379, "ResNet-18": 435}
SHOWN = {"LeNet-5": "61.7 k · 423 k", "AlexNet (2012)": "61 M · 725 M", "VGG-16": "138 M · 15.5 G",
         "GoogLeNet": "6.62 M · 1.5 G", "ResNet-18": "11.7 M · 1.81 G"}


def _fields_by_hand(layers: list[diagrams.Layer]) -> list[int]:
    """The field after every conv and pool layer of a chain: r += (k - 1) * jump, jump *= stride."""
    size, jump, fields = 1, 1, []
    for layer in layers:
        if layer.kind in ("conv", "maxpool", "avgpool"):
            size, jump = size + (layer.kernel - 1) * jump, jump * layer.stride
            fields.append(size)
    return fields


def test_the_overview_maps_measure_the_library_s_models():
    measured = diagrams.measure_networks()
    assert {label: m.params for label, m in measured.items()} == PARAMS
    assert {label: m.field for label, m in measured.items()} == FIELDS
    by_hand = {"LeNet-5": diagrams.lenet_layers(), "VGG-16": diagrams.vgg_layers(),
               "AlexNet (2012)": diagrams.alexnet_layers("paper")}  # chains: layer arithmetic
    for label, layers in by_hand.items():
        assert list(measured[label].fields) == _fields_by_hand(layers), label
    for network in overview.NETWORKS:
        model = _build(network.model, dict(network.options))
        assert measured[network.label].params == sum(p.numel() for p in model.parameters())
        costs, _ = weights_and_mult_adds(model, network.input_size)
        weights_only = sum(cost.mult_adds for cost in costs.values())
        # torchinfo's count adds the biases to lib.inspection's weights times positions
        assert weights_only < measured[network.label].mult_adds < 1.02 * weights_only, network.label
    assert measured["GoogLeNet"].mult_adds == 1_498_391_752  # without the auxiliary heads
    assert {label: f"{overview.short_count(m.params)} · {overview.short_count(m.mult_adds)}"
            for label, m in measured.items()} == SHOWN


def test_short_counts_have_three_significant_digits():
    assert [overview.short_count(n) for n in (950, 1000, 61_706, 60_965_224, 999_999_999,
                                              1_498_391_752, 15_483_821_032)] == [
        "950", "1 k", "61.7 k", "61 M", "1 G", "1.5 G", "15.5 G"]


def _drawn(fig: Figure):
    """Lay `fig` out as it is saved (its text placed), and return the renderer it was drawn with."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    return renderer


def _extent(artist, fig: Figure):
    return artist.get_window_extent(fig.canvas.get_renderer())


def test_the_field_map_draws_each_network_s_fields_under_its_legend():
    fig = diagrams.draw_field_map()
    _drawn(fig)
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]  # not 224 px
    expected = [f"{label} {field}" for label, field in FIELDS.items()]
    assert [line.get_label() for line in lines] == expected
    assert [text.get_text() for text in ax.get_legend().get_texts()] == expected
    measured = diagrams.measure_networks()
    for line, (label, m) in zip(lines, measured.items()):
        ys = list(line.get_ydata())
        assert len(ys) == len(m.fields) + 1 and ys[-1] == m.field
        assert ys[:-1] == [max(m.fields[:i + 1]) for i in range(len(m.fields))]  # largest so far
        assert list(line.get_xdata()) == [i / len(m.fields) for i in range(len(m.fields) + 1)]
    legend, top = _extent(ax.get_legend(), fig), max(_extent(line, fig).y1 for line in lines)
    assert legend.y0 > top, "the legend covers a line"
    assert ax.bbox.x0 < legend.x0 and legend.x1 < ax.bbox.x1, "the legend is wider than the plot"
    note = next(t for t in ax.texts if t.get_text() == "224 px input")
    below = ax.transData.inverted().transform((_extent(note, fig).x1, _extent(note, fig).y0))
    under_note = [y for line in lines for x, y in zip(line.get_xdata(), line.get_ydata())
                  if x <= below[0]]
    assert max(under_note) < below[1], "a line crosses the input's label"


def _marker_box(points, fig: Figure) -> Bbox:
    """The square around the one round marker of a scatter, in display pixels."""
    x, y = points.axes.transData.transform(points.get_offsets()[0])
    radius = points.get_sizes()[0] ** 0.5 / 2 * fig.dpi / 72  # the size is an area in points²
    return Bbox.from_extents(x - radius, y - radius, x + radius, y + radius)


def test_the_cost_map_places_and_labels_each_network_without_overlaps():
    fig = diagrams.draw_cost_map()
    _drawn(fig)
    ax = fig.axes[0]
    measured = diagrams.measure_networks()
    points = [tuple(c.get_offsets()[0]) for c in ax.collections]
    assert points == [(m.mult_adds, m.params) for m in measured.values()]
    labels = [t for t in ax.texts if "\n" in t.get_text()]
    assert [t.get_text() for t in labels] == [f"{k}\n{v}" for k, v in SHOWN.items()]
    texts = [_extent(t, fig) for t in ax.texts]  # the labels and the key to them
    markers = [_marker_box(c, fig) for c in ax.collections]  # close points may touch each other
    for i, text in enumerate(texts):
        for other in texts[i + 1:] + markers:
            assert not text.overlaps(other), (ax.texts[i].get_text(), text, other)
    assert all(ax.bbox.contains(b.x0, b.y0) and ax.bbox.contains(b.x1, b.y1) for b in texts)


def _landing_page_cards() -> dict[str, str]:
    """{picture file: alt text} of the landing page's cards."""
    text = (ROOT / "book" / "index.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^:img-top: _static/(\S+)\n:img-alt: (.+)$", text, flags=re.MULTILINE))


def _after_each(text: str, names: list[str]) -> dict[str, str]:
    """{name: the text from after `name` to the next of `names`} for each of `names` in `text`."""
    starts = sorted((text.index(name), name) for name in names)
    ends = [start for start, _ in starts[1:]] + [len(text)]
    return {name: text[start + len(name):end] for (start, name), end in zip(starts, ends)}


def test_the_landing_page_shows_the_drawn_maps_and_its_alt_texts_state_their_numbers():
    cards = _landing_page_cards()
    assert len(cards) == 8 and set(cards) <= set(_draw_maps_script().chapter_maps())
    names = [label.split(" (")[0] for label in FIELDS]  # "AlexNet (2012)" is "AlexNet" there
    fields = _after_each(cards["map_00_introduction.svg"], names)
    assert {name: int(re.search(r"\d+", fields[name]).group()) for name in names} == dict(
        zip(names, FIELDS.values()))
    words = {"k": "thousand", "M": "million", "G": "billion"}
    costs = _after_each(cards["map_06_comparison.svg"], names)
    for name, shown in zip(names, SHOWN.values()):
        stated = re.findall(r"([\d.]+) (thousand|million|billion)", costs[name])[:2]
        assert [f"{n} {unit}" for n, unit in stated] == [
            f"{n} {words[unit]}" for n, unit in (part.split() for part in shown.split(" · "))], name
