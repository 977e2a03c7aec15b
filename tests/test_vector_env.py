"""Stage 3's training envs in worker processes: the same time steps as envs in this process, RNG states for
checkpoints, and clear errors when a worker fails or dies."""

import numpy as np
import pytest

from vrl3.envs import make_env
from vrl3.envs.vector import EnvPool, LazyEnvPool, env_seeds
from vrl3.errors import UserError
from vrl3.train.evaluate import evaluate


def test_env_seeds_keep_the_run_seed_first_and_differ():
    assert env_seeds(7, 1) == [7]
    seeds = env_seeds(7, 4)
    assert seeds[0] == 7 and len(set(seeds)) == 4
    assert seeds == env_seeds(7, 4) and seeds[1:] != env_seeds(8, 4)[1:]


@pytest.fixture(scope="module")
def workers():
    envs = EnvPool("door", env_seeds(3, 2), {"action_repeat": 2})
    yield envs
    envs.close()


def test_workers_step_like_envs_in_this_process(workers):
    local = [make_env("door", seed=seed, action_repeat=2) for seed in env_seeds(3, 2)]
    try:
        first = workers.call("reset")
        for index, env in enumerate(local):
            expected = env.reset()
            np.testing.assert_array_equal(first[index].observation, expected.observation)
            np.testing.assert_array_equal(first[index].sensor, expected.sensor)
        assert not np.array_equal(first[0].observation, first[1].observation)  # other seeds, other door places
        actions = np.random.default_rng(0).uniform(-1, 1, (3, 2, local[0].action_dim)).astype(np.float32)
        for step_actions in actions:
            workers.call_async("step", {0: (step_actions[0],), 1: (step_actions[1],)})
            stepped = workers.wait()
            for index, env in enumerate(local):
                expected = env.step(step_actions[index])
                np.testing.assert_array_equal(stepped[index].observation, expected.observation)
                assert stepped[index].reward == expected.reward
                assert stepped[index].n_goal_achieved == expected.n_goal_achieved
    finally:
        for env in local:
            env.close()


def test_rng_states_round_trip_through_workers(workers):
    states = workers.call("rng_state")
    assert all(state is not None for state in states.values())  # reset above: seeded
    after = workers.call("reset")
    workers.call("set_rng_state", {index: (state,) for index, state in states.items()})
    again = workers.call("reset")
    for index in after:
        np.testing.assert_array_equal(after[index].observation, again[index].observation)


def test_one_env_lives_in_this_process():
    envs = EnvPool("door", [5], {"action_repeat": 2})
    try:
        assert envs.call("rng_state") == {0: None}  # not reset yet
        time_step = envs.call("reset")[0]
        np.testing.assert_array_equal(time_step.observation, make_env("door", seed=5).reset().observation)
    finally:
        envs.close()


def test_a_user_error_in_a_worker_is_raised_as_one_line():
    with pytest.raises(UserError, match="action_repeat"):
        EnvPool("door", env_seeds(0, 2), {"action_repeat": 0})


def test_a_dead_worker_is_reported():
    envs = EnvPool("door", env_seeds(0, 2), {"action_repeat": 2})
    try:
        envs._workers[1].kill()
        envs._workers[1].join()
        with pytest.raises(RuntimeError, match="env worker 1 died"):
            envs.call("reset")
    finally:
        envs.close()


class PixelPolicy:
    """A deterministic policy whose action depends on each row's own observation only (as the agent's μ does)."""

    def act_batch(self, obs, sensor, step, eval_mode):
        assert eval_mode
        brightness = obs.reshape(len(obs), -1).mean(axis=1, keepdims=True) / 255.0
        return np.tanh(np.linspace(-3, 3, 24)[None, :] * (brightness - 0.3) + sensor).astype(np.float32)


def test_parallel_evaluation_runs_episode_k_on_env_k_mod_n():
    seeds = env_seeds(11, 2)
    pool = EnvPool("pen", seeds, {"action_repeat": 2})
    try:
        parallel = evaluate(PixelPolicy(), pool, num_episodes=3, step=0)  # env 0: episodes 0, 2; env 1: episode 1
    finally:
        pool.close()
    per_env = []
    for seed, episodes in zip(seeds, (2, 1)):
        single = EnvPool("pen", [seed], {"action_repeat": 2})
        try:
            per_env.append((evaluate(PixelPolicy(), single, num_episodes=episodes, step=0), episodes))
        finally:
            single.close()
    for key in ("episode_reward", "episode_length", "success_rate"):
        expected = sum(result[key] * count for result, count in per_env) / 3
        assert parallel[key] == pytest.approx(expected, rel=1e-6), key


def test_lazy_pool_starts_on_first_use_with_the_restored_rng_states():
    lazy = LazyEnvPool("door", [21], {"action_repeat": 2})
    assert lazy.rng_states() == [None]
    reference = make_env("door", seed=21)
    reference.reset()
    state = reference.rng_state()
    lazy.set_rng_states([state])  # before start: kept for the start
    try:
        np.testing.assert_array_equal(lazy.get().call("reset")[0].observation, reference.reset().observation)
        lazy.close()  # keeps the RNG where the env left it
        np.testing.assert_array_equal(lazy.get().call("reset")[0].observation, reference.reset().observation)
    finally:
        lazy.close()
