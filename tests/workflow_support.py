"""Shared by the workflow tests: a scratch Snakemake working folder, running Snakemake/DVC/vrl3, tiny budgets."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv running the tests holds snakemake, dvc and vrl3
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "envs")

# Budgets below config/smoke.yaml (which takes ~5 min of CPU on 2 cores): one demo, a few updates, 600 frames of
# stage 3 with evaluations and checkpoints every 200 frames (door episodes are 200 frames long).
TINY = {"demo_source": {"episodes": 1}, "num_demo": 1, "batch_size": 16, "stage2_n_update": 4,
        "stage2_eval_every_frames": 2, "stage2_num_eval_episodes": 1, "num_train_frames": 600,
        "eval_every_frames": 200, "num_eval_episodes": 1, "checkpoint_every_frames": 200, "train_log_every_steps": 50}


def env() -> dict:
    return os.environ | {"MUJOCO_GL": "egl", "DVC_NO_ANALYTICS": "1",
                          "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def make_workdir(path: Path, overlay: dict | None = None) -> Path:
    """A Snakemake working folder: the workflow files linked from the checkout, outputs kept out of it."""
    path.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        (path / name).symlink_to(REPO / name)
    if overlay is not None:
        (path / "tiny.yaml").write_text(yaml.safe_dump(overlay))
    return path


def mirror_config(mirror: Path) -> str:
    return f"demo_source={{mirror: {mirror}}}"


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / "snakemake"), *args], cwd=workdir, env=env(), capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-6000:]}")
    return result


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table Snakemake prints (dry runs included): rule -> number of jobs."""
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines()[3:]:
        match = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
    counts.pop("total", None)
    return counts


def run(command: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-6000:]}")
    return result


def shared_door_demos(base: Path, mirror: Path) -> Path:
    """One rendered human door demo, made once per test session and copied by the tests that need demos as input."""
    out = base / "shared-demos" / "door"
    if not (out / "manifest.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        run([str(BIN / "vrl3"), "demos", "--task", "door", "--source", "human", "--mirror", str(mirror),
             "--episodes", "1", "--out", str(out)], cwd=base)
    return out
