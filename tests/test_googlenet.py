"""GoogLeNet: torchvision parity, the paper's Table 1, auxiliary heads in train and eval mode, bad input."""
from __future__ import annotations

import pytest
import torch
import torch.fx
import torchvision
from torch import nn

from lib.models import googlenet, layers
from lib.models.googlenet import INCEPTION_SPECS, VARIANTS, GoogLeNet, GoogLeNetOutputs


def _torchvision(**kwargs) -> nn.Module:
    return torchvision.models.googlenet(weights=None, init_weights=False, **kwargs)  # PyTorch defaults: fast


@pytest.fixture(scope="module")
def pair():
    """torchvision's GoogLeNet with random weights and ours with those weights loaded strictly."""
    torch.manual_seed(0)
    reference = _torchvision(aux_logits=True)
    ours = googlenet(variant="torchvision")
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours


@pytest.mark.parametrize(
    "variant, aux_logits, expected",
    [
        ("torchvision", True, 13_004_888),
        ("torchvision", False, 6_624_904),
        ("paper", True, 13_378_280),
        ("paper", False, 6_998_552),
    ],
)
def test_parameter_counts(variant, aux_logits, expected, on_meta, count_params):
    assert count_params(on_meta(googlenet, variant=variant, aux_logits=aux_logits)) == expected


def test_torchvision_variant_has_torchvisions_parameters_name_for_name(on_meta):
    for aux_logits in (True, False):
        reference = on_meta(_torchvision, aux_logits=aux_logits).state_dict()
        ours = on_meta(googlenet, aux_logits=aux_logits).state_dict()
        assert list(ours) == list(reference)
        assert all(ours[k].shape == reference[k].shape for k in ours)


def test_eval_outputs_match_torchvision(pair):
    reference, ours = pair
    reference.eval(), ours.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x))


def test_train_outputs_match_torchvision_including_dropout(pair):
    reference, ours = pair
    reference.train(), ours.train()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.manual_seed(1)
        expected = reference(x)
        torch.manual_seed(1)
        got = ours(x)
    assert isinstance(got, GoogLeNetOutputs) and got._fields == ("logits", "aux_logits2", "aux_logits1")
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


def test_transform_input_matches_torchvision_and_maps_to_minus_one_one():
    torch.manual_seed(0)
    reference = _torchvision(aux_logits=False, transform_input=True).eval()
    ours = googlenet(aux_logits=False, transform_input=True).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    pixels = torch.rand(2, 3, 40, 40)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    normalized = (pixels - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    torch.testing.assert_close(ours._transform_input(normalized), pixels * 2 - 1)
    with torch.no_grad():
        torch.testing.assert_close(ours(normalized), reference(normalized))


def test_train_mode_returns_main_first_then_heads_eval_mode_the_logits_alone():
    model = googlenet(num_classes=7, stem="cifar", width=0.25)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    out = model(x)
    assert isinstance(out, tuple) and len(out) == 3
    assert [tuple(o.shape) for o in out] == [(2, 7)] * 3
    model.eval()
    with torch.no_grad():
        assert isinstance(model(x), torch.Tensor) and model(x).shape == (2, 7)
    without = googlenet(num_classes=7, stem="cifar", width=0.25, aux_logits=False).train()
    assert isinstance(without(x), torch.Tensor)
    assert not without.aux_logits and without.aux1 is None and without.aux2 is None


def test_auxiliary_heads_play_no_part_at_inference():
    torch.manual_seed(0)
    model = googlenet(stem="cifar", width=0.25, num_classes=5).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        for head in (model.aux1, model.aux2):
            for p in head.parameters():
                p.fill_(123.0)
        torch.testing.assert_close(model(x), before)


def test_auxiliary_heads_take_gradient_in_training():
    torch.manual_seed(0)
    model = googlenet(variant="paper", stem="cifar", width=0.25, num_classes=5).train()
    logits, aux2, aux1 = model(torch.randn(4, 3, 32, 32))
    labels = torch.tensor([0, 1, 2, 3])
    ce = nn.functional.cross_entropy
    (ce(logits, labels) + 0.3 * (ce(aux1, labels) + ce(aux2, labels))).backward()
    assert model.aux1.fc2.weight.grad.abs().sum() > 0 and model.aux2.fc2.weight.grad.abs().sum() > 0
    assert model.inception4a.branch1.conv.weight.grad.abs().sum() > 0


STAGES = ["maxpool1", "conv3", "maxpool2", *INCEPTION_SPECS, "maxpool3", "maxpool4"]


def test_paper_variant_follows_table_1(output_shapes, count_params):
    model = googlenet(variant="paper", aux_logits=False).eval()
    shapes = output_shapes(model, torch.randn(1, 3, 224, 224), STAGES)
    expected = {  # Table 1's "output size" column, as (C, H, W)
        "maxpool1": (64, 56, 56), "conv3": (192, 56, 56), "maxpool2": (192, 28, 28),
        "inception3a": (256, 28, 28), "inception3b": (480, 28, 28), "maxpool3": (480, 14, 14),
        "inception4a": (512, 14, 14), "inception4b": (512, 14, 14), "inception4c": (512, 14, 14),
        "inception4d": (528, 14, 14), "inception4e": (832, 14, 14), "maxpool4": (832, 7, 7),
        "inception5a": (832, 7, 7), "inception5b": (1024, 7, 7),
    }
    assert shapes == expected
    # inception (3a) by hand: 192*64 + 192*96 + 96*128*9 + 192*16 + 16*32*25 + 192*32 weights, plus biases.
    weights = 192 * 64 + 192 * 96 + 96 * 128 * 9 + 192 * 16 + 16 * 32 * 25 + 192 * 32
    assert weights == 163_328  # Table 1 says 159K: 163,328 / 1024 = 159.5
    assert count_params(model.inception3a) == weights + (64 + 96 + 128 + 16 + 32 + 32)
    assert model.inception3a.branch3[1].conv.kernel_size == (5, 5)
    assert model.maxpool4.kernel_size == 3
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))
    assert isinstance(model.norm1, layers.LocalResponseNorm) and isinstance(model.norm2, layers.LocalResponseNorm)


def test_torchvision_variant_keeps_torchvisions_quirks():
    model = googlenet(variant="torchvision", width=0.125)
    assert model.inception3a.branch3[1].conv.kernel_size == (3, 3)  # the paper's 5x5
    assert model.maxpool4.kernel_size == 2
    assert isinstance(model.norm1, nn.Identity)
    assert all(m.eps == 0.001 for m in model.modules() if isinstance(m, nn.BatchNorm2d))


def test_lrn_is_alexnets_formula():
    lrn = googlenet(variant="paper", stem="cifar", width=0.125).norm1
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)  # alpha in the paper's convention
    a = torch.randn(1, 9, 3, 3) * 10
    squares = nn.functional.pad(a.pow(2), (0, 0, 0, 0, 2, 2))  # n = 5 neighbours, zero beyond the ends
    sums = torch.stack([squares[:, i:i + 5].sum(1) for i in range(9)], 1)
    torch.testing.assert_close(lrn(a), a / (2 + 1e-4 * sums) ** 0.75)


def test_cifar_stem_keeps_8x8_at_inception_3a(output_shapes):
    model = googlenet(stem="cifar", width=0.25, num_classes=10).eval()
    shapes = output_shapes(model, torch.randn(1, 3, 32, 32), STAGES)
    assert shapes["inception3a"] == (64, 8, 8)
    assert shapes["inception4e"] == (208, 4, 4)
    assert shapes["inception5b"] == (256, 2, 2)
    assert model.conv1.conv.kernel_size == (3, 3) and model.conv1.conv.stride == (1, 1)


def test_paper_variant_with_cifar_stem_trains_on_32x32():
    model = googlenet(variant="paper", stem="cifar", width=0.25, num_classes=10).train()
    assert isinstance(model.aux1.pool, nn.AdaptiveAvgPool2d)  # the 5x5/3 pool needs 14x14 maps
    assert len(model(torch.randn(2, 3, 32, 32))) == 3


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_eval_mode_traces_with_torch_fx(variant):
    model = googlenet(variant=variant, stem="cifar", width=0.25).eval()
    traced = torch.fx.symbolic_trace(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x))
    assert not any("aux" in str(node.target) for node in traced.graph.nodes)


def test_train_mode_traces_with_the_heads_and_their_input_check():
    torch.manual_seed(0)
    model = googlenet(variant="paper", width=0.125).train()
    traced = torch.fx.symbolic_trace(model)
    assert any(str(node.target).startswith("aux1") for node in traced.graph.nodes)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.manual_seed(1)
        expected = model(x)
        torch.manual_seed(1)
        got = traced(x)
    assert isinstance(got, GoogLeNetOutputs)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match=r"223x223 to 270x270"):  # the heads' pool check is in the graph
        traced(torch.randn(1, 3, 96, 96))


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.randn(3, 64, 64), r"\(N, 3, H, W\), got \(3, 64, 64\)"),
        (torch.randn(1, 1, 64, 64), r"3-channel images, got 1"),
        (torch.randn(1, 3, 31, 64), r"at least 32x32 pixels, got 31x64"),
    ],
)
def test_bad_input_is_a_clear_error(x, message):
    with pytest.raises(ValueError, match=message):
        googlenet(aux_logits=False, width=0.125).eval()(x)


def test_cifar_stem_accepts_16x16_and_no_smaller():
    model = googlenet(stem="cifar", width=0.25).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 16, 16)).shape == (1, 1000)
    with pytest.raises(ValueError, match=r"at least 16x16 pixels, got 15x15"):
        model(torch.randn(1, 3, 15, 15))


def test_paper_auxiliary_heads_need_a_224_like_input_in_training():
    model = googlenet(variant="paper", width=0.125).train()
    with pytest.raises(ValueError, match=r"223x223 to 270x270"):
        model(torch.randn(1, 3, 96, 96))
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 96, 96)).shape == (1, 1000)  # no heads at inference


def test_unknown_options_name_the_choices():
    with pytest.raises(ValueError, match=r"unknown GoogLeNet variant 'v3'.*torchvision, paper"):
        googlenet(variant="v3")
    with pytest.raises(ValueError, match=r"unknown stem 'tiny'.*imagenet, cifar"):
        googlenet(stem="tiny")
    with pytest.raises(TypeError):
        googlenet(10)  # options are keyword-only


def test_class_and_builder_agree():
    torch.manual_seed(0)
    a = GoogLeNet(variant="paper", aux_logits=False, stem="cifar", width=0.25)
    torch.manual_seed(0)
    b = googlenet(variant="paper", aux_logits=False, stem="cifar", width=0.25)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
