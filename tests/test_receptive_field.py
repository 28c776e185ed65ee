"""Receptive fields of networks small enough to work out by hand, and of the published networks.

Hand-worked values use the formulas of the module docstring, with r = size, j = jump and the start
(centre of the first unit's field) in input pixels:
    r' = r + (k - 1) d j,   j' = j s,   start' = start + ((k - 1) / 2 d - p) j.
"""
import random

import pytest
import torch
import torch.nn.functional as F
import torchvision
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn

from lib.models import _checks
from lib.models._checks import check_image_batch
from lib.receptive_field import (
    AxisField,
    FieldTable,
    LayerField,
    adaptive_window,
    effective_receptive_field,
    receptive_field,
    union_field,
    window_field,
)
from lib.visualize import draw_receptive_field, plot_effective_receptive_field

PIXEL = AxisField(size=1, jump=1, start=0.0)


def conv(kernel=3, stride=1, padding=0, dilation=1, channels=1):
    return nn.Conv2d(channels, channels, kernel, stride=stride, padding=padding, dilation=dilation)


def fields(model, size=32, channels=1):
    return receptive_field(model, (channels, size, size))


def rsj(row: LayerField):
    return row.size, row.jump, row.start


# ---------------------------------------------------------------- the per-layer arithmetic
def test_window_field_follows_the_formulas():
    assert window_field(PIXEL, 3) == (3, 1, 1.0)
    assert window_field(PIXEL, 3, stride=2, padding=1) == (3, 2, 0.0)
    assert window_field(PIXEL, 3, dilation=2) == (5, 1, 2.0)
    # the second layer sees jump-2 units: r = 5 + 2 * 2, start moves by ((3-1)/2 - 1) * 2 = 0
    assert window_field(AxisField(5, 2, 0.5), 3, stride=2, padding=1) == (9, 4, 0.5)
    assert window_field(AxisField(5, 2, 0.5), 1, padding=2) == (5, 2, -3.5)  # padding alone shifts


def test_union_is_the_hull_and_needs_equal_jumps():
    # [-1, 1] and [-2, 0]: together [-2, 1], 4 pixels centred at -0.5
    assert union_field([AxisField(3, 1, 0.0), AxisField(3, 1, -1.0)]) == (4, 1, -0.5)
    assert union_field([AxisField(1, 2, 0.0), AxisField(5, 2, 0.0)]) == (5, 2, 0.0)  # centred: the max
    with pytest.raises(ValueError, match="different jumps"):
        union_field([AxisField(3, 1, 0.0), AxisField(3, 2, 0.0)])


def test_adaptive_window():
    assert adaptive_window(7, 1) == (7, 7)  # global pooling
    assert adaptive_window(6, 6) == (1, 1)
    assert adaptive_window(8, 4) == (2, 2)
    assert adaptive_window(8, 3) is None
    assert adaptive_window(3, 6) is None


# ---------------------------------------------------------------- hand-worked tiny networks
def test_two_and_three_3x3_convolutions_see_5_and_7_pixels():
    assert [row.size for row in fields(nn.Sequential(conv(), conv()))] == [3, 5]
    three = fields(nn.Sequential(conv(padding=1), conv(padding=1), conv(padding=1)))
    one = fields(nn.Sequential(conv(7, padding=3)))
    assert [row.size for row in three] == [3, 5, 7]
    assert rsj(three.last) == rsj(one.last) == (7, 1, 0.0)
    assert three.last.output_size == one.last.output_size == 32


def test_stride_multiplies_the_growth_of_later_layers():
    table = fields(nn.Sequential(conv(stride=2, padding=1), conv(padding=1)))
    assert rsj(table[0]) == (3, 2, 0.0)
    assert rsj(table[1]) == (7, 2, 0.0)  # 3 + 2 * 2
    assert [row.output_size for row in table] == [16, 16]


def test_dilation():
    table = fields(nn.Sequential(conv(dilation=1), conv(dilation=2), conv(dilation=4)))
    assert [row.size for row in table] == [3, 7, 15]
    assert table.last.dilation_hw == (4, 4)
    assert table.last.output_size == 32 - 2 - 4 - 8


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize(
    "kernel, padding, start",
    [(3, 0, 1.0), (3, 1, 0.0), (3, 2, -1.0), (3, "same", 0.0), (3, "valid", 1.0),
     (4, "same", 0.5)],  # "same" with an even kernel pads 1 before and 2 after
)
def test_padding_shifts_the_start(kernel, padding, start):
    row = fields(nn.Sequential(conv(kernel, padding=padding)))[0]
    assert row.start == start
    top, left, bottom, right = row.box(0, 0)
    assert (top, bottom) == (left, right) == (start - (kernel - 1) / 2, start + (kernel - 1) / 2)


def test_max_pooling_then_conv():
    table = fields(nn.Sequential(nn.MaxPool2d(2), conv(padding=1)))
    assert (table[0].kind, rsj(table[0])) == ("maxpool", (2, 2, 0.5))
    assert rsj(table[1]) == (6, 2, 0.5)  # 2 + 2 * 2; unit 0 sees pixels -1 ... 4
    assert table[1].box(0, 0) == (-2, -2, 3, 3)


def test_ceil_mode_changes_only_the_output_size():
    floor, ceil = (fields(nn.Sequential(nn.MaxPool2d(3, 2, ceil_mode=mode)), size=8)[0] for mode in (False, True))
    assert (floor.output_size, ceil.output_size) == (3, 4)
    assert rsj(floor) == rsj(ceil) == (3, 2, 1.0)


def test_position_wise_layers_change_nothing():
    plain = fields(nn.Sequential(conv(padding=1, channels=3), nn.MaxPool2d(2), conv(channels=3)), channels=3)
    busy = fields(nn.Sequential(
        conv(padding=1, channels=3), nn.BatchNorm2d(3), nn.ReLU(), nn.LocalResponseNorm(2),
        nn.MaxPool2d(2), nn.Dropout(), nn.Identity(), conv(channels=3), nn.ReLU(),
    ), channels=3)
    assert [rsj(row) for row in busy] == [rsj(row) for row in plain]
    assert busy.names == ["0", "4", "7"]


def test_non_square_kernels_are_followed_per_axis():
    table = fields(nn.Sequential(conv((3, 1)), conv((1, 5))), size=16)
    assert table.last.size_hw == (3, 5)
    assert table.last.start_hw == (1.0, 2.0)
    assert table.last.output_hw == (14, 12)
    assert table.last.size == 3 and table.last.output_size == 14  # the vertical axis
    assert "3x5" in str(table) and "1x5/1" in str(table)


def test_padding_layers_and_functional_pooling():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.pad = nn.ZeroPad2d((2, 0, 2, 0))  # left, right, top, bottom
            self.conv = conv()

        def forward(self, x):
            x = self.conv(self.pad(x))                # start -2 + 1 = -1, size 3
            x = F.max_pool2d(x, 2)                    # size 4, jump 2, start -0.5
            x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1)), 3, 1)  # pad: start -2.5; then size 8, start -0.5
            return F.adaptive_avg_pool2d(x, 1).flatten(1)

    table = fields(Functional(), size=16)
    assert table.names == ["conv", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]
    assert [rsj(row) for row in table[:3]] == [(3, 1, -1.0), (4, 2, -0.5), (8, 2, -0.5)]
    assert [row.output_size for row in table] == [16, 8, 8, 1]
    assert rsj(table.last) == (8 + 7 * 2, 16, 6.5)  # global pooling over 8 units of jump 2


def random_network(seed: int) -> nn.Sequential:
    """Three random conv / average-pool layers, non-square windows included, weights positive so that
    every input pixel a unit depends on gets a nonzero gradient."""
    rng = random.Random(seed)
    layers = []
    for _ in range(3):
        kernel = (rng.randint(1, 4), rng.randint(1, 4))
        stride = rng.choice([1, 2])
        if rng.random() < 0.7:
            dilation = rng.choice([1, 2])
            padding = "same" if stride == 1 and rng.random() < 0.3 else tuple(rng.randint(0, 2) for _ in kernel)
            layer = nn.Conv2d(2, 2, kernel, stride=stride, padding=padding, dilation=dilation)
            layer.weight.data.uniform_(0.1, 1.0)
        else:
            layer = nn.AvgPool2d(kernel, stride, padding=tuple(rng.randint(0, k // 2) for k in kernel))
        layers.append(layer)
    return nn.Sequential(*layers)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("seed", range(8))
def test_boxes_are_the_pixels_a_unit_depends_on(seed):
    """Against autograd: a unit whose box lies inside the image has a nonzero gradient exactly up to
    the edges of its box. Near the border the formulas treat the padding of inner layers as units
    that see pixels too, so a border unit's gradient lies within its clipped box but may cover
    less of it, or nothing."""
    torch.manual_seed(seed)
    model = random_network(seed)
    size = 64
    layer = fields(model, size=size, channels=2).last
    x = torch.ones(1, 2, size, size, requires_grad=True)
    out = model(x)
    assert tuple(out.shape[-2:]) == layer.output_hw
    h, w = layer.output_hw
    for i, j in [(h // 2, w // 2), (0, 0), (1, 1), (h - 1, w - 1), (0, w - 1)]:
        (grad,) = torch.autograd.grad(out[0, 0, i, j], x, retain_graph=True)
        rows, cols = grad[0].abs().sum(0).nonzero(as_tuple=True)
        box = layer.box(i, j)
        clipped = (max(box[0], 0), max(box[1], 0), min(box[2], size - 1), min(box[3], size - 1))
        if (i, j) == (h // 2, w // 2):
            assert box == clipped  # 64 pixels are enough for the centre unit of these networks
        if box == clipped:
            seen = (rows.min().item(), cols.min().item(), rows.max().item(), cols.max().item())
            assert seen == box, (i, j)
        elif len(rows):
            assert clipped[0] <= rows.min() and rows.max() <= clipped[2], (i, j)
            assert clipped[1] <= cols.min() and cols.max() <= clipped[3], (i, j)


# ---------------------------------------------------------------- branches
class TwoBranches(nn.Module):
    """A 1x1 and a 3x3 branch side by side, concatenated (an Inception module in miniature)."""

    def __init__(self):
        super().__init__()
        self.small = conv(1)
        self.large = conv(3, padding=1)

    def forward(self, x):
        return torch.cat([self.small(x), self.large(x)], dim=1)


class Residual(nn.Module):
    """x + conv3(relu(conv3(x))): the shortcut sees 1 pixel, the other path 5."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = conv(padding=1), conv(padding=1)

    def forward(self, x):
        return x + self.conv2(torch.relu(self.conv1(x)))


def test_concatenated_branches_give_the_larger_field():
    table = fields(nn.Sequential(TwoBranches(), nn.Conv2d(2, 1, 1)))
    assert table.names == ["0.small", "0.large", "1"]
    assert [row.size for row in table] == [1, 3, 3]
    assert rsj(table["0"]) == (3, 1, 0.0)  # the module's output, after the concatenation
    assert table["0"].kind == "TwoBranches"


def test_residual_block_gives_the_longer_path():
    table = fields(nn.Sequential(Residual(), conv(1)))
    assert [row.size for row in table] == [3, 5, 5]
    assert table["0"].size == 5


def test_branches_with_different_jumps_are_refused():
    class Mismatch(nn.Module):
        def __init__(self):
            super().__init__()
            self.fine = conv(3, stride=2, padding=1)  # 16 -> 8 units, jump 2
            self.coarse = conv(1, stride=4, padding=7)  # 16 -> 8 units too, but jump 4

        def forward(self, x):
            return self.fine(x) + self.coarse(x)

    with pytest.raises(ValueError, match=r"jumps are 2, 4 input pixels"):
        fields(Mismatch(), size=16)


def test_broadcast_branches_are_refused():
    class Gated(nn.Module):  # squeeze-and-excitation style: an 8x8 map times a 1x1 map
        def __init__(self):
            super().__init__()
            self.conv = conv(padding=1)

        def forward(self, x):
            return self.conv(x) * x.mean((2, 3), keepdim=True)

    with pytest.raises(ValueError, match=r"mul combines a feature map with the output of mean"):
        fields(Gated(), size=8)


# ---------------------------------------------------------------- where the walk stops or fails
def test_untraceable_model_gets_a_clear_error():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv()

        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow
                return self.conv(x)
            return x

    with pytest.raises(ValueError, match=r"torch\.fx.* failed in Gate\.forward: `if x\.sum\(\) > 0:"):
        fields(Gate())


def test_flatten_ends_the_spatial_field():
    head = nn.Sequential(conv(padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 10))
    assert fields(head, size=8).names == ["0", "1"]
    assert fields(head, size=8).last.size == 3 + 7  # global pooling over 8 units
    reshaped = nn.Sequential(conv(padding=1), nn.Flatten(), nn.Unflatten(1, (1, 8, 8)), conv())
    with pytest.raises(ValueError, match=r"3 \(Conv2d\) works on a tensor whose spatial layout was lost"):
        fields(reshaped, size=8)


def test_upsampling_ends_the_spatial_field():
    up = nn.Sequential(conv(padding=1), nn.ConvTranspose2d(1, 1, 3, padding=1), conv())  # 8x8 -> 8x8 -> 6x6
    with pytest.raises(ValueError, match=r"2 \(Conv2d\) works .* lost at 1 \(ConvTranspose2d\)"):
        fields(up, size=8)


def test_uneven_adaptive_pooling_ends_the_table_with_a_note():
    table = fields(nn.Sequential(conv(padding=1), nn.AdaptiveAvgPool2d(3), nn.Flatten()), size=8)
    assert table.names == ["0"]
    assert "stops at 1 (AdaptiveAvgPool2d)" in table.note and table.note in str(table)
    even = fields(nn.Sequential(conv(padding=1), nn.AdaptiveAvgPool2d(4)), size=8)
    assert (even.last.kernel_hw, rsj(even.last)) == ((2, 2), (4, 2, 0.5))


def test_input_too_small_names_the_layer():
    with pytest.raises(ValueError, match=r"cannot run on an input of shape \(1, 1, 4, 4\) at 1 \(Conv2d\)"):
        fields(nn.Sequential(conv(), conv(3)), size=4)


def test_models_with_the_book_input_check_are_traceable():
    class Direct(nn.Module):  # from lib.models._checks import check_image_batch
        def __init__(self):
            super().__init__()
            self.conv = conv(5)

        def forward(self, x):
            check_image_batch(x, model="Direct", channels=1, min_size=8)
            return self.conv(x)

    class ThroughModule(Direct):  # from lib.models import _checks
        def forward(self, x):
            _checks.check_image_batch(x, model="ThroughModule", channels=1, min_size=8)
            return self.conv(x)

    for model in (Direct(), ThroughModule()):
        assert rsj(fields(model, size=16)[0]) == (5, 1, 2.0)
        with pytest.raises(ValueError, match="needs images of at least 8x8"):
            fields(model, size=6)
    assert _checks.check_image_batch is check_image_batch  # the tracing patch is undone


def test_training_outputs_are_ignored_and_modes_restored():
    class WithAux(nn.Module):  # returns (main, aux) in training mode, like GoogLeNet
        def __init__(self):
            super().__init__()
            self.conv, self.aux, self.bn = conv(), conv(5), nn.BatchNorm2d(1)

        def forward(self, x):
            x = self.bn(self.conv(x))
            return (x, self.aux(x)) if self.training else x

    model = WithAux().train()
    model.bn.eval()
    assert fields(model).names == ["conv"]
    assert model.training and model.conv.training and not model.bn.training


# ---------------------------------------------------------------- the table
def test_table_lookup_and_text():
    table = fields(nn.Sequential(conv(padding=1), nn.MaxPool2d(2), conv(padding=1)))
    assert isinstance(table, FieldTable) and len(table) == 3
    assert table["2"] is table[2] is table[-1] is table.last
    assert "2" in table and table[2] in table and "7" not in table
    assert isinstance(table[1:], FieldTable) and table[1:].names == ["1", "2"]
    with pytest.raises(KeyError, match=r"no layer or module named '7'.*the 3 layers are: 0, 1, 2"):
        table["7"]
    text = str(table)
    assert repr(table) == text
    lines = text.splitlines()
    assert lines[1].split() == ["layer", "kind", "window", "output", "RF", "jump", "start"]
    assert lines[3].split() == ["0", "conv", "3x3/1", "32x32", "3", "1", "0"]
    assert lines[4].split() == ["1", "maxpool", "2x2/2", "16x16", "4", "2", "0.5"]


def test_table_fits_80_columns_and_shortens_long_names():
    inner = nn.Sequential()
    inner.add_module("a_rather_long_descriptive_block_name_that_goes_on", conv(padding=1))
    model = nn.Sequential()
    model.add_module("stage_number_one_with_a_long_name", inner)
    table = fields(model)
    lines = str(table).splitlines()
    assert max(map(len, lines)) <= 80
    assert "…" in lines[3] and lines[3].startswith("stage_num") and "goes_on" in lines[3]
    assert table["stage_number_one_with_a_long_name.a_rather_long_descriptive_block_name_that_goes_on"].size == 3


def test_select_modules_for_a_table_of_stages():
    table = fields(nn.Sequential(conv(padding=1), Residual(), Residual(), nn.MaxPool2d(2)))
    stages = table.select(["0", "1", "2", "3"])
    assert [row.size for row in stages] == [3, 7, 11, 12]
    assert [row.kind for row in stages] == ["conv", "Residual", "Residual", "maxpool"]
    assert str(stages).splitlines()[4].split() == ["1", "Residual", "32x32", "7", "1", "0"]
    assert repr(stages[1]) == "LayerField(name='1', kind='Residual', size=7, jump=1, start=0.0, output_size=32)"


def test_layer_field_defaults_to_square():
    row = LayerField("x", "conv", size=7, jump=2, start=0.0, output_size=16)
    assert (row.size_hw, row.jump_hw, row.start_hw, row.output_hw) == ((7, 7), (2, 2), (0.0, 0.0), (16, 16))
    assert row.box() == (13, 13, 19, 19)  # unit 8 is centred at 16


# ---------------------------------------------------------------- published values
# Araujo et al. (Distill, 2019) list AlexNet 195, VGG-16 212 and ResNet-50 (v1) 483 pixels. The
# networks are built on the "meta" device: shapes without storage, so that building and running them
# at 224x224 costs almost nothing; receptive_field only needs shapes.
def tv(name, **kwargs):
    with torch.device("meta"):
        return getattr(torchvision.models, name)(weights=None, **kwargs)


def test_alexnet_pool5_sees_195_pixels():
    table = receptive_field(tv("alexnet"), (3, 224, 224))
    assert [row.name for row in table if row.kind == "conv"] == [f"features.{i}" for i in (0, 3, 6, 8, 10)]
    assert rsj(table["features.12"]) == (195, 32, 31.0)
    assert table["features.12"].output_size == 6
    assert rsj(table.last) == (195, 32, 31.0)  # the adaptive pooling to 6x6 is a 1x1 window here
    assert max(map(len, str(table).splitlines())) <= 80


def test_vgg16_pool5_sees_212_pixels():
    table = receptive_field(tv("vgg16"), (3, 224, 224))
    assert len([row for row in table if row.kind == "conv"]) == 13
    assert rsj(table["features.30"]) == (212, 32, 15.5)
    assert table["features.30"].output_size == 7


def resnet50_v1():
    """torchvision's ResNet-50 is "v1.5": the stride of a downsampling bottleneck is on its 3x3.
    The original (He et al. 2015, v1) puts it on the first 1x1: move it there."""
    model = tv("resnet50")
    for stage in (model.layer2, model.layer3, model.layer4):
        stage[0].conv1.stride, stage[0].conv2.stride = (2, 2), (1, 1)
    return model


def test_resnet50_v1_sees_483_pixels_and_v1_5_sees_427():
    v1 = receptive_field(resnet50_v1(), (3, 224, 224))
    v1_5 = receptive_field(tv("resnet50"), (3, 224, 224))
    assert v1["layer4"].size == v1["layer4.2.conv3"].size == 483
    # v1.5 strides before the first 3x3 of each stage, so that 3x3 still sees jump-j units instead of
    # jump-2j ones: each of the three downsampling blocks adds (3 - 1) * j less, j = 4, 8 and 16, i.e.
    # 8 + 16 + 32 = 56 pixels less.
    assert v1_5["layer4"].size == 483 - (8 + 16 + 32) == 427
    assert v1["layer4"].jump == v1_5["layer4"].jump == 32
    assert v1["layer4"].output_size == v1_5["layer4"].output_size == 7
    assert v1_5["layer1.0.downsample.0"].size == 11  # the 1x1 projection sees what the stem sees


def test_googlenet_modules_take_the_largest_branch():
    table = receptive_field(tv("googlenet", aux_logits=False, init_weights=False), (3, 224, 224))
    for module in ("inception3a", "inception4e", "inception5b"):
        branches = [row for row in table if row.name.startswith(module + ".")]
        assert len(branches) == 7  # 1x1 | 1x1, 3x3 | 1x1, 3x3 | pool, 1x1
        assert table[module].size == max(row.size for row in branches)
        assert table[module].size > min(row.size for row in branches)
    assert table["inception3a"].size == 43 and table["inception3a.branch1.conv"].size == 27
    assert max(map(len, str(table).splitlines())) <= 80


# ---------------------------------------------------------------- drawing
def box_of(fig: Figure):
    (patch,) = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    return patch.get_x(), patch.get_y(), patch.get_width(), patch.get_height()


def test_draw_receptive_field():
    table = fields(nn.Sequential(conv(stride=2, padding=1), conv(stride=2, padding=1)), size=16)
    image = torch.rand(3, 16, 16)
    fig = draw_receptive_field(image, table, "1")  # unit (2, 2): centre 8, 7 pixels: 5 ... 11
    assert isinstance(fig, Figure)
    assert box_of(fig) == (4.5, 4.5, 7.0, 7.0)
    corner = draw_receptive_field(image[0], table, 1, position=(0, 0))  # pixels -3 ... 3, clipped to 0 ... 3
    assert box_of(corner) == (-0.5, -0.5, 4.0, 4.0)
    assert "clipped" in corner.axes[0].get_title()
    with pytest.raises(ValueError, match="table was computed for 16x16"):
        draw_receptive_field(torch.rand(3, 20, 20), table, "1")
    with pytest.raises(ValueError, match="outside the 4x4 output"):
        draw_receptive_field(image, table, "1", position=(4, 0))
    photo = (image.permute(1, 2, 0) * 255).to(torch.uint8).numpy()  # an (H, W, 3) uint8 array, as from PIL
    fig = draw_receptive_field(photo, table, "1")
    assert box_of(fig) == (4.5, 4.5, 7.0, 7.0)
    assert fig.axes[0].images[0].get_array().max() <= 1.0  # shown as / 255


def test_drawings_on_given_axes_leave_the_figure_to_the_caller():
    import matplotlib.pyplot as plt

    table = fields(nn.Sequential(conv(padding=1)), size=8)
    fig, (left, right) = plt.subplots(1, 2)
    try:
        assert draw_receptive_field(torch.rand(1, 8, 8), table, "0", ax=left) is fig
        assert plot_effective_receptive_field(torch.rand(8, 8), ax=right, field=table.last) is fig
        assert plt.fignum_exists(fig.number)  # still open: the caller's figure
        assert len(right.patches) == 1
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match=r"\(H, W\) heatmap"):
        plot_effective_receptive_field(torch.rand(1, 8, 8))


# ---------------------------------------------------------------- effective receptive field
def test_erf_of_one_3x3_conv_is_its_window():
    model = nn.Conv2d(3, 4, 3, padding=1)
    heat = effective_receptive_field(model, 9)
    assert heat.shape == (9, 9) and heat.max() == 1
    window = torch.zeros(9, 9, dtype=torch.bool)
    window[3:6, 3:6] = True
    assert (heat[window] > 0).all()
    assert (heat[~window] == 0).all()


def test_erf_of_a_deep_stack_is_concentrated_in_the_middle():
    torch.manual_seed(0)
    layers = [nn.Conv2d(1 if i == 0 else 8, 8, 3, padding=1) for i in range(8)]
    stack = nn.Sequential(*[m for conv_ in layers for m in (conv_, nn.ReLU())],
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).train()
    heat = effective_receptive_field(stack, (1, 33, 33))  # default: the input of the global pooling
    theoretical = receptive_field(stack, (1, 33, 33))["14"]
    assert theoretical.size == 17
    top, left, bottom, right = theoretical.box()  # pixels 8 ... 24 around the centre 16
    outside = torch.ones_like(heat, dtype=torch.bool)
    outside[top:bottom + 1, left:right + 1] = False
    assert (heat[outside] == 0).all() and (heat[~outside] > 0).any()
    assert heat[12:21, 12:21].sum() > 0.6 * heat.sum()  # the middle 9x9 of the 17x17 field
    assert stack.training  # the mode is restored
    fig = plot_effective_receptive_field(heat, field=theoretical, title="8 layers")
    assert isinstance(fig, Figure) and box_of(fig) == (7.5, 7.5, 17.0, 17.0)


def test_erf_of_a_named_layer_and_a_wrong_name():
    stack = nn.Sequential(conv(padding=1), conv(padding=1), conv(padding=1))
    heat = effective_receptive_field(stack, (1, 11, 11), layer="0")
    assert (heat > 0).sum() == 9
    with pytest.raises(ValueError, match="did you mean '1'"):
        effective_receptive_field(stack, 11, channels=1, layer="11")


def test_a_subclass_of_conv2d_is_one_layer_named_after_its_module():
    class MaskedConv(nn.Conv2d):
        def forward(self, x):
            return nn.functional.conv2d(x, self.weight * 0.5, self.bias, self.stride, self.padding)

    model = nn.Sequential(nn.Conv2d(1, 2, 3), MaskedConv(2, 2, 5))
    table = receptive_field(model, (1, 16, 16))
    assert [(row.name, row.kind, row.size) for row in table] == [("0", "conv", 3), ("1", "conv", 7)]
