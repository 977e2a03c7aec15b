"""Expert demonstrations: rollouts of the DAPG-trained policies (hand_dapg policies/<task>-v0.pickle).

The pickles hold an mjrl Gaussian MLP (obs -> hidden -> hidden -> action, tanh hidden layers, input and output
shift/scale). Only its mean action is used, clipped to [-1, 1], on the env's 39/46/45/39-D state observation.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vrl3.demos.dapg_pickle import MjrlObject, load_policy_pickle
from vrl3.envs import AdroitEnv
from vrl3.envs.timestep import TimeStep
from vrl3.errors import UserError

SCALE_EPSILON = 1e-8  # mjrl's FCNetwork divides by (in_scale + 1e-8)


@dataclass(frozen=True)
class ExpertPolicy:
    weights: tuple[np.ndarray, ...]  # (out, in) float32 per layer
    biases: tuple[np.ndarray, ...]
    in_shift: np.ndarray
    in_scale: np.ndarray
    out_shift: np.ndarray
    out_scale: np.ndarray

    @property
    def obs_dim(self) -> int:
        return self.weights[0].shape[1]

    @property
    def action_dim(self) -> int:
        return self.weights[-1].shape[0]

    def mean_action(self, observation: np.ndarray) -> np.ndarray:
        hidden = (np.asarray(observation, np.float32) - self.in_shift) / (self.in_scale + SCALE_EPSILON)
        for weight, bias in zip(self.weights[:-1], self.biases[:-1]):
            hidden = np.tanh(weight @ hidden + bias)
        out = self.weights[-1] @ hidden + self.biases[-1]
        return out * self.out_scale + self.out_shift


def _array(value) -> np.ndarray:
    return np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=np.float32)


def policy_from_pickle(path: Path, obs_dim: int, action_dim: int) -> ExpertPolicy:
    fix = "use hand_dapg's policies file for this task"
    policy = load_policy_pickle(path)
    try:
        model = policy.model
        layers = model._modules["fc_layers"]._modules
        parameters = [layers[key]._parameters for key in sorted(layers, key=int)]
        weights = tuple(_array(p["weight"]) for p in parameters)
        biases = tuple(_array(p["bias"]) for p in parameters)
        transforms = tuple(_array(getattr(model, name)) for name in ("in_shift", "in_scale", "out_shift", "out_scale"))
        nonlinearity = getattr(model.nonlinearity, "__name__", "")
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise UserError(f"{path}: not an mjrl Gaussian MLP policy ({type(error).__name__}: {error}); {fix}") from None
    if not isinstance(policy, MjrlObject) or nonlinearity != "tanh":
        raise UserError(f"{path}: not an mjrl Gaussian MLP with tanh hidden layers; {fix}")
    expert = ExpertPolicy(weights, biases, *transforms)
    shapes_chain = all(w.ndim == 2 and b.shape == (w.shape[0],) for w, b in zip(weights, biases)) and all(
        later.shape[1] == earlier.shape[0] for earlier, later in zip(weights, weights[1:]))
    if not shapes_chain or (expert.obs_dim, expert.action_dim) != (obs_dim, action_dim) or any(
            t.shape != (n,) for t, n in zip(transforms, (obs_dim, obs_dim, action_dim, action_dim))):
        raise UserError(f"{path}: policy maps {expert.obs_dim} -> {expert.action_dim}, the task needs {obs_dim} -> "
                        f"{action_dim} (or its layers do not chain): wrong task or file; {fix}")
    return expert


def rollout(env: AdroitEnv, policy: ExpertPolicy, seed: int) -> list[TimeStep]:
    """One episode from a seeded reset until the time limit (or the pen drops), mean actions clipped to [-1, 1]."""
    steps = [env.reset(seed=seed)]
    while not steps[-1].last():
        action = np.clip(policy.mean_action(env.sim._get_obs()), -1.0, 1.0)
        steps.append(env.step(action))
    return steps
