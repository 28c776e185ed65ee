"""Every builder in lib.models.MODELS: the registry itself, parameter counts, outputs, torch.fx tracing, bad input.

Family-specific behaviour (torchvision state_dict parity, variants, auxiliary heads) lives in
tests/test_<family>.py. Counts, shapes and input errors use models on the meta device (no weights to
allocate or initialise: a VGG has 133M); only the tests that compare numbers build real weights.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
import torch
import torch.fx

import lib.models
from lib.models import MODELS, get_model
from lib.models._checks import check_image_batch

# Parameter counts at each builder's defaults; every registered builder needs one. The torchvision names
# must match torchvision 0.29 exactly (ImageNet heads, 1000 classes); lenet5 is the 28x28, padding=2, fully
# connected C3 version.
EXPECTED_PARAMETERS = {
    "lenet5": 61_706,
    "alexnet": 61_100_840,
    "vgg11": 132_863_336, "vgg11_bn": 132_868_840,
    "vgg13": 133_047_848, "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544, "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240, "vgg19_bn": 143_678_248,
    # The paper's Table 1 columns that torchvision lacks: A-LRN (LRN adds no parameters) and C
    # (1x1 convolutions in the last three stages; Table 2 rounds it to 134 million).
    "vgg11_lrn": 132_863_336, "vgg16_c": 133_638_952, "vgg16_c_bn": 133_647_400,
    "googlenet": 13_004_888,
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808,
    # The CIFAR family of section 4.2 (option A shortcuts add nothing); Table 6 rounds these to 0.27M,
    # 0.46M, 0.66M, 0.85M and 1.7M.
    "resnet20": 269_722, "resnet32": 464_154, "resnet44": 658_586, "resnet56": 853_018, "resnet110": 1_727_962,
    # The book's own adaptation: a quarter-width AlexNet for 32x32 images (chapter 2).
    "alexnet_cifar": 361_834,
}

# The smallest input each builder accepts at its defaults, (C, H, W); every registered builder needs one.
# Below it the network would run out of pixels (AlexNet's last pool needs 63, the ImageNet stems 32).
SMALLEST_INPUT = {
    "lenet5": (1, 28, 28),
    "alexnet": (3, 63, 63),
    "alexnet_cifar": (3, 15, 15),
    **{name: (3, 32, 32) for name in MODELS if name.startswith("vgg")},
    "googlenet": (3, 32, 32),
    **{f"resnet{d}": (3, 32, 32) for d in (18, 34, 50, 101, 152)},
    **{f"resnet{d}": (3, 4, 4) for d in (20, 32, 44, 56, 110)},
}

# Options for the tests that need real weights: VGG's "cifar" head replaces fc6-fc8 (120M of its 133M
# parameters, the same in every configuration). The default head is traced on the meta device below.
LIGHT_OPTIONS = {name: {"classifier": "cifar"} for name in MODELS if name.startswith("vgg")}


def _family_builders() -> dict[str, object]:
    """The lower-case functions that the public modules of lib.models list in their `__all__`."""
    found = {}
    for info in pkgutil.iter_modules(lib.models.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"lib.models.{info.name}")
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if name.islower() and inspect.isfunction(value):
                found[name] = value
    return found


def _num_classes(model: torch.nn.Module) -> int:
    last = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))][-1]
    return last.out_features if isinstance(last, torch.nn.Linear) else last.out_channels


@pytest.fixture(scope="module")
def meta_model(on_meta):
    """`meta_model(name)`: the builder's network at its defaults on the meta device, built once per name."""
    built = {}

    def get(name: str) -> torch.nn.Module:
        if name not in built:
            built[name] = on_meta(MODELS[name])
        return built[name]

    return get


@pytest.fixture(scope="module", params=sorted(MODELS))
def light(request):
    """(name, model): the builder's network with real, seeded weights, in eval mode."""
    torch.manual_seed(0)
    return request.param, get_model(request.param, **LIGHT_OPTIONS.get(request.param, {})).eval()


# --- the registry ------------------------------------------------------------------------------------

def test_registry_holds_exactly_the_builders_of_the_family_modules():
    builders = _family_builders()
    assert "vgg16" in builders and "resnet18" in builders  # the discovery itself works
    assert MODELS == builders, "a family module exports a builder that lib.models.MODELS does not register"
    assert all(MODELS[name].__name__ == name for name in MODELS)


def test_package_exports_the_registry_and_every_builder():
    assert sorted(lib.models.__all__) == sorted(["MODELS", "get_model", *MODELS])
    assert all(getattr(lib.models, name) is builder for name, builder in MODELS.items())


def test_every_builder_has_an_expected_count_and_a_smallest_input():
    assert set(EXPECTED_PARAMETERS) == set(MODELS)
    assert set(SMALLEST_INPUT) == set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_builder_options_are_keyword_only(name):
    parameters = inspect.signature(MODELS[name]).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters), name
    with pytest.raises(TypeError):
        MODELS[name](10)


def test_unknown_name_suggests_the_closest_and_lists_the_choices():
    message = r"unknown model 'resnet19' \(did you mean 'resnet18'.*choose one of: lenet5"
    with pytest.raises(ValueError, match=message):
        get_model("resnet19")


# --- sizes and outputs -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MODELS))
def test_parameter_count(name, meta_model, count_params):
    assert name in EXPECTED_PARAMETERS, f"add the parameter count of {name!r} to EXPECTED_PARAMETERS"
    assert count_params(meta_model(name)) == EXPECTED_PARAMETERS[name]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_default_output_is_one_logit_per_class(name, meta_model):
    model = meta_model(name).eval()
    c, h, w = SMALLEST_INPUT[name]
    assert model(torch.empty(2, c, h, w, device="meta")).shape == (2, _num_classes(model))


def test_forward_gives_finite_logits(light):
    name, model = light
    c, h, w = SMALLEST_INPUT[name]
    with torch.no_grad():
        out = model(torch.randn(2, c, h, w))
    assert isinstance(out, torch.Tensor), "eval mode returns plain logits"
    assert out.shape == (2, _num_classes(model))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "vgg11", "googlenet", "resnet18", "resnet20"])
def test_num_classes_sets_the_output_width(name, on_meta):
    model = on_meta(get_model, name, num_classes=7).eval()
    c, h, w = SMALLEST_INPUT[name]
    assert model(torch.empty(1, c, h, w, device="meta")).shape == (1, 7)


# --- torch.fx ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_symbolic_trace_keeps_the_input_check(name, mode, meta_model):
    model = meta_model(name).train(mode == "train")
    traced = torch.fx.symbolic_trace(model)
    checks = [node for node in traced.graph.nodes if node.target is check_image_batch]
    assert len(checks) == 1 and checks[0].args[0].op == "placeholder"


def test_traced_module_gives_the_eager_output(light):
    name, model = light
    traced = torch.fx.symbolic_trace(model)
    c, h, w = SMALLEST_INPUT[name]
    x = torch.randn(2, c, h, w)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match=f"expects {c}-channel images"):  # the traced graph checks its input
        traced(torch.randn(2, 3 if c == 1 else 1, h, w))


# --- bad input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MODELS))
def test_wrong_channel_count_is_a_clear_error(name, meta_model):
    model = meta_model(name).eval()
    c, h, w = SMALLEST_INPUT[name]
    with pytest.raises(ValueError, match=rf"{c}-channel"):
        model(torch.empty(1, 3 if c == 1 else 1, h, w, device="meta"))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_too_small_an_image_is_a_clear_error(name, meta_model):
    model = meta_model(name).eval()
    c, h, w = SMALLEST_INPUT[name]
    with pytest.raises(ValueError, match=rf"{h}x{w}|{h - 1}x{w - 1}"):
        model(torch.empty(1, c, h - 1, w - 1, device="meta"))
