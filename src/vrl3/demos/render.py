"""Render demo episodes into a `vrl3 demos` output folder: the episode files, then the manifest, all or nothing."""

from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from vrl3.demos.lines import episode_line
from vrl3.demos.store import episode_summary, staged_output
from vrl3.envs import episode_success
from vrl3.tasks import DEFAULT_SHADOW_SIZE
from vrl3.train.episodes import episode_arrays


def shadow_size_record(shadow_size: int) -> dict:
    """The manifest's shadow_size: left out at the scenes' own (as before the key existed, so the demos rendered
    then stay byte-identical and the runs made from them stay current)."""
    return {} if shadow_size == DEFAULT_SHADOW_SIZE else {"shadow_size": shadow_size}


def render_demos(env, task, out: Path, episodes: Iterable[tuple[list, dict]], manifest: dict) -> list[dict]:
    """Write each (time steps, record) of `episodes` as an episode file, with a manifest entry of its length,
    return, goal steps and success plus `record`; then the manifest: `manifest` plus what `env` renders
    (action repeat 1, cameras, channels, flip, shadow map). Returns the entries."""
    with staged_output(out) as writer:
        entries = []
        for index, (steps, record) in enumerate(episodes):
            arrays = episode_arrays(steps)
            summary = episode_summary(arrays)
            entries.append({**summary, "success": episode_success(task, summary["goal_steps"]), **record})
            writer.add_episode(index, arrays)
            tqdm.write(episode_line(index, entries[-1]))
        writer.write_manifest({"task": task.name, "action_repeat": 1, "cameras": list(task.cameras),
                               "frame_channels": env.frame_channels, "flip_images": env.flip_images,
                               **shadow_size_record(env.shadow_size), **manifest,
                               "episodes": entries})
    return entries
