"""lib.initial_weights, lib.experiments and lib.visualize.experiments: corresponding layers and
matched initial weights, comparisons over seeds, tables, verdicts and their plots.

Most tests use hand-made Histories, or a fake `train` that returns them, so that the numbers are
worked out by hand; one test trains two tiny networks with the real `fit` on 192 8x8 images.
"""
from __future__ import annotations

import json
import math

import pytest
import torch
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from torch import nn

from lib.data import ImageData
from lib.experiments import (
    Comparison, compare, matched_models, mean, run_variants, sample_std, value_range,
)
from lib.history import History
from lib.initial_weights import _increasing, corresponding_modules, share_initial_weights
from lib.models import googlenet, resnet20, resnet32, vgg11, vgg11_bn, vgg13
from lib.models.alexnet import NORMS, alexnet_cifar
from lib.visualize import plot_final, plot_runs


def history(test_acc: list[float]) -> History:
    """A History with these test accuracies; training loss 1 - accuracy, the rest filled alike."""
    loss = [1.0 - a for a in test_acc]
    return History(train_loss=loss, train_acc=list(test_acc), test_loss=list(loss),
                   test_acc=list(test_acc))


def comparison_of(finals: dict[str, list[float]]) -> Comparison:
    """Variant v under seed k ends at finals[v][k] (after a first epoch at 0.1)."""
    return Comparison({name: {seed: history([0.1, value]) for seed, value in enumerate(values)}
                       for name, values in finals.items()})


# -------------------------------------------------------------------------------- statistics

def test_statistics_on_hand_worked_numbers():
    assert mean([1, 2, 6]) == 3.0
    assert sample_std([1, 2, 6]) == pytest.approx(math.sqrt(7))  # (4 + 1 + 9) / (3 - 1) = 7
    assert sample_std([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx(math.sqrt(32 / 7))
    assert sample_std([3.0, 3.0]) == 0.0
    assert math.isnan(sample_std([0.7]))  # one value has no spread, and must not look precise
    assert value_range([0.3, -1.0, 2.5]) == (-1.0, 2.5)
    for function in (mean, sample_std, value_range):
        with pytest.raises(ValueError, match="at least one value"):
            function([])


# --------------------------------------------------------------------- corresponding modules

def plain_stack() -> nn.Sequential:
    # convolutions at indices 0, 2, 4, 6
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(),
                         nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3))


def batchnorm_stack() -> nn.Sequential:
    # the same convolutions at 0, 3, 6, 9: index 6 is the third here, the fourth in plain_stack
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3),
    )


def test_inserted_layers_shift_indices_but_convolutions_pair_in_order():
    torch.manual_seed(0)
    source, target = plain_stack(), batchnorm_stack()
    with torch.no_grad():
        target[1].weight.fill_(0.5)  # BatchNorms have no counterpart: recognisable values
        target[4].bias.fill_(-2.0)
    pairs = share_initial_weights(source, target)
    assert pairs == [("0", "0"), ("2", "3"), ("4", "6"), ("6", "9")]  # not ("6", "6")
    for s, t in pairs:
        assert torch.equal(source[int(s)].weight, target[int(t)].weight)
        assert torch.equal(source[int(s)].bias, target[int(t)].bias)
    assert torch.all(target[1].weight == 0.5) and torch.all(target[4].bias == -2.0)


class TwoHeads(nn.Module):
    """An auxiliary head defined before the main one, with its shape (as GoogLeNet's aux fc2)."""

    def __init__(self, aux: bool) -> None:
        super().__init__()
        self.body = nn.Linear(4, 8)
        self.aux = nn.Linear(8, 3) if aux else None
        self.fc = nn.Linear(8, 3)


def test_names_come_before_order():
    with_aux, without = TwoHeads(aux=True), TwoHeads(aux=False)
    # by order alone, "aux" would take the place of "fc"
    assert corresponding_modules(with_aux, without) == [("body", "body"), ("fc", "fc")]
    assert corresponding_modules(without, with_aux) == [("body", "body"), ("fc", "fc")]
    share_initial_weights(with_aux, without)
    assert torch.equal(without.fc.weight, with_aux.fc.weight)
    assert not torch.equal(without.fc.weight, with_aux.aux.weight)


def test_buffers_are_copied_and_shapes_must_match():
    source = nn.Sequential(nn.BatchNorm1d(4))
    target = nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 4))
    source[0].running_mean.fill_(3.0)
    source[0].num_batches_tracked.fill_(7)
    assert share_initial_weights(source, target) == [("0", "0")]
    assert torch.all(target[0].running_mean == 3.0)
    assert target[0].num_batches_tracked.item() == 7
    assert share_initial_weights(nn.Linear(4, 5), nn.Linear(5, 4)) == []  # no shape in common
    with pytest.raises(TypeError, match="nn.Module"):
        share_initial_weights(nn.Linear(2, 2), {"weight": torch.zeros(2, 2)})


def conv_names(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def test_vgg_with_batchnorm_pairs_every_convolution_in_order():
    plain = vgg11(num_classes=10, classifier="cifar")
    batchnorm = vgg11_bn(num_classes=10, classifier="cifar")
    pairs = corresponding_modules(plain, batchnorm)
    assert [pair for pair in pairs if pair[0] in conv_names(plain)] == list(
        zip(conv_names(plain), conv_names(batchnorm)))
    assert ("classifier.0", "classifier.0") in pairs


def test_deeper_networks_pair_by_name_or_by_order_whichever_pairs_more():
    # ResNet: by name, so block layer1.0 of ResNet-20 is layer1.0 of ResNet-32 (by order alone the
    # three blocks of stage 1 would pair with the last three of ResNet-32's five)
    shallow, deep = resnet20(), resnet32()
    pairs = corresponding_modules(shallow, deep)
    assert len(pairs) == 39 and all(s == t for s, t in pairs)
    # VGG: by order, so all convolutions of VGG-11 find a partner, in order
    shallow = vgg11(num_classes=10, classifier="cifar")
    deep = vgg13(num_classes=10, classifier="cifar")
    pairs = dict(corresponding_modules(shallow, deep))
    partners = [conv_names(deep).index(pairs[name]) for name in conv_names(shallow)]
    assert partners == sorted(partners) and len(set(partners)) == 8


class Scratch(nn.Module):
    """Written by hand with its own names, the layers of `library()` in the same order."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2, self.fc = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3), nn.Linear(16, 2)


def library() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(16, 2))


def test_differently_named_layers_pair_in_order():
    assert corresponding_modules(Scratch(), library()) == [("conv1", "0"), ("conv2", "2"),
                                                           ("fc", "5")]


class Ordered(nn.Module):
    def __init__(self, a_first: bool) -> None:
        super().__init__()
        for name in ("a", "b") if a_first else ("b", "a"):
            self.add_module(name, nn.Linear(2, 2))


def test_pairs_keep_the_order_of_both_networks():
    # "a" before "b" in one network, after it in the other: only one of the two can be kept
    pairs = corresponding_modules(Ordered(a_first=True), Ordered(a_first=False))
    assert len(pairs) == 1 and pairs[0][0] == pairs[0][1]


def test_the_longest_increasing_subsequence():
    assert _increasing([(0, 3), (1, 1), (2, 2), (3, 0), (4, 4)]) == [(1, 1), (2, 2), (4, 4)]
    assert _increasing([(0, 2), (1, 1), (2, 0)]) in ([(0, 2)], [(1, 1)], [(2, 0)])
    assert _increasing([]) == []


# ---------------------------------------------------------------------------- matched models

def googlenet_builders() -> dict:
    kwargs = dict(variant="paper", num_classes=10, stem="cifar", width=0.25)
    return {"heads": lambda: googlenet(aux_logits=True, **kwargs),
            "no heads": lambda: googlenet(aux_logits=False, **kwargs)}


@pytest.mark.parametrize("reference", ["heads", "no heads"])
def test_googlenet_with_and_without_heads_share_every_trunk_tensor(reference):
    models = matched_models(googlenet_builders(), seed=3, reference=reference)
    heads, trunk_only = models["heads"].state_dict(), models["no heads"].state_dict()
    assert len(heads) > len(trunk_only) > 50
    for name, tensor in trunk_only.items():
        assert torch.equal(tensor, heads[name]), name
    assert any(name.startswith("aux1.") for name in heads)


def test_matched_models_depend_on_the_seed_and_repeat_under_it():
    first, again, other = (matched_models(googlenet_builders(), seed)["no heads"]
                           for seed in (0, 0, 1))
    assert torch.equal(first.fc.weight, again.fc.weight)
    assert not torch.equal(first.fc.weight, other.fc.weight)


def test_alexnet_normalisations_share_every_convolution_and_linear_layer():
    builders = {norm: (lambda norm=norm: alexnet_cifar(norm=norm)) for norm in NORMS}
    models = matched_models(builders, seed=1)
    reference = dict(models[NORMS[0]].named_modules())
    layers = [name for name, m in reference.items() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 8  # conv1-5, fc6-8
    for norm, model in models.items():
        modules = dict(model.named_modules())
        for name in layers:
            assert torch.equal(modules[name].weight, reference[name].weight), (norm, name)
            assert torch.equal(modules[name].bias, reference[name].bias), (norm, name)
    # variants without tensors of their own are the reference, tensor for tensor
    reference_state = models[NORMS[0]].state_dict()
    for norm in ("none", "lrn"):
        state = models[norm].state_dict()
        assert all(torch.equal(tensor, reference_state[key]) for key, tensor in state.items())


def test_matched_models_rejects_bad_input():
    with pytest.raises(ValueError, match="did you mean 'heads'"):
        matched_models(googlenet_builders(), 0, reference="head")
    with pytest.raises(TypeError, match="returned int"):
        matched_models({"a": lambda: 3}, 0)
    with pytest.raises(ValueError, match="one or more"):
        matched_models({}, 0)


# ----------------------------------------------------------------------------------- running

class Tiny(nn.Module):
    def __init__(self, wide: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.extra = nn.Linear(3, 3) if wide else None


def test_compare_trains_every_variant_and_seed_from_matched_weights(capsys):
    calls = []

    def fake_fit(model, data, *, seed, progress, verbose, epochs):
        wide = model.extra is not None
        calls.append((wide, seed, model.conv.weight.detach().clone(), progress, verbose))
        return history([0.2, 0.5 + 0.1 * seed + (0.05 if wide else 0.0)])

    result = compare({"wide": lambda: Tiny(True), "narrow": lambda: Tiny(False)}, "data",
                     seeds=(0, 2), train=fake_fit, epochs=4)
    assert [call[:2] for call in calls] == [(True, 0), (False, 0), (True, 2), (False, 2)]
    assert all(progress is False and verbose is False for *_, progress, verbose in calls)
    assert torch.equal(calls[0][2], calls[1][2]) and torch.equal(calls[2][2], calls[3][2])
    assert not torch.equal(calls[0][2], calls[2][2])
    assert result.final() == {"wide": {0: pytest.approx(0.55), 2: pytest.approx(0.75)},
                              "narrow": {0: pytest.approx(0.5), 2: pytest.approx(0.7)}}
    assert result.settings == {"seeds": [0, 2], "reference": "wide", "epochs": 4}
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[1].startswith("narrow  seed 0  test acc 0.500")
    with pytest.raises(TypeError, match="seeds="):
        compare({"a": lambda: Tiny(True)}, "data", train=fake_fit, seed=1)


def test_run_variants_takes_any_training_function():
    result = run_variants(["warm-up", "none"], lambda name, seed: history([0.3 + seed / 10]),
                          seeds=[1, 2], verbose=False)
    assert result.variants == ["warm-up", "none"] and result.seeds == [1, 2]
    assert result.final()["none"] == {1: pytest.approx(0.4), 2: pytest.approx(0.5)}
    with pytest.raises(TypeError, match="expected a History"):
        run_variants(["a"], lambda name, seed: 0.5, verbose=False)
    with pytest.raises(ValueError, match="distinct seeds"):
        run_variants(["a"], lambda name, seed: history([0.5]), seeds=[1, 1])
    with pytest.raises(TypeError, match="seeds must all be of type int"):
        run_variants(["a"], lambda name, seed: history([0.5]), seeds=["0"])


def tiny_data(n: int = 192, seed: int = 0) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    patterns = torch.rand(2, 1, 8, 8, generator=g)
    labels = torch.arange(n) % 2
    images = 0.7 * patterns[labels] + 0.3 * torch.rand(n, 1, 8, 8, generator=g)
    return ImageData(name="patterns", source="test", classes=["a", "b"],
                     train_images=images[:128], train_labels=labels[:128],
                     test_images=images[128:], test_labels=labels[128:],
                     mean=(0.5,), std=(0.3,), offline=True)


def test_compare_with_fit_is_reproducible():
    builders = {
        "batchnorm": lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                                           nn.Flatten(), nn.Linear(144, 2)),
        "plain": lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
                                       nn.Linear(144, 2)),
    }
    runs = [compare(builders, tiny_data(), seeds=(0, 1), epochs=2, batch_size=32, device="cpu",
                    verbose=False) for _ in range(2)]
    assert runs[0].final("train_loss") == runs[1].final("train_loss")
    assert len(runs[0].histories["plain"][1].test_acc) == 2


# ----------------------------------------------------------------------------------- results

def test_table_shows_each_seed_mean_sd_and_range():
    result = comparison_of({"LRN": [0.5, 0.6, 0.7], "none": [0.52, 0.52, 0.55]})
    lines = result.table("test_acc").splitlines()
    assert lines[0] == "final test accuracy over seeds 0, 1, 2"
    assert lines[1].split() == ["variant", "seed", "0", "seed", "1", "seed", "2",
                                "mean", "sd", "min–max"]
    assert lines[2].split() == ["LRN", "0.500", "0.600", "0.700",
                                "0.600", "0.100", "0.500–0.700"]
    assert lines[3].split() == ["none", "0.520", "0.520", "0.550",
                                "0.530", "0.017", "0.520–0.550"]
    assert result.table(digits=2).splitlines()[2].split()[-1] == "0.50–0.70"


def test_table_fits_100_characters_with_many_seeds_and_long_names():
    result = comparison_of({"AlexNet with local response normalisation": [0.5] * 12,
                            "none": [0.4] * 12})
    lines = result.table().splitlines()
    assert max(map(len, lines)) <= 100
    assert "seed 0" not in lines[1] and "12 seeds" in lines[0]  # per-seed columns left out
    assert lines[2].split()[-3:] == ["0.500", "0.000", "0.500–0.500"]
    assert lines[2].startswith("AlexNet with local resp…")


def test_summary_final_and_metrics():
    result = comparison_of({"a": [0.5, 0.6, 0.7]})
    assert result.summary()["a"] == pytest.approx(
        {"mean": 0.6, "std": 0.1, "min": 0.5, "max": 0.7})
    assert result.final("train_loss")["a"] == pytest.approx({0: 0.5, 1: 0.4, 2: 0.3})
    gain = result.final(lambda h: max(h.test_acc) - h.test_acc[0])
    assert gain["a"] == pytest.approx({0: 0.4, 1: 0.5, 2: 0.6})
    with pytest.raises(ValueError, match="did you mean 'test_acc'"):
        result.final("test_accuracy")
    assert repr(result) == "Comparison(1 variants x 3 seeds: a)"


def test_paired_difference_and_verdict_both_ways():
    result = comparison_of({"LRN": [0.55, 0.66, 0.74], "none": [0.50, 0.60, 0.70],
                            "mixed": [0.50, 0.69, 0.73], "small": [0.54, 0.64, 0.65]})
    d = result.paired_difference("LRN", "none")
    assert d.differences == pytest.approx({0: 0.05, 1: 0.06, 2: 0.04})
    assert (d.mean, d.std, d.low, d.high) == pytest.approx((0.05, 0.01, 0.04, 0.06))
    assert d.same_sign and d.exceeds_spread
    assert result.verdict("LRN", "none") == (
        "LRN vs none: +0.050 final test accuracy (mean of 3 paired seeds, sd 0.010, "
        "all the same sign): the difference exceeds the spread")
    # +0.05, -0.03, +0.01: the seeds disagree in sign
    assert result.verdict("LRN", "mixed").endswith("this budget cannot tell (the seeds disagree)")
    # +0.01, +0.02, +0.09: all positive, but the mean 0.04 is below the sd 0.044
    assert not result.paired_difference("LRN", "small").exceeds_spread
    assert result.verdict("LRN", "small").endswith(
        "this budget cannot tell (the difference is within the spread)")
    one_seed = comparison_of({"a": [0.9], "b": [0.1]})
    assert one_seed.verdict("a", "b").endswith("cannot tell (one seed has no spread)")
    with pytest.raises(ValueError, match="unknown variant 'lrn'"):
        result.verdict("lrn", "none")


def test_every_variant_needs_the_same_seeds():
    with pytest.raises(ValueError, match="same seeds"):
        Comparison({"a": {0: history([0.5]), 1: history([0.5])}, "b": {0: history([0.5])}})


def test_to_dict_stores_as_json_and_loads_back():
    result = comparison_of({"a": [0.5, 0.6], "b": [0.4, 0.3]})
    result.settings = {"epochs": 3}
    loaded = Comparison.from_dict(json.loads(json.dumps(result.to_dict())))
    assert loaded.settings == {"epochs": 3} and loaded.seeds == [0, 1]
    assert loaded.final() == result.final()
    assert loaded.histories["b"][1] == result.histories["b"][1]


# ------------------------------------------------------------------------------------- plots

def test_plot_runs_draws_the_mean_and_a_min_max_band_per_variant():
    result = Comparison({"a": {0: history([0.2, 0.4, 0.6]), 1: history([0.4, 0.6, 0.7])},
                         "b": {0: history([0.1, 0.2, 0.3]), 1: history([0.3, 0.2, 0.5])}})
    fig = plot_runs(result, "test_acc")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2
    vertices = bands[0].get_paths()[0].vertices
    assert (vertices[:, 1].min(), vertices[:, 1].max()) == pytest.approx((0.2, 0.7))
    assert list(ax.lines[0].get_ydata()) == pytest.approx([0.3, 0.5, 0.65])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    assert ax.get_legend().get_bbox_to_anchor().x0 > ax.get_window_extent().x1  # right of axes
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "test accuracy"
    one = plot_runs(result, "train_loss", variants=["b"]).axes[0]
    assert len([c for c in one.collections if isinstance(c, PolyCollection)]) == 1
    with pytest.raises(ValueError, match="unknown metric"):
        plot_runs(result, "accuracy")


def test_plot_final_has_one_dot_per_seed_and_a_mean_per_variant():
    result = comparison_of({"a": [0.5, 0.6, 0.7], "b": [0.2, 0.3, 0.4]})
    fig = plot_final(result)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    dots = [c for c in ax.collections if len(c.get_offsets()) == 3]
    assert [sorted(c.get_offsets()[:, 1]) for c in dots] == [pytest.approx([0.5, 0.6, 0.7]),
                                                              pytest.approx([0.2, 0.3, 0.4])]
    means = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert [seg[0][1] for c in means for seg in c.get_segments()] == pytest.approx([0.6, 0.3])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
