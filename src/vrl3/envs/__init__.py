import os
import sys

# Offscreen rendering on headless Linux machines; must be chosen before mujoco is first imported.
if sys.platform.startswith("linux"):
    os.environ.setdefault("MUJOCO_GL", "egl")

# gymnasium-robotics prints a notice on import about its *Dense-v1 rewards; VRL3 recomputes its own rewards
# (vrl3.envs.rewards), so the notice does not apply and would break our one-line error messages.
import farama_notifications  # noqa: E402

farama_notifications.notifications.pop("gymnasium_robotics", None)

from vrl3.envs.adroit import AdroitEnv  # noqa: E402
from vrl3.envs.kitchen import KitchenEnv  # noqa: E402
from vrl3.envs.make import make_env  # noqa: E402
from vrl3.envs.rewards import episode_success, pen_dropped, reward_and_goal  # noqa: E402

__all__ = ["AdroitEnv", "KitchenEnv", "make_env", "episode_success", "pen_dropped", "reward_and_goal"]
