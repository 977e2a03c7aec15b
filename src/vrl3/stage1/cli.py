"""`vrl3 pretrain`: stage-1 ResNet84 pretraining on an ImageFolder (train/ and val/)."""

import argparse
import math
from pathlib import Path

from vrl3.agent.encoder import RESNET84_NAMES
from vrl3.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="ImageFolder root holding train/ and val/")
    parser.add_argument("--arch", default="resnet6_32channel", help=f"one of {', '.join(RESNET84_NAMES)}")
    parser.add_argument("--epochs", type=int, default=90)
    parser.add_argument("--batch-size", type=int, default=256, help="total over all processes")
    parser.add_argument("--lr", type=float, default=0.1, help="initial SGD learning rate (x0.1 every 30 epochs)")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    parser.add_argument("--weight-decay", "--wd", type=float, default=1e-4, help="SGD weight decay (all parameters)")
    parser.add_argument("--workers", type=int, default=4, help="data-loading workers per process")
    parser.add_argument("--out", type=Path, default=Path("."), help="where <arch>_checkpoint.pth.tar goes")
    parser.add_argument("--publish", type=Path, help="once all --epochs are done, copy the checkpoint to this file "
                        "(after a strict load check, atomically): the file a workflow waits for")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--print-every", type=int, default=10, help="iterations between progress lines")


def run(args: argparse.Namespace) -> int:
    from vrl3.stage1.pretrain import PretrainSettings, pretrain

    if args.arch not in RESNET84_NAMES:
        raise UserError(f"--arch {args.arch!r}: choose one of {', '.join(RESNET84_NAMES)}")
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be positive")
    for name in ("workers", "print_every", "lr", "momentum", "weight_decay", "seed"):
        value = getattr(args, name)
        if not 0 <= value < math.inf:  # also NaN, which fails every comparison
            raise UserError(f"--{name.replace('_', '-')} {value} must be a finite number >= 0")
    pretrain(PretrainSettings(data=args.data, arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
                              lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                              workers=args.workers, out=args.out, seed=args.seed, print_every=args.print_every,
                              publish=args.publish))
    return 0
