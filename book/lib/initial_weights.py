"""Which layers of two network variants are the same layer, and copying their weights across.

Two variants of a network (AlexNet with LRN and with BatchNorm, GoogLeNet with and without its
auxiliary heads, a plain and a residual ResNet) share most of their layers. For a fair comparison
those layers must start from the same weights. Seeding both builders alike does not do it: a
builder's random draws follow the order in which it creates its layers, so one inserted layer
changes every later draw. `share_initial_weights` copies the tensors instead, from one variant into
the corresponding modules of another; `corresponding_modules` says which modules correspond.

Example:

    from lib import models
    from lib.initial_weights import share_initial_weights

    lrn, batchnorm = models.alexnet_cifar(norm="lrn"), models.alexnet_cifar(norm="batchnorm")
    for source, target in share_initial_weights(lrn, batchnorm):
        print(source, "->", target)   # features.0 -> features.0, ..., classifier.6 -> classifier.6
"""
from __future__ import annotations

import bisect
import difflib

import torch
from torch import nn

__all__ = ["corresponding_modules", "share_initial_weights"]


def _direct_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters and persistent buffers that `module` itself holds (not its children's)."""
    skip = getattr(module, "_non_persistent_buffers_set", set())
    tensors = dict(module.named_parameters(recurse=False))
    tensors.update((n, b) for n, b in module.named_buffers(recurse=False) if n not in skip)
    return tensors


def _signatures(model: nn.Module) -> dict[str, tuple]:
    """{qualified name: (type, ((tensor name, shape), ...))} for every module holding tensors,
    in the order the modules were assigned in `__init__` (the order of `named_modules`)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    signatures = {}
    for name, module in model.named_modules():
        if tensors := _direct_tensors(module):
            shapes = tuple((n, tuple(t.shape)) for n, t in tensors.items())
            signatures[name] = (type(module), shapes)
    return signatures


def _stable_names(model: nn.Module) -> dict[str, str]:
    """{qualified name: the name with every index into a container replaced by type and rank}.

    "features.18" is an index into an nn.Sequential, and an inserted layer shifts it: VGG-11's last
    convolution is features.18, and so is its third-last in VGG-11 with BatchNorm. Counted among
    its siblings of the same type, each is what it is: "features.Conv2d#7" and "features.Conv2d#5".
    """
    stable = {"": ""}
    for name, module in model.named_modules():
        ranks: dict[str, int] = {}
        for child_name, child in module.named_children():
            part = child_name
            if child_name.isdigit():
                kind = type(child).__name__
                part, ranks[kind] = f"{kind}#{ranks.get(kind, 0)}", ranks.get(kind, 0) + 1
            qualified = f"{name}.{child_name}" if name else child_name
            stable[qualified] = f"{stable[name]}.{part}" if name else part
    return stable


def _increasing(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest subsequence of `pairs` (sorted by first item) whose second items increase."""
    tails: list[int] = []  # tails[k]: the smallest last item of an increasing run of length k + 1
    ends: list[int] = []  # ends[k]: the index in `pairs` of that last item
    previous: list[int] = []  # previous[n]: the item before pairs[n] in its run (-1: none)
    for n, (_, second) in enumerate(pairs):
        k = bisect.bisect_left(tails, second)
        previous.append(ends[k - 1] if k else -1)
        tails[k:k + 1], ends[k:k + 1] = [second], [n]  # replace item k, or append if k == len
    run, n = [], ends[-1] if ends else -1
    while n >= 0:
        run.append(pairs[n])
        n = previous[n]
    return run[::-1]


def _aligned(
    source: dict[str, tuple], target: dict[str, tuple],
    source_keys: dict[str, str | None], target_keys: dict[str, str | None],
) -> list[tuple[str, str]]:
    """Pairs of modules from two {name: signature}: those with the same key and signature, unless
    they cross; between two of these, the modules left over aligned in order by signature."""
    source_names, target_names = list(source), list(target)
    where = {(target_keys[name], sig): j for j, (name, sig) in enumerate(target.items())
             if target_keys[name] is not None}
    anchors = [(i, where[key]) for i, (name, sig) in enumerate(source.items())
               if (key := (source_keys[name], sig)) in where]
    pairs, start = [], (0, 0)
    for i, j in [*_increasing(anchors), (len(source_names), len(target_names))]:
        left, right = source_names[start[0]:i], target_names[start[1]:j]
        matcher = difflib.SequenceMatcher(
            None, [source[n] for n in left], [target[n] for n in right],
            autojunk=False,  # a network repeats the same layer often; that is no noise to skip
        )
        for block in matcher.get_matching_blocks():
            pairs += zip(left[block.a:block.a + block.size], right[block.b:block.b + block.size])
        if i < len(source_names):
            pairs.append((source_names[i], target_names[j]))
        start = (i + 1, j + 1)
    return pairs


def corresponding_modules(source: nn.Module, target: nn.Module) -> list[tuple[str, str]]:
    """Pairs (source name, target name) of the modules that are the same layer in two variants.

    Only modules that hold parameters or buffers themselves count, and two modules can correspond
    only if they have the same type and the same tensor names and shapes. Two pairings are tried:
      1. By name: modules with the same name correspond, where an index into an nn.Sequential or
         nn.ModuleList counts as the child's type and rank among its siblings of that type (the
         third Conv2d of `features` is the third whether or not BatchNorms sit between). Pairs
         that would cross (a before b in one network, after it in the other) are dropped; between
         two pairs, the modules left over are aligned in the order of definition by (type, shapes)
         with difflib.SequenceMatcher: "conv1" of a network written by hand pairs with
         "features.0" of the library's.
      2. By order: the same, with only the names without an index.
    The one that pairs more modules wins, names on a tie. Names pair ResNet-20's layer1.0 with
    layer1.0 of ResNet-56, where order would pick layer1.2 (it starts the longest identical run);
    order pairs all of VGG-11's convolutions with VGG-13's, where names would tie VGG-11's last
    one to VGG-13's eighth, which is in the stage before, and leave two without a partner.

    Args:
        source: one variant.
        target: the other variant.

    Returns:
        The pairs in the order of definition (the same in both networks); the modules of either
        network missing from them have no counterpart in the other.
    """
    source_sigs, target_sigs = _signatures(source), _signatures(target)
    source_names, target_names = _stable_names(source), _stable_names(target)
    by_name = _aligned(source_sigs, target_sigs, source_names, target_names)

    def without_index(names: dict[str, str]) -> dict[str, str | None]:
        return {name: None if "#" in stable else stable for name, stable in names.items()}

    by_order = _aligned(source_sigs, target_sigs, without_index(source_names),
                        without_index(target_names))
    return max(by_name, by_order, key=len)  # max keeps the first of equals


def share_initial_weights(source: nn.Module, target: nn.Module) -> list[tuple[str, str]]:
    """Copy into `target` the tensors of every module of `source` that has a counterpart there.

    The counterparts are those of `corresponding_modules`; parameters and buffers are copied, and
    every other module of `target` keeps its tensors. `Tensor.copy_` does the copying, so the two
    networks may live on different devices.

    Args:
        source: the variant whose weights are copied (e.g. AlexNet with LRN).
        target: the variant that receives them (e.g. AlexNet with BatchNorm: its BatchNorm layers
            have no counterpart and stay as they were built).

    Returns:
        The pairs (source name, target name) copied, to print what the two variants share.
    """
    pairs = corresponding_modules(source, target)
    source_modules, target_modules = dict(source.named_modules()), dict(target.named_modules())
    with torch.no_grad():
        for source_name, target_name in pairs:
            copied = _direct_tensors(source_modules[source_name])
            for name, tensor in _direct_tensors(target_modules[target_name]).items():
                tensor.copy_(copied[name])
    return pairs
