"""`vrl3 demos --task kitchen-* --source minari`: the Minari kitchen demos re-rendered from their recorded states."""

import argparse
import sys

from tqdm import tqdm

from vrl3.demos.kitchen_replay import replay_kitchen_states, reward_mismatches
from vrl3.demos.kitchen_source import kitchen_demos_from_minari
from vrl3.demos.lines import summary_line
from vrl3.demos.minari_source import load_minari_dataset
from vrl3.demos.render import render_demos
from vrl3.envs import episode_success, make_env
from vrl3.errors import UserError
from vrl3.tasks import KitchenTask

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
                   time_limit=False, shadow_size=args.shadow_size)

    def rendered():
        for demo in tqdm(demos, desc=f"{task.name} minari demos", unit="episode", file=sys.stderr):
            replayed = replay_kitchen_states(env, demo)
            yield replayed.steps, {"recorded_goal_steps": replayed.recorded_goal_steps,
                                   "recorded_success": episode_success(task, replayed.recorded_goal_steps),
                                   "recorded_return": float(demo["rewards"].sum()),
                                   "reward_mismatches": reward_mismatches(replayed, demo, task.reward_scale)}

    try:
        episodes = render_demos(env, task, args.out, rendered(), {
            "source": "minari", "replay": REPLAY, "image_size": args.image_size, "seed": args.seed,
            "input": task.minari_dataset, "subtasks": list(task.subtasks), "unpinned_inputs": [], "checksums": {}})
    finally:
        env.close()
    print(summary_line(task.name, "minari", REPLAY, episodes, args.out))
    return 0
