"""A tiny VRL3Agent and a hand-made batch, shared by the agent tests."""

import torch

from vrl3.agent import AgentConfig, VRL3Agent
from vrl3.replay import Batch

A = 6  # small action dimension for tests
B = 6  # batch size
SENSOR_DIM = 24


def tiny_config(**overrides) -> AgentConfig:
    return AgentConfig(**{"hidden_dim": 32, "feature_dim": 16, **overrides})


def make_agent(seed=0, obs_channels=3, device="cpu", cuda_graphs=None, **overrides) -> VRL3Agent:
    return VRL3Agent((obs_channels, 84, 84), A, SENSOR_DIM, tiny_config(**overrides), device=device, seed=seed,
                     cuda_graphs=cuda_graphs)


def make_batch(seed=0, obs_channels=3) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(obs=torch.randint(0, 256, (B, obs_channels, 84, 84), generator=g, dtype=torch.uint8),
                 action=torch.rand(B, A, generator=g) * 2 - 1,
                 reward=torch.rand(B, 1, generator=g) * 3,
                 discount=torch.full((B, 1), 0.99 ** 3),
                 next_obs=torch.randint(0, 256, (B, obs_channels, 84, 84), generator=g, dtype=torch.uint8),
                 sensor=torch.randn(B, SENSOR_DIM, generator=g), next_sensor=torch.randn(B, SENSOR_DIM, generator=g))
