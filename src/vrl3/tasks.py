"""Per-task constants of VRL3's Adroit environments (reference §4.3-4.6)."""

from dataclasses import dataclass

from vrl3.errors import UserError


@dataclass(frozen=True)
class AdroitTask:
    name: str
    gym_id: str
    cameras: tuple[str, ...]
    sensor_slice: slice  # the 24 hand joints inside qpos
    reward_scale: float  # 1 / maximal sparse-bonus reward per env step
    success_goal_steps: int  # episode succeeds iff goal steps > this
    max_env_steps: int
    action_dim: int
    state_keys: tuple[str, ...]  # keys set_env_state of AdroitHand*-v1 accepts
    encoder_lr_scale: float  # value of `encoder_lr_scale: auto`


ADROIT_TASKS = {
    "door": AdroitTask("door", "AdroitHandDoor-v1", ("top",), slice(4, -2), 1 / 20, 25, 200, 28,
                       ("qpos", "qvel", "door_body_pos"), 1.0),
    "hammer": AdroitTask("hammer", "AdroitHandHammer-v1", ("top",), slice(2, -7), 1 / 100, 25, 200, 26,
                         ("qpos", "qvel", "board_pos"), 1.0),
    "pen": AdroitTask("pen", "AdroitHandPen-v1", ("vil_camera",), slice(None, -6), 1 / 50, 20, 100, 24,
                      ("qpos", "qvel", "desired_orien"), 1.0),
    "relocate": AdroitTask("relocate", "AdroitHandRelocate-v1", ("cam1", "cam2", "cam3"), slice(6, -6), 1 / 30,
                           25, 200, 30, ("qpos", "qvel", "obj_pos", "target_pos"), 0.01),
}

SENSOR_DIM = 24


def get_task(name: str) -> AdroitTask:
    try:
        return ADROIT_TASKS[name]
    except KeyError:
        raise UserError(f"unknown task {name!r}: choose one of {', '.join(ADROIT_TASKS)}") from None
