"""AlexNet: LRN against the paper's formula and torch's convention, torchvision parity, the paper's layout,
the CIFAR ablation options and the input check (the smallest image each variant accepts)."""
from __future__ import annotations

import importlib

import pytest
import torch
import torchvision
from torch import nn

from lib.models import MODELS, layers

alexnet_module = importlib.import_module("lib.models.alexnet")  # `lib.models.alexnet` is the builder
AlexNet = alexnet_module.AlexNet
LocalResponseNorm = alexnet_module.LocalResponseNorm
alexnet = alexnet_module.alexnet
alexnet_cifar = alexnet_module.alexnet_cifar


def _convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.features if isinstance(m, nn.Conv2d)]


@pytest.fixture(scope="module")
def paper():
    torch.manual_seed(0)
    return alexnet(variant="paper").eval()


# --- Local Response Normalization -----------------------------------------------------------------

def _lrn_by_the_formula(a: torch.Tensor, n: int, alpha: float, beta: float, k: float) -> torch.Tensor:
    """Section 3.3 of the paper, one channel at a time, with the sum's limits written out."""
    channels = a.shape[1]
    b = torch.empty_like(a)
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        total = sum(a[:, j] ** 2 for j in range(lo, hi + 1))
        b[:, i] = a[:, i] / (k + alpha * total) ** beta
    return b


@pytest.mark.parametrize("n", [1, 3, 5])
def test_lrn_matches_the_papers_equation(n):
    torch.manual_seed(0)
    a = torch.randn(2, 7, 3, 4, dtype=torch.float64) * 30  # large enough for the sum to matter
    lrn = LocalResponseNorm(n, alpha=1e-4, beta=0.75, k=2.0)
    torch.testing.assert_close(lrn(a), _lrn_by_the_formula(a, n, 1e-4, 0.75, 2.0))


def test_torch_lrn_divides_alpha_by_n():
    torch.manual_seed(0)
    a = torch.relu(torch.randn(2, 16, 5, 5, dtype=torch.float64)) * 100
    ours = LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(a)
    torch.testing.assert_close(ours, nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)(a))
    naive = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(a)  # the paper's alpha passed as is
    assert (naive - ours).abs().max() > 0.1 * ours.abs().max()


def test_lrn_is_a_constant_scale_for_small_activations():
    a = torch.full((1, 8, 2, 2), 1e-3)
    torch.testing.assert_close(LocalResponseNorm()(a), a / 2**0.75)


def test_lrn_size_must_be_odd():
    with pytest.raises(ValueError, match="odd"):
        LocalResponseNorm(4)


def test_lrn_is_the_one_shared_definition():
    """AlexNet, VGG (A-LRN) and GoogLeNet (paper) use one module; the AlexNet chapter prints it from here."""
    assert LocalResponseNorm is layers.LocalResponseNorm
    assert "LocalResponseNorm" in alexnet_module.__all__


# --- torchvision variant ----------------------------------------------------------------------------

def test_torchvision_variant_loads_torchvision_weights_and_gives_identical_outputs(count_params):
    torch.manual_seed(0)
    reference = torchvision.models.alexnet(weights=None).eval()
    ours = alexnet().eval()
    assert count_params(ours) == count_params(reference) == 61_100_840
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 80, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)


# --- paper variant -----------------------------------------------------------------------------------

def test_paper_variant_parameters(paper, count_params, on_meta):
    assert count_params(paper) == 60_965_224
    assert count_params(paper.classifier) == 58_631_144  # 96% of the network is in the three fc layers
    assert [c.out_channels for c in _convs(paper)] == [96, 256, 384, 384, 256]
    assert [c.groups for c in _convs(paper)] == [1, 2, 1, 2, 2]  # conv2, conv4, conv5 stay on their GPU
    assert count_params(on_meta(alexnet, variant="paper", groups=1)) == 62_378_344


def test_paper_variant_normalizes_after_relu_and_before_pooling(paper):
    kinds = [type(m).__name__ for m in paper.features]
    assert kinds[:8] == [
        "Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d", "Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d",
    ]
    assert kinds.count("LocalResponseNorm") == 2 and kinds.count("MaxPool2d") == 3
    lrn = paper.features[2]
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)


def test_paper_variant_drops_out_after_each_hidden_layer(paper):
    kinds = [type(m).__name__ for m in paper.classifier]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [m.p for m in paper.classifier if isinstance(m, nn.Dropout)] == [0.5, 0.5]


def test_paper_variant_map_sizes_at_224(paper, output_shapes):
    names = {"features.0": "conv1", "features.3": "pool1", "features.7": "pool2", "features.14": "pool5"}
    sizes = output_shapes(paper, torch.zeros(1, 3, 224, 224), list(names))
    assert {names[layer]: size for layer, size in sizes.items()} == {
        "conv1": (96, 55, 55), "pool1": (96, 27, 27), "pool2": (256, 13, 13), "pool5": (256, 6, 6),
    }


def test_norm_choices_keep_the_layer_indices(paper, on_meta):
    lrn_keys = list(paper.state_dict())
    none = on_meta(alexnet, variant="paper", norm="none")
    assert list(none.state_dict()) == lrn_keys and isinstance(none.features[2], nn.Identity)
    bn = on_meta(alexnet, variant="paper", norm="batchnorm")
    assert isinstance(bn.features[2], nn.BatchNorm2d) and bn.features[2].num_features == 96
    assert isinstance(bn.features[6], nn.BatchNorm2d) and bn.features[6].num_features == 256


# --- CIFAR adaptation -------------------------------------------------------------------------------

@pytest.mark.parametrize("norm", ["lrn", "none", "batchnorm"])
@pytest.mark.parametrize("groups", [1, 2])
def test_cifar_ablation_options(norm, groups):
    torch.manual_seed(0)
    model = alexnet_cifar(norm=norm, groups=groups)
    assert [c.groups for c in _convs(model)] == [1, groups, 1, groups, groups]
    slot = {"lrn": LocalResponseNorm, "none": nn.Identity, "batchnorm": nn.BatchNorm2d}[norm]
    assert sum(isinstance(m, slot) for m in model.features) == 2
    model.train()
    out = model(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 10) and torch.isfinite(out).all()


def test_cifar_parameter_counts(count_params, on_meta):
    def count(**options) -> int:
        return count_params(on_meta(alexnet_cifar, **options))

    assert count() == count(norm="none") == CIFAR_PARAMETERS
    assert count(norm="batchnorm") == CIFAR_PARAMETERS + 2 * (24 + 64)  # gamma and beta
    assert count(groups=1) == CIFAR_PARAMETERS_ONE_GROUP


CIFAR_PARAMETERS = 361_834
CIFAR_PARAMETERS_ONE_GROUP = 450_154


# --- options and input checks -----------------------------------------------------------------------

def test_builders_are_registered_and_keyword_only():
    assert MODELS["alexnet"] is alexnet and MODELS["alexnet_cifar"] is alexnet_cifar
    with pytest.raises(TypeError):
        alexnet(10)
    with pytest.raises(TypeError):
        alexnet_cifar(10)


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="unknown variant 'caffe'.*torchvision, paper"):
        alexnet(variant="caffe")
    with pytest.raises(ValueError, match="unknown norm 'layernorm'.*lrn, none, batchnorm"):
        alexnet_cifar(norm="layernorm")
    with pytest.raises(ValueError, match="variant='paper'"):
        alexnet(norm="lrn")
    with pytest.raises(ValueError, match="variant='paper'"):
        alexnet(groups=2)


@pytest.mark.parametrize(
    ("build", "smallest"),
    [(lambda: alexnet(), 63), (lambda: alexnet(variant="paper"), 63), (lambda: alexnet_cifar(), 15)],
    ids=["torchvision", "paper", "cifar"],
)
def test_smallest_image_is_exact_and_named_in_the_error(build, smallest):
    torch.manual_seed(0)
    model = build().eval()
    assert model.min_size == smallest
    with torch.no_grad():
        model(torch.randn(1, 3, smallest, smallest))
        with pytest.raises(ValueError, match=f"at least {smallest}x{smallest} pixels, got {smallest - 1}x"):
            model(torch.randn(1, 3, smallest - 1, smallest + 40))
        # The check is not stricter than the layers: without it, one pixel less fails inside the network.
        with pytest.raises(RuntimeError):
            model.features(torch.randn(1, 3, smallest - 1, smallest - 1))


def test_wrong_channels_name_the_expected_shape():
    with pytest.raises(ValueError, match="3-channel"):
        alexnet_cifar()(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        alexnet_cifar()(torch.randn(3, 32, 32))
