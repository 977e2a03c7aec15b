"""The pieces of VRL3's critic and actor losses as pure functions (reference §2.7, §3, §4.1)."""

import torch
import torch.nn.functional as F

BC_STEPS_PER_ITERATION = 40000  # stage-3 BC decay counts agent steps in "iterations" of 40 000


def td_target(reward: torch.Tensor, discount: torch.Tensor, target_q1: torch.Tensor,
              target_q2: torch.Tensor) -> torch.Tensor:
    """y = R + D · min(Q1_targ, Q2_targ); D already holds γ^n and the environment discounts."""
    return reward + discount * torch.min(target_q1, target_q2)


def safe_q_target(y: torch.Tensor, threshold: float, factor: float) -> torch.Tensor:
    """Safe Q: every y > T + 1 becomes T + (y − T)^f; off when f >= 1 (f = 0 caps at T + 1)."""
    if factor >= 1:
        return y
    # clamp keeps the unused branch finite (a negative base with a fractional power is NaN)
    squashed = threshold + (y - threshold).clamp_min(1.0) ** factor
    return torch.where(y > threshold + 1, squashed, y)


def td_loss(q1: torch.Tensor, q2: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(q1, target) + F.mse_loss(q2, target)


def cql_term(q_random: torch.Tensor, q_data: torch.Tensor, q_pi: torch.Tensor, q_pi_next: torch.Tensor,
             temp: float, weight: float) -> torch.Tensor:
    """One head's conservative term: w·τ·mean_B logsumexp([Q_rand (N), Q_data, Q_pi, Q_pi_next] / τ) − w·mean_B Q_data.

    q_random (B, N); q_data, q_pi, q_pi_next (B,) or (B, 1).
    """
    batch = q_random.shape[0]
    values = torch.cat([q_random, q_data.reshape(batch, 1), q_pi.reshape(batch, 1), q_pi_next.reshape(batch, 1)], 1)
    return weight * temp * torch.logsumexp(values / temp, dim=1).mean() - weight * q_data.mean()


def actor_q_loss(q1: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
    return -torch.min(q1, q2).mean()


def bc_loss(mean_action: torch.Tensor, data_action: torch.Tensor, weight: float) -> torch.Tensor:
    return weight * F.mse_loss(mean_action, data_action)


def pretanh_penalty(pretanh: torch.Tensor, threshold: float, weight: float) -> torch.Tensor:
    """weight · mean(max(|u| − threshold, 0)²) over all pre-tanh outputs u."""
    return weight * (pretanh.abs() - threshold).clamp_min(0.0).square().mean()


def stage3_bc_weight(step: int, lam0: float, lam1: float) -> float:
    return lam0 * lam1 ** (step // BC_STEPS_PER_ITERATION)


def linear_schedule(init: float, final: float, duration: int, step: int) -> float:
    """DrQ-v2 `linear(init, final, duration)`: interpolate, then hold `final` after `duration` steps."""
    mix = min(max(step / duration, 0.0), 1.0) if duration > 0 else 1.0
    return (1.0 - mix) * init + mix * final
