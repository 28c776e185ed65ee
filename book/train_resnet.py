"""Train one of the book's ResNets on one process, or data-parallel on several with torchrun.

    python train_resnet.py --model resnet20 --epochs 2                    # one process
    torchrun --standalone --nproc_per_node=4 train_resnet.py --model resnet56 --epochs 30 --batch-size 512

Every process runs this same file. `lib.training.fit` reads the variables torchrun sets (RANK,
LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and trains data-parallel: one process per GPU, or
gloo processes on the CPU, each on its slice of every batch (see lib/distributed.py). `--batch-size`
is the global batch, shared equally by the processes; the default learning rate follows the linear
scaling rule of Goyal et al. 2017, 0.1 for every 256 images of the global batch. Only rank 0 prints
and writes the checkpoint; `--resume` continues from it, with any number of processes.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import io
import os
import sys

BOOK = os.path.dirname(os.path.abspath(__file__))
if BOOK not in sys.path:  # run from any folder: `lib` lives next to this file
    sys.path.insert(0, BOOK)

import torch  # noqa: E402

import lib  # noqa: E402
from lib import distributed  # noqa: E402

RESNETS = tuple(name for name in lib.MODELS if name.startswith("resnet"))
REFERENCE_BATCH, REFERENCE_LR = 256, 0.1  # Goyal et al. 2017: lr 0.1 for a batch of 256, scaled linearly


def resnet_name(name: str) -> str:
    """The --model argument: one of the ResNet builders of lib.models."""
    if name not in RESNETS:
        raise argparse.ArgumentTypeError(f"unknown ResNet {name!r}; choose one of: {', '.join(RESNETS)}")
    return name


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=os.path.basename(__file__), description=__doc__.split("\n\n")[0],
        epilog="On N GPUs of one machine: torchrun --standalone --nproc_per_node=N train_resnet.py ...",
    )
    parser.add_argument("--model", type=resnet_name, default="resnet20", metavar="NAME",
                        help=f"one of {', '.join(RESNETS)} (default: %(default)s)")
    parser.add_argument("--dataset", choices=lib.data.DATASETS, default="cifar10",
                        help="default: %(default)s; grey images are repeated over three channels")
    parser.add_argument("--offline", action="store_true", help="use the offline stand-in, do not download")
    parser.add_argument("--epochs", type=int, default=2, help="default: %(default)s")
    parser.add_argument("--batch-size", type=int, default=256,
                        help="images per step over all processes, the global batch (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"peak learning rate (default: {REFERENCE_LR} x batch size / {REFERENCE_BATCH})")
    parser.add_argument("--weight-decay", type=float, default=5e-4, help="default: %(default)s")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                        help="random crops (padding 4) and horizontal flips (default: on)")
    parser.add_argument("--max-steps", type=int, default=None, metavar="K", help="at most K steps per epoch")
    parser.add_argument("--checkpoint", default=None, metavar="PATH", help="written by rank 0 after every epoch")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    parser.add_argument("--stop-after", type=int, default=None, metavar="EPOCH",
                        help="stop after this epoch as if interrupted (then continue with --resume)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: the GPUs if there are any)")
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    args = parser.parse_args(argv)
    if args.resume and args.checkpoint is None:
        parser.error("--resume needs --checkpoint PATH (the file to continue from)")
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be positive")
    try:
        args.launch = distributed.launch_from_env()
        args.local_batch = distributed.local_batch_size(args.batch_size, args.launch.world_size)
    except ValueError as error:
        parser.error(str(error))
    return args


def three_channels(data: lib.data.ImageData) -> lib.data.ImageData:
    """The ResNets take colour images: repeat a grey channel three times (mean and std with it)."""
    if data.image_shape[0] == 3:
        return data
    return dataclasses.replace(
        data, train_images=data.train_images.expand(-1, 3, -1, -1),
        test_images=data.test_images.expand(-1, 3, -1, -1), mean=data.mean * 3, std=data.std * 3)


def build_model(name: str, num_classes: int, image_size: int) -> torch.nn.Module:
    """The ResNet `name`; the ImageNet ones get their CIFAR stem (no downsampling) on images under 64 px."""
    options = {"num_classes": num_classes}
    if "stem" in inspect.signature(lib.MODELS[name]).parameters and image_size < 64:  # the ImageNet family
        options["stem"] = "cifar"
    return lib.get_model(name, **options)


def main(argv: list[str] | None = None) -> lib.History:
    args = parse_args(argv)
    launch = args.launch
    say = print if launch.main else lambda *_: None  # rank 0 speaks for all processes
    if launch.distributed:
        device = distributed.device_for(launch, args.device)
        backend = distributed.backend_for(device)
        distributed.init(launch, device)  # fit would do it; joining now lets rank 0 download the data first
    else:
        device = torch.device(args.device) if args.device else lib.get_device()
        backend = ""
    quiet = contextlib.redirect_stdout(io.StringIO()) if not launch.main else contextlib.nullcontext()
    with distributed.main_first(), quiet:
        data = three_channels(lib.load_dataset(args.dataset, offline=True if args.offline else None))
    lr = args.lr if args.lr is not None else REFERENCE_LR * args.batch_size / REFERENCE_BATCH

    torch.manual_seed(args.seed)  # the same initial weights in every process (DDP copies rank 0's anyway)
    model = build_model(args.model, data.num_classes, data.image_shape[-1])
    parameters = lib.count_parameters(model)
    say(f"{model.name}: {parameters:,} parameters; {len(data.train_labels):,} training images of "
        f"{'x'.join(map(str, data.image_shape))}")
    where = lib.device_name(device)
    say(f"world size {launch.world_size}, backend {backend}, each process on {where}" if launch.distributed
        else f"world size 1 (no process group), on {where}")
    rule = "" if args.lr is not None else f" (= {REFERENCE_LR} x {args.batch_size} / {REFERENCE_BATCH})"
    say(f"batch: {args.local_batch} images per process, {args.batch_size} per step; peak lr {lr:g}{rule}")

    history = lib.fit(
        model, data, epochs=args.epochs, batch_size=args.batch_size, lr=lr, weight_decay=args.weight_decay,
        augment=args.augment, device=device, seed=args.seed, max_steps_per_epoch=args.max_steps,
        progress=sys.stdout.isatty(), checkpoint=args.checkpoint, resume=args.resume,
        stop_after=args.stop_after,
    )
    if launch.distributed:
        same = distributed.same_on_all_ranks(model)
        say(f"weights identical in all {launch.world_size} processes: {'yes' if same else 'NO'}")
    trained = len(history.test_acc)
    say(f"test accuracy {history.final_test_acc:.3f} after {trained} of {args.epochs} epochs "
        f"({history.images_per_second:,.0f} images/s)")
    if args.checkpoint is not None:
        say(f"checkpoint: {os.path.basename(args.checkpoint)} (epoch {trained} of {args.epochs})")
    if trained < args.epochs:
        say("stopped as asked (--stop-after): run again with --resume to train the remaining epochs")
    distributed.cleanup()
    return history


if __name__ == "__main__":
    main()
