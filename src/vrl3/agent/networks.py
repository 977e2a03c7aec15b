"""Actor, critic and the truncated-normal action sampler (reference §2.3, §2.4)."""

import math

import torch
import torch.nn as nn

ACTION_EPS = 1e-6


def orthogonal_init(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """DrQ-v2 weight_init: orthogonal Linear weights, zero biases (LayerNorm keeps 1/0)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, generator=generator)
            nn.init.zeros_(layer.bias)


def trunk(input_dim: int, feature_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(input_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())


def mlp(input_dim: int, hidden_dim: int, output_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU(inplace=True),
                         nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True),
                         nn.Linear(hidden_dim, output_dim))


class Actor(nn.Module):
    """features (B, D) -> (mu = tanh(u), u): the deterministic mean action and its pre-tanh value."""

    def __init__(self, input_dim: int, action_dim: int, feature_dim: int, hidden_dim: int):
        super().__init__()
        self.trunk = trunk(input_dim, feature_dim)
        self.policy = mlp(feature_dim, hidden_dim, action_dim)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pretanh = self.policy(self.trunk(features))
        return torch.tanh(pretanh), pretanh


class Critic(nn.Module):
    """Twin Q heads on a shared trunk. `action` is (B, A) -> Q (B, 1), or (B, M, A) -> Q (B, M, 1).

    The (B, M, A) form evaluates M actions per state with one trunk pass and one matmul per layer;
    it gives the same values as M separate calls.
    """

    def __init__(self, input_dim: int, action_dim: int, feature_dim: int, hidden_dim: int):
        super().__init__()
        self.trunk = trunk(input_dim, feature_dim)
        self.Q1 = mlp(feature_dim + action_dim, hidden_dim, 1)
        self.Q2 = mlp(feature_dim + action_dim, hidden_dim, 1)

    def forward(self, features: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(features)
        if action.dim() == 3:
            h = h.unsqueeze(1).expand(-1, action.shape[1], -1)
        h_action = torch.cat([h, action], dim=-1)
        return self.Q1(h_action), self.Q2(h_action)


def clamp_straight_through(x: torch.Tensor, low: float = -1 + ACTION_EPS, high: float = 1 - ACTION_EPS) -> torch.Tensor:
    """Value of clamp(x), gradient of x (DrQ-v2 TruncatedNormal._clamp)."""
    return x + (x.clamp(low, high) - x).detach()


def sample_action(mu: torch.Tensor, std: float | torch.Tensor, clip: float | None, noise: torch.Tensor) -> torch.Tensor:
    """TruncatedNormal(mu, std).sample(clip): mu + clip(ε·std, ±clip), clamped to ±(1-1e-6) straight-through.

    `noise` holds standard-normal draws ε shaped like mu. Reparameterised: the gradient reaches mu.
    """
    scaled = noise * std
    if clip is not None:
        scaled = scaled.clamp(-clip, clip)
    return clamp_straight_through(mu + scaled)


def _log(value: float | torch.Tensor) -> float | torch.Tensor:
    if isinstance(value, torch.Tensor):
        return torch.log(value)
    return math.log(value) if value > 0 else -math.inf


def normal_log_prob(x: torch.Tensor, mu: torch.Tensor, std: float | torch.Tensor) -> torch.Tensor:
    """Untruncated Normal(mu, std) log-density per dimension (nan/inf for std = 0, as torch's Normal gives)."""
    return -((x - mu) ** 2) / (2 * std ** 2) - _log(std) - 0.5 * math.log(2 * math.pi)


def normal_entropy(std: float | torch.Tensor) -> float | torch.Tensor:
    """Entropy of one Normal(., std) dimension (-inf for std = 0)."""
    return 0.5 + 0.5 * math.log(2 * math.pi) + _log(std)
