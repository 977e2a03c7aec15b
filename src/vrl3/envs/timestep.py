"""The time step the environments emit and the replay buffer stores (dm_env-like, reference §10.3)."""

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class StepType(IntEnum):
    FIRST = 0
    MID = 1
    LAST = 2


@dataclass
class TimeStep:
    step_type: StepType
    observation: np.ndarray  # uint8 (3 * cameras * frame_stack, H, W), oldest frame first
    frame: np.ndarray  # uint8 (3 * cameras, H, W): the newest rendered frame alone
    sensor: np.ndarray  # float32 (24,): hand joint angles
    action: np.ndarray  # float32 (A,): the action that led here (zeros on FIRST)
    reward: float  # rescaled, summed over the action repeats
    discount: float  # 0.0 only on true termination (pen dropped)
    n_goal_achieved: int  # env steps of this transition whose goal flag was true
    time_limit_reached: bool = False

    def first(self) -> bool:
        return self.step_type == StepType.FIRST

    def last(self) -> bool:
        return self.step_type == StepType.LAST
