"""Resume a stage, or start it over: the workflow's half of "rerun exactly what changed".

`vrl3 train` resumes from its last checkpoint and refuses a run dir started with other values. Snakemake and DVC
rerun a stage both after an interruption (resume wanted) and after its parameters or inputs changed (a fresh
start wanted). A stamp written when a stage starts tells the two apart: same stamp -> resume; other stamp -> delete
that stage's state (and, for stage 2, stage 3's, which was built on it) and start over.
"""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from vrl3.pipeline.plan import canonical
from vrl3.train.stage_keys import stage2_params, stage3_params

STAMP = "workflow_stamp.json"
# what stage 3 writes beside stage2/ (see vrl3.train.workspace); removed when stage 3 starts over
STAGE3_STATE = ("checkpoints", "episodes", "eval.csv", "train.csv", "params.yaml", "metrics.json", STAMP)
IGNORED_INPUT_FILES = {".snakemake_timestamp"}  # Snakemake's marker in directory outputs


def _digest_npz(path: Path, digest) -> None:
    # npz files are zip archives with write times inside: hash the arrays, not the bytes
    with np.load(path, allow_pickle=False) as arrays:
        for name in sorted(arrays.files):
            array = np.ascontiguousarray(arrays[name])
            digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
            digest.update(array.tobytes())


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
    return json.loads(path.read_text()) if path.exists() else None


def _holds_something(path: Path) -> bool:
    # Snakemake creates the (empty) folders of a job's outputs before the job starts
    return path.is_file() or (path.is_dir() and any(p.is_file() for p in path.rglob("*")))


def _write_stamp(path: Path, stamp: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def prepare_stage(cfg: dict, stage: int) -> str:
    """Make run_dir ready for `stage`; returns "resume", "start" (nothing there) or "restart" (stale state removed)."""
    run_dir = Path(cfg["run_dir"])
    stage3_state = [run_dir / name for name in STAGE3_STATE]
    if stage == 2:
        stamp_path, stamp = run_dir / "stage2" / STAMP, stage2_stamp(cfg)
        state = [run_dir / "stage2", *stage3_state]
    else:
        stamp_path, stamp = run_dir / STAMP, stage3_stamp(cfg)
        state = stage3_state
    if _read_stamp(stamp_path) == stamp:
        action = "resume"
    else:
        stale = [path for path in state if _holds_something(path)]
        for path in stale:
            _remove(path)
        _write_stamp(stamp_path, stamp)
        action = "restart" if stale else "start"
    if stage == 2 and _read_stamp(run_dir / STAMP) not in (None, stage3_stamp(cfg)):
        # stage 3's state was made with other stage-3 values (`vrl3 train` refuses to load a run dir whose
        # params.yaml disagrees, even for stage 2); stage 3 reruns after this job and would start over anyway
        for path in stage3_state:
            _remove(path)
    return action
