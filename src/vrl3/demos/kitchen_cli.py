"""`vrl3 demos --task kitchen-* --source minari`: the Minari kitchen demos re-rendered from their recorded states."""

import argparse
import sys

from tqdm import tqdm

from vrl3.demos.kitchen_replay import replay_kitchen_states, reward_mismatches
from vrl3.demos.kitchen_source import kitchen_demos_from_minari
from vrl3.demos.lines import episode_line, summary_line
from vrl3.demos.minari_source import load_minari_dataset
from vrl3.demos.store import episode_summary, staged_output
from vrl3.envs import episode_success, make_env
from vrl3.errors import UserError
from vrl3.tasks import KitchenTask
from vrl3.train.episodes import episode_arrays

REPLAY = "states"


def check_kitchen_arguments(args: argparse.Namespace, task: KitchenTask) -> None:
    if args.source != "minari":
        raise UserError(f"--source {args.source}: task {task.name} has demos only in Minari ({task.minari_dataset});"
                        f" use --source minari")
    if args.replay not in (None, REPLAY):
        raise UserError(f"--replay {args.replay}: kitchen demos are re-rendered from their recorded states (an "
                        f"open-loop replay diverges: FrankaKitchen's controller reads noisy observations); use "
                        f"--replay states or drop --replay")


def run_kitchen(args: argparse.Namespace, task: KitchenTask) -> int:
    check_kitchen_arguments(args, task)
    dataset = load_minari_dataset(task.minari_dataset)
    if args.episodes is not None and args.episodes > dataset.total_episodes:
        raise UserError(f"--episodes {args.episodes}: Minari dataset {task.minari_dataset} holds only "
                        f"{dataset.total_episodes} episodes")
    demos = kitchen_demos_from_minari(dataset, task, args.episodes)
    # Demos are rendered at action repeat 1 without time limit: the partial and mixed recordings run to 450 steps.
    env = make_env(task.name, args.seed, action_repeat=1, frame_stack=1, image_size=args.image_size,
                   time_limit=False)
    try:
        with staged_output(args.out) as writer:
            episodes = []
            for index, demo in enumerate(tqdm(demos, desc=f"{task.name} minari demos", unit="episode",
                                              file=sys.stderr)):
                replayed = replay_kitchen_states(env, demo)
                arrays = episode_arrays(replayed.steps)
                summary = episode_summary(arrays)
                episodes.append({**summary, "success": episode_success(task, summary["goal_steps"]),
                                 "recorded_goal_steps": replayed.recorded_goal_steps,
                                 "recorded_success": episode_success(task, replayed.recorded_goal_steps),
                                 "recorded_return": float(demo["rewards"].sum()),
                                 "reward_mismatches": reward_mismatches(replayed, demo, task.reward_scale)})
                writer.add_episode(index, arrays)
                tqdm.write(episode_line(index, episodes[-1]))
            writer.write_manifest({
                "task": task.name, "source": "minari", "replay": REPLAY, "action_repeat": 1,
                "image_size": args.image_size, "cameras": list(task.cameras), "frame_channels": env.frame_channels,
                "flip_images": env.flip_images, "seed": args.seed, "input": task.minari_dataset,
                "subtasks": list(task.subtasks), "unpinned_inputs": [], "episodes": episodes, "checksums": {},
            })
    finally:
        env.close()
    print(summary_line(task.name, "minari", REPLAY, episodes, args.out))
    return 0
