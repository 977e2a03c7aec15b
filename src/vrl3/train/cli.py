"""`vrl3 train --config FILE [key=value ...]`."""

import argparse

from vrl3.train.config import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config (overlays config/config.yaml)")
    parser.add_argument("--stage", choices=["2", "3", "all"], default="all",
                        help="stop after this stage (the workflow runs one rule per stage); default: all")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="dotlist overrides, e.g. task=door seed=2 demos=DIR run_dir=DIR agent.lr=3e-4")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    from vrl3.train.workspace import Workspace  # heavy imports only once the config is known to be good

    Workspace(cfg).run(until_stage=None if args.stage == "all" else int(args.stage))
    return 0
