"""VRL3's pixel Adroit environment (reference §4.3-4.5) on gymnasium-robotics AdroitHand*-v1 physics.

Replaces VRL3's gym TimeLimit -> mjrl GymEnv -> BasicAdroitEnv -> AdroitEnv stack with one class: action
clipping, action repeat, RRL-fork rewards and goals, the time limit, pen-drop termination, rendering of VRL3's
cameras and frame stacking.
"""

import os
from collections import deque
from typing import Any

import mujoco
import numpy as np

from vrl3.envs.cameras import vrl3_env_class
from vrl3.envs.rewards import pen_dropped, reward_and_goal
from vrl3.envs.timestep import StepType, TimeStep
from vrl3.errors import UserError
from vrl3.tasks import get_task

RELOCATE_TARGET_Z = 0.25


def _load_triton_first() -> None:
    """Mesa's software EGL (llvmpipe) and Triton (shipped with CUDA builds of torch) each carry their own LLVM;
    loading Triton after an EGL context exists crashes the process (seen with torch 2.14 + Mesa 22: torch's
    optimizers import Triton lazily). Loaded first, both work."""
    try:
        import triton._C.libtriton  # noqa: F401
    except ImportError:
        pass


def make_renderer(model: mujoco.MjModel, image_size: int) -> mujoco.Renderer:
    _load_triton_first()
    try:
        return mujoco.Renderer(model, image_size, image_size)
    except mujoco.FatalError as error:
        raise UserError(f"cannot render offscreen with MUJOCO_GL={os.environ.get('MUJOCO_GL', '(unset)')} "
                        f"({error}); set MUJOCO_GL=egl (or osmesa) before starting") from None


class AdroitEnv:
    def __init__(self, task: str, seed: int, action_repeat: int = 2, frame_stack: int = 1, image_size: int = 84,
                 time_limit: bool = True, flip_images: bool = True):
        if action_repeat < 1 or frame_stack < 1 or image_size < 1:
            raise UserError(f"action_repeat ({action_repeat}), frame_stack ({frame_stack}) and image_size "
                            f"({image_size}) must all be >= 1")
        self.task = get_task(task)
        self.seed = seed
        self.action_repeat = action_repeat
        self.frame_stack = frame_stack
        self.image_size = image_size
        self.time_limit = time_limit
        self.flip_images = flip_images
        self.sim = vrl3_env_class(self.task.name)(width=image_size, height=image_size)
        self.action_dim = int(self.sim.action_space.shape[0])
        assert self.action_dim == self.task.action_dim, (self.action_dim, self.task.action_dim)
        self.frame_channels = 3 * len(self.task.cameras)
        self.obs_shape = (self.frame_channels * frame_stack, image_size, image_size)
        self._renderer = make_renderer(self.sim.model, image_size)
        self._frames: deque[np.ndarray] = deque(maxlen=frame_stack)
        self._env_steps = 0
        self._seeded = False

    # --- simulator state -------------------------------------------------------------------------------
    def _reset_sim(self, seed: int | None) -> None:
        if seed is None and not self._seeded:
            seed = self.seed
        self.sim.reset(seed=seed)
        self._seeded = True
        if self.task.name == "relocate":
            # The fork fixes the target height; gymnasium-robotics draws it from U(0.15, 0.35).
            self.sim.model.site_pos[self.sim.model.site("target").id, 2] = RELOCATE_TARGET_Z
            mujoco.mj_forward(self.sim.model, self.sim.data)
        self._env_steps = 0

    def reward_and_goal(self) -> tuple[float, bool]:
        """Raw reward and goal flag of the current simulator state."""
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

    # --- episodes ----------------------------------------------------------------------------------------
    def _first_time_step(self) -> TimeStep:
        frame = self.render_frame()
        self._frames.clear()
        for _ in range(self.frame_stack):
            self._frames.append(frame)
        return TimeStep(StepType.FIRST, np.concatenate(self._frames, axis=0), frame, self.sensor(),
                        np.zeros(self.action_dim, dtype=np.float32), 0.0, 1.0, 0)

    def reset(self, seed: int | None = None) -> TimeStep:
        """Start an episode. The first reset seeds the env with make_env's seed, later ones continue its RNG."""
        self._reset_sim(seed)
        return self._first_time_step()

    def reset_to_state(self, state: dict[str, Any]) -> TimeStep:
        """Reset, then load a (demo) state dict; keys the gymnasium-robotics env does not accept are dropped."""
        missing = [key for key in self.task.state_keys if key not in state]
        if missing:
            raise UserError(f"{self.task.name} state dict lacks {missing}: it needs {list(self.task.state_keys)}")
        self._reset_sim(None)
        self.sim.set_env_state({key: np.asarray(state[key], dtype=np.float64) for key in self.task.state_keys})
        return self._first_time_step()

    def step(self, action: np.ndarray) -> TimeStep:
        action = np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
        reward, n_goal_achieved, terminated = 0.0, 0, False
        for _ in range(self.action_repeat):
            self.sim.step(action)
            self._env_steps += 1
            step_reward, goal = self.reward_and_goal()
            reward += step_reward
            n_goal_achieved += int(goal)
            terminated = self.terminated()
            if terminated or self.time_limit_reached():
                break
        frame = self.render_frame()
        self._frames.append(frame)
        # gym's TimeLimit marks an episode truncated only if the env did not end it itself on the same step.
        truncated = self.time_limit_reached() and not terminated
        return TimeStep(StepType.LAST if terminated or truncated else StepType.MID,
                        np.concatenate(self._frames, axis=0), frame, self.sensor(), action,
                        reward * self.task.reward_scale, 0.0 if terminated else 1.0, n_goal_achieved, truncated)

    def rng_state(self) -> dict[str, Any]:
        """State of the env's reset RNG, for checkpoints."""
        return self.sim.np_random.bit_generator.state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore the reset RNG; the next reset continues from it instead of seeding with make_env's seed."""
        self.sim.np_random.bit_generator.state = state
        self._seeded = True

    def time_limit_reached(self) -> bool:
        return self.time_limit and self._env_steps >= self.task.max_env_steps

    def close(self) -> None:
        self._renderer.close()
        self.sim.close()


def make_env(task: str, seed: int, action_repeat: int = 2, frame_stack: int = 1, image_size: int = 84,
             time_limit: bool = True, flip_images: bool = True) -> AdroitEnv:
    return AdroitEnv(task, seed, action_repeat, frame_stack, image_size, time_limit, flip_images)
