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
    if stamp_path.exists() and json.loads(stamp_path.read_text()) == stamp:
        return "resume"
    stale = [path for path in state if path.exists()]
    for path in stale:
        _remove(path)
    _write_stamp(stamp_path, stamp)
    return "restart" if stale else "start"
