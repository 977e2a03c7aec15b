"""Re-rendering Franka Kitchen demos by setting the simulator to each recorded state (docs/kitchen.md).

What a recorded observation restores: all 30 joint positions and 29 joint velocities, with the observation noise
of FrankaKitchen-v1 (uniform; robot: up to 0.001 rad or m, and per s for velocities; objects: up to 5e-5), except
the requested subtasks' joints, whose exact positions `achieved_goal` holds. Not restorable: the noise-free robot
state, contacts and solver warm starts (recomputed by mj_forward), the noise RNG; none of them shows in a frame.
"""

import numpy as np
from gymnasium_robotics.envs.franka_kitchen.kitchen_env import OBS_ELEMENT_INDICES

from vrl3.demos.replay import DemoReplay, force_step_types, time_step_of_state
from vrl3.envs import KitchenEnv

ROBOT_JOINTS = 9
OBJECT_QPOS = 21


def recorded_state(env: KitchenEnv, observation: np.ndarray, achieved_goal: dict[str, np.ndarray]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """qpos (30) and qvel (29) of one recorded observation row and its achieved goals."""
    robot_qpos, robot_qvel = observation[:ROBOT_JOINTS], observation[ROBOT_JOINTS:2 * ROBOT_JOINTS]
    object_start = 2 * ROBOT_JOINTS
    object_qpos = observation[object_start:object_start + OBJECT_QPOS]
    object_qvel = observation[object_start + OBJECT_QPOS:]
    qpos = np.concatenate([robot_qpos, object_qpos])
    qvel = np.concatenate([robot_qvel, object_qvel])
    for name, values in achieved_goal.items():
        qpos[OBS_ELEMENT_INDICES[name]] = values
    kettle = env.sim.model.joint("kettle").qposadr[0] + 3  # the free joint's quaternion, noisy unless exact
    qpos[kettle:kettle + 4] /= np.linalg.norm(qpos[kettle:kettle + 4])
    return qpos, qvel


def replay_kitchen_states(env: KitchenEnv, demo: dict) -> DemoReplay:
    """Row t shows recorded state t; rewards and goal flags are recomputed from the restored states.

    recorded_goal_steps counts the recorded steps whose reward says that every requested subtask was complete.
    """
    actions = np.clip(demo["actions"].astype(np.float32), -1.0, 1.0)
    goals = demo["achieved_goals"]
    steps = []
    for index, observation in enumerate(demo["observations"]):
        qpos, qvel = recorded_state(env, observation, {name: values[index] for name, values in goals.items()})
        if index == 0:
            steps.append(env.reset_to_state({"qpos": qpos, "qvel": qvel}))
        else:
            env.set_sim_state(qpos, qvel)
            steps.append(time_step_of_state(env, actions[index - 1]))
    recorded_goal_steps = int(np.sum(demo["rewards"] >= len(env.task.subtasks)))
    return DemoReplay(force_step_types(steps), recorded_goal_steps)


def reward_mismatches(replayed: DemoReplay, demo: dict, reward_scale: float) -> int:
    """Steps whose recomputed reward differs from the recorded one (0 when the restored states are faithful)."""
    replayed_raw = np.array([step.reward for step in replayed.steps[1:]]) / reward_scale
    return int(np.sum(np.abs(replayed_raw - demo["rewards"]) > 1e-6))
