"""In-memory episode replay with n-step returns, sampled on the device (reference §5).

Per step only the newest frame (3·cameras channels) is stored; frame stacks are assembled at sample time from the
same episode (frames before the episode start repeat the first frame), as VRL3's frame stacking builds them.
Storage is a ring of preallocated slots; an episode of T transitions occupies T + 1 consecutive slots (slot 0 holds
the FIRST step with a dummy action). Whole oldest episodes are evicted first (FIFO) once the stored transitions
would exceed `capacity`, as in DrQ-v2's replay.
"""

from collections import deque
from typing import NamedTuple

import numpy as np
import torch


def _rows(value, rows: int, shape: tuple[int, ...], name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        tensor = value.float()
    else:
        tensor = torch.as_tensor(np.asarray(value, dtype=np.float32))
    if tensor.numel() != rows * int(np.prod(shape)):
        raise ValueError(f"{name} must have {rows} rows of shape {shape} to match the frames, "
                         f"got {tuple(tensor.shape)}")
    return tensor.reshape(rows, *shape)


class Batch(NamedTuple):
    obs: torch.Tensor  # uint8 (B, frame_stack·C, H, W), oldest frame first
    action: torch.Tensor  # float32 (B, A)
    reward: torch.Tensor  # float32 (B, 1): n-step discounted return
    discount: torch.Tensor  # float32 (B, 1): Π γ·env_discount over the n steps
    next_obs: torch.Tensor  # uint8 (B, frame_stack·C, H, W)
    sensor: torch.Tensor  # float32 (B, sensor_dim)
    next_sensor: torch.Tensor  # float32 (B, sensor_dim)


def batch_to(batch: Batch, device: torch.device) -> Batch:
    """The batch on `device`: a no-op when the replay lives there; else a copy (a host replay feeding a GPU agent)."""
    if batch.obs.device == device:
        return batch
    return Batch(*(field.to(device, non_blocking=True) for field in batch))


class ReplayBuffer:
    def __init__(self, frame_shape: tuple[int, int, int], sensor_dim: int, action_dim: int, capacity: int,
                 frame_stack: int = 1, nstep: int = 3, discount: float = 0.99, device: str | torch.device = "cpu",
                 seed: int = 0, frame_slots: int | None = None):
        self.frame_shape = tuple(frame_shape)
        self.sensor_dim = sensor_dim
        self.action_dim = action_dim
        self.capacity = capacity
        self.frame_stack = frame_stack
        self.nstep = nstep
        self.discount = discount
        self.device = torch.device(device)
        # an episode needs one slot more than its transitions; the slack keeps eviction transition-based
        # unless episodes average fewer than ~16 transitions
        self.frame_slots = frame_slots or capacity + max(capacity // 16, 1024)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

        slots = self.frame_slots
        self.frames = torch.empty((slots, *self.frame_shape), dtype=torch.uint8, device=self.device)
        self.sensors = torch.empty((slots, sensor_dim), dtype=torch.float32, device=self.device)
        self.actions = torch.empty((slots, action_dim), dtype=torch.float32, device=self.device)
        self.rewards = torch.empty((slots,), dtype=torch.float32, device=self.device)
        self.discounts = torch.empty((slots,), dtype=torch.float32, device=self.device)

        self._episodes: deque[tuple[int, int]] = deque()  # (first slot, transitions), oldest first
        self._write_slot = 0
        self._used_slots = 0
        self._num_transitions = 0
        self.total_transitions_added = 0  # never reduced by eviction (VRL3's `buffer_size` metric)
        self._index: tuple[torch.Tensor, torch.Tensor] | None = None  # sampleable episodes: (first slot, #starts)

    # ------------------------------------------------------------------ sizes
    def __len__(self) -> int:
        return self._num_transitions

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    # ------------------------------------------------------------------ writing
    def add_episode(self, frames, sensors, actions, rewards, discounts) -> None:
        """Add one whole episode: frames (T+1, C, H, W) uint8, sensors (T+1, S), actions (T+1, A) with row 0 a
        dummy, rewards (T+1,), discounts (T+1,) — the layout of the demo `episodes/*.npz` files.
        """
        frames = frames if isinstance(frames, torch.Tensor) else torch.as_tensor(np.asarray(frames))
        length = frames.shape[0] - 1
        if frames.dtype != torch.uint8 or tuple(frames.shape[1:]) != self.frame_shape:
            raise ValueError(f"frames must be uint8 (T+1, {self.frame_shape}), "
                             f"got {frames.dtype} {tuple(frames.shape)}")
        sensors = _rows(sensors, length + 1, (self.sensor_dim,), "sensors")
        actions = _rows(actions, length + 1, (self.action_dim,), "actions")
        rewards = _rows(rewards, length + 1, (), "rewards")
        discounts = _rows(discounts, length + 1, (), "discounts")
        if length < 1:
            raise ValueError("an episode needs at least one transition")
        if length > self.capacity or length + 1 > self.frame_slots:
            raise ValueError(f"episode of {length} transitions does not fit a replay of capacity {self.capacity}")

        while self._episodes and (self._num_transitions + length > self.capacity
                                  or self._used_slots + length + 1 > self.frame_slots):
            self._evict_oldest()

        slots = (self._write_slot + torch.arange(length + 1)) % self.frame_slots
        slots = slots.to(self.device)
        self.frames[slots] = frames.to(self.device)
        self.sensors[slots] = sensors.to(self.device)
        self.actions[slots] = actions.to(self.device)
        self.rewards[slots] = rewards.to(self.device)
        self.discounts[slots] = discounts.to(self.device)
        self._episodes.append((self._write_slot, length))
        self._write_slot = (self._write_slot + length + 1) % self.frame_slots
        self._used_slots += length + 1
        self._num_transitions += length
        self.total_transitions_added += length
        self._index = None

    def _evict_oldest(self) -> None:
        _, length = self._episodes.popleft()
        self._used_slots -= length + 1
        self._num_transitions -= length
        self._index = None

    # ------------------------------------------------------------------ sampling
    def _sample_index(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._index is None:
            # an episode shorter than nstep has no full window (DrQ-v2 would fail on it); it is never sampled
            eligible = [(first, length - self.nstep + 1) for first, length in self._episodes if length >= self.nstep]
            if not eligible:
                raise ValueError(f"the replay holds no episode with at least nstep={self.nstep} transitions")
            table = torch.tensor(eligible, dtype=torch.int64).to(self.device)
            self._index = (table[:, 0].contiguous(), table[:, 1].contiguous())
        return self._index

    def _stack(self, first_slot: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """Frame stacks ending at `position` (relative to the episode's slot 0); earlier frames repeat frame 0."""
        offsets = torch.arange(1 - self.frame_stack, 1, device=self.device)
        relative = (position.unsqueeze(1) + offsets).clamp_min(0)
        stacked = self.frames[(first_slot.unsqueeze(1) + relative) % self.frame_slots]
        return stacked.reshape(position.shape[0], -1, *self.frame_shape[1:])

    def sample(self, batch_size: int) -> Batch:
        """Episode uniformly, then a start i uniformly in [1, T − n + 1]: obs = frame i−1, action a[i],
        R = Σ_k (Π_{j<k} γ·d[i+j]) r[i+k], D = Π_k γ·d[i+k], next_obs = frame i+n−1.
        """
        first_slots, n_starts = self._sample_index()
        episode = torch.randint(0, first_slots.shape[0], (batch_size,), generator=self.generator, device=self.device)
        first, count = first_slots[episode], n_starts[episode]
        uniform = torch.rand(batch_size, generator=self.generator, device=self.device, dtype=torch.float64)
        start = 1 + torch.minimum((uniform * count).long(), count - 1)

        window = (first.unsqueeze(1) + start.unsqueeze(1)
                  + torch.arange(self.nstep, device=self.device)) % self.frame_slots
        step_discounts = self.discounts[window] * self.discount
        kept = torch.cumprod(step_discounts, dim=1)
        weights = torch.cat([torch.ones_like(kept[:, :1]), kept[:, :-1]], dim=1)
        reward = (weights * self.rewards[window]).sum(1, keepdim=True)

        obs_position, next_position = start - 1, start + self.nstep - 1
        return Batch(
            obs=self._stack(first, obs_position),
            action=self.actions[window[:, 0]],
            reward=reward,
            discount=kept[:, -1:],
            next_obs=self._stack(first, next_position),
            sensor=self.sensors[(first + obs_position) % self.frame_slots],
            next_sensor=self.sensors[(first + next_position) % self.frame_slots],
        )
