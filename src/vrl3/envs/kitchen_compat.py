"""Makes gymnasium-robotics 1.4.2's FrankaKitchen-v1 run on MuJoCo 4.

FrankaRobot._get_obs reads the robot joints with gymnasium_robotics.utils.mujoco_utils.get_joint_qpos, which
checks `model.jnt_type[id] in (mjtJoint.mjJNT_HINGE, mjtJoint.mjJNT_SLIDE)`. MuJoCo's enum compares unequal to
numpy integers from the enum side, so the membership test is False and the assertion fails for every joint
(same cause: google-deepmind/mujoco_warp#1630). The replacement reads the same entries by joint address.
"""

import mujoco
import numpy as np
from gymnasium_robotics.envs.franka_kitchen import franka_env

ONE_DOF_JOINTS = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))


def robot_get_obs(model: mujoco.MjModel, data: mujoco.MjData, joint_names) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities of the joints named robot*, as mujoco_utils.robot_get_obs returns them."""
    ids = [model.joint(name).id for name in joint_names if name.startswith("robot")]
    if any(int(model.jnt_type[i]) not in ONE_DOF_JOINTS for i in ids):
        raise ValueError("FrankaKitchen robot joints must be hinge or slide joints")
    return data.qpos[model.jnt_qposadr[ids]].copy(), data.qvel[model.jnt_dofadr[ids]].copy()


def patch_franka_robot() -> None:
    franka_env.robot_get_obs = robot_get_obs
