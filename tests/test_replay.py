"""In-memory replay: n-step returns, frame stacks, episode sampling, FIFO eviction (reference §5)."""

import numpy as np
import pytest
import torch

from vrl3.replay import ReplayBuffer, batch_to

FRAME = (3, 2, 2)
GAMMA = 0.9


def episode(episode_id: int, length: int, rewards=None, discounts=None):
    """Frames hold 100·episode + position in every pixel; actions hold the same code; row 0 is the FIRST step."""
    code = 100 * episode_id + np.arange(length + 1)
    frames = np.broadcast_to((code % 256).astype(np.uint8)[:, None, None, None], (length + 1, *FRAME)).copy()
    sensors = np.stack([code, -code], axis=1).astype(np.float32)
    actions = code[:, None].astype(np.float32)
    actions[0] = 0
    rewards = np.arange(length + 1, dtype=np.float32) if rewards is None else np.asarray(rewards, np.float32)
    discounts = np.ones(length + 1, np.float32) if discounts is None else np.asarray(discounts, np.float32)
    return frames, sensors, actions, rewards, discounts


def make_buffer(capacity=1000, frame_stack=1, nstep=3, seed=0, **kwargs) -> ReplayBuffer:
    return ReplayBuffer(FRAME, sensor_dim=2, action_dim=1, capacity=capacity, frame_stack=frame_stack, nstep=nstep,
                        discount=GAMMA, seed=seed, **kwargs)


def decode(batch):
    """(episode id, start index i) of every sample, read from the stored action code."""
    code = batch.action[:, 0].long()
    return code // 100, code % 100


def test_nstep_return_and_discount_by_hand_with_termination():
    # pen-like: discount 0 at step 4 (the pen dropped there), the episode goes on to the end of the window
    rewards = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    discounts = [1.0, 1.0, 1.0, 1.0, 0.0, 1.0]
    buffer = make_buffer()
    buffer.add_episode(*episode(0, 5, rewards, discounts))
    g = GAMMA
    expected = {  # i: (R, D) = (Σ_k Π_{j<k}(γ d[i+j]) r[i+k], Π_k γ d[i+k])
        1: (1 + g * 2 + g * g * 3, g ** 3),
        2: (2 + g * 3 + g * g * 4, 0.0),
        3: (3 + g * 4 + g * g * 0 * 5, 0.0),
    }
    batch = buffer.sample(300)
    _, start = decode(batch)
    assert set(start.tolist()) == {1, 2, 3}
    for i, (reward, discount) in expected.items():
        rows = start == i
        torch.testing.assert_close(batch.reward[rows], torch.full((int(rows.sum()), 1), reward))
        torch.testing.assert_close(batch.discount[rows], torch.full((int(rows.sum()), 1), discount))
    # obs = frame i-1, next_obs = frame i+n-1, sensors likewise
    assert torch.equal(batch.obs[:, 0, 0, 0].long(), start - 1)
    assert torch.equal(batch.next_obs[:, 0, 0, 0].long(), start + 2)
    assert torch.equal(batch.sensor[:, 0].long(), start - 1) and torch.equal(batch.next_sensor[:, 1].long(), -start - 2)


def test_batch_shapes_and_dtypes():
    buffer = make_buffer(frame_stack=3)
    buffer.add_episode(*episode(0, 10))
    batch = buffer.sample(4)
    assert batch.obs.shape == (4, 9, 2, 2) and batch.obs.dtype == torch.uint8
    assert batch.next_obs.shape == (4, 9, 2, 2)
    assert batch.action.shape == (4, 1) and batch.reward.shape == (4, 1) and batch.discount.shape == (4, 1)
    assert batch.sensor.shape == (4, 2) and batch.sensor.dtype == torch.float32


def test_batch_to_moves_a_host_replay_batch_and_leaves_a_local_one_alone():
    buffer = make_buffer(frame_stack=3)
    buffer.add_episode(*episode(0, 10))
    batch = buffer.sample(4)
    assert batch_to(batch, torch.device("cpu")) is batch  # replay_device: auto, no copy
    moved = batch_to(batch, torch.device("meta"))  # any other device: every field goes there, types kept
    assert all(field.device.type == "meta" for field in moved)
    assert [(f.shape, f.dtype) for f in moved] == [(f.shape, f.dtype) for f in batch]


def test_frame_stack_repeats_first_frame_at_episode_start():
    buffer = make_buffer(frame_stack=3, nstep=1)
    buffer.add_episode(*episode(0, 6))
    batch = buffer.sample(400)
    _, start = decode(batch)
    assert set(start.tolist()) == set(range(1, 7))
    for i in range(1, 7):
        row = int(torch.nonzero(start == i)[0])
        obs_frames = batch.obs[row, ::3, 0, 0].tolist()  # first channel of each stacked frame, oldest first
        next_frames = batch.next_obs[row, ::3, 0, 0].tolist()
        assert obs_frames == [max(i - 3, 0), max(i - 2, 0), i - 1]
        assert next_frames == [max(i - 2, 0), max(i - 1, 0), i]


def test_samples_never_cross_episode_boundaries_even_when_the_ring_wraps():
    rng = np.random.default_rng(0)
    buffer = make_buffer(capacity=60, frame_stack=3, nstep=3, frame_slots=64)
    for episode_id in range(1, 30):
        length = int(rng.integers(3, 15))
        buffer.add_episode(*episode(episode_id, length))
        batch = buffer.sample(64)
        ep, start = decode(batch)
        assert ep.min() >= 1 and ep.max() <= episode_id
        # sensors hold the exact code of obs (i-1) and next_obs (i+n-1) of the same episode
        assert torch.equal(batch.sensor[:, 0].long(), 100 * ep + start - 1)
        assert torch.equal(batch.next_sensor[:, 0].long(), 100 * ep + start + 2)
        # every stacked frame comes from the sampled episode (earlier positions clamp to its first frame)
        frames = torch.cat([batch.obs[:, ::3, 0, 0], batch.next_obs[:, ::3, 0, 0]], 1).long()
        positions = torch.stack([torch.clamp(start - 3 + k, min=0) for k in range(3)]
                                + [torch.clamp(start + k, min=0) for k in range(3)], 1)
        assert torch.equal(frames, (100 * ep.unsqueeze(1) + positions) % 256)
    assert len(buffer) <= 60 and buffer.total_transitions_added > 3 * 64  # the ring wrapped several times


def test_fifo_eviction_of_whole_oldest_episodes():
    buffer = make_buffer(capacity=10)
    buffer.add_episode(*episode(1, 4))
    buffer.add_episode(*episode(2, 4))
    assert len(buffer) == 8 and buffer.num_episodes == 2
    buffer.add_episode(*episode(3, 4))  # 12 > 10: episode 1 goes
    assert len(buffer) == 8 and buffer.num_episodes == 2 and buffer.total_transitions_added == 12
    ep, _ = decode(buffer.sample(200))
    assert set(ep.tolist()) == {2, 3}
    buffer.add_episode(*episode(4, 10))  # needs the whole capacity
    assert len(buffer) == 10 and set(decode(buffer.sample(50))[0].tolist()) == {4}
    with pytest.raises(ValueError):
        buffer.add_episode(*episode(5, 11))


def test_episodes_are_sampled_uniformly_regardless_of_length():
    buffer = make_buffer()
    buffer.add_episode(*episode(1, 5))
    buffer.add_episode(*episode(2, 80))
    ep, start = decode(buffer.sample(4000))
    assert (ep == 1).float().mean().item() == pytest.approx(0.5, abs=0.04)
    long_starts = start[ep == 2]
    assert long_starts.min() == 1 and long_starts.max() == 78  # i in [1, T - n + 1]


def test_episode_shorter_than_nstep_is_stored_but_never_sampled():
    buffer = make_buffer()
    buffer.add_episode(*episode(1, 2))
    with pytest.raises(ValueError, match="nstep"):
        buffer.sample(4)
    buffer.add_episode(*episode(2, 3))
    assert len(buffer) == 5 and set(decode(buffer.sample(50))[0].tolist()) == {2}


def test_bad_shapes_are_rejected():
    buffer = make_buffer()
    frames, sensors, actions, rewards, discounts = episode(0, 4)
    with pytest.raises(ValueError, match="sensors"):
        buffer.add_episode(frames, sensors[:-1], actions, rewards, discounts)
    with pytest.raises(ValueError, match="frames"):
        buffer.add_episode(frames.astype(np.float32), sensors, actions, rewards, discounts)


def test_an_episode_file_reaches_the_replay_field_by_field():
    """episode_arrays (what episode files hold) -> replay_fields -> add_episode keeps each field in its place."""
    from types import SimpleNamespace

    from vrl3.train.episodes import episode_arrays, replay_fields

    frames, sensors, actions, rewards, discounts = episode(0, 5, [0, 1, 2, 3, 4, 5], [1, 1, 1, 1, 0, 1])
    steps = [SimpleNamespace(frame=frames[t], sensor=sensors[t], action=actions[t], reward=float(rewards[t]),
                             discount=float(discounts[t]), n_goal_achieved=t % 2) for t in range(6)]
    arrays = episode_arrays(steps)
    assert arrays["frame"].dtype == np.uint8 and arrays["n_goal_achieved"].tolist() == [0, 1, 0, 1, 0, 1]
    from_file, by_hand = make_buffer(), make_buffer()
    from_file.add_episode(**replay_fields(arrays))
    by_hand.add_episode(frames, sensors, actions, rewards, discounts)
    for a, b in zip(from_file.sample(64), by_hand.sample(64)):
        assert torch.equal(a, b)
