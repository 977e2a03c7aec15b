"""VRL3's pixel Franka Kitchen environment on gymnasium-robotics FrankaKitchen-v1 physics (docs/kitchen.md).

As for Adroit: action clipping, action repeat 2, frame stack 1, 84x84 RGB frames, a proprioceptive sensor (the
robot's 9 joint positions and 9 joint velocities), a time limit. Rewards count the requested subtasks that are
complete (vrl3.envs.kitchen_rewards); an episode never terminates early, as in the Minari datasets' envs.
"""

from typing import Any

import mujoco
import numpy as np
from gymnasium_robotics.envs.franka_kitchen.franka_env import DEFAULT_CAMERA_CONFIG
from gymnasium_robotics.envs.franka_kitchen.kitchen_env import KitchenEnv as FrankaKitchen

from vrl3.envs.kitchen_compat import patch_franka_robot
from vrl3.envs.kitchen_rewards import kitchen_reward_and_goal
from vrl3.envs.pixel_env import PixelEnv
from vrl3.envs.timestep import TimeStep
from vrl3.errors import UserError
from vrl3.tasks import DEFAULT_SHADOW_SIZE, get_kitchen_task

patch_franka_robot()

# Shadows (four shadow-casting lights) and reflections cost ~0.9 s per 84x84 frame in software rendering and
# ~0.07 s without; they change no pixel that carries task information.
DISABLED_RENDER_FLAGS = (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION)


def counter_camera() -> mujoco.MjvCamera:
    """A fixed free camera at FrankaKitchen-v1's default view (D4RL's), which sees the whole counter."""
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.distance = DEFAULT_CAMERA_CONFIG["distance"]
    camera.azimuth = DEFAULT_CAMERA_CONFIG["azimuth"]
    camera.elevation = DEFAULT_CAMERA_CONFIG["elevation"]
    camera.lookat[:] = DEFAULT_CAMERA_CONFIG["lookat"]
    return camera


class KitchenEnv(PixelEnv):
    def __init__(self, task: str, seed: int, action_repeat: int = 2, frame_stack: int = 1, image_size: int = 84,
                 time_limit: bool = True, flip_images: bool = False, shadow_size: int = DEFAULT_SHADOW_SIZE):
        super().__init__(get_kitchen_task(task), seed, action_repeat, frame_stack, image_size, time_limit,
                         flip_images, shadow_size)
        self._camera = counter_camera()
        for flag in DISABLED_RENDER_FLAGS:
            self._renderer.scene.flags[flag] = False
        model = self.sim.model
        robot_joints = [model.joint(name).id for name in self.sim.robot_env.model_names.joint_names
                        if name.startswith("robot")]
        self._robot_qpos = model.jnt_qposadr[robot_joints]
        self._robot_qvel = model.jnt_dofadr[robot_joints]

    def _make_sim(self) -> Any:
        return FrankaKitchen(tasks_to_complete=list(self.task.subtasks), terminate_on_tasks_completed=False,
                             remove_task_when_completed=False)

    def _rng(self) -> np.random.Generator:
        return self.sim.robot_env.np_random  # the observation noise; the reset state itself is fixed

    def _reset_sim(self, seed: int | None) -> None:
        self.sim.reset(seed=self._seed_for_reset(seed))

    def reward_and_goal(self) -> tuple[float, bool]:
        return kitchen_reward_and_goal(self.sim.data, self.task.subtasks)

    def terminated(self) -> bool:
        return False

    def sensor(self) -> np.ndarray:
        data = self.sim.data
        return np.concatenate([data.qpos[self._robot_qpos], data.qvel[self._robot_qvel]]).astype(np.float32)

    def render_frame(self) -> np.ndarray:
        self._renderer.update_scene(self.sim.data, camera=self._camera)
        image = self._renderer.render()
        if self.flip_images:
            image = image[::-1]
        return np.ascontiguousarray(image.transpose(2, 0, 1))

    def set_sim_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Set the whole simulator state (30 positions, 29 velocities) without starting a new episode."""
        robot = self.sim.robot_env
        robot.set_state(np.asarray(qpos, dtype=np.float64), np.asarray(qvel, dtype=np.float64))
        # FrankaRobot turns velocity actions into position targets relative to its last observed joint positions
        robot._last_robot_qpos = robot.data.qpos[self._robot_qpos].copy()

    def reset_to_state(self, state: dict[str, Any]) -> TimeStep:
        """Reset, then load a state dict with the simulator's `qpos` (30) and `qvel` (29)."""
        missing = [key for key in ("qpos", "qvel") if key not in state]
        if missing:
            raise UserError(f"{self.task.name} state dict lacks {missing}: it needs ['qpos', 'qvel']")
        self._reset_sim(None)
        self.set_sim_state(state["qpos"], state["qvel"])
        return self._first_time_step()
