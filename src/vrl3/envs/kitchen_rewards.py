"""Subtask completion, rewards and goals of Franka Kitchen, from the simulator state alone.

The rule is FrankaKitchen-v1's (and D4RL's): a subtask is complete while its joints are within BONUS_THRESH
(Euclidean norm) of their goal values. The Minari D4RL/kitchen datasets were recorded with
remove_task_when_completed=False, so their reward is the number of requested subtasks complete in the state
after each step; the same is used here, online and for re-rendered demos.
"""

import mujoco
import numpy as np
from gymnasium_robotics.envs.franka_kitchen.kitchen_env import BONUS_THRESH, OBS_ELEMENT_GOALS, OBS_ELEMENT_INDICES


def completed_subtasks(data: mujoco.MjData, subtasks: tuple[str, ...]) -> list[str]:
    return [name for name in subtasks
            if np.linalg.norm(data.qpos[OBS_ELEMENT_INDICES[name]] - OBS_ELEMENT_GOALS[name]) < BONUS_THRESH]


def kitchen_reward_and_goal(data: mujoco.MjData, subtasks: tuple[str, ...]) -> tuple[float, bool]:
    """Raw reward (the number of subtasks complete now) and goal flag (all of them complete now)."""
    done = len(completed_subtasks(data, subtasks))
    return float(done), done == len(subtasks)
