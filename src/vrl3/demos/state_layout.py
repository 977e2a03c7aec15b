"""Simulator states from DAPG state observations (the `_get_obs` layouts of AdroitHand*-v1 = mj_envs v0).

A recorded observation holds most joint positions verbatim but not all: door drops the arm slide ARTz (qpos[0]),
hammer/pen/relocate drop the object's six joints and give the object pose (position, plus orientation for hammer
and pen) in world coordinates instead. The missing joints are solved by Gauss-Newton on the forward kinematics so
that the recomputed pose entries match the recorded ones; directions the observation does not determine (the
relocate ball's rotation, the pen's spin about its own axis) keep their previous value (minimum-norm steps).

Replay fidelity is measured per observation pair (replayed vs recorded) on three kinds of entries: joint positions
(`state_errors`, first value), world positions (`state_errors`, second value) and object orientations
(`orientation_error`: hammer's euler angles, the pen's and the target's axes).
"""

from dataclasses import dataclass
from typing import Callable

import mujoco
import numpy as np
from gymnasium_robotics.utils.rotations import euler2mat

SOLVE_TOLERANCE = 1e-10
SOLVE_MAX_ITERATIONS = 30
JACOBIAN_STEP = 1e-7

Residual = Callable[[mujoco.MjModel, mujoco.MjData, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ObservationLayout:
    obs_dim: int
    copied: tuple[tuple[int, int, int], ...]  # (qpos start, obs start, count): joint positions held verbatim
    solved: tuple[int, ...]  # qpos entries solved from the pose entries
    joint_obs: slice  # observation entries that are joint positions (rad; metres for the slide joints)
    position_obs: tuple[slice, ...]  # observation entries that are world positions or differences of them (m)
    residual: Residual  # recomputed minus recorded pose entries; zero at the solution
    # Observation entries that are orientations, as (kind, entries): "euler" = a body's rotation as gymnasium-robotics
    # euler angles (quat2euler: intrinsic x-y-z, rad), "axis" = a direction vector (any length). Empty: none observed.
    orientation_obs: tuple[tuple[str, slice], ...] = ()


def _door_residual(model, data, obs):
    return data.site("S_grasp").xpos - obs[29:32]


def _hammer_residual(model, data, obs):
    body = data.body("Object")
    return np.concatenate([body.xpos - obs[36:39], (body.xmat.reshape(3, 3) - euler2mat(obs[39:42])).ravel()])


def _pen_residual(model, data, obs):
    axis = data.site("object_top").xpos - data.site("object_bottom").xpos
    return np.concatenate([data.body("Object").xpos - obs[24:27],
                           axis / np.linalg.norm(axis) - obs[33:36] / np.linalg.norm(obs[33:36])])


def _relocate_residual(model, data, obs):
    return (data.site("S_grasp").xpos - data.body("Object").xpos) - obs[30:33]


LAYOUTS = {
    # qpos[1:-2], latch, hinge, palm, handle, palm - handle, door_open
    "door": ObservationLayout(39, ((1, 0, 27), (29, 27, 1), (28, 28, 1)), (0,), slice(0, 29),
                              (slice(29, 32), slice(32, 35), slice(35, 38)), _door_residual),
    # qpos[:-6], clipped qvel[-6:], palm, object pos, object euler, nail site, nail impact
    "hammer": ObservationLayout(46, ((0, 0, 27),), tuple(range(27, 33)), slice(0, 27),
                                (slice(33, 36), slice(36, 39), slice(42, 45)), _hammer_residual,
                                (("euler", slice(39, 42)),)),
    # qpos[:-6], object pos, object qvel, pen axis, target axis, pos - eps_ball, axis - target axis
    # (axis - target axis, a difference of two directions, is left out of the orientations: it follows from them)
    "pen": ObservationLayout(45, ((0, 0, 24),), tuple(range(24, 30)), slice(0, 24),
                             (slice(24, 27), slice(39, 42)), _pen_residual,
                             (("axis", slice(33, 36)), ("axis", slice(36, 39)))),
    # qpos[:-6], palm - object, palm - target, object - target
    "relocate": ObservationLayout(39, ((0, 0, 30),), tuple(range(30, 36)), slice(0, 30),
                                  (slice(30, 33), slice(33, 36), slice(36, 39)), _relocate_residual),
}


def solve_qpos(model: mujoco.MjModel, data: mujoco.MjData, layout: ObservationLayout, obs: np.ndarray,
               guess: np.ndarray) -> np.ndarray:
    """qpos that reproduces the observation; solved entries start from `guess` (e.g. the previous step's qpos).

    Leaves data.qpos at the result with forward kinematics done (velocities, contacts: not updated).
    """
    qpos = np.array(guess, dtype=np.float64)
    for qpos_start, obs_start, count in layout.copied:
        qpos[qpos_start:qpos_start + count] = obs[obs_start:obs_start + count]
    solved = list(layout.solved)

    def residual_at(values: np.ndarray) -> np.ndarray:
        data.qpos[:] = values
        mujoco.mj_kinematics(model, data)
        return layout.residual(model, data, obs)

    residual = residual_at(qpos)
    for _ in range(SOLVE_MAX_ITERATIONS):
        if np.max(np.abs(residual)) < SOLVE_TOLERANCE:
            break
        jacobian = np.empty((residual.size, len(solved)))
        for column, index in enumerate(solved):
            shifted = qpos.copy()
            shifted[index] += JACOBIAN_STEP
            jacobian[:, column] = (residual_at(shifted) - residual) / JACOBIAN_STEP
        step = np.linalg.lstsq(jacobian, -residual, rcond=1e-6)[0]  # minimum norm: unobserved directions stay
        qpos[solved] += step
        residual = residual_at(qpos)
    return qpos


def state_errors(layout: ObservationLayout, replayed_obs: np.ndarray, recorded_obs: np.ndarray) -> tuple[float, float]:
    """Largest |replayed - recorded| over the joint entries and over the position entries of two observations."""
    difference = np.abs(np.asarray(replayed_obs, np.float64) - np.asarray(recorded_obs, np.float64))
    joints = float(np.max(difference[..., layout.joint_obs]))
    positions = float(max(np.max(difference[..., part]) for part in layout.position_obs))
    return joints, positions


def rotation_angle(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Angle (rad, in [0, pi]) of the rotation between rotation matrices (..., 3, 3): |first^T second| as angle-axis."""
    relative = np.swapaxes(first, -1, -2) @ second
    cosine = (np.trace(relative, axis1=-2, axis2=-1) - 1.0) / 2.0
    skew = relative - np.swapaxes(relative, -1, -2)  # 2 sin(angle) [axis]_x
    sine = np.linalg.norm(np.stack([skew[..., 2, 1], skew[..., 0, 2], skew[..., 1, 0]], axis=-1), axis=-1) / 2.0
    return np.arctan2(sine, cosine)  # accurate near 0 and pi, unlike arccos of the trace alone


def axis_angle(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Angle (rad, in [0, pi]) between direction vectors (..., 3) of any length."""
    return np.arctan2(np.linalg.norm(np.cross(first, second), axis=-1), np.sum(first * second, axis=-1))


def orientation_error(layout: ObservationLayout, replayed_obs: np.ndarray, recorded_obs: np.ndarray) -> float | None:
    """Largest angle (rad) between replayed and recorded orientation entries; None where none are observed.

    "euler" entries: the angle of the rotation from the recorded to the replayed body orientation (so euler angles
    that wrap around, e.g. pi - 0.01 vs -pi + 0.01, count as the 0.02 rad they are). "axis" entries: the angle
    between the two directions (a spin about the axis itself is not observed and counts 0).
    """
    if not layout.orientation_obs:
        return None
    replayed, recorded = np.asarray(replayed_obs, np.float64), np.asarray(recorded_obs, np.float64)
    angles = []
    for kind, part in layout.orientation_obs:
        if kind == "euler":
            angles.append(np.max(rotation_angle(euler2mat(replayed[..., part]), euler2mat(recorded[..., part]))))
        elif kind == "axis":
            angles.append(np.max(axis_angle(replayed[..., part], recorded[..., part])))
        else:
            raise ValueError(f"unknown orientation kind {kind!r}")
    return float(max(angles))
