"""VRL3 throughput: stage-2 updates/s and stage-3 frames/s (env + render + act + update at the paper's ratio).

    MUJOCO_GL=egl python benchmarks/throughput.py --task door --stage2-updates 300 --stage3-frames 4000

Stage 2 samples batches of 256 from a device replay of random demo-sized episodes. Stage 3 runs the same loop as
`vrl3 train` (act, update every `update_every_steps` agent steps, env step with action repeat 2 and rendering,
episodes added to the replay when they end), without evaluations; `--num-envs N` steps N envs in worker processes
while the updates run, as `num_envs: N` does in training. Targets on one H100: >= 300 updates/s and
>= 1,500 frames/s (the official code: ~17 and ~88 on an RTX 8000).
"""

import argparse
import json
import platform
import subprocess
import time

import numpy as np
import torch

from vrl3.agent import AgentConfig, VRL3Agent
from vrl3.agent.config import PRECISIONS
from vrl3.envs import make_env
from vrl3.envs.vector import EnvPool, env_seeds
from vrl3.replay import ReplayBuffer
from vrl3.tasks import DEFAULT_SHADOW_SIZE
from vrl3.train.episodes import episode_arrays, replay_fields


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({torch.get_num_threads()} threads)"
    except OSError:
        pass
    return platform.processor()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_replay(env, device, episodes: int, length: int, seed: int = 0) -> ReplayBuffer:
    replay = ReplayBuffer((env.frame_channels, env.obs_shape[1], env.obs_shape[2]), env.task.sensor_dim, env.action_dim,
                          capacity=1_000_000, device=device, seed=seed)
    g = torch.Generator(device=device).manual_seed(seed)
    for _ in range(episodes):
        replay.add_episode(
            torch.randint(0, 256, (length + 1, env.frame_channels, *env.obs_shape[1:]), generator=g, device=device,
                          dtype=torch.uint8),
            torch.randn(length + 1, env.task.sensor_dim, generator=g, device=device),
            torch.rand(length + 1, env.action_dim, generator=g, device=device) * 2 - 1,
            torch.rand(length + 1, generator=g, device=device), torch.ones(length + 1, device=device))
    return replay


def time_stage2(agent, replay, updates: int, batch_size: int, device) -> float:
    for step in range(10):  # warm-up (cuDNN autotuning, CUDA graph capture)
        agent.update(replay.sample(batch_size), 2, step, sync=False)
    synchronize(device)
    started = time.perf_counter()
    for step in range(updates):
        agent.update(replay.sample(batch_size), 2, step, sync=False)
    synchronize(device)
    return updates / (time.perf_counter() - started)


def time_stage3(agent, replay, envs: EnvPool, action_repeat: int, frames: int, batch_size: int, device,
                update: bool = True) -> dict:
    """The stage-3 loop of `vrl3 train` without evaluations: per block one batched act for all envs, the env
    steps sent to the workers, the updates due at those steps, then the env results collected."""
    num_envs = envs.num_envs
    blocks = max(frames // (action_repeat * num_envs), 1)
    time_steps = envs.call("reset")
    episodes = {index: [time_step] for index, time_step in time_steps.items()}
    timers = {"act": 0.0, "update": 0.0, "env_wait": 0.0, "episode_end": 0.0}
    if update:  # stage-3 warm-up: CUDA graph capture (and compilation with --compile) of the stage-3 update
        for warmup_step in range(0, 5 * agent.cfg.update_every_steps, agent.cfg.update_every_steps):
            agent.update(replay.sample(batch_size), 3, warmup_step, sync=False)
    synchronize(device)
    started = time.perf_counter()
    step = 0
    for _ in range(blocks):
        t0 = time.perf_counter()
        latest = [episodes[index][-1] for index in range(num_envs)]
        actions = agent.act_batch(np.stack([t.observation for t in latest]), np.stack([t.sensor for t in latest]),
                                  step, eval_mode=False)
        envs.call_async("step", {index: (action,) for index, action in enumerate(actions)})
        t1 = time.perf_counter()
        for update_step in range(step, step + num_envs):
            if update and agent.is_update_step(update_step):
                agent.update(replay.sample(batch_size), 3, update_step, sync=False)
        t2 = time.perf_counter()
        results = envs.wait()
        t3 = time.perf_counter()
        ended = []
        for index, time_step in results.items():
            episodes[index].append(time_step)
            if time_step.last():
                replay.add_episode(**replay_fields(episode_arrays(episodes[index])))
                ended.append(index)
        if ended:  # episodes end together (fixed horizons; a dropped pen restarts at once here)
            for index, time_step in envs.call("reset", {index: () for index in ended}).items():
                episodes[index] = [time_step]
        t4 = time.perf_counter()
        step += num_envs
        for name, seconds in zip(timers, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            timers[name] += seconds
    synchronize(device)
    seconds = time.perf_counter() - started
    return {"frames_per_s": step * action_repeat / seconds, "num_envs": num_envs,
            **{f"ms_per_block_{name}": 1000 * value / blocks for name, value in timers.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="door")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--stage2-updates", type=int, default=300)
    parser.add_argument("--stage3-frames", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--hidden-dim", type=int, default=1024)
    parser.add_argument("--num-envs", type=int, default=1, help="stage-3 training envs (worker processes when > 1)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS, help="agent.precision")
    parser.add_argument("--compile", action="store_true", help="agent.compile (compiled in the first updates)")
    parser.add_argument("--shadow-size", type=int, default=DEFAULT_SHADOW_SIZE,
                        help="config shadow_size: the renderer's shadow map (default: the scenes' own, VRL3's)")
    parser.add_argument("--no-stage3-updates", action="store_true",
                        help="stage 3 without updates: the env loop alone, to see what the updates cost it")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()

    device = torch.device(args.device)
    env = make_env(args.task, seed=0)
    agent = VRL3Agent(env.obs_shape, env.action_dim, env.task.sensor_dim,
                      AgentConfig(hidden_dim=args.hidden_dim, precision=args.precision, compile=args.compile), device)
    replay = random_replay(env, device, episodes=25, length=300)
    result = {"task": args.task, "device": device_name(device), "torch": torch.__version__,
              "batch_size": args.batch_size, "hidden_dim": args.hidden_dim, "precision": args.precision,
              "compile": args.compile, "shadow_size": args.shadow_size}
    if args.stage2_updates:
        result["stage2_updates_per_s"] = time_stage2(agent, replay, args.stage2_updates, args.batch_size, device)
    if args.stage3_frames:
        envs = EnvPool(args.task, env_seeds(0, args.num_envs),
                       {"action_repeat": env.action_repeat, "shadow_size": args.shadow_size})
        try:
            result |= time_stage3(agent, replay, envs, env.action_repeat, args.stage3_frames, args.batch_size,
                                  device, update=not args.no_stage3_updates)
        finally:
            envs.close()
        result["stage3_updates"] = not args.no_stage3_updates
    try:
        result["nvidia_smi"] = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
