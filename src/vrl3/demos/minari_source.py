"""Human demos from Minari's `D4RL/<task>/human-v2` datasets (the 25 DAPG demos re-recorded on AdroitHand*-v1).

Farama's generation scripts (minari-dataset-generation-scripts, scripts/adroit/recreate_adroit_<task>.py) start
every episode with `reset(options={"initial_state_dict": ...})`; Minari >= 0.5 keeps reset options as episode
metadata (`options/initial_state_dict/...`), which is where the initial state is read from. The scripts' per-step
`state` entry is not kept by Minari's DataCollector (only observation/action/reward/flags/info are), so per-step
states come from the observations, which follow the same `_get_obs` layout as the DAPG pickles.
"""

import os
from pathlib import Path
from typing import Any

import numpy as np

from vrl3.demos.dapg_pickle import validate_demos
from vrl3.errors import UserError, first_line
from vrl3.tasks import AdroitTask, get_task


def minari_dataset_id(task_name: str) -> str:
    return get_task(task_name).minari_dataset


def _datasets_root() -> str:
    return os.environ.get("MINARI_DATASETS_PATH", str(Path("~/.minari/datasets").expanduser()))


def load_minari_dataset(dataset_id: str) -> Any:
    local = Path(_datasets_root()) / dataset_id
    try:
        import minari
        return minari.load_dataset(dataset_id, download=True)
    except Exception as error:  # minari raises FileNotFoundError, ImportError, HTTP and hub errors here
        reason = f"{type(error).__name__}: {first_line(error) if str(error).strip() else ''}"
        if (local / "data").is_dir():
            raise UserError(f"Minari dataset {dataset_id} at {local} cannot be read ({reason}); fix: "
                            f"pip install 'minari[hdf5]' (or [arrow]), or delete {local} to download it "
                            f"again") from None
        raise UserError(f"Minari dataset {dataset_id} is neither in {_datasets_root()} (MINARI_DATASETS_PATH) nor "
                        f"downloadable ({reason}); fix: rerun with network access (or `minari download {dataset_id}` "
                        f"where there is one), or copy the dataset into "
                        f"$MINARI_DATASETS_PATH/{dataset_id}") from None


def _initial_state(metadata: dict) -> dict | None:
    options = metadata.get("options") or {}
    return options.get("initial_state_dict")


def demos_from_minari(dataset: Any, task: AdroitTask, obs_dim: int, limit: int | None = None) -> list[dict]:
    """Demos in the DAPG layout (actions, init_state_dict, observations before each action) from a Minari dataset."""
    indices = list(dataset.episode_indices)[:limit]
    metadata = list(dataset.storage.get_episode_metadata(indices))
    raw = []
    for episode, episode_metadata in zip(dataset.iterate_episodes(indices), metadata):
        state = _initial_state(episode_metadata)
        if state is None:
            raise UserError(f"Minari dataset {dataset.id} episode {episode.id} has no options/initial_state_dict in "
                            f"its metadata, so it cannot be re-rendered; fix: use --source human (the DAPG pickles)")
        observations = np.asarray(episode.observations)
        raw.append({"actions": np.asarray(episode.actions), "init_state_dict": dict(state),
                    "observations": observations[:len(episode.actions)]})
    return validate_demos(raw, task, Path(str(dataset.id)), obs_dim)
