"""Which config keys each stage reads: a changed stage-3 key must not invalidate a finished stage 2.

The workflow (Snakemake params, DVC params) uses the same split, so both rerun exactly what changed.
"""

from pathlib import Path

import yaml

from vrl3.errors import UserError
from vrl3.tasks import DEFAULT_SHADOW_SIZE

# one run's keys: the workflow sets them for every run it plans (plan.Run.overrides), each with how to set many
RUN_KEYS = {"task": "set tasks='[...]'", "seed": "set seeds='[...]'", "variant": "set run_variants='[...]'",
            "demos": "the workflow sets it for each run (from demo_source)",
            "run_dir": "the workflow sets it for each run (under results_dir)",
            "stage1_checkpoint": "the workflow sets it from the stage1 section (stage1.source, stage1.mirror)"}
# keys that describe the workflow, not a run's behaviour
# (a variant's name and the variants section are labels: a variant's overrides reach the stages as the keys they set)
WORKFLOW_KEYS = {"tasks", "seeds", "results_dir", "data_dir", "demo_source", "stage1", "task_overrides",
                 "resources", "slurm", "run_dir", "device", "replay_device", "checkpoint_every_frames", "variant",
                 "variants", "run_variants"}
# where a run's inputs lie, not what they hold: a run checks its demos' content on resume (the checkpoints record
# a digest of them) and the workflow's stamps hash both, so a moved data_dir resumes. Records made while these were
# stage params still hold them: `without_input_paths` drops them before any comparison.
INPUT_PATH_KEYS = {"demos", "stage1_checkpoint"}
STAGE3_ONLY_KEYS = {"num_train_frames", "eval_every_frames", "num_eval_episodes", "train_log_every_steps", "num_envs"}
# keys added after runs existed, with the value that reproduces what those runs did: at that value a key is left out
# of a stage's params, so the stages (their params.yaml and workflow stamps) made before it existed stay current
ADDED_KEYS = {"shadow_size": DEFAULT_SHADOW_SIZE}
STAGE3_ONLY_AGENT_KEYS = {"update_every_steps", "std0", "std1", "std_n_decay", "stage3_update_encoder",
                          "stage3_conservative", "stage3_bc_lam0", "stage3_bc_lam1", "num_expl_steps"}


def stage2_params(cfg: dict) -> dict:
    """The part of a resolved config that stage 2's result depends on."""
    params = {k: v for k, v in _run_keys(cfg).items() if k not in STAGE3_ONLY_KEYS | {"agent"}}
    params["agent"] = {k: v for k, v in cfg["agent"].items() if k not in STAGE3_ONLY_AGENT_KEYS}
    return params


def stage3_params(cfg: dict) -> dict:
    """The part of a resolved config that stage 3's result depends on (stage 2's, plus its own)."""
    params = _run_keys(cfg)
    params["agent"] = dict(cfg["agent"])
    return params


def _run_keys(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in WORKFLOW_KEYS | INPUT_PATH_KEYS
            and (k not in ADDED_KEYS or v != ADDED_KEYS[k])}


def without_input_paths(recorded: dict) -> dict:
    """Stage params as recorded (params.yaml, a checkpoint, a workflow stamp), less the input paths older records
    hold."""
    return {k: v for k, v in recorded.items() if k not in INPUT_PATH_KEYS}


def flatten(config: dict, prefix: str = "") -> dict[str, object]:
    """Dotted leaf keys (agent.lr) and their values; an empty section counts as a leaf."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[prefix + str(key)] = value
    return flat


def changed_keys(before: dict, now: dict) -> list[str]:
    """The dotted keys whose values differ (or that only one of the two has)."""
    old, new = flatten(before), flatten(now)
    return sorted(key for key in old.keys() | new.keys() if key not in old or key not in new or old[key] != new[key])


def check_checkpoint_params(folder: Path, saved: dict | None, params: dict) -> None:
    """Refuse a checkpoint made with other values, e.g. a folder copied from another run without its params.yaml
    (checkpoints written before they carried their params have None)."""
    changed = [] if saved is None else changed_keys(without_input_paths(saved), params)
    if changed:
        raise UserError(f"the checkpoint in {folder} was made with other values of {', '.join(changed)}: it belongs to "
                        f"another run; use a new run_dir, or move {folder} away to start that stage over")


def read_params(path: Path) -> dict:
    """A stage's params.yaml; one line naming it when it is damaged."""
    try:
        recorded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        recorded = None
    if not isinstance(recorded, dict):
        raise UserError(f"{path} is damaged (not the mapping of values vrl3 train wrote): restore it from a copy, or "
                        f"start over in a new run_dir")
    return recorded


def check_params(path: Path, params: dict) -> None:
    """Refuse to resume a stage whose params.yaml (written when it started) holds other values."""
    if path.exists():
        changed = changed_keys(without_input_paths(read_params(path)), params)
        if changed:
            redo = ("stage 3 on the finished stage 2 with `vrl3 run-stage --stage 3`" if path.parent.name != "stage2"
                    else "both stages with `vrl3 run-stage --stage 2`, then `--stage 3`")
            raise UserError(f"{path.parent} was started with other values of {', '.join(changed)}: use a new run_dir, "
                            f"or redo {redo} and the same arguments (earlier logs and checkpoints are moved to "
                            f"run_dir/superseded/)")
