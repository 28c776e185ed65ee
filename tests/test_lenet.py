"""LeNet-5: shapes, exact parameter counts, the variants, the C3 connection table and input errors."""
import pytest
import torch
from torch import nn

from lib.models import MODELS, get_model
from lib.models.lenet import C3_TABLE, ConnectionTableConv2d, LeNet5, ScaledTanh, lenet5


LAYERS = ("c1", "s2", "c3", "s4", "c5", "f6", "output")


def test_registered_under_torchvision_style_name():
    assert MODELS["lenet5"] is lenet5
    assert isinstance(get_model("lenet5", num_classes=3), LeNet5)


@pytest.mark.parametrize("variant", ["relu", "tanh"])
@pytest.mark.parametrize("c3", ["full", "table"])
def test_shapes_follow_the_paper(variant, c3, output_shapes):
    shapes = output_shapes(lenet5(variant=variant, c3=c3), torch.zeros(2, 1, 28, 28), LAYERS)
    assert shapes == {
        "c1": (6, 28, 28), "s2": (6, 14, 14), "c3": (16, 10, 10), "s4": (16, 5, 5),
        "c5": (120, 1, 1), "f6": (84,), "output": (10,),
    }


def test_paper_input_32x32_without_padding_gives_the_same_shapes(output_shapes):
    model = lenet5(padding=0)
    assert output_shapes(model, torch.zeros(1, 1, 32, 32), LAYERS)["c1"] == (6, 28, 28)
    assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 10)


def test_parameter_counts_layer_by_layer(count_params):
    model = lenet5()
    per_layer = {name: count_params(getattr(model, name)) for name in ("c1", "c3", "c5", "f6", "output")}
    # c1: 6 * (5*5 + 1); c3: 16 * (6*5*5 + 1); c5: 120 * (16*5*5 + 1); f6: 84 * (120 + 1); output: 10 * 85
    assert per_layer == {"c1": 156, "c3": 2416, "c5": 48120, "f6": 10164, "output": 850}
    assert count_params(model) == 61706
    assert model.effective_parameter_count() == 61706
    assert count_params(lenet5(num_classes=47)) == 61706 - 850 + 47 * 85
    assert count_params(lenet5(in_channels=3)) == 61706 + 2 * 6 * 25
    assert count_params(lenet5(variant="tanh")) == 61706  # pooling and activation have no parameters


def test_connection_table_is_table_one_of_the_paper():
    assert len(C3_TABLE) == 16
    assert [len(inputs) for inputs in C3_TABLE] == [3] * 6 + [4] * 9 + [6]
    assert len(set(C3_TABLE)) == 16  # every C3 map reads a different combination
    # Every S2 map feeds exactly 10 C3 maps: the 60 connections are spread evenly.
    assert [sum(s in inputs for inputs in C3_TABLE) for s in range(6)] == [10] * 6


def test_table_c3_stores_all_weights_but_uses_only_the_connected_ones(count_params):
    model = lenet5(c3="table")
    assert model.c3.connections == 60
    assert model.c3.effective_parameter_count() == 60 * 25 + 16 == 1516
    assert count_params(model) == 61706  # stored: the same tensors as a full C3
    assert model.effective_parameter_count() == 61706 - 2416 + 1516 == 60806
    assert int((model.c3.weight != 0).sum()) == 60 * 25  # the unconnected weights are exact zeros
    # The mask is not part of the checkpoint: full and table models share one state_dict format.
    assert lenet5(c3="table").state_dict().keys() == lenet5().state_dict().keys()
    lenet5(c3="table").load_state_dict(lenet5().state_dict(), strict=True)


def test_table_c3_map_depends_only_on_its_listed_inputs():
    torch.manual_seed(0)
    conv = ConnectionTableConv2d(C3_TABLE, 6, kernel_size=5)
    conv.weight.data.normal_()  # even with every stored weight non-zero, the mask decides
    x = torch.randn(1, 6, 14, 14, requires_grad=True)
    for j, inputs in enumerate(C3_TABLE):
        (grad,) = torch.autograd.grad(conv(x)[0, j].sum(), x)
        touched = {i for i in range(6) if grad[0, i].abs().sum() > 0}
        assert touched == set(inputs), j


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_masked_weights_stay_zero_during_training(optimizer):
    torch.manual_seed(0)
    model = lenet5(c3="table", variant="tanh")
    unused = model.c3.mask.expand_as(model.c3.weight) == 0
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=5e-2)
    before = model.c3.weight.detach().clone()
    for _ in range(3):
        loss = nn.functional.cross_entropy(model(torch.randn(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.all(model.c3.weight[unused] == 0)
    assert not torch.equal(model.c3.weight[~unused], before[~unused])  # the used ones did train


def test_table_init_uses_each_maps_real_fan_in():
    torch.manual_seed(0)
    weight = ConnectionTableConv2d(C3_TABLE, 6, kernel_size=5).weight
    for j, inputs in enumerate(C3_TABLE):
        bound = (len(inputs) * 25) ** -0.5
        used = weight[j, list(inputs)]
        assert used.abs().max() <= bound
        assert used.abs().max() > 0.8 * bound  # drawn from the whole range, not a narrower one


def test_variants_choose_activation_and_pooling():
    relu, tanh = lenet5(variant="relu"), lenet5(variant="tanh")
    assert isinstance(relu.act, nn.ReLU) and isinstance(relu.s2, nn.MaxPool2d)
    assert isinstance(tanh.act, ScaledTanh) and isinstance(tanh.s4, nn.AvgPool2d)
    # The paper's constants make f(+-1) = +-1 (Appendix A).
    values = tanh.act(torch.tensor([-1.0, 0.0, 1.0]))
    torch.testing.assert_close(values, torch.tensor([-1.0, 0.0, 1.0]), atol=1e-4, rtol=0)
    # Identical weights, different functions: the variant is not a cosmetic label.
    tanh.load_state_dict(relu.state_dict())
    x = torch.randn(2, 1, 28, 28)
    assert not torch.allclose(relu(x), tanh(x))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"variant": "sigmoid"}, "relu, tanh"),
        ({"c3": "sparse"}, "full, table"),
        ({"padding": 3}, "0, 1 or 2"),
    ],
)
def test_bad_options_name_the_valid_ones(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lenet5(**kwargs)


def test_builder_options_are_keyword_only():
    with pytest.raises(TypeError):
        lenet5(10)


@pytest.mark.parametrize(
    "padding, shape, message",
    [
        (2, (1, 3, 28, 28), "expects 1-channel images, got 3 channels"),
        (2, (1, 1, 16, 16), "expects 28x28 images, got 16x16"),
        (2, (1, 1, 32, 32), "expects 28x28 images, got 32x32"),
        (0, (1, 1, 28, 28), "expects 32x32 images, got 28x28"),
        (2, (1, 28, 28), r"shaped \(N, 1, H, W\)"),
    ],
)
def test_bad_input_says_what_the_model_expects(padding, shape, message):
    with pytest.raises(ValueError, match=message) as info:
        lenet5(padding=padding)(torch.zeros(shape))
    assert f"LeNet-5 (padding={padding})" in str(info.value)
