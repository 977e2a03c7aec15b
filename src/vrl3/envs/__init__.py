import os
import sys

# Offscreen rendering on headless Linux machines; must be chosen before mujoco is first imported.
if sys.platform.startswith("linux"):
    os.environ.setdefault("MUJOCO_GL", "egl")

from vrl3.envs.adroit import AdroitEnv, make_env  # noqa: E402
from vrl3.envs.rewards import episode_success, pen_dropped, reward_and_goal  # noqa: E402

__all__ = ["AdroitEnv", "make_env", "episode_success", "pen_dropped", "reward_and_goal"]
