"""Franka Kitchen demos from Minari's D4RL/kitchen/{complete,partial,mixed}-v2 datasets.

Each Minari episode holds T actions and T + 1 dict observations (before the first action ... after the last):
`observation` (59: robot qpos 9, robot qvel 9, object qpos 21, object qvel 20, all with FrankaKitchen-v1's
uniform observation noise) and `achieved_goal` (per requested subtask, its joints' exact positions). The rewards
are the number of requested subtasks complete after each step (the datasets' envs keep completed subtasks).
"""

from typing import Any

import numpy as np

from vrl3.errors import UserError
from vrl3.tasks import KitchenTask

OBS_DIM = 59


def _episode_demo(episode: Any, task: KitchenTask, dataset_id: str) -> dict:
    where = f"Minari dataset {dataset_id} episode {episode.id}"
    observations = episode.observations
    if not isinstance(observations, dict) or "observation" not in observations or "achieved_goal" not in observations:
        raise UserError(f"{where}: observations are not FrankaKitchen-v1 dicts (observation, achieved_goal); "
                        f"fix: use the D4RL/kitchen datasets ({task.minari_dataset})")
    states = np.asarray(observations["observation"], dtype=np.float64)
    goals = {name: np.asarray(values, dtype=np.float64) for name, values in observations["achieved_goal"].items()}
    actions = np.asarray(episode.actions, dtype=np.float64)
    rewards = np.asarray(episode.rewards, dtype=np.float64)
    steps = len(actions)
    if sorted(goals) != sorted(task.subtasks):
        raise UserError(f"{where} has the subtasks {sorted(goals)}, task {task.name} needs {sorted(task.subtasks)}: "
                        f"fix: point MINARI_DATASETS_PATH at the real {task.minari_dataset}")
    if steps < 1 or actions.shape != (steps, task.action_dim) or states.shape != (steps + 1, OBS_DIM) or \
            rewards.shape != (steps,) or any(len(values) != steps + 1 for values in goals.values()):
        raise UserError(f"{where}: expected T >= 1 actions of size {task.action_dim}, T rewards and T + 1 "
                        f"observations of size {OBS_DIM}, got actions {actions.shape}, rewards {rewards.shape}, "
                        f"observations {states.shape}: the dataset is damaged; delete it and download it again")
    if not (np.isfinite(states).all() and np.isfinite(actions).all()):
        raise UserError(f"{where} holds NaN or infinite values: the dataset is damaged; download it again")
    return {"observations": states, "achieved_goals": goals, "actions": actions, "rewards": rewards}


def kitchen_demos_from_minari(dataset: Any, task: KitchenTask, limit: int | None = None) -> list[dict]:
    """The first `limit` (None: all) episodes as dicts of observations, achieved_goals, actions and rewards."""
    indices = list(dataset.episode_indices)[:limit]
    return [_episode_demo(episode, task, str(dataset.id)) for episode in dataset.iterate_episodes(indices)]
