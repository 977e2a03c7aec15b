"""VRL3's cameras and visual edits (RRL fork of mj_envs, reference §4.6) added to the gymnasium-robotics scenes."""

from dataclasses import dataclass
from functools import cache

import gymnasium
import gymnasium_robotics  # noqa: F401  (registers the AdroitHand*-v1 ids)
import mujoco
import numpy as np
from gymnasium.envs.registration import load_env_creator

from vrl3.tasks import get_task


@dataclass(frozen=True)
class CameraPose:
    pos: tuple[float, float, float]
    euler: tuple[float, float, float] | None = None  # radians, MuJoCo's default intrinsic "xyz" sequence
    quat: tuple[float, float, float, float] | None = None  # (w, x, y, z), used when euler is None


# Poses of the fork's XMLs; all cameras sit in the worldbody and keep MuJoCo's default fovy (45 degrees).
VRL3_CAMERAS = {
    "door": {"top": CameraPose((0, 0, 1.5), euler=(0, 0, 3.14))},
    "hammer": {"top": CameraPose((0, 0, 1.1), euler=(0, 0, 3.14))},
    "pen": {"vil_camera": CameraPose((0, -0.8, 0.8), quat=(0.92388, 0.382683, 0, 0))},
    "relocate": {
        "cam1": CameraPose((0, -0.04, -1.0), euler=(-3.14, 0, 3.14)),
        "cam2": CameraPose((0, 0.8, 0.2), euler=(-1.57, 0, 3.14)),
        "cam3": CameraPose((0.8, 0, 0.2), euler=(0, 1.57, 1.57)),
    },
}


def camera_quat(pose: CameraPose) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a camera pose, as MuJoCo's compiler would compute it from the XML."""
    if pose.euler is None:
        quat = np.asarray(pose.quat, dtype=np.float64)
        return quat / np.linalg.norm(quat)
    quat = np.zeros(4)
    mujoco.mju_euler2Quat(quat, np.asarray(pose.euler, dtype=np.float64), "xyz")
    return quat


def add_vrl3_cameras(spec: mujoco.MjSpec, task_name: str) -> None:
    """Add VRL3's cameras; a camera whose name already exists (pen `vil_camera`) is moved to VRL3's pose."""
    existing = {camera.name: camera for camera in spec.cameras}
    for name, pose in VRL3_CAMERAS[task_name].items():
        camera = existing.get(name) or spec.worldbody.add_camera(name=name)
        camera.pos = list(pose.pos)
        camera.alt.type = mujoco.mjtOrientation.mjORIENTATION_QUAT
        camera.quat = list(camera_quat(pose))


def apply_vrl3_visuals(spec: mujoco.MjSpec, task_name: str) -> None:
    """The fork's purely visual edits (no effect on physics): opaque pens; relocate without table or shadows."""
    if task_name == "pen":
        for geom_name in ("pen", "target"):
            geom = spec.geom(geom_name)
            geom.rgba = [*geom.rgba[:3], 1.0]
    elif task_name == "relocate":
        # cam1 looks up from below the table: the fork hides the table so the hand and ball are visible.
        for geom in spec.body("table").geoms:
            geom.material = ""
            geom.rgba = [0.0, 0.0, 0.0, 0.0]
        sphere = spec.geom("sphere")
        sphere.material = ""
        sphere.rgba = [1.0, 0.0, 0.0, 1.0]
        target = spec.site("target")
        target.rgba = [*target.rgba[:3], 0.3]
        for light in spec.lights:
            light.castshadow = False


def build_vrl3_model(task_name: str, xml_path: str) -> mujoco.MjModel:
    spec = mujoco.MjSpec.from_file(xml_path)
    add_vrl3_cameras(spec, task_name)
    apply_vrl3_visuals(spec, task_name)
    return spec.compile()


@cache
def vrl3_env_class(task_name: str) -> type:
    """The gymnasium-robotics env class of a task, loading the scene with VRL3's cameras and visuals.

    Only `_initialize_simulation` is replaced, so the class's own __init__ (actuator gain edits, site ids,
    state space) runs unchanged on the edited model.
    """
    base = load_env_creator(gymnasium.spec(get_task(task_name).gym_id).entry_point)

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        model = build_vrl3_model(task_name, self.fullpath)
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    return type(f"VRL3{base.__name__}", (base,), {"_initialize_simulation": _initialize_simulation})
