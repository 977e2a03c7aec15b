"""Rewards, goal flags, pen drop and episode success of the RRL fork of mj_envs (reference §4.2, §4.5).

The fork sets ADD_BONUS_REWARDS and USE_SPARSE_REWARDS, which differ from both DAPG's dense rewards and
gymnasium-robotics' rewards, so they are recomputed here from the simulator state alone.
"""

import mujoco
import numpy as np

from vrl3.tasks import AdroitTask, get_task

PEN_DROP_HEIGHT = 0.075


def door_reward(model: mujoco.MjModel, data: mujoco.MjData) -> tuple[float, bool]:
    hinge = float(data.qpos[model.joint("door_hinge").qposadr[0]])
    reward = -0.1 * (hinge - 1.57) ** 2 + 2.0 * (hinge > 0.2) + 8.0 * (hinge > 1.0) + 10.0 * (hinge > 1.35)
    return reward, hinge > 1.4


def hammer_reward(model: mujoco.MjModel, data: mujoco.MjData) -> tuple[float, bool]:
    distance = float(np.linalg.norm(data.site("S_target").xpos - data.site("nail_goal").xpos))
    reward = -10.0 * distance + 25.0 * (distance < 0.02) + 75.0 * (distance < 0.01)
    return reward, distance < 0.01


def pen_orientation_similarity(data: mujoco.MjData) -> float:
    pen_axis = data.site("object_top").xpos - data.site("object_bottom").xpos
    target_axis = data.site("target_top").xpos - data.site("target_bottom").xpos
    return float(np.dot(pen_axis / np.linalg.norm(pen_axis), target_axis / np.linalg.norm(target_axis)))


def pen_reward(model: mujoco.MjModel, data: mujoco.MjData) -> tuple[float, bool]:
    distance = float(np.linalg.norm(data.body("Object").xpos - data.site("eps_ball").xpos))
    oriented = pen_orientation_similarity(data) > 0.95
    # The fork's goal ignores the position; only the reward needs the pen near the ball.
    return (50.0 if distance < 0.075 and oriented else 0.0), oriented


def relocate_reward(model: mujoco.MjModel, data: mujoco.MjData) -> tuple[float, bool]:
    distance = float(np.linalg.norm(data.body("Object").xpos - data.site("target").xpos))
    return 10.0 * (distance < 0.1) + 20.0 * (distance < 0.05), distance < 0.1


REWARD_FUNCTIONS = {"door": door_reward, "hammer": hammer_reward, "pen": pen_reward, "relocate": relocate_reward}


def reward_and_goal(task_name: str, model: mujoco.MjModel, data: mujoco.MjData) -> tuple[float, bool]:
    """Raw (not rescaled) reward of one env step and its goal flag, from the state after the step."""
    reward, goal = REWARD_FUNCTIONS[task_name](model, data)
    return float(reward), bool(goal)


def pen_dropped(model: mujoco.MjModel, data: mujoco.MjData) -> bool:
    return bool(data.body("Object").xpos[2] < PEN_DROP_HEIGHT)


def episode_success(task: AdroitTask | str, goal_steps_total: int) -> bool:
    """mj_envs' `evaluate_success`: the goal held on more than 25 env steps of the episode (pen: more than 20)."""
    if isinstance(task, str):
        task = get_task(task)
    return goal_steps_total > task.success_goal_steps
