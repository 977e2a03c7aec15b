"""`vrl3 demos`: get human, expert or Minari demonstrations of one task and re-render them to pixels."""

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from vrl3.demos.dapg_pickle import load_demo_pickle
from vrl3.demos.expert import policy_from_pickle, rollout
from vrl3.demos.kitchen_cli import run_kitchen
from vrl3.demos.lines import summary_line
from vrl3.demos.minari_source import demos_from_minari, load_minari_dataset, minari_dataset_id
from vrl3.demos.render import render_demos
from vrl3.demos.replay import REPLAYS
from vrl3.demos.sources import default_cache_dir, demo_file_name, fetch_hand_dapg_file, policy_file_name
from vrl3.demos.state_layout import LAYOUTS
from vrl3.demos.store import check_out_dir
from vrl3.envs import episode_success, make_env
from vrl3.errors import UserError
from vrl3.tasks import DEFAULT_SHADOW_SIZE, TASKS, KitchenTask, get_task

SOURCES = ("human", "expert", "minari")
REPLAY_MODES = tuple(REPLAYS)
DEFAULT_EXPERT_EPISODES = 25


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, metavar="{" + ",".join(TASKS) + "}")
    parser.add_argument("--source", required=True, metavar="{" + ",".join(SOURCES) + "}",
                        help="human: the 25 DAPG human demos; expert: rollouts of the DAPG expert policy; "
                             "minari: D4RL/<task>/human-v2 (kitchen tasks: D4RL/kitchen/<dataset>-v2)")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder: new, empty, or an earlier demos output (replaced only on success)")
    parser.add_argument("--mirror", type=Path, help="local copy of hand_dapg's dapg folder (demonstrations/, "
                                                    "policies/) instead of downloading")
    parser.add_argument("--cache", type=Path, help="download cache (default: $VRL3_CACHE or data/downloads)")
    parser.add_argument("--episodes", type=int, help="number of episodes (default: all demos; expert: 25)")
    parser.add_argument("--replay", metavar="{" + ",".join(REPLAY_MODES) + "}",
                        help="re-render recorded demos by open-loop actions (default, as VRL3) or recorded states "
                             "(kitchen: states only)")
    parser.add_argument("--seed", type=int, default=0, help="env seed; expert episode i resets with seed + i")
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--shadow-size", type=int, default=DEFAULT_SHADOW_SIZE,
                        help="the renderer's shadow map, texels per side (config shadow_size; default: VRL3's)")


def _check_arguments(args: argparse.Namespace) -> None:
    get_task(args.task)
    if args.source not in SOURCES:
        raise UserError(f"--source {args.source!r} is unknown: choose one of {', '.join(SOURCES)}")
    if args.replay is not None and args.replay not in REPLAY_MODES:
        raise UserError(f"--replay {args.replay!r} is unknown: choose one of {', '.join(REPLAY_MODES)}")
    if args.replay is not None and args.source == "expert":
        raise UserError("--replay applies to recorded demos (--source human or minari): drop it for expert rollouts")
    if args.episodes is not None and args.episodes < 1:
        raise UserError(f"--episodes {args.episodes} must be at least 1")
    if args.image_size < 1:
        raise UserError(f"--image-size {args.image_size} must be at least 1")
    if args.seed < 0:
        raise UserError(f"--seed {args.seed} must be at least 0")
    if args.shadow_size < 1:
        raise UserError(f"--shadow-size {args.shadow_size} must be at least 1")
    if args.mirror is not None and args.source == "minari":
        raise UserError("--mirror applies to --source human/expert; Minari reads $MINARI_DATASETS_PATH")
    if args.mirror is not None and not args.mirror.is_dir():
        raise UserError(f"--mirror {args.mirror} is not a folder: name a copy of hand_dapg's dapg folder")
    check_out_dir(args.out)


def _recorded_demos(args: argparse.Namespace) -> tuple[list[dict], dict, list[str]]:
    """The demos to replay, the input checksums and the names of unpinned inputs."""
    task = get_task(args.task)
    obs_dim = LAYOUTS[task.name].obs_dim
    if args.source == "minari":
        dataset_id = minari_dataset_id(task.name)
        demos = demos_from_minari(load_minari_dataset(dataset_id), task, obs_dim, args.episodes)
        if args.episodes is not None and args.episodes > len(demos):
            raise UserError(f"--episodes {args.episodes}: Minari dataset {dataset_id} holds only {len(demos)} "
                            f"episodes")
        return demos, {}, []
    input_file = fetch_hand_dapg_file(demo_file_name(task.name), args.mirror, args.cache or default_cache_dir())
    demos = load_demo_pickle(input_file.path, task, obs_dim)
    if args.episodes is not None and args.episodes > len(demos):
        raise UserError(f"--episodes {args.episodes}: {input_file.path} holds only {len(demos)} demos")
    unpinned = [] if input_file.pinned else [input_file.path.name]
    if unpinned:
        print(f"warning: {input_file.name} has no published sha256; using {input_file.path} with sha256 "
              f"{input_file.sha256} (unpinned: recorded in the manifest, compare it with a trusted copy)",
              file=sys.stderr)
    return demos[:args.episodes], {input_file.path.name: input_file.sha256}, unpinned


def _check_replayable(demos: list[dict], replay: str, source: str) -> None:
    if replay == "states" and any(demo["observations"] is None for demo in demos):
        raise UserError(f"--replay states needs the recorded observations, which the {source} demos lack; "
                        f"use --replay actions")


def run(args: argparse.Namespace) -> int:
    _check_arguments(args)
    task = get_task(args.task)
    if isinstance(task, KitchenTask):
        return run_kitchen(args, task)
    checksums, unpinned, replay = {}, [], None
    if args.source == "expert":
        policy_file = fetch_hand_dapg_file(policy_file_name(task.name), args.mirror,
                                           args.cache or default_cache_dir())
        policy = policy_from_pickle(policy_file.path, LAYOUTS[task.name].obs_dim, task.action_dim)
        checksums[policy_file.path.name] = policy_file.sha256
        episode_count = args.episodes or DEFAULT_EXPERT_EPISODES
    else:
        replay = args.replay or "actions"
        demos, checksums, unpinned = _recorded_demos(args)
        _check_replayable(demos, replay, args.source)
        episode_count = len(demos)

    # Demos are replayed at action repeat 1 without time limit (VRL3's load_demo); expert rollouts keep the limit.
    env = make_env(task.name, args.seed, action_repeat=1, frame_stack=1, image_size=args.image_size,
                   time_limit=args.source == "expert", shadow_size=args.shadow_size)

    def rendered():
        for index in tqdm(range(episode_count), desc=f"{task.name} {args.source} demos", unit="episode",
                          file=sys.stderr):
            if args.source == "expert":
                yield rollout(env, policy, args.seed + index), {"seed": args.seed + index}
            else:
                yield _replayed(env, demos[index], replay)

    try:
        episodes = render_demos(env, task, args.out, rendered(), {
            "source": args.source, "replay": replay, "image_size": args.image_size, "seed": args.seed,
            "input": minari_dataset_id(task.name) if args.source == "minari" else sorted(checksums),
            "unpinned_inputs": unpinned, "checksums": checksums})
    finally:
        env.close()
    print(summary_line(task.name, args.source, replay, episodes, args.out))
    return 0


def _replayed(env, demo: dict, replay: str) -> tuple[list, dict]:
    """Time steps of one recorded demo and its manifest fields about the recording."""
    result = REPLAYS[replay](env, demo)
    if result.recorded_goal_steps is None:
        return result.steps, {}
    return result.steps, {"recorded_goal_steps": result.recorded_goal_steps,
                          "recorded_success": episode_success(env.task, result.recorded_goal_steps),
                          "max_state_error": result.max_state_error,
                          "max_position_error": result.max_position_error,
                          "max_orientation_error": result.max_orientation_error}
