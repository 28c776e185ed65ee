"""lib.inspection (and lib.distributed.watch_buckets): the chapters' counting helpers, on tiny networks
whose weights, multiply-adds, depths and fields are worked out by hand in the comments."""
from __future__ import annotations

from typing import NamedTuple

import pytest
import torch
import torch.distributed as dist
from torch import nn

import lib
from lib import distributed
from lib.inspection import (
    LayerCost, describe, longest_path, stage_ends, stage_layers, weight_depth, weights_and_mult_adds,
)
from lib.receptive_field import receptive_field


# ------------------------------------------------------------------------------------- tiny networks
class TwoConv(nn.Module):
    """1x4x4 -> conv 3x3 pad 1 (2 channels, 4x4) -> conv 2x2 stride 2 (3 channels, 2x2) -> linear 12 -> 5."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3, padding=1)
        self.conv2 = nn.Conv2d(2, 3, 2, stride=2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv2(torch.relu(self.conv1(x)))))


class Residual(nn.Module):
    """conv -> conv on the main path, one conv on the shortcut: three convolutions, two on the longest path."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1))
        self.shortcut = nn.Conv2d(2, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.main(x) + self.shortcut(x))


class FourBranches(nn.Module):
    """An Inception-like module: branches of 1, 2, 3 and 0 convolutions, concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.branch1 = nn.Conv2d(2, 1, 1)
        self.branch2 = nn.Sequential(nn.Conv2d(2, 1, 1), nn.Conv2d(1, 1, 3, padding=1))
        self.branch3 = nn.Sequential(nn.Conv2d(2, 1, 1), nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 1))
        self.branch4 = nn.MaxPool2d(3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class Twice(nn.Module):
    """The same 3x3 convolution (2 -> 2 channels: 2 * 2 * 3 * 3 = 36 weights) applied twice on a 5x5 map."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.conv(x))


class Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.conv(x), x


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) if x.sum() > 0 else x


# ------------------------------------------------------------------------------ weights_and_mult_adds
def test_weights_and_mult_adds_by_hand():
    costs, shape = weights_and_mult_adds(TwoConv(), (1, 4, 4))
    # conv1: 1*2*3*3 = 18 weights at 4*4 = 16 positions; conv2: 2*3*2*2 = 24 weights at 2*2 positions;
    # the linear layer: 12*5 = 60 weights, once. Biases are not counted.
    assert costs == {"conv1": (18, 288), "conv2": (24, 96), "head": (60, 60)}
    assert list(costs) == ["conv1", "conv2", "head"]  # in the order the layers ran
    assert costs["conv2"] == LayerCost(weights=24, mult_adds=96)
    assert shape == torch.Size([1, 5])


def test_layers_inside_one_child_are_added_up():
    model = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 1, bias=False)), nn.Flatten())
    costs, shape = weights_and_mult_adds(model, (1, 5, 5))
    # 18 weights at 3x3 positions, then 4 weights at 3x3 positions: 18 + 4 = 22 weights, 162 + 36 = 198
    assert costs == {"0": (22, 198)} and shape == torch.Size([1, 18])


def test_a_layer_that_runs_twice_counts_twice():
    costs, _ = weights_and_mult_adds(Twice(), (2, 5, 5))
    assert costs == {"conv": (2 * 36, 2 * 36 * 25)}  # 36 weights twice, each time at 25 positions


def test_grouped_convolution_and_linear_on_a_sequence():
    grouped, _ = weights_and_mult_adds(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4)), (4, 6, 6))
    assert grouped == {"0": (36, 36 * 36)}  # 4 filters of 1x3x3: 36 weights, 6x6 positions
    sequence, shape = weights_and_mult_adds(nn.Sequential(nn.Linear(4, 2)), (3, 4))
    assert sequence == {"0": (8, 24)} and shape == torch.Size([1, 3, 2])  # applied at 3 positions


def test_meta_device_costs_nothing_and_modes_come_back():
    with torch.device("meta"):
        model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Dropout())
    model[2].eval()  # a module left in eval mode on purpose stays so; the others stay in train mode
    costs, shape = weights_and_mult_adds(model, (3, 10, 10))
    assert costs == {"0": (216, 216 * 64)} and shape == torch.Size([1, 8, 8, 8])
    assert [m.training for m in model] == [True, True, False] and model.training
    assert not model[0]._forward_hooks  # the hooks are removed


def test_weights_and_mult_adds_rejects_bad_input():
    with pytest.raises(TypeError, match="nn.Module"):
        weights_and_mult_adds("resnet18", (3, 32, 32))
    for bad in ((), (3, 0, 32), (3, 32.0, 32), "3x32x32", 32):
        with pytest.raises(ValueError, match="input_size"):
            weights_and_mult_adds(TwoConv(), bad)
    with pytest.raises(TypeError, match="one tensor"):
        weights_and_mult_adds(Pair(), (1, 2, 2))


# ------------------------------------------------------------------------------------- longest_path
def test_longest_path_counts_the_longest_branch_only():
    assert longest_path(Residual()) == 2  # three convolutions, but the shortcut is an alternative
    assert longest_path(FourBranches()) == 3
    assert longest_path(nn.Sequential(Residual(), Residual(), nn.Conv2d(2, 2, 1))) == 5
    assert longest_path(nn.Sequential(nn.ReLU())) == 0


def test_longest_path_counts_the_kinds_asked_for():
    assert longest_path(TwoConv()) == 2
    assert longest_path(TwoConv(), (nn.Conv2d, nn.Linear)) == 3
    assert longest_path(TwoConv(), (nn.Linear,)) == 1


def test_longest_path_gives_the_papers_depths():
    # layers with weights on the longest path: LeNet-5 5, VGG-16 16, GoogLeNet 22, ResNet-50 50
    weighted = (nn.Conv2d, nn.Linear)
    with torch.device("meta"):
        models = {5: lib.models.lenet5(), 16: lib.models.vgg16(),
                  22: lib.models.googlenet(variant="paper", aux_logits=False), 50: lib.models.resnet50()}
    for depth, model in models.items():
        assert longest_path(model.eval(), weighted) == depth, type(model).__name__


def test_longest_path_rejects_what_it_cannot_read():
    with pytest.raises(TypeError, match="cannot trace Branchy"):
        longest_path(Branchy())
    with pytest.raises(TypeError, match="nn.Module"):
        longest_path(None)


# ------------------------------------------------------------------------------------- weight_depth
class Row(NamedTuple):
    name: str
    kind: str
    size: int


def test_weight_depth_groups_blocks_by_name():
    table = [
        Row("conv1", "conv", 7), Row("maxpool", "maxpool", 11),
        Row("layer1.0.conv1", "conv", 19), Row("layer1.0.conv2", "conv", 27),  # a basic block: 2
        Row("layer2.0.conv1", "conv", 35), Row("layer2.0.conv2", "conv", 51),
        Row("layer2.0.downsample.0", "conv", 27),  # its shortcut: 1, so the block adds 2
        Row("inception3a.branch1.conv", "conv", 51), Row("inception3a.branch2.0.conv", "conv", 51),
        Row("inception3a.branch2.1.conv", "conv", 67), Row("inception3a.branch4.0", "maxpool", 69),
        Row("inception3a.branch4.1.conv", "conv", 69),  # longest branch 2, largest field 69
        Row("avgpool", "adaptive avgpool", 999),  # left out
    ]
    assert weight_depth(table) == [(1, 7), (1, 11), (3, 27), (5, 51), (7, 69)]
    assert weight_depth([]) == []


def test_weight_depth_on_a_real_field_table():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 3, 3),
                        nn.AdaptiveAvgPool2d(1))
    # fields: 3 after the first 3x3, 3 + 1 = 4 after the 2x2 pool (jump 2), 4 + 2 * 2 = 8 after the second 3x3
    assert weight_depth(receptive_field(net, (1, 8, 8))) == [(1, 3), (1, 4), (2, 8)]


# ----------------------------------------------------------------------------------------- describe
def small_cnn(bias: bool = False, norm: bool = False) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=bias), nn.BatchNorm2d(2) if norm else nn.Identity(),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 3, 3, bias=bias), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(3, 4, bias=bias))


def test_describe_by_hand():
    model = small_cnn()
    d = describe(model, (1, 8, 8))
    # weights: 18 + 54 + 12 = 84; multiply-adds: 18 at 8x8, 54 at 2x2, 12 once = 1152 + 216 + 12
    assert (d["params"], d["conv_params"], d["fc_params"]) == (84, 72, 12)
    assert d["macs"] == 1380 and d["input"] == "1x8x8"
    assert (d["rf"], d["rf_layer"], d["profile"]) == (8, "4", [(1, 3), (1, 4), (2, 8)])
    assert d["depth"] == 3 and d["widest"] == 3 and d["kernels"] == [3]
    assert d["norms"] == [] and d["shortcuts"] is False
    assert model.training  # back in train mode


def test_describe_lists_normalisation_kernels_and_shortcuts():
    d = describe(small_cnn(bias=True, norm=True), (1, 8, 8))
    assert d["norms"] == ["BatchNorm2d"] and d["params"] == 84 + 2 + 3 + 4 + 4  # biases, BN scale and shift
    with torch.device("meta"):
        resnet = lib.models.resnet18()
    summary = describe(resnet.to_empty(device="cpu"), (3, 64, 64))
    assert summary["shortcuts"] and summary["kernels"] == [7, 3, 1] and summary["depth"] == 18
    assert summary["fc_params"] == 512 * 1000 + 1000


def test_describe_rejects_bad_input():
    with pytest.raises(ValueError, match="convolutions"):
        describe(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), (1, 2, 2))
    with pytest.raises(ValueError, match="input_size"):
        describe(small_cnn(), (8, 8, -1))
    with pytest.raises(TypeError, match="nn.Module"):
        describe(lib.models.lenet5, (1, 28, 28))


# ------------------------------------------------------------------------------ stage_layers and ends
def test_stage_layers_opens_flat_sequentials_and_skips_auxiliary_heads():
    model = nn.Module()
    model.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
    model.aux1 = nn.Linear(4, 2)
    model.stage = nn.Sequential(nn.Sequential(nn.Conv2d(4, 4, 3)), nn.ReLU())  # nested: kept whole
    model.fc = nn.Linear(4, 2)
    assert stage_layers(model) == ["features.0", "features.1", "features.2", "stage", "fc"]


def test_stage_ends_keeps_the_last_map_at_each_size():
    outputs = {"a": torch.zeros(1, 2, 8, 8), "b": torch.ones(1, 2, 8, 8), "c": torch.zeros(1, 4, 4, 4),
               "pool": torch.zeros(1, 4, 1, 1), "fc": torch.zeros(1, 10), "extra": (torch.zeros(1, 1, 2, 2),)}
    ends = stage_ends(outputs)
    assert list(ends) == ["b", "c"]
    assert torch.equal(ends["b"], torch.ones(2, 8, 8))  # the first image, without the batch dimension


def test_stage_layers_feed_feature_maps():
    torch.manual_seed(0)
    model = lib.models.resnet20()
    maps = lib.visualize.feature_maps(model, torch.rand(3, 32, 32), stage_layers(model))
    assert {name: tuple(t.shape) for name, t in stage_ends(maps).items()} == {
        "layer1": (16, 32, 32), "layer2": (32, 16, 16), "final_relu": (64, 8, 8)}


# ------------------------------------------------------------------------ distributed.watch_buckets
@pytest.fixture
def one_process_group():
    if dist.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


def test_watch_buckets_sees_every_gradient_and_the_first_layer(one_process_group):
    model = mlp()
    passes = distributed.watch_buckets(model, torch.randn(5, 4), bucket_cap_mb=0.0001)  # ~25 floats each
    assert len(passes) == 2
    for events in passes:
        buckets = [e for e in events if isinstance(e, distributed.Bucket)]
        assert events.count(distributed.FIRST_LAYER_DONE) == 1
        assert sum(b.values for b in buckets) == 4 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3
        assert sum(b.tensors for b in buckets) == 6
        assert [b.index for b in buckets] == list(range(len(buckets)))
    second = passes[1]
    assert second[0].first.startswith("4.")  # backward order: the last layer's gradients go first
    assert second.index(distributed.FIRST_LAYER_DONE) < len(second) - 1  # buckets sent before the end


def test_watch_buckets_leaves_the_gradients_unchanged(one_process_group):
    model, x = mlp(), torch.randn(5, 4)
    distributed.watch_buckets(model, x, steps=1)
    reference = mlp()
    nn.functional.cross_entropy(reference(x), torch.zeros(5, dtype=torch.long)).backward()
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(ours.grad, theirs.grad)
    with pytest.raises(ValueError, match="steps"):
        distributed.watch_buckets(model, x, steps=0)


def test_watch_buckets_needs_a_process_group():
    if dist.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    with pytest.raises(RuntimeError, match="process group of one process"):
        distributed.watch_buckets(mlp(), torch.randn(2, 4))


def test_saved_for_backward_counts_what_autograd_keeps_by_layer_kind():
    from lib.inspection import saved_for_backward

    # Linear(4 -> 3) keeps its input (4 floats); ReLU keeps its output (3 floats); Linear(3 -> 2)
    # keeps its input, the ReLU's output storage, which counts once; the weights are left out.
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()
    kept = saved_for_backward(model, (4,))
    assert kept == {"Linear": 4 * 4, "ReLU": 3 * 4}
    assert not model.training and not model[0].training  # modes restored
