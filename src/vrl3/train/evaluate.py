"""Deterministic evaluation episodes and VRL3's success rule."""

import numpy as np

from vrl3.envs import episode_success


def evaluate(agent, env, num_episodes: int, step: int) -> dict[str, float]:
    """Mean return, mean frames per episode and the success rate over `num_episodes` deterministic episodes."""
    returns, lengths, successes = [], [], []
    for _ in range(num_episodes):
        time_step = env.reset()
        episode_return, goal_steps, agent_steps = 0.0, 0, 0
        while not time_step.last():
            action = agent.act(time_step.observation, time_step.sensor, step, eval_mode=True)
            time_step = env.step(action)
            episode_return += time_step.reward
            goal_steps += time_step.n_goal_achieved
            agent_steps += 1
        returns.append(episode_return)
        lengths.append(agent_steps * env.action_repeat)
        successes.append(episode_success(env.task.name, goal_steps))
    return {"episode_reward": float(np.mean(returns)), "episode_length": float(np.mean(lengths)),
            "success_rate": float(np.mean(successes))}
