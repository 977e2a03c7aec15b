"""Speed of VRL3's Adroit environments: physics env steps/s (no rendering) and renders/s per camera.

    MUJOCO_GL=egl python benchmarks/env_speed.py --tasks door relocate --steps 1000 --renders 50 \
        --agent-steps 50 --out speed.json
"""

import argparse
import json
import os
import platform
import subprocess
import time

import numpy as np

from vrl3.envs import make_env
from vrl3.tasks import ADROIT_TASKS


def device_name() -> str:
    try:
        gpus = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        gpus = ""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU {cpu} ({os.cpu_count()} cores)" + (f"; GPU {gpus}" if gpus else "; no GPU")


def measure_task(task: str, steps: int, renders: int, agent_steps: int, image_size: int) -> dict:
    env = make_env(task, seed=0, image_size=image_size)
    try:
        env.reset()
        rng = np.random.default_rng(0)
        actions = rng.uniform(-1, 1, (steps, env.action_dim)).astype(np.float32)
        start = time.perf_counter()
        for action in actions:  # env steps as the agent sees them, minus rendering: physics + reward + goal
            env.sim.step(action)
            env.reward_and_goal()
        env_steps_per_s = steps / (time.perf_counter() - start)
        env.render_frame()  # warm-up
        start = time.perf_counter()
        for _ in range(renders):
            env.render_frame()
        renders_per_s = renders * len(env.task.cameras) / (time.perf_counter() - start)
        env.reset()
        start = time.perf_counter()
        for action in actions[:agent_steps]:  # full agent steps: 2 env steps, rewards, render of all cameras
            if env.step(action).last():
                env.reset()
        agent_steps_per_s = min(agent_steps, steps) / (time.perf_counter() - start)
    finally:
        env.close()
    return {"task": task, "cameras": len(ADROIT_TASKS[task].cameras), "env_steps_per_s": env_steps_per_s,
            "renders_per_s_per_camera": renders_per_s, "ms_per_render": 1000.0 / renders_per_s,
            "agent_steps_per_s": agent_steps_per_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(ADROIT_TASKS), choices=list(ADROIT_TASKS))
    parser.add_argument("--steps", type=int, default=1000, help="physics env steps per task")
    parser.add_argument("--renders", type=int, default=100, help="frames rendered per task (all its cameras)")
    parser.add_argument("--agent-steps", type=int, default=50,
                        help="full agent steps per task (action repeat 2, rendered); at most --steps")
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--out", help="optional JSON file for the results")
    args = parser.parse_args()

    header = {"device": device_name(), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "(unset)"),
              "steps": args.steps, "renders": args.renders,
              "agent_steps": args.agent_steps, "image_size": args.image_size}
    print(f"device: {header['device']}\nMUJOCO_GL: {header['MUJOCO_GL']}")
    rows = [measure_task(task, args.steps, args.renders, args.agent_steps, args.image_size) for task in args.tasks]
    print(f"{'task':<10}{'cameras':>8}{'env steps/s':>14}{'renders/s/cam':>15}{'ms/render':>11}"
          f"{'agent steps/s':>15}")
    for row in rows:
        print(f"{row['task']:<10}{row['cameras']:>8}{row['env_steps_per_s']:>14.0f}"
              f"{row['renders_per_s_per_camera']:>15.1f}{row['ms_per_render']:>11.2f}{row['agent_steps_per_s']:>15.1f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({**header, "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
