"""`vrl3 encoder --source {fetch,mirror} --arch NAME [--mirror DIR] --out FILE`: the authors' stage-1 encoder."""

import argparse

from vrl3.agent.encoder import RESNET84_NAMES
from vrl3.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", choices=["fetch", "mirror"], required=True,
                        help="fetch: the authors' Google Drive folder (needs network); mirror: copy from --mirror")
    parser.add_argument("--arch", default="resnet6_32channel", help=f"one of {', '.join(RESNET84_NAMES)}")
    parser.add_argument("--mirror", help="folder holding <arch>_checkpoint.pth.tar (with --source mirror)")
    parser.add_argument("--out", required=True, help="where the checkpoint goes, e.g. "
                                                     "data/stage1/resnet6_32channel_checkpoint.pth.tar")


def run(args: argparse.Namespace) -> int:
    from vrl3.stage1.fetch import get_encoder

    if args.arch not in RESNET84_NAMES:
        raise UserError(f"--arch {args.arch!r}: choose one of {', '.join(RESNET84_NAMES)}")
    record = get_encoder(args.arch, args.source, args.out, args.mirror)
    print(f"vrl3 encoder: {args.out} from {record.origin} (sha256 {record.sha256}"
          f"{'' if record.pinned else ', unpinned'})")
    return 0
