"""The demo output folder: episodes/episode_NNN.npz plus manifest.json, written atomically.

Each episode file holds arrays of length T + 1 whose row 0 is the FIRST time step (action zeros, reward 0,
discount 1): frame uint8 (T+1, C, H, W), sensor float32 (T+1, 24), action float32 (T+1, A), reward float32,
discount float32, n_goal_achieved int8.
"""

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from vrl3.checksum import sha256_of
from vrl3.errors import UserError
from vrl3.paths import file_in_the_way

def episode_summary(arrays: dict[str, np.ndarray]) -> dict:
    """length (transitions), return (sum of the stored float32 rewards) and goal steps of one episode."""
    return {"length": len(arrays["reward"]) - 1,
            "return": float(arrays["reward"].astype(np.float64).sum()),
            "goal_steps": int(arrays["n_goal_achieved"].astype(np.int64).sum())}


def episode_file_name(index: int) -> str:
    return f"episodes/episode_{index:03d}.npz"


class DemoWriter:
    """Collects episodes in a temp folder; `staged_output` moves it to the final place only on success."""

    def __init__(self, folder: Path):
        self.folder = folder
        (folder / "episodes").mkdir()
        self.checksums: dict[str, str] = {}

    def add_episode(self, index: int, arrays: dict[str, np.ndarray]) -> None:
        name = episode_file_name(index)
        np.savez_compressed(self.folder / name, **arrays)
        self.checksums[name] = sha256_of(self.folder / name)

    def write_manifest(self, manifest: dict) -> None:
        manifest = dict(manifest, checksums={**manifest.get("checksums", {}), **self.checksums})
        (self.folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def check_out_dir(out_dir: Path) -> None:
    """Refuse an --out that cannot be replaced, or whose replacement would delete files no demos run wrote."""
    out_dir = Path(out_dir)
    if (blocker := file_in_the_way(out_dir)) is not None:
        what = "is a file" if blocker == out_dir else f"is below the file {blocker}"
        raise UserError(f"--out {out_dir} {what}: name a folder (it is created, or replaced if it is an "
                        f"earlier demos output)")
    if not out_dir.exists():
        return
    if Path.cwd().resolve().is_relative_to(out_dir.resolve()):
        raise UserError(f"--out {out_dir} is the current folder or holds it, so it cannot be replaced: name a "
                        f"folder below it, e.g. --out demos")
    if any(out_dir.iterdir()) and not (out_dir / "manifest.json").is_file():
        raise UserError(f"--out {out_dir} holds files but no manifest.json, so it is not an earlier `vrl3 demos` "
                        f"output (only those are replaced): name a new or empty folder")


@contextmanager
def staged_output(out_dir: Path) -> Iterator[DemoWriter]:
    """A writer on a temp folder beside out_dir; renamed to out_dir (replacing an earlier demos output) if the
    block succeeds."""
    check_out_dir(out_dir)
    out_dir = Path(os.path.abspath(out_dir))  # a path ending in `..` has no usable name or parent
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.partial-"))
    stage.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary output folder
    try:
        yield DemoWriter(stage)
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old-"))
            os.replace(out_dir, old / out_dir.name)
            os.replace(stage, out_dir)
            shutil.rmtree(old)
        else:
            os.replace(stage, out_dir)
    finally:
        if stage.exists():
            shutil.rmtree(stage)
