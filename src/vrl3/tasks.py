"""Per-task constants of VRL3's Adroit environments (reference §4.3-4.6) and of the Franka Kitchen tasks."""

from dataclasses import dataclass

from vrl3.errors import UserError

# The shadow map of Adroit's scenes (gymnasium-robotics' adroit_assets.xml), as VRL3's images were rendered. At 84x84
# it is most of a frame's GPU cost (docs/benchmarks.md); a smaller one only moves the edges of shadows.
DEFAULT_SHADOW_SIZE = 4096


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
    sensor_dim: int = 24

    @property
    def minari_dataset(self) -> str:
        return f"D4RL/{self.name}/human-v2"

    @property
    def frame_channels(self) -> int:
        """Channels of one rendered frame: RGB per camera."""
        return 3 * len(self.cameras)


@dataclass(frozen=True)
class KitchenTask:
    """A Franka Kitchen task: the subtasks of one D4RL/kitchen Minari dataset (docs/kitchen.md)."""
    name: str
    minari_dataset: str
    subtasks: tuple[str, ...]  # names as in gymnasium-robotics' FrankaKitchen-v1
    gym_id: str = "FrankaKitchen-v1"
    cameras: tuple[str, ...] = ("counter",)  # one free camera at FrankaKitchen-v1's default view
    sensor_dim: int = 18  # robot joint positions (9) and velocities (9)
    success_goal_steps: int = 0  # success iff all subtasks were done together on at least one env step
    max_env_steps: int = 280  # FrankaKitchen-v1's max_episode_steps (and that of the complete dataset)
    action_dim: int = 9
    encoder_lr_scale: float = 1.0
    dataset_episodes: int | None = None  # episodes in the Minari dataset (docs/kitchen.md)

    @property
    def frame_channels(self) -> int:
        return 3 * len(self.cameras)

    @property
    def reward_scale(self) -> float:
        """Rewards count completed subtasks; scaled so that one env step earns at most 1, as for Adroit."""
        return 1.0 / len(self.subtasks)


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

# The subtasks of each dataset are the `tasks_to_complete` its generation script passed to FrankaKitchen-v1
# (Farama's minari-dataset-generation-scripts, scripts/D4RL/kitchen/create_franka_dataset.py).
KITCHEN_TASKS = {
    "kitchen-complete": KitchenTask("kitchen-complete", "D4RL/kitchen/complete-v2",
                                    ("microwave", "kettle", "light switch", "slide cabinet"), dataset_episodes=19),
    "kitchen-partial": KitchenTask("kitchen-partial", "D4RL/kitchen/partial-v2",
                                   ("microwave", "kettle", "light switch", "slide cabinet"), dataset_episodes=621),
    "kitchen-mixed": KitchenTask("kitchen-mixed", "D4RL/kitchen/mixed-v2",
                                 ("microwave", "kettle", "bottom burner", "light switch"), dataset_episodes=621),
}

TASKS = {**ADROIT_TASKS, **KITCHEN_TASKS}


def get_task(name: str) -> AdroitTask | KitchenTask:
    try:
        return TASKS[name]
    except KeyError:
        raise UserError(f"unknown task {name!r}: choose one of {', '.join(TASKS)}") from None


def get_adroit_task(name: str) -> AdroitTask:
    task = get_task(name)
    if not isinstance(task, AdroitTask):
        raise UserError(f"task {name!r} is a Franka Kitchen task; this needs an Adroit task "
                        f"({', '.join(ADROIT_TASKS)})")
    return task


def get_kitchen_task(name: str) -> KitchenTask:
    task = get_task(name)
    if not isinstance(task, KitchenTask):
        raise UserError(f"task {name!r} is not a Franka Kitchen task")
    return task
