"""`vrl3 run-stage --stage {2,3} --config FILE key=value ...`: one workflow stage of one run.

`vrl3 train --stage N` plus the bookkeeping Snakemake and DVC need: resume when the stage was interrupted, start
it over when its parameters or inputs changed (see vrl3.pipeline.stage_state), and write a small metrics JSON
when the stage is done. The metrics file is the stage's declared workflow output; the checkpoints and logs that a
resume needs are never declared as outputs, so no tool deletes them before a rerun.
"""

import argparse
import sys
from pathlib import Path

from vrl3.pipeline.metrics import stage2_metrics, stage3_metrics, write_json
from vrl3.pipeline.stage_state import prepare_stage
from vrl3.train.config import load_config  # the loader `vrl3 train` uses

MESSAGES = {"resume": "resuming (same parameters and inputs as when it started)",
            "start": "starting",
            "restart": "parameters or inputs changed since it started: starting over (its earlier logs, params and "
                       "checkpoints were moved to run_dir/superseded/<time>/)"}


def metrics_path(run_dir: str | Path, stage: int) -> Path:
    return Path(run_dir) / ("stage2" if stage == 2 else "") / "metrics.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", type=int, choices=[2, 3], required=True,
                        help="2: stage 2 only; 3: stage 3 (runs stage 2 first when it is not finished)")
    parser.add_argument("--config", required=True, help="YAML config (overlays config/config.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="as for `vrl3 train`, e.g. task=door seed=1 demos=DIR run_dir=DIR stage1_checkpoint=null")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    from vrl3.train.workspace import Workspace  # heavy imports only once the config is known to be good

    def prepare_run_dir() -> None:  # only once the inputs are checked: bad input leaves run_dir as it was
        action = prepare_stage(cfg, args.stage)
        print(f"vrl3 run-stage: stage {args.stage} of {cfg['run_dir']}: {MESSAGES[action]}", file=sys.stderr)

    Workspace(cfg, prepare_run_dir).run(until_stage=args.stage)
    metrics = stage2_metrics(cfg["run_dir"]) if args.stage == 2 else stage3_metrics(cfg["run_dir"])
    write_json(metrics, metrics_path(cfg["run_dir"], args.stage))
    return 0
