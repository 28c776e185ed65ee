"""One parametrized test over every builder in lib.models.MODELS: shapes, parameter counts, bad input.

Family-specific behaviour (torchvision state_dict parity, variants, auxiliary heads) lives in
tests/test_<family>.py.
"""
from __future__ import annotations

import pytest
import torch

from lib.models import MODELS, get_model

# Parameter counts at each builder's defaults. The torchvision names must match torchvision 0.29 exactly
# (ImageNet heads, 1000 classes); lenet5 is the 28x28, padding=2, fully connected C3 version.
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


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module", params=sorted(MODELS))
def built(request):
    torch.manual_seed(0)
    return request.param, get_model(request.param).eval()


def test_every_builder_is_covered_by_this_file():
    assert set(EXPECTED_PARAMETERS) <= set(MODELS), "a promised builder is missing from lib.models"
    assert set(MODELS) <= set(SMALLEST_INPUT), "add the new builder's smallest input to SMALLEST_INPUT"


def test_parameter_count(built):
    name, model = built
    if name not in EXPECTED_PARAMETERS:
        pytest.skip(f"{name} has no published count; its family's test file checks it")
    assert _count(model) == EXPECTED_PARAMETERS[name]


def test_forward_gives_one_logit_per_class(built):
    name, model = built
    c, h, w = SMALLEST_INPUT[name]
    with torch.no_grad():
        out = model(torch.randn(2, c, h, w))
    assert isinstance(out, torch.Tensor), "eval mode returns plain logits"
    assert out.shape[0] == 2 and out.shape[1] == model_num_classes(model)
    assert torch.isfinite(out).all()


def model_num_classes(model: torch.nn.Module) -> int:
    last = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))][-1]
    return last.out_features if isinstance(last, torch.nn.Linear) else last.out_channels


def test_wrong_channel_count_is_a_clear_error(built):
    name, model = built
    c, h, w = SMALLEST_INPUT[name]
    wrong = 3 if c == 1 else 1
    with pytest.raises(ValueError, match=rf"{c}-channel"):
        model(torch.randn(1, wrong, h, w))


def test_too_small_an_image_is_a_clear_error(built):
    name, model = built
    c, h, w = SMALLEST_INPUT[name]
    with pytest.raises(ValueError, match=rf"{h}x{w}|{h - 1}x{w - 1}"):
        model(torch.randn(1, c, h - 1, w - 1))


def test_num_classes_sets_the_output_width():
    for name in ("lenet5", "alexnet", "vgg11", "googlenet", "resnet18"):
        model = get_model(name, num_classes=7).eval()
        c, h, w = SMALLEST_INPUT[name]
        with torch.no_grad():
            assert model(torch.randn(1, c, h, w)).shape == (1, 7), name


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown model 'resnet19'.*resnet18"):
        get_model("resnet19")


def test_builders_take_options_by_keyword_only():
    with pytest.raises(TypeError):
        MODELS["resnet18"](10)
