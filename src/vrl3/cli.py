"""The `vrl3` command: one subcommand per workflow step."""

import argparse
import importlib
import signal
import sys
import threading

from vrl3.errors import UserError

# subcommand -> module with add_arguments(parser) and run(args); imported lazily so `vrl3 --help` is fast
SUBCOMMANDS = {
    "demos": ("vrl3.demos.cli", "get human/expert/minari demonstrations and re-render them to pixels"),
    "train": ("vrl3.train.cli", "run the stages a run still lacks (stage 2, then stage 3)"),
    "pretrain": ("vrl3.stage1.cli", "stage 1: pretrain a ResNet84 encoder on an ImageFolder"),
    "encoder": ("vrl3.stage1.encoder_cli", "stage 1: get the authors' pretrained encoder (Google Drive or a mirror)"),
    "run-stage": ("vrl3.pipeline.run_stage_cli", "workflow step: `vrl3 train --stage N`, resuming or starting over"),
    "dvc-config": ("vrl3.pipeline.dvc_cli", "write params.yaml and dvc.yaml (the DVC pipeline) from the config"),
    "report": ("vrl3.report.cli", "aggregate eval.csv logs into figures and tables"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, import just that subcommand's module (the others would cost seconds)."""
    parser = argparse.ArgumentParser(prog="vrl3", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(run=module.run)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (a SLURM time limit, scancel, Snakemake stopping its jobs), raised like Ctrl-C: the same cleanups
    run (temp folders and partial files removed; checkpoints are written atomically, so none is half-written)."""


def _raise_terminated(signum, frame):
    raise Terminated()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=chosen if chosen in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        return args.run(args) or 0
    except UserError as error:
        print(f"vrl3 {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a path given (or made from one) that cannot be read or written
        print(f"vrl3 {args.command}: error: {error}: check that path and its permissions", file=sys.stderr)
        return 2
    except Terminated:
        print(f"vrl3 {args.command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"vrl3 {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
