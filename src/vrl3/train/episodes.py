"""Episode files (`vrl3 demos` output and the online episodes a run records) read and written as npz."""

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from vrl3.checksum import sha256_of, update_with_arrays
from vrl3.demos.store import episode_file_name
from vrl3.errors import UserError
from vrl3.tasks import DEFAULT_SHADOW_SIZE

EPISODE_KEYS = ("frame", "sensor", "action", "reward", "discount", "n_goal_achieved")


def episode_arrays(steps: list) -> dict[str, np.ndarray]:
    """An episode's time steps (row 0: the FIRST step) as the arrays an episode file holds."""
    return {"frame": np.stack([step.frame for step in steps]).astype(np.uint8, copy=False),
            "sensor": np.stack([step.sensor for step in steps]).astype(np.float32, copy=False),
            "action": np.stack([step.action for step in steps]).astype(np.float32, copy=False),
            "reward": np.array([step.reward for step in steps], dtype=np.float32),
            "discount": np.array([step.discount for step in steps], dtype=np.float32),
            "n_goal_achieved": np.array([step.n_goal_achieved for step in steps], dtype=np.int8)}


def replay_fields(episode: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """An episode's arrays as `ReplayBuffer.add_episode` takes them."""
    return {"frames": episode["frame"], "sensors": episode["sensor"], "actions": episode["action"],
            "rewards": episode["reward"], "discounts": episode["discount"]}


def read_episode(path: Path, fix: str) -> dict[str, np.ndarray]:
    """The arrays of one episode file; `fix` says in the error what to do when the file is missing or damaged."""
    try:
        with np.load(path, allow_pickle=False) as data:
            episode = {key: data[key] for key in EPISODE_KEYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(f"episode file {path} is unreadable or incomplete ({error}): {fix}") from None
    return episode


def demos_digest(episodes: list[dict]) -> str:
    """sha256 over the demo episodes a run trains on (their arrays, in order): what its checkpoints record of the
    demos, whichever folder they were read from."""
    digest = hashlib.sha256()
    for episode in episodes:
        update_with_arrays(digest, ((key, episode[key]) for key in EPISODE_KEYS))
    return digest.hexdigest()


def write_episode(path: Path, episode: dict[str, np.ndarray]) -> None:
    """Write atomically: a kill leaves either the old state or the whole new file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **{key: episode[key] for key in EPISODE_KEYS})
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def episode_paths(folder: Path, manifest: dict | None = None) -> list[Path]:
    """A demos folder's episode files in episode order: the manifest's episodes (a file deleted since is then
    missing, not skipped), else the files there (episode_999 before episode_1000: the names are padded to three
    digits only)."""
    listed = (manifest or {}).get("episodes")
    if isinstance(listed, list):
        return [folder / episode_file_name(index) for index in range(len(listed))]
    return sorted((folder / "episodes").glob("episode_*.npz"), key=lambda path: (len(path.name), path.name))


def load_demos(folder: str | Path, task: str, frame_channels: int, image_size: int, num_demo: int,
               shadow_size: int = DEFAULT_SHADOW_SIZE) -> list[dict]:
    """The first `num_demo` (-1: all) episodes of a `vrl3 demos` output folder, checked against its manifest."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise UserError(f"demos folder {folder} has no manifest.json: create it with `vrl3 demos --task {task} ...`")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{manifest_path} is not valid JSON ({error}): re-create the demos folder") from None
    checksums = manifest.get("checksums", {}) if isinstance(manifest, dict) else None
    if not isinstance(checksums, dict):
        raise UserError(f"{manifest_path} is not a `vrl3 demos` manifest (a JSON object with a checksums object): "
                        f"re-create the demos folder")
    if manifest.get("task") != task:
        raise UserError(f"demos folder {folder} holds {manifest.get('task')!r} demos but the run's task is {task!r}: "
                        f"point demos= at a `vrl3 demos --task {task}` output")
    if manifest.get("frame_channels") != frame_channels or manifest.get("image_size") != image_size:
        raise UserError(f"demos in {folder} have {manifest.get('frame_channels')} channels at "
                        f"{manifest.get('image_size')} px, the run needs {frame_channels} at {image_size}: "
                        "re-render them with matching --image-size")
    # the manifest leaves the scenes' own shadow map out (vrl3.demos.render.shadow_size_record)
    demo_shadow_size = manifest.get("shadow_size", DEFAULT_SHADOW_SIZE)
    if demo_shadow_size != shadow_size:
        raise UserError(f"demos in {folder} were rendered with a {demo_shadow_size}-texel shadow map, the run renders "
                        f"with shadow_size {shadow_size}: re-render them with `vrl3 demos --shadow-size "
                        f"{shadow_size}` or set shadow_size to match")
    paths = episode_paths(folder, manifest)
    if num_demo >= 0:
        if num_demo > len(paths):
            raise UserError(f"num_demo={num_demo} but {folder} holds {len(paths)} episodes: lower num_demo "
                            "or render more with `vrl3 demos --episodes`")
        paths = paths[:num_demo]
    episodes = []
    for path in paths:
        if not path.is_file():
            raise UserError(f"{path} is listed in {manifest_path} but missing: re-create the demos folder with "
                            f"`vrl3 demos --task {task}`")
        expected = checksums.get(f"episodes/{path.name}")
        if expected is not None and sha256_of(path) != expected:
            raise UserError(f"{path} does not match the sha256 in {manifest_path}: re-create the demos folder")
        episodes.append(read_episode(path, fix=f"re-create the demos folder with `vrl3 demos --task {task}`"))
    return episodes
