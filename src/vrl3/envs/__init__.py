from vrl3.envs.adroit import AdroitEnv, make_env
from vrl3.envs.rewards import episode_success, pen_dropped, reward_and_goal

__all__ = ["AdroitEnv", "make_env", "episode_success", "pen_dropped", "reward_and_goal"]
