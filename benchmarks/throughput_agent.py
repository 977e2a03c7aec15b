"""Stage-2 (or 3) update throughput of VRL3Agent: default config, door shapes, device replay of random data.

    python benchmarks/throughput_agent.py --device cuda --updates 500 [--precision bf16] [--compile] [--act-batch 8]
Prints the untimed warm-up's seconds (with --compile mostly compilation), updates/s (replay sampling included), the
last update's metrics (a sanity check), with --act-batch N also ms per act_batch call at batch N, with --flops the
floating-point operations of one update and the rate they were done at, and peak memory.
"""

import argparse
import dataclasses
import resource
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from vrl3.agent import AgentConfig, VRL3Agent, metrics_to_floats
from vrl3.agent.config import PRECISIONS
from vrl3.replay import ReplayBuffer


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--updates", type=int, default=200, help="timed updates")
    parser.add_argument("--warmup", type=int, default=10, help="untimed updates first")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--stage", type=int, default=2, choices=(2, 3))
    parser.add_argument("--arch", default="resnet6_32channel")
    parser.add_argument("--hidden-dim", type=int, default=1024)
    parser.add_argument("--obs-channels", type=int, default=3, help="3 door/hammer/pen, 9 relocate")
    parser.add_argument("--action-dim", type=int, default=28)
    parser.add_argument("--episodes", type=int, default=50, help="random 100-step episodes in the replay")
    parser.add_argument("--sync-every", type=int, default=1,
                        help="convert metrics to floats every N updates (1: every update; 0: never)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="agent.precision: fp32 (torch defaults), tf32 (TF32 CUDA matmuls), bf16 (autocast)")
    parser.add_argument("--compile", action="store_true",
                        help="agent.compile: nn.Module.compile of the networks (compiled in the warm-up updates)")
    parser.add_argument("--act-batch", type=int, default=0, metavar="N",
                        help="also time act_batch at batch N (exploration noise, after the updates; as many calls "
                             "as --updates after --warmup untimed ones); 0 skips it")
    parser.add_argument("--flops", action="store_true",
                        help="also count the floating-point operations of one update (an eager copy of the agent)")
    parser.add_argument("--no-cudnn-benchmark", action="store_true",
                        help="cuDNN's default convolution algorithms (the agent turns cudnn.benchmark on on CUDA)")
    parser.add_argument("--no-cuda-graphs", action="store_true", help="eager updates (graphs are on by default)")
    parser.add_argument("--no-channels-last", action="store_true", help="NCHW encoder (NHWC is the CUDA default)")
    return parser.parse_args()


def time_act_batch(agent: VRL3Agent, args: argparse.Namespace) -> float:
    """Seconds for args.updates act_batch calls on host observations, as the envs deliver them; each call returns
    its actions on the host, so no extra synchronisation is needed."""
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, (args.act_batch, args.obs_channels, 84, 84), dtype=np.uint8)
    sensor = rng.standard_normal((args.act_batch, 24)).astype(np.float32)
    for step in range(args.warmup):
        agent.act_batch(obs, sensor, step, eval_mode=False)
    started = time.perf_counter()
    for step in range(args.updates):
        agent.act_batch(obs, sensor, step, eval_mode=False)
    return time.perf_counter() - started


def update_flops(obs_shape: tuple, action_dim: int, cfg: AgentConfig, device: torch.device, batch: dict,
                 stage: int) -> int:
    """Floating-point operations of one update, counted by torch's FlopCounterMode on an eager agent (a CUDA graph
    replay or compiled code dispatches no countable operators); the same count on any device and precision."""
    agent = VRL3Agent(obs_shape, action_dim, 24, dataclasses.replace(cfg, compile=False), device=device, seed=0,
                      cuda_graphs=False, channels_last=False)
    counter = FlopCounterMode(display=False)
    with counter:
        agent.update(batch, stage, 0, sync=False)
    return counter.get_total_flops()


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    cfg = AgentConfig(hidden_dim=args.hidden_dim, stage1_model_name=args.arch, precision=args.precision,
                      compile=args.compile)
    on_cuda = device.type == "cuda"
    agent = VRL3Agent((args.obs_channels, 84, 84), args.action_dim, 24, cfg, device=device, seed=0,
                      cuda_graphs=on_cuda and not args.no_cuda_graphs,
                      channels_last=on_cuda and not args.no_channels_last)
    if args.no_cudnn_benchmark:
        torch.backends.cudnn.benchmark = False
    cudnn_benchmark = torch.backends.cudnn.benchmark  # (the --flops agent, built later, sets it again)
    replay = ReplayBuffer((args.obs_channels, 84, 84), 24, args.action_dim, capacity=1_000_000, frame_stack=1,
                          nstep=3, discount=0.99, device=device, seed=0, frame_slots=args.episodes * 101)
    g = torch.Generator(device=device).manual_seed(0)
    for _ in range(args.episodes):
        replay.add_episode(torch.randint(0, 256, (101, args.obs_channels, 84, 84), generator=g, device=device,
                                         dtype=torch.uint8),
                           torch.randn(101, 24, generator=g, device=device),
                           torch.rand(101, args.action_dim, generator=g, device=device) * 2 - 1,
                           torch.rand(101, generator=g, device=device), torch.ones(101, device=device))

    def run(n: int) -> dict:
        """n updates; the last one's metrics (0-d tensors)."""
        pending, metrics = [], {}
        for step in range(n):
            metrics = agent.update(replay.sample(args.batch_size), args.stage, step, sync=False)
            pending.append(metrics)
            if args.sync_every and len(pending) == args.sync_every:
                [metrics_to_floats(m) for m in pending]
                pending.clear()
        return metrics

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    started = time.perf_counter()
    run(args.warmup)
    synchronize()
    warmup_seconds = time.perf_counter() - started
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    last_metrics = run(args.updates)
    synchronize()
    seconds = time.perf_counter() - started

    started = time.perf_counter()
    for _ in range(args.updates):
        replay.sample(args.batch_size)
    synchronize()
    sample_seconds = time.perf_counter() - started

    act_seconds = time_act_batch(agent, args) if args.act_batch else None
    flops = (update_flops((args.obs_channels, 84, 84), args.action_dim, cfg, device, replay.sample(args.batch_size),
                          args.stage) if args.flops else None)

    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"stage {args.stage}, batch {args.batch_size}, {args.arch}, hidden {args.hidden_dim}, "
          f"obs ({args.obs_channels},84,84), action {args.action_dim}, sync every {args.sync_every}, "
          f"precision {args.precision}, cudnn.benchmark {cudnn_benchmark}, cuda graphs {agent.cuda_graphs}, "
          f"channels_last {agent.channels_last}, compile {cfg.compile}")
    print(f"warm-up: {warmup_seconds:.1f} s for {args.warmup} updates")
    print(f"updates/s: {args.updates / seconds:.1f}  ({1000 * seconds / args.updates:.2f} ms per update, "
          f"{args.updates} updates)")
    if last_metrics:
        floats = metrics_to_floats(last_metrics)
        print("last update: " + ", ".join(f"{name} {floats[name]:.4g}" for name in
                                            ("critic_loss", "critic_q1", "actor_loss", "max_abs_pretanh")))
    if flops is not None:
        print(f"work per update: {flops / 1e9:.4g} GFLOP (torch FlopCounterMode: matmuls and convolutions), "
              f"done at {flops * args.updates / seconds / 1e12:.2f} TFLOP/s")
    print(f"replay samples/s alone: {args.updates / sample_seconds:.1f}")
    if act_seconds is not None:
        print(f"act_batch at batch {args.act_batch}: {1000 * act_seconds / args.updates:.2f} ms per act call "
              f"({args.act_batch * args.updates / act_seconds:.1f} actions/s, {args.updates} calls)")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2 ** 30:.2f} GiB")
    print(f"peak host RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20:.2f} GiB")


if __name__ == "__main__":
    main()
