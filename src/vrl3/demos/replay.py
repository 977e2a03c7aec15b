"""Re-rendering recorded demos to pixels (VRL3's `Workspace.load_demo`, reference §4.7).

`replay_actions` is VRL3's procedure: reset to the demo's initial state, then step the recorded actions open-loop.
`replay_states` sets the simulator to each recorded state instead (solved from the recorded observations, see
state_layout), so the frames show what the demonstrator did even where open-loop replay drifts.
Both return one time step per row, the FIRST one included; step types are forced (MID, the last one LAST).
"""

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from vrl3.demos.state_layout import LAYOUTS, orientation_error, solve_qpos, state_errors
from vrl3.envs import AdroitEnv
from vrl3.envs.timestep import StepType, TimeStep


@dataclass
class DemoReplay:
    steps: list[TimeStep]  # T + 1 time steps, row 0 FIRST
    recorded_goal_steps: int | None = None  # goal flags of the recorded states (None without observations)
    # Per recorded row t < T (None without observations): largest |replayed - recorded| over the observation's
    # joint positions (rad, slide joints in m) and over its world positions (m); largest angle (rad) between its
    # object orientations (None also for tasks without orientation entries: door, relocate).
    joint_errors: np.ndarray | None = None
    position_errors: np.ndarray | None = None
    orientation_errors: np.ndarray | None = None

    @property
    def max_state_error(self) -> float | None:
        return None if self.joint_errors is None else float(np.max(self.joint_errors))

    @property
    def max_position_error(self) -> float | None:
        return None if self.position_errors is None else float(np.max(self.position_errors))

    @property
    def max_orientation_error(self) -> float | None:
        return None if self.orientation_errors is None else float(np.max(self.orientation_errors))


@contextmanager
def rendering_disabled(env: AdroitEnv) -> Iterator[None]:
    """Blank frames instead of rendering, for measurements that need rewards, goals and states only."""
    if "render_frame" in vars(env):  # already disabled by an enclosing call
        yield
        return
    blank = np.zeros((env.frame_channels, env.image_size, env.image_size), dtype=np.uint8)
    env.render_frame = lambda: blank
    try:
        yield
    finally:
        del env.render_frame  # back to the class method


def force_step_types(steps: list[TimeStep]) -> list[TimeStep]:
    for index, step in enumerate(steps):
        step.step_type = StepType.FIRST if index == 0 else StepType.LAST if index == len(steps) - 1 else StepType.MID
        step.time_limit_reached = False
    return steps


def _set_qpos(env: AdroitEnv, qpos: np.ndarray, qvel: np.ndarray | None = None) -> None:
    env.sim.set_state(qpos, np.zeros(env.sim.model.nv) if qvel is None else qvel)  # includes mj_forward


def time_step_of_state(env, action: np.ndarray) -> TimeStep:
    """The time step of arriving at the simulator's current state (rewards depend on the state only)."""
    raw_reward, goal = env.reward_and_goal()
    frame = env.render_frame()
    return TimeStep(StepType.MID, frame, frame, env.sensor(), action.astype(np.float32),
                    raw_reward * env.task.reward_scale, 0.0 if env.terminated() else 1.0, int(goal))


def solve_recorded_states(env: AdroitEnv, demo: dict) -> np.ndarray:
    """qpos (T, nq) of the recorded observations; the model-level state comes from init_state_dict."""
    layout = LAYOUTS[env.task.name]
    with rendering_disabled(env):
        env.reset_to_state(demo["init_state_dict"])
    guess = np.asarray(demo["init_state_dict"]["qpos"], dtype=np.float64)
    states = []
    for observation in demo["observations"]:
        guess = solve_qpos(env.sim.model, env.sim.data, layout, observation, guess)
        states.append(guess)
    return np.array(states)


def recorded_goal_flags(env: AdroitEnv, recorded_qpos: np.ndarray) -> np.ndarray:
    """Goal flag of each recorded state (door: hinge > 1.4, i.e. observation index 28 > 1.4)."""
    flags = []
    for qpos in recorded_qpos:
        _set_qpos(env, qpos)
        flags.append(env.reward_and_goal()[1])
    return np.array(flags, dtype=bool)


def _recorded_stats(env: AdroitEnv, demo: dict) -> tuple[np.ndarray | None, int | None]:
    if demo["observations"] is None:
        return None, None
    recorded_qpos = solve_recorded_states(env, demo)
    return recorded_qpos, int(recorded_goal_flags(env, recorded_qpos).sum())


def replay_actions(env: AdroitEnv, demo: dict) -> DemoReplay:
    """Open-loop replay of the recorded actions from init_state_dict, as VRL3 converts its demos."""
    layout = LAYOUTS[env.task.name]
    recorded_qpos, recorded_goal_steps = _recorded_stats(env, demo)
    observations = demo["observations"]
    steps = [env.reset_to_state(demo["init_state_dict"])]
    errors = []
    for index, action in enumerate(demo["actions"]):
        if observations is not None:  # the recording's observation index holds the state before action index
            errors.append(_errors(layout, env.sim._get_obs(), observations[index]))
        steps.append(env.step(np.clip(action.astype(np.float32), -1.0, 1.0)))
    return DemoReplay(force_step_types(steps), recorded_goal_steps, *_error_columns(errors))


def replay_states(env: AdroitEnv, demo: dict) -> DemoReplay:
    """Frames, sensors and rewards of the recorded states; the last row is one simulated step from the last one.

    Rows 0..T-1 are the recorded states before actions 0..T-1 (solved from the observations, zero velocity;
    init_state_dict provides only the model-level state such as the door position). The recording has no state
    after the last action, so row T steps the last recorded state (velocity: finite difference of the last two
    states) with the last action.
    """
    layout = LAYOUTS[env.task.name]
    recorded_qpos, recorded_goal_steps = _recorded_stats(env, demo)
    if recorded_qpos is None:
        raise ValueError("state replay needs the demo's observations")
    actions = np.clip(demo["actions"].astype(np.float32), -1.0, 1.0)
    with rendering_disabled(env):
        env.reset_to_state(demo["init_state_dict"])
    steps, errors = [], []
    for index, qpos in enumerate(recorded_qpos):
        _set_qpos(env, qpos)
        errors.append(_errors(layout, env.sim._get_obs(), demo["observations"][index]))
        if index == 0:
            frame = env.render_frame()
            steps.append(TimeStep(StepType.FIRST, frame, frame, env.sensor(), np.zeros_like(actions[0]), 0.0, 1.0, 0))
        else:
            steps.append(time_step_of_state(env, actions[index - 1]))
    if len(actions) > 1:
        dt = env.sim.model.opt.timestep * env.sim.frame_skip
        _set_qpos(env, recorded_qpos[-1], (recorded_qpos[-1] - recorded_qpos[-2]) / dt)
    steps.append(env.step(actions[-1]))
    return DemoReplay(force_step_types(steps), recorded_goal_steps, *_error_columns(errors))


REPLAYS = {"actions": replay_actions, "states": replay_states}


def _errors(layout, replayed_obs: np.ndarray, recorded_obs: np.ndarray) -> tuple[float, float, float | None]:
    return (*state_errors(layout, replayed_obs, recorded_obs), orientation_error(layout, replayed_obs, recorded_obs))


def _error_columns(errors: list[tuple[float, float, float | None]]) -> tuple[np.ndarray | None, ...]:
    """Joint, position and orientation errors per row (orientation None where the task observes none)."""
    if not errors:
        return None, None, None
    joints, positions, orientations = zip(*errors)
    return np.array(joints), np.array(positions), None if orientations[0] is None else np.array(orientations)

