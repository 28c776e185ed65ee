"""lib.visualize: feature maps through hooks, and every plotting function's figure (axes, titles, closing)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from lib.data import ImageData
from lib.history import History
from lib.visualize import (
    as_display_image, confusion_matrix, feature_maps, plot_confusion_matrix, plot_feature_maps, plot_filters,
    plot_history, plot_predictions, show_images,
)


class Small(nn.Module):
    """Nested names like the book's networks: features.0, features.2, classifier."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2),
                                      nn.ReLU())
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(6 * 3 * 3, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class Constant(nn.Module):
    """Always predicts class 0."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.arange(classes, 0, -1).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(len(x), -1)


def tiny_data(n_test: int = 12, classes: int = 3) -> ImageData:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n_test, 3, 8, 8, generator=g)
    labels = torch.arange(n_test) % classes
    return ImageData(name="tiny", source="random test images", classes=["cat", "dog", "ship"][:classes],
                     train_images=images, train_labels=labels, test_images=images, test_labels=labels,
                     mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), offline=True)


@pytest.fixture(autouse=True)
def no_open_figures():
    """Every plotting function closes its figure: nothing stays registered with pyplot."""
    yield
    assert plt.get_fignums() == []


def test_feature_maps_equal_running_the_layers_by_hand():
    torch.manual_seed(0)
    model = Small().train()
    image = torch.rand(3, 8, 8)
    maps = feature_maps(model, image, ["features.2", "features.0"])
    assert list(maps) == ["features.2", "features.0"]
    with torch.no_grad():
        first = model.features[0](image[None])
        third = model.features[2](model.features[1](first))
    torch.testing.assert_close(maps["features.0"], first)
    torch.testing.assert_close(maps["features.2"], third)
    assert maps["features.2"].shape == (1, 6, 3, 3)
    assert model.training  # mode restored
    assert all(not m._forward_hooks for m in model.modules())  # hooks removed


def test_feature_maps_keep_pre_activation_values_before_an_in_place_relu():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True))
    image = torch.rand(3, 8, 8) - 0.5
    recorded = feature_maps(model, image, ["0"])["0"]
    with torch.no_grad():
        expected = model[0](image[None])
    assert (expected < 0).any()  # there is something for the in-place ReLU to overwrite
    torch.testing.assert_close(recorded, expected)


def test_feature_maps_normalise_with_data_and_accept_a_batch_of_one():
    model = Small()
    data = tiny_data()
    image = data.test_images[0]
    normalised = feature_maps(model, image[None], ["features.0"], data=data)["features.0"]
    by_hand = feature_maps(model, data.normalize(image), ["features.0"])["features.0"]
    torch.testing.assert_close(normalised, by_hand)


def test_feature_maps_restore_each_module_s_own_mode():
    model = Small().train()
    model.features[0].eval()  # e.g. a frozen layer: it must stay in eval mode
    feature_maps(model, torch.rand(3, 8, 8), ["features.2"])
    assert model.training and model.features[2].training and not model.features[0].training


def test_bad_layer_name_lists_valid_names():
    model = Small()
    with pytest.raises(ValueError) as error:
        feature_maps(model, torch.rand(3, 8, 8), ["features.9"])
    message = str(error.value)
    assert "'features.9'" in message and "did you mean 'features." in message
    listed = message.split("choose one of: ")[1]  # every valid name, the close ones and the far ones
    assert "features.0" in listed and "classifier" in listed
    assert all(not m._forward_hooks for m in model.modules())


def test_hooks_removed_when_the_forward_pass_fails():
    model = Small()
    with pytest.raises(RuntimeError):
        feature_maps(model, torch.rand(1, 8, 8), ["features.0"])  # one channel instead of three
    assert all(not m._forward_hooks for m in model.modules())


def test_plot_feature_maps_grid():
    model = Small()
    figure = plot_feature_maps(model, torch.rand(3, 8, 8), ["features.0", "features.2"], max_channels=16)
    # 6 columns (the widest layer), one row per layer
    assert isinstance(figure, Figure) and len(figure.axes) == 12
    assert sum(len(ax.images) for ax in figure.axes) == 4 + 6
    titles = [block.get_suptitle() for block in figure.subfigs]  # one block per layer
    assert titles == ["features.0: 4x8x8, 4 most active channels", "features.2: 6x3x3, 6 most active channels"]
    figure = plot_feature_maps(model, torch.rand(3, 8, 8), ["features.2"], max_channels=4, ncols=2)
    assert len(figure.axes) == 4
    with pytest.raises(ValueError, match="not a feature map"):
        plot_feature_maps(model, torch.rand(3, 8, 8), ["classifier"])


def test_plot_feature_maps_titles_name_the_blocks():
    # a block with a title of its own (chapter 4: "branch1 (1x1)"), the other by its layer's name
    figure = plot_feature_maps(Small(), torch.rand(3, 8, 8), ["features.0", "features.2"],
                               titles={"features.0": "first conv"})
    assert [block.get_suptitle() for block in figure.subfigs] == [
        "first conv: 4x8x8, 4 most active channels", "features.2: 6x3x3, 6 most active channels"]


def test_plot_filters_normalises_each_filter():
    weight = torch.randn(16, 3, 5, 5)
    figure = plot_filters(weight)
    assert len(figure.axes) == 16
    shown = figure.axes[3].images[0].get_array()
    assert shown.shape == (5, 5, 3) and shown.min() == pytest.approx(0) and shown.max() == pytest.approx(1)
    expected = (weight[3] - weight[3].min()) / (weight[3].max() - weight[3].min())
    np.testing.assert_allclose(shown, expected.permute(1, 2, 0).numpy(), rtol=1e-6, atol=1e-6)


def test_plot_filters_groups_one_above_the_other():
    conv = nn.Conv2d(3, 24, 3)
    figure = plot_filters(conv, groups=2, max_filters=16)  # 8 of each group's 12 filters
    assert len(figure.axes) == 16
    top, bottom = figure.axes[0].images[0].get_array(), figure.axes[8].images[0].get_array()
    for shown, index in ((top, 0), (bottom, 12)):
        w = conv.weight[index].detach()
        np.testing.assert_allclose(shown, ((w - w.min()) / (w.max() - w.min())).permute(1, 2, 0).numpy(),
                                   rtol=1e-5, atol=1e-6)
    assert figure.axes[8].get_title(loc="left") == "group 1"
    grouped = nn.Conv2d(4, 8, 3, groups=2)  # a grouped convolution splits by its own groups
    assert len(plot_filters(grouped).axes) == 8
    assert plot_filters(grouped).axes[0].images[0].get_array().shape == (3, 3)  # first input channel, grey
    with pytest.raises(ValueError, match="groups"):
        plot_filters(torch.randn(6, 3, 3, 3), groups=4)


def test_plot_history_one_run_and_several():
    history = History(train_loss=[1.0, 0.5, 0.4], train_acc=[0.5, 0.7, 0.8], test_loss=[0.9, 0.7, 0.6],
                      test_acc=[0.6, 0.7, 0.72])
    figure = plot_history(history)
    assert len(figure.axes) == 2
    assert [line.get_label() for line in figure.axes[0].lines] == ["test", "train"]
    np.testing.assert_allclose(figure.axes[0].lines[0].get_ydata(), history.test_acc)
    np.testing.assert_allclose(figure.axes[1].lines[1].get_ydata(), history.train_loss)
    figure = plot_history({"LeNet": history, "AlexNet": history})
    assert len(figure.axes) == 2 and len(figure.axes[1].lines) == 4
    (legend,) = figure.legends  # one legend for both panels, below them: it covers no curve
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels == ["LeNet test", "LeNet train", "AlexNet test", "AlexNet train"]
    assert figure.axes[0].get_legend() is None and figure.axes[1].get_legend() is None
    figure.canvas.draw()
    box = legend.get_window_extent()
    assert all(box.y1 <= ax.get_window_extent().y0 for ax in figure.axes)
    assert figure.axes[1].get_yscale() == "linear"


def test_plot_history_log_scale_for_the_loss_only():
    history = History(train_loss=[40.0, 0.5], train_acc=[0.1, 0.7], test_loss=[900.0, 0.6], test_acc=[0.1, 0.7])
    figure = plot_history(history, loss_scale="log")
    assert [ax.get_yscale() for ax in figure.axes] == ["linear", "log"]
    assert "log" in figure.axes[1].get_ylabel()
    with pytest.raises(ValueError, match="'linear' or 'log'"):
        plot_history(history, loss_scale="symlog")


@pytest.mark.parametrize("channels", [1, 3])
def test_show_images(channels):
    images = torch.rand(5, channels, 6, 6)
    figure = show_images(images, labels=torch.tensor([0, 1, 2, 0, 1]), classes=["cat", "dog", "ship"], ncols=4)
    assert len(figure.axes) == 8  # 2 rows of 4; the 3 spare axes stay blank
    assert [ax.get_title() for ax in figure.axes[:5]] == ["cat", "dog", "ship", "cat", "dog"]
    assert sum(len(ax.images) for ax in figure.axes) == 5
    expected_shape = (6, 6) if channels == 1 else (6, 6, 3)
    assert figure.axes[0].images[0].get_array().shape == expected_shape
    assert len(show_images(images[:2]).axes) == 2


def test_show_images_rejects_other_channel_counts():
    with pytest.raises(ValueError, match="3, H, W"):
        show_images(torch.rand(2, 4, 6, 6))


def test_plot_predictions_marks_wrong_ones_red():
    data = tiny_data(n_test=9)
    figure = plot_predictions(Constant(), data, n=6, ncols=3)
    assert len(figure.axes) == 6
    titles = [ax.title for ax in figure.axes]
    assert [t.get_color() == "red" for t in titles] == [label != 0 for label in data.test_labels[:6].tolist()]
    assert titles[1].get_text() == "cat\n(true: dog)" and titles[0].get_text() == "cat"
    wrong = plot_predictions(Constant(), data, n=4, only_wrong=True, ncols=4)
    assert len(wrong.axes) == 4 and all(ax.title.get_color() == "red" for ax in wrong.axes)


def test_confusion_matrix():
    data = tiny_data(n_test=12)
    matrix = confusion_matrix(Constant(), data)
    assert matrix.tolist() == [[4, 0, 0], [4, 0, 0], [4, 0, 0]]  # rows: true class; columns: predicted
    figure = plot_confusion_matrix(matrix, data.classes)
    assert len(figure.axes) == 1
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == data.classes
    with pytest.raises(ValueError, match="3x3"):
        plot_confusion_matrix(torch.zeros(2, 2), data.classes)


# ------------------------------------------------------------------ the one image-to-array conversion
def test_as_display_image_layouts_and_ranges():
    chw = torch.rand(3, 4, 5)
    np.testing.assert_allclose(as_display_image(chw), chw.permute(1, 2, 0).numpy())
    np.testing.assert_allclose(as_display_image(chw[None]), chw.permute(1, 2, 0).numpy())  # a batch of one
    assert as_display_image(torch.rand(1, 4, 5)).shape == as_display_image(torch.rand(4, 5)).shape == (4, 5)
    hwc = np.random.default_rng(0).random((4, 5, 3))
    np.testing.assert_allclose(as_display_image(hwc), hwc, rtol=1e-6)  # arrays are already H, W, C
    as_uint8 = np.full((4, 5, 3), 51, dtype=np.uint8)
    np.testing.assert_allclose(as_display_image(as_uint8), 0.2, rtol=1e-6)  # integers: / 255
    np.testing.assert_allclose(as_display_image(torch.full((1, 2, 2), 255, dtype=torch.uint8)), 1.0)
    normalised = torch.tensor([[[-2.0, 0.0], [1.0, 2.0]]])
    np.testing.assert_allclose(as_display_image(normalised), [[0.0, 0.5], [0.75, 1.0]])  # stretched
    for bad in (torch.rand(2, 3, 4, 5), torch.rand(4, 5, 6), np.zeros((4, 5, 2)), torch.rand(5)):
        with pytest.raises(ValueError, match=r"\(3, H, W\)"):
            as_display_image(bad)
