"""VGG: exact parameter counts, Table 1 and 2 of the paper, torchvision parity, bad input.

VGG's 4096-wide classifier holds over 100M parameters, so most checks build on the meta device
(shapes only, no memory); real weights are built only where numbers are compared.
"""
import pytest
import torch
import torchvision
from torch import nn

from lib.models import layers, vgg

# builder -> (configuration, batch norm, parameters with 1000 classes, with the 10-class CIFAR head)
BUILDERS = {
    "vgg11": ("A", False, 132_863_336, 9_225_610),
    "vgg11_bn": ("A", True, 132_868_840, 9_231_114),
    "vgg11_lrn": ("A-LRN", False, 132_863_336, 9_225_610),
    "vgg13": ("B", False, 133_047_848, 9_410_122),
    "vgg13_bn": ("B", True, 133_053_736, 9_416_010),
    "vgg16_c": ("C", False, 133_638_952, 10_001_226),
    "vgg16_c_bn": ("C", True, 133_647_400, 10_009_674),
    "vgg16": ("D", False, 138_357_544, 14_719_818),
    "vgg16_bn": ("D", True, 138_365_992, 14_728_266),
    "vgg19": ("E", False, 143_667_240, 20_029_514),
    "vgg19_bn": ("E", True, 143_678_248, 20_040_522),
}
IN_TORCHVISION = [name for name in BUILDERS if name in torchvision.models.list_models()]


def test_builders_are_exported():
    assert set(BUILDERS) <= set(vgg.__all__)
    assert len(IN_TORCHVISION) == 8  # vgg11 ... vgg19_bn; A-LRN and C are not in torchvision


@pytest.mark.parametrize("name", BUILDERS)
def test_parameter_counts(name, on_meta, count_params):
    config, batch_norm, imagenet, cifar = BUILDERS[name]
    builder = getattr(vgg, name)
    model = on_meta(builder)
    assert count_params(model) == imagenet
    assert count_params(on_meta(vgg.VGG, config=config, batch_norm=batch_norm)) == imagenet
    assert count_params(on_meta(builder, classifier="cifar", num_classes=10)) == cifar
    # fc6 alone: 25088 x 4096 weights + 4096 biases
    assert count_params(model.classifier[0]) == 512 * 7 * 7 * 4096 + 4096 == 102_764_544


@pytest.mark.parametrize("config", vgg.CONFIGS)
def test_table2_parameters_in_millions(config, on_meta, count_params):
    assert round(count_params(on_meta(vgg.VGG, config=config)) / 1e6) == vgg.PAPER_PARAMETERS[config]


@pytest.mark.parametrize("config,depth", [("A", 11), ("A-LRN", 11), ("B", 13), ("C", 16), ("D", 16), ("E", 19)])
def test_weight_layers_per_configuration(config, depth, on_meta):
    model = on_meta(vgg.VGG, config=config)
    weight_layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weight_layers) == depth
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 5


def test_configuration_c_has_1x1_convolutions_without_padding(on_meta):
    convs = [m for m in on_meta(vgg.vgg16_c).features if isinstance(m, nn.Conv2d)]
    one_by_one = [i for i, conv in enumerate(convs) if conv.kernel_size == (1, 1)]
    assert one_by_one == [6, 9, 12]  # the last convolution of stages 3, 4 and 5
    assert all(convs[i].padding == (0, 0) for i in one_by_one)
    assert all(conv.padding == (1, 1) for i, conv in enumerate(convs) if i not in one_by_one)


def test_batch_norm_after_every_convolution(on_meta):
    features = list(on_meta(vgg.vgg19_bn).features)
    for i, layer in enumerate(features):
        if isinstance(layer, nn.Conv2d):
            assert isinstance(features[i + 1], nn.BatchNorm2d)
            assert features[i + 1].num_features == layer.out_channels
            assert isinstance(features[i + 2], nn.ReLU)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in on_meta(vgg.vgg19).modules())


def test_feature_map_sizes_at_224(on_meta, output_shapes):
    model = on_meta(vgg.vgg16)
    pools = [f"features.{i}" for i, module in enumerate(model.features) if isinstance(module, nn.MaxPool2d)]
    sizes = output_shapes(model, torch.empty(1, 3, 224, 224, device="meta"), pools + ["classifier"])
    expected = [(64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14), (512, 7, 7)]
    assert [sizes[pool] for pool in pools] == expected
    assert sizes["classifier"] == (1000,)


@pytest.mark.parametrize("name", IN_TORCHVISION)
def test_state_dict_matches_torchvision(name, on_meta):
    ours = on_meta(getattr(vgg, name))
    theirs = on_meta(getattr(torchvision.models, name), weights=None)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }
    ours.load_state_dict(theirs.state_dict(), strict=True, assign=True)


def _randomize_batch_norm(model: nn.Module) -> None:
    """Non-trivial running statistics, so that a difference in BatchNorm settings would show."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)


@pytest.mark.parametrize("name", IN_TORCHVISION)
def test_features_match_torchvision(name):
    """Every configuration's convolutional part, against torchvision's, with the same weights."""
    config, batch_norm, _, _ = BUILDERS[name]
    torch.manual_seed(0)
    tv_config = {"A": "A", "B": "B", "D": "D", "E": "E"}[config]
    theirs = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs[tv_config], batch_norm=batch_norm)
    _randomize_batch_norm(theirs)
    ours = vgg.make_features(config, batch_norm=batch_norm)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs.eval()(x), rtol=0, atol=0)


def test_whole_model_matches_torchvision(on_meta):
    """One whole network (BatchNorm and the classifier included); the features of all are compared above."""
    torch.manual_seed(0)
    theirs = torchvision.models.vgg11_bn(weights=None)
    _randomize_batch_norm(theirs)
    ours = on_meta(vgg.vgg11_bn)  # no second 500 MB allocation: take over torchvision's tensors
    ours.load_state_dict(theirs.state_dict(), strict=True, assign=True)
    x = torch.randn(2, 3, 48, 64)  # pool5 is 1x2: the adaptive pool to 7x7 has real work to do
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs.eval()(x), rtol=0, atol=0)


def test_lrn_uses_alexnets_module_and_constants():
    """b = a / (k + alpha * sum of a^2 over n=5 neighbouring channels)^beta with k=2, alpha=1e-4, beta=0.75."""
    lrn = vgg.make_features("A-LRN")[2]
    assert isinstance(lrn, layers.LocalResponseNorm)
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)
    a = torch.randn(1, 8, 3, 3) * 30  # large enough that the normalisation matters
    squares = nn.functional.pad(a.pow(2), (0, 0, 0, 0, 2, 2))  # zero channels beyond the edges
    sums = torch.stack([squares[:, c:c + 5].sum(1) for c in range(8)], dim=1)
    expected = a / (2 + 1e-4 * sums).pow(0.75)
    torch.testing.assert_close(lrn(a), expected)


def test_cifar_head():
    model = vgg.vgg11_bn(classifier="cifar", num_classes=10)
    assert [type(m) for m in model.classifier] == [nn.Linear]
    assert (model.classifier[0].in_features, model.classifier[0].out_features) == (512, 10)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_smallest_input_is_32_pixels():
    model = vgg.vgg11(classifier="cifar")
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1000)
    with pytest.raises(ValueError, match="at least 32x32"):
        model(torch.randn(1, 3, 31, 40))


@pytest.mark.parametrize(
    "shape,message",
    [((2, 1, 32, 32), "3-channel"), ((2, 4, 64, 64), "3-channel"), ((3, 32, 32), r"\(N, 3, H, W\)"),
     ((2, 3, 28, 28), "at least 32x32")],
)
def test_bad_input_is_a_clear_error(shape, message):
    model = vgg.vgg16(classifier="cifar", num_classes=10)
    with pytest.raises(ValueError, match=message) as error:
        model(torch.zeros(shape))
    assert "VGG-16" in str(error.value)


def test_unknown_options_name_the_valid_ones():
    with pytest.raises(ValueError, match="A, A-LRN, B, C, D, E"):
        vgg.VGG("F")
    with pytest.raises(ValueError, match="imagenet, cifar"):
        vgg.vgg11(classifier="tiny")
    with pytest.raises(ValueError, match="convK-C"):
        vgg.make_features([("conv3-64", "pool")])


def test_custom_configuration():
    """Stages in the paper's notation build a network too (used in the chapter's exercises)."""
    model = vgg.VGG([("conv3-16",), ("conv3-32", "conv1-32")], classifier="cifar", num_classes=3)
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    shapes = [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs]
    assert shapes == [(3, 16, 3), (16, 32, 3), (32, 32, 1)]
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)
