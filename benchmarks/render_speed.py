"""Where stage 3's rendering time goes: MuJoCo's OpenGL renderer at 84x84 in one process and in several at once.

    MUJOCO_GL=egl python benchmarks/render_speed.py --task door --renders 400 --tiles 8 --processes 1 8 \
        --shadow-sizes 1024 512

Per process count P (P processes rendering at the same time), for one camera of the task:
  scene_ms       mjv_updateScene (CPU)
  render_ms      mjr_render + mjr_readPixels of one 84x84 view (what `vrl3` does per frame)
  no_shadow_ms   the same with shadows and reflections off (a probe of the GPU's raster cost, not used by `vrl3`)
  tiled_ms       per view when --tiles views are drawn side by side in one framebuffer and read back at once
  tile_max_diff  largest pixel difference between a tile and the same state rendered alone (0: identical)
  shadow_S_ms    render_ms with an S-texel shadow map (config shadow_size; the scenes' own is 4096), per --shadow-sizes
  shadow_S_diff  mean absolute pixel difference (0-255) of those renders from the scene's own, over --tiles states
"""

import argparse
import json
import multiprocessing
import time

import mujoco
import numpy as np

from vrl3.envs import make_env
from vrl3.tasks import ADROIT_TASKS


def fixed_camera(model, name: str) -> mujoco.MjvCamera:
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
    camera.fixedcamid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name)
    return camera


def random_states(env, count: int, seed: int) -> list:
    """`count` MjData of the task's model in nearby random poses."""
    rng = np.random.default_rng(seed)
    datas = []
    for _ in range(count):
        data = mujoco.MjData(env.sim.model)
        data.qpos[:] = env.sim.data.qpos + rng.normal(0, 0.1, env.sim.model.nq)
        mujoco.mj_forward(env.sim.model, data)
        datas.append(data)
    return datas


def per_render_ms(render, count: int) -> float:
    render()  # warm-up
    started = time.perf_counter()
    for _ in range(count):
        render()
    return 1000 * (time.perf_counter() - started) / count


def shadow_size_renders(env, datas: list, camera, size: int, renders: int) -> tuple[float, np.ndarray]:
    """ms per render and the renders of `datas` with an S-texel shadow map (its own renderer: the map's size is
    fixed when a renderer's context is made)."""
    env.sim.model.vis.quality.shadowsize = size
    renderer = mujoco.Renderer(env.sim.model, env.image_size, env.image_size)
    try:
        images = []
        for data in datas:
            renderer.update_scene(data, camera)
            images.append(renderer.render().astype(int))
        return per_render_ms(renderer.render, renders), np.stack(images)
    finally:
        renderer.close()


def measure(task: str, renders: int, tiles: int, seed: int, shadow_sizes: tuple[int, ...] = ()) -> dict:
    env = make_env(task, seed=seed)
    env.reset()
    model, size = env.sim.model, env.image_size
    datas = random_states(env, tiles, seed)
    camera, option = fixed_camera(model, env.task.cameras[0]), mujoco.MjvOption()
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, size * tiles)
    gl = mujoco.GLContext(size * tiles, size)
    gl.make_current()
    context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
    mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, context)
    scenes = [mujoco.MjvScene(model, maxgeom=10_000) for _ in range(tiles)]
    view = mujoco.MjrRect(0, 0, size, size)
    image = np.empty((size, size, 3), np.uint8)
    strip = np.empty((size, size * tiles, 3), np.uint8)

    def update(scene, data):
        mujoco.mjv_updateScene(model, data, option, None, camera, mujoco.mjtCatBit.mjCAT_ALL, scene)

    def render_one(scene):
        mujoco.mjr_render(view, scene, context)
        mujoco.mjr_readPixels(image, None, view, context)
        return np.flipud(image).copy()

    def render_strip():
        for index, scene in enumerate(scenes):
            mujoco.mjr_render(mujoco.MjrRect(index * size, 0, size, size), scene, context)
        mujoco.mjr_readPixels(strip, None, mujoco.MjrRect(0, 0, size * tiles, size), context)
        return [np.flipud(strip[:, index * size:(index + 1) * size]) for index in range(tiles)]

    for scene, data in zip(scenes, datas):
        update(scene, data)
    alone = [render_one(scene) for scene in scenes]
    tile_max_diff = max(int(np.abs(a.astype(int) - t.astype(int)).max()) for a, t in zip(alone, render_strip()))
    result = {"task": task, "scene_ms": per_render_ms(lambda: update(scenes[0], datas[0]), renders),
              "render_ms": per_render_ms(lambda: render_one(scenes[0]), renders),
              "tiled_ms": per_render_ms(render_strip, max(renders // tiles, 1)) / tiles,
              "tile_max_diff": tile_max_diff}
    for scene in scenes:
        scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
    result["no_shadow_ms"] = per_render_ms(lambda: render_one(scenes[0]), renders)
    context.free()
    gl.free()
    own_size = model.vis.quality.shadowsize
    _, own_images = shadow_size_renders(env, datas, camera, own_size, 1)
    for shadow_size in shadow_sizes:
        result[f"shadow_{shadow_size}_ms"], images = shadow_size_renders(env, datas, camera, shadow_size, renders)
        result[f"shadow_{shadow_size}_diff"] = float(np.abs(images - own_images).mean())
    model.vis.quality.shadowsize = own_size
    env.close()
    return result


def _worker(args, queue):
    queue.put(measure(*args))


def measure_in_processes(processes: int, task: str, renders: int, tiles: int, shadow_sizes: tuple[int, ...]) -> dict:
    """`processes` processes measuring at the same time; their per-render times averaged."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_worker, args=((task, renders, tiles, seed, shadow_sizes), queue))
               for seed in range(processes)]
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    summary = {"processes": processes, "task": task, "tiles": tiles,
               "tile_max_diff": max(r["tile_max_diff"] for r in results)}
    for key in [key for key in results[0] if key.endswith(("_ms", "_diff")) and key != "tile_max_diff"]:
        summary[key] = float(np.mean([r[key] for r in results]))
    summary["renders_per_s_all_processes"] = processes * 1000 / summary["render_ms"]
    summary["tiled_renders_per_s_all_processes"] = processes * 1000 / summary["tiled_ms"]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="door", choices=list(ADROIT_TASKS))
    parser.add_argument("--renders", type=int, default=400, help="renders per measurement and process")
    parser.add_argument("--tiles", type=int, default=8, help="views per framebuffer in the tiled measurement")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 8], help="process counts to measure")
    parser.add_argument("--shadow-sizes", type=int, nargs="*", default=[],
                        help="shadow map sizes (texels per side) to time besides the scene's own")
    parser.add_argument("--out", help="optional JSON file for the results")
    args = parser.parse_args()
    results = [measure_in_processes(p, args.task, args.renders, args.tiles, tuple(args.shadow_sizes))
               for p in args.processes]
    for result in results:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
