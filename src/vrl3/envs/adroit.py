"""VRL3's pixel Adroit environment (reference §4.3-4.5) on gymnasium-robotics AdroitHand*-v1 physics.

Replaces VRL3's gym TimeLimit -> mjrl GymEnv -> BasicAdroitEnv -> AdroitEnv stack with one class: action
clipping, action repeat, RRL-fork rewards and goals, the time limit, pen-drop termination, rendering of VRL3's
cameras and frame stacking (the task-independent parts live in vrl3.envs.pixel_env).
"""

from typing import Any

import mujoco
import numpy as np

from vrl3.envs.cameras import vrl3_env_class
from vrl3.envs.pixel_env import PixelEnv
from vrl3.envs.rewards import pen_dropped, reward_and_goal
from vrl3.envs.timestep import TimeStep
from vrl3.errors import UserError
from vrl3.tasks import DEFAULT_SHADOW_SIZE, get_adroit_task

RELOCATE_TARGET_Z = 0.25


class AdroitEnv(PixelEnv):
    def __init__(self, task: str, seed: int, action_repeat: int = 2, frame_stack: int = 1, image_size: int = 84,
                 time_limit: bool = True, flip_images: bool = True, shadow_size: int = DEFAULT_SHADOW_SIZE):
        super().__init__(get_adroit_task(task), seed, action_repeat, frame_stack, image_size, time_limit,
                         flip_images, shadow_size)

    def _make_sim(self) -> Any:
        return vrl3_env_class(self.task.name)(width=self.image_size, height=self.image_size)

    def _rng(self) -> np.random.Generator:
        return self.sim.np_random

    # --- simulator state -------------------------------------------------------------------------------
    def _reset_sim(self, seed: int | None) -> None:
        self.sim.reset(seed=self._seed_for_reset(seed))
        if self.task.name == "relocate":
            # The fork fixes the target height; gymnasium-robotics draws it from U(0.15, 0.35).
            self.sim.model.site_pos[self.sim.model.site("target").id, 2] = RELOCATE_TARGET_Z
            mujoco.mj_forward(self.sim.model, self.sim.data)

    def reward_and_goal(self) -> tuple[float, bool]:
        return reward_and_goal(self.task.name, self.sim.model, self.sim.data)

    def terminated(self) -> bool:
        """True termination: only the pen can end an episode early, by dropping."""
        return self.task.name == "pen" and pen_dropped(self.sim.model, self.sim.data)

    def sensor(self) -> np.ndarray:
        return self.sim.data.qpos[self.task.sensor_slice].astype(np.float32)

    def render_frame(self) -> np.ndarray:
        images = []
        for camera in self.task.cameras:
            self._renderer.update_scene(self.sim.data, camera=camera)
            image = self._renderer.render()
            if self.flip_images:  # VRL3 stored mujoco-py's bottom-up buffer unflipped (reference §4.3)
                image = image[::-1]
            images.append(image.transpose(2, 0, 1))
        return np.ascontiguousarray(np.concatenate(images, axis=0))

    def reset_to_state(self, state: dict[str, Any]) -> TimeStep:
        """Reset, then load a (demo) state dict; keys the gymnasium-robotics env does not accept are dropped."""
        missing = [key for key in self.task.state_keys if key not in state]
        if missing:
            raise UserError(f"{self.task.name} state dict lacks {missing}: it needs {list(self.task.state_keys)}")
        self._reset_sim(None)
        self.sim.set_env_state({key: np.asarray(state[key], dtype=np.float64) for key in self.task.state_keys})
        return self._first_time_step()
