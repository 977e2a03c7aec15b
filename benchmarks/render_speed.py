"""Where stage 3's rendering time goes: MuJoCo's OpenGL renderer at 84x84 in one process and in several at once.

    MUJOCO_GL=egl python benchmarks/render_speed.py --task door --renders 400 --tiles 8 --processes 1 8

Per process count P (P processes rendering at the same time), for one camera of the task:
  scene_ms       mjv_updateScene (CPU)
  render_ms      mjr_render + mjr_readPixels of one 84x84 view (what `vrl3` does per frame)
  no_shadow_ms   the same with shadows and reflections off (a probe of the GPU's raster cost, not used by `vrl3`)
  tiled_ms       per view when --tiles views are drawn side by side in one framebuffer and read back at once
  tile_max_diff  largest pixel difference between a tile and the same state rendered alone (0: identical)
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


def measure(task: str, renders: int, tiles: int, seed: int) -> dict:
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

    def per_render_ms(function, count):
        function()  # warm-up
        started = time.perf_counter()
        for _ in range(count):
            function()
        return 1000 * (time.perf_counter() - started) / count

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
    env.close()
    return result


def _worker(args, queue):
    queue.put(measure(*args))


def measure_in_processes(processes: int, task: str, renders: int, tiles: int) -> dict:
    """`processes` processes measuring at the same time; their per-render times averaged."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_worker, args=((task, renders, tiles, seed), queue)) for seed in range(processes)]
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    summary = {"processes": processes, "task": task, "tiles": tiles,
               "tile_max_diff": max(r["tile_max_diff"] for r in results)}
    for key in ("scene_ms", "render_ms", "no_shadow_ms", "tiled_ms"):
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
    parser.add_argument("--out", help="optional JSON file for the results")
    args = parser.parse_args()
    results = [measure_in_processes(p, args.task, args.renders, args.tiles) for p in args.processes]
    for result in results:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
