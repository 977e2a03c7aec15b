"""Deterministic evaluation episodes and VRL3's success rule."""

import numpy as np

from vrl3.envs import episode_success
from vrl3.envs.vector import EnvPool


def evaluate(agent, envs: EnvPool, num_episodes: int, step: int) -> dict[str, float]:
    """Mean return, mean frames per episode and the success rate over `num_episodes` deterministic episodes.

    Episode k runs on env k % N of the pool; the envs run their episodes side by side with one batched act per
    agent step. With one env: VRL3's loop, one episode after the other.
    """
    action_repeat = envs.action_repeat
    episodes_left = {index: len(range(index, num_episodes, envs.num_envs))
                     for index in range(min(envs.num_envs, num_episodes))}
    returns, lengths, successes = [], [], []
    running = {index: _Episode(time_step) for index, time_step in
               envs.call("reset", {index: () for index in episodes_left}).items()}
    while running:
        indices = sorted(running)
        latest = [running[index].time_step for index in indices]
        actions = agent.act_batch(np.stack([t.observation for t in latest]), np.stack([t.sensor for t in latest]),
                                  step, eval_mode=True)
        stepped = envs.call("step", {index: (action,) for index, action in zip(indices, actions)})
        restart = {}
        for index, time_step in stepped.items():
            episode = running[index]
            episode.add(time_step)
            if time_step.last():
                returns.append(episode.episode_return)
                lengths.append(episode.agent_steps * action_repeat)
                successes.append(episode_success(envs.task_name, episode.goal_steps))
                del running[index]
                episodes_left[index] -= 1
                if episodes_left[index] > 0:
                    restart[index] = ()
        if restart:
            running |= {index: _Episode(time_step) for index, time_step in envs.call("reset", restart).items()}
    return {"episode_reward": float(np.mean(returns)), "episode_length": float(np.mean(lengths)),
            "success_rate": float(np.mean(successes))}


class _Episode:
    def __init__(self, first_time_step):
        self.time_step = first_time_step
        self.episode_return, self.goal_steps, self.agent_steps = 0.0, 0, 0

    def add(self, time_step) -> None:
        self.time_step = time_step
        self.episode_return += time_step.reward
        self.goal_steps += time_step.n_goal_achieved
        self.agent_steps += 1
