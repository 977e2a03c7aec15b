"""Resume a stage, or start it over: the workflow's half of "rerun exactly what changed".

`vrl3 train` resumes from its last checkpoint and refuses a run dir started with other values. Snakemake and DVC
rerun a stage both after an interruption (resume wanted) and after its parameters or inputs changed (a fresh
start wanted). A stamp written when a stage starts tells the two apart: same stamp -> resume; other stamp -> set
that stage's state (and, for stage 2, stage 3's, which was built on it) aside and start over. Nothing is deleted
but the saved stage-3 episodes: logs, params and checkpoints move to run_dir/superseded/<UTC time>/. A run that
`vrl3 train` made without the workflow (no stamp) is adopted and resumed when its params.yaml matches.
"""

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import yaml

from vrl3.checksum import update_with_arrays
from vrl3.errors import UserError, first_line
from vrl3.paths import set_aside_name, write_text_atomic
from vrl3.pipeline.plan import canonical
from vrl3.train.stage_keys import stage2_params, stage3_params, without_input_paths

STAMP = "workflow_stamp.json"
SUPERSEDED = "superseded"  # below run_dir: the state of stages that started over (`vrl3 report` skips it)
RESUME_ONLY = ("episodes",)  # stage 3's saved episodes: read only to resume, and up to tens of GB, so not kept
# what stage 3 writes beside stage2/ (see vrl3.train.workspace); removed when stage 3 starts over
# (config.yaml, the resolved config of the latest start of either stage, is rewritten, not removed)
STAGE3_STATE = ("checkpoints", "episodes", "eval.csv", "train.csv", "params.yaml", "metrics.json", STAMP)
IGNORED_INPUT_FILES = {".snakemake_timestamp"}  # Snakemake's marker in directory outputs


def _digest_npz(path: Path, digest) -> None:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            update_with_arrays(digest, ((name, arrays[name]) for name in sorted(arrays.files)))
    except (zipfile.BadZipFile, ValueError, EOFError) as error:
        raise UserError(f"{path} is unreadable or incomplete ({first_line(error)}): re-create the folder that holds "
                        f"it") from None


def content_digest(path: str | Path | None) -> str | None:
    """sha256 over a file or a folder's files (names and contents); None for None."""
    if path is None:
        return None
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*")
                                                 if p.is_file() and p.name not in IGNORED_INPUT_FILES)
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else file.name).encode())
        if file.suffix == ".npz":
            _digest_npz(file, digest)
        else:
            digest.update(file.read_bytes())
    return digest.hexdigest()


def stage2_stamp(cfg: dict) -> dict:
    return {"params": canonical(stage2_params(cfg)), "demos": content_digest(cfg["demos"]),
            "stage1_checkpoint": content_digest(cfg["stage1_checkpoint"])}


def stage3_stamp(cfg: dict) -> dict:
    stage2 = Path(cfg["run_dir"]) / "stage2" / STAMP
    return {"params": canonical(stage3_params(cfg)),
            "stage2": hashlib.sha256(stage2.read_bytes()).hexdigest() if stage2.exists() else None}


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _read_stamp(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        stamp = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:  # bad JSON or bytes that are not text
        stamp = None
    if not isinstance(stamp, dict):
        raise UserError(f"{path} is damaged: delete it (the run is then adopted as one made by `vrl3 train`, resumed "
                        f"when its params.yaml matches and set aside otherwise), or start over in a new run_dir")
    return stamp


def _holds_something(path: Path) -> bool:
    # Snakemake creates the (empty) folders of a job's outputs before the job starts
    return path.is_file() or (path.is_dir() and any(p.is_file() for p in path.rglob("*")))


def _write_stamp(path: Path, stamp: dict) -> None:
    write_text_atomic(path, json.dumps(stamp, indent=1, sort_keys=True) + "\n")


def _params_match(path: Path, params: dict) -> bool:
    try:
        return path.is_file() and canonical(without_input_paths(yaml.safe_load(path.read_text()))) == canonical(params)
    except (yaml.YAMLError, TypeError, ValueError, AttributeError):
        return False


def _same_stamp(recorded: dict | None, stamp: dict) -> bool:
    """A stamp written while the input paths were stage params matches when all else does (it is not rewritten:
    stage 3's stamp holds the hash of stage 2's file)."""
    if recorded is None or recorded.keys() != stamp.keys():
        return False
    try:
        params = canonical(without_input_paths(json.loads(recorded["params"])))
    except (TypeError, ValueError, AttributeError):
        return False
    return {**recorded, "params": params} == stamp


def set_aside(paths: list[Path], run_dir: Path) -> Path:
    """Move `paths` (inside run_dir) to run_dir/superseded/<UTC time>/, same layout; saved episodes are deleted."""
    kept = set_aside_name(run_dir / SUPERSEDED)
    for path in paths:
        if not path.exists():
            continue
        if path.parent == run_dir and path.name in RESUME_ONLY:
            _remove(path)
            continue
        target = kept / path.relative_to(run_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
    return kept


def prepare_stage(cfg: dict, stage: int) -> str:
    """Make run_dir ready for `stage`; returns "resume", "start" (nothing there) or "restart" (stale state set aside
    in run_dir/superseded/)."""
    run_dir = Path(cfg["run_dir"])
    stage3_state = [run_dir / name for name in STAGE3_STATE]
    stage_dir = run_dir / "stage2" if stage == 2 else run_dir
    stamp_path, params_path = stage_dir / STAMP, stage_dir / "params.yaml"
    if stage == 2:
        stamp, params, state = stage2_stamp(cfg), stage2_params(cfg), [stage_dir, *stage3_state]
    else:
        stamp, params, state = stage3_stamp(cfg), stage3_params(cfg), stage3_state
    stale = []
    if _same_stamp(_read_stamp(stamp_path), stamp):
        action = "resume"
    elif not stamp_path.exists() and _params_match(params_path, params):
        action = "resume"  # made by `vrl3 train` with these values: adopt it (its inputs were not recorded)
        _write_stamp(stamp_path, stamp)
    else:
        stale = [path for path in state if _holds_something(path)]
        action = "restart" if stale else "start"
    stage3_recorded = _read_stamp(run_dir / STAMP)
    if stage == 2 and stage3_recorded is not None and not _same_stamp(stage3_recorded, stage3_stamp(cfg)):
        # stage 3's state was made with other stage-3 values (`vrl3 train` refuses to load a run dir whose
        # params.yaml disagrees, even for stage 2); stage 3 reruns after this job and would start over anyway
        stale += [path for path in stage3_state if path not in stale and _holds_something(path)]
    if stale:
        set_aside(stale, run_dir)
    if action != "resume":
        for path in state:
            _remove(path)  # what is left: empty folders Snakemake made for the job's outputs
        _write_stamp(stamp_path, stamp)
    return action
