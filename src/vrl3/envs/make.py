"""make_env: the VRL3 pixel environment of any task (Adroit or Franka Kitchen)."""

from vrl3.envs.adroit import AdroitEnv
from vrl3.envs.kitchen import KitchenEnv
from vrl3.envs.pixel_env import PixelEnv
from vrl3.tasks import DEFAULT_SHADOW_SIZE, KitchenTask, get_task


def make_env(task: str, seed: int, action_repeat: int = 2, frame_stack: int = 1, image_size: int = 84,
             time_limit: bool = True, flip_images: bool | None = None,
             shadow_size: int = DEFAULT_SHADOW_SIZE) -> PixelEnv:
    """flip_images None: the task family's default (Adroit: flipped as VRL3 stored them; kitchen: upright).
    shadow_size: the renderer's shadow map, texels per side (kitchen renders without shadows)."""
    kwargs = {"action_repeat": action_repeat, "frame_stack": frame_stack, "image_size": image_size,
              "time_limit": time_limit, "shadow_size": shadow_size}
    if flip_images is not None:
        kwargs["flip_images"] = flip_images
    env_class = KitchenEnv if isinstance(get_task(task), KitchenTask) else AdroitEnv
    return env_class(task, seed, **kwargs)
