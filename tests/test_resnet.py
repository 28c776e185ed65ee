"""ResNet: exact sizes, torchvision parity, the v1/v1.5 stride, option A, plain/pre-activation variants,
bad input."""
import pytest
import torch
import torchvision
from torch import nn

from lib.models import MODELS, resnet

IMAGENET_PARAMS = {  # torchvision 0.29, 1000 classes
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}
CIFAR_PARAMS = {  # option A (parameter-free shortcuts); the paper's table 6 rounds to 0.27M ... 1.7M
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("name", IMAGENET_PARAMS)
def test_imagenet_builders_have_torchvisions_parameters(name, on_meta, count_params):
    ours = on_meta(MODELS[name])
    theirs = on_meta(getattr(torchvision.models, name), weights=None)
    assert count_params(ours) == count_params(theirs) == IMAGENET_PARAMS[name]
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, v.shape) for k, v in theirs.state_dict().items()
    ]
    ours.load_state_dict(theirs.state_dict(), strict=True, assign=True)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])  # one basic-block and one bottleneck network
def test_imagenet_builders_give_torchvisions_outputs(name):
    ours = MODELS[name]()
    theirs = getattr(torchvision.models, name)(weights=None)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    ours.eval(), theirs.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


def test_version_moves_the_stride_only(count_params):
    v1, v15 = resnet.resnet50(version="1"), resnet.resnet50(version="1.5")
    assert count_params(v1) == count_params(v15)
    v1.load_state_dict(v15.state_dict(), strict=True)  # same names and shapes
    for stage in ("layer2", "layer3", "layer4"):
        first_v1, first_v15 = getattr(v1, stage)[0], getattr(v15, stage)[0]
        assert (first_v1.conv1.stride, first_v1.conv2.stride) == ((2, 2), (1, 1))
        assert (first_v15.conv1.stride, first_v15.conv2.stride) == ((1, 1), (2, 2))
    v1.eval(), v15.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(v1(x), v15(x))  # same weights, different network


def test_cifar_stem_keeps_resolution_and_names(count_params):
    model = resnet.resnet18(num_classes=10, stem="cifar")
    assert count_params(model) == 11_173_962  # conv1 is 64x3x3x3 instead of 64x3x7x7
    assert isinstance(model.maxpool, nn.Identity)
    assert set(model.state_dict()) == set(resnet.resnet18(num_classes=10).state_dict())
    model.eval()
    with torch.no_grad():
        x = model.maxpool(model.relu(model.bn1(model.conv1(torch.randn(2, 3, 32, 32)))))
        assert x.shape == (2, 64, 32, 32)  # the ImageNet stem would give 8x8
        x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
        assert x.shape == (2, 512, 4, 4)
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("builder", [resnet.resnet18, resnet.resnet50, resnet.resnet20])
def test_zero_init_residual_makes_identity_blocks(builder):
    model = builder(zero_init_residual=True).eval()
    block = model.layer1[1]  # no downsampling: shortcut is the identity
    last_bn = block.bn3 if isinstance(block, resnet.Bottleneck) else block.bn2
    assert torch.count_nonzero(last_bn.weight) == 0
    x = torch.relu(torch.randn(2, block.conv1.in_channels, 8, 8))  # blocks receive post-ReLU inputs
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)
    default = builder()
    assert torch.all(default.layer1[1].bn1.weight == 1)


@pytest.mark.parametrize("name", CIFAR_PARAMS)
def test_cifar_family_sizes_and_depth(name, count_params):
    model = MODELS[name]()
    assert count_params(model) == CIFAR_PARAMS[name]
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == model.depth == int(name.removeprefix("resnet"))  # 6n+2 layers with weights
    # option B adds one 1x1 projection (and its BatchNorm) at each of the two changes of shape
    extra = 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64
    assert count_params(MODELS[name](shortcut="B")) == CIFAR_PARAMS[name] + extra


def test_cifar_forward_shapes():
    model = resnet.resnet20().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        stem = model.relu(model.bn1(model.conv1(x)))
        assert stem.shape == (2, 16, 32, 32)
        a = model.layer1(stem)
        b = model.layer2(a)
        c = model.layer3(b)
        assert (a.shape, b.shape, c.shape) == ((2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8))
        assert model(x).shape == (2, 10)


def test_option_a_is_strided_identity_with_zero_channels(count_params):
    shortcut = resnet.ShortcutA(16, 32, stride=2)
    assert count_params(shortcut) == 0
    x = torch.randn(2, 16, 8, 8)
    y = shortcut(x)
    assert y.shape == (2, 32, 4, 4)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 16:]) == 0
    with pytest.raises(ValueError, match="only add channels"):
        resnet.ShortcutA(32, 16)


def test_plain_network_has_no_shortcuts():
    plain = resnet.resnet56(plain=True)
    blocks = [m for m in plain.modules() if isinstance(m, resnet.BasicBlock)]
    assert len(blocks) == 27
    assert all(b.downsample is None and not b.residual for b in blocks)
    # same weights as the residual network: the residual one computes something else
    res = resnet.resnet56()
    res.load_state_dict(plain.state_dict(), strict=True)
    plain.eval(), res.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(plain(x), res(x))


def test_preactivation_variant():
    model = resnet.resnet20(preact=True, zero_init_residual=True).eval()
    assert isinstance(model.layer1[0], resnet.PreActBasicBlock)
    assert isinstance(model.final_bn, nn.BatchNorm2d) and isinstance(model.bn1, nn.Identity)
    block = model.layer2[1]
    x = torch.randn(2, 32, 8, 8)  # any sign: a pre-activation block adds to x unchanged
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    projected = resnet.resnet20(preact=True, shortcut="B")
    assert projected.layer2[0].project_preactivated
    assert not model.layer2[0].project_preactivated  # option A takes x itself


@pytest.mark.parametrize("build", [
    lambda: resnet.resnet18(),
    lambda: resnet.resnet20(),
    lambda: resnet.resnet20(preact=True, shortcut="B"),
    lambda: resnet.resnet20(plain=True),
])
def test_fx_traceable_with_same_outputs(build):
    model = build().eval()
    traced = torch.fx.symbolic_trace(model)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x))
    with pytest.raises(ValueError, match="3-channel"):  # the traced graph still checks its input
        traced(torch.randn(1, 1, 32, 32))


@pytest.mark.parametrize("bad, message", [
    (torch.randn(3, 64, 64), r"\(N, 3, H, W\)"),
    (torch.randn(1, 1, 64, 64), "3-channel images, got 1"),
    (torch.randn(1, 3, 16, 16), "at least 32x32"),
])
def test_bad_input_imagenet(bad, message):
    with pytest.raises(ValueError, match=message):
        resnet.resnet18()(bad)


def test_bad_input_cifar():
    with pytest.raises(ValueError, match=r"ResNet-20 \(CIFAR\).*3-channel"):
        resnet.resnet20()(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="at least 8x8"):
        resnet.resnet18(stem="cifar")(torch.randn(1, 3, 4, 4))


@pytest.mark.parametrize("call, message", [
    (lambda: resnet.resnet50(version="2"), "1, 1.5"),
    (lambda: resnet.resnet18(stem="tiny"), "imagenet, cifar"),
    (lambda: resnet.resnet20(shortcut="C"), "A, B"),
    (lambda: resnet.CifarResNet(21), "6n\\+2"),
    (lambda: resnet.resnet20(plain=True, preact=True), "plain"),
])
def test_bad_options(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_registered_builders():
    for name in [*IMAGENET_PARAMS, *CIFAR_PARAMS]:
        assert MODELS[name] is getattr(resnet, name)
    assert not any(name[0].isupper() for name in MODELS)  # classes are not builders
