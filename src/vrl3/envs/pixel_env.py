"""What every VRL3 pixel environment does over its MuJoCo simulator: action clipping and repeat, the time limit,
rendering, frame stacking and the TimeStep interface that the Workspace, evaluation and replay read.

Subclasses (AdroitEnv, KitchenEnv) give the simulator, its reset, the sensor, the rewards and goal flags, the
termination rule and the frames.
"""

import os
from collections import deque
from typing import Any

import mujoco
import numpy as np

from vrl3.envs.timestep import StepType, TimeStep
from vrl3.errors import UserError
from vrl3.tasks import DEFAULT_SHADOW_SIZE


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


class PixelEnv:
    def __init__(self, task, seed: int, action_repeat: int, frame_stack: int, image_size: int, time_limit: bool,
                 flip_images: bool, shadow_size: int = DEFAULT_SHADOW_SIZE):
        if min(action_repeat, frame_stack, image_size, shadow_size) < 1:
            raise UserError(f"action_repeat ({action_repeat}), frame_stack ({frame_stack}), image_size "
                            f"({image_size}) and shadow_size ({shadow_size}) must all be >= 1")
        self.task = task
        self.seed = seed
        self.action_repeat = action_repeat
        self.frame_stack = frame_stack
        self.image_size = image_size
        self.time_limit = time_limit
        self.flip_images = flip_images
        self.shadow_size = shadow_size
        self.sim = self._make_sim()
        self.action_dim = int(self.sim.action_space.shape[0])
        assert self.action_dim == self.task.action_dim, (self.action_dim, self.task.action_dim)
        self.frame_channels = self.task.frame_channels
        self.obs_shape = (self.frame_channels * frame_stack, image_size, image_size)
        self.sim.model.vis.quality.shadowsize = shadow_size  # read when the renderer's context is made
        self._renderer = make_renderer(self.sim.model, image_size)
        self._frames: deque[np.ndarray] = deque(maxlen=frame_stack)
        self._env_steps = 0
        self._seeded = False

    # --- what a task family provides ---------------------------------------------------------------------
    def _make_sim(self) -> Any:
        """The gymnasium MuJoCo env that simulates the task (its `model`, `data`, `step`, `reset`)."""
        raise NotImplementedError

    def _reset_sim(self, seed: int | None) -> None:
        raise NotImplementedError

    def _rng(self) -> np.random.Generator:
        """The generator the simulator's resets (and observation noise) draw from."""
        raise NotImplementedError

    def reward_and_goal(self) -> tuple[float, bool]:
        """Raw reward and goal flag of the current simulator state."""
        raise NotImplementedError

    def terminated(self) -> bool:
        raise NotImplementedError

    def sensor(self) -> np.ndarray:
        raise NotImplementedError

    def render_frame(self) -> np.ndarray:
        raise NotImplementedError

    # --- episodes ----------------------------------------------------------------------------------------
    def _seed_for_reset(self, seed: int | None) -> int | None:
        """The first reset seeds the env with make_env's seed, later ones continue its RNG."""
        if seed is None and not self._seeded:
            seed = self.seed
        self._seeded = True
        self._env_steps = 0
        return seed

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
        return self._rng().bit_generator.state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore the reset RNG; the next reset continues from it instead of seeding with make_env's seed."""
        self._rng().bit_generator.state = state
        self._seeded = True

    def time_limit_reached(self) -> bool:
        return self.time_limit and self._env_steps >= self.task.max_env_steps

    def close(self) -> None:
        self._renderer.close()
        self.sim.close()
