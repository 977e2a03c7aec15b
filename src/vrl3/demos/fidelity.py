"""Replay fidelity of the human demos, measured without rendering: prints a markdown table (see docs/demos.md).

    python -m vrl3.demos.fidelity --task door --mirror DIR
"""

import argparse
import sys
from pathlib import Path

from vrl3.demos.dapg_pickle import load_demo_pickle
from vrl3.demos.replay import rendering_disabled, replay_actions, replay_states
from vrl3.demos.sources import default_cache_dir, demo_file_name, fetch_hand_dapg_file
from vrl3.demos.state_layout import LAYOUTS
from vrl3.envs import episode_success, make_env
from vrl3.tasks import get_adroit_task  # the hand_dapg demos exist for Adroit only

COLUMNS = ("demo", "length", "recorded goal steps", "replayed goal steps (actions)", "replayed goal steps (states)",
           "recorded success", "replayed success (actions)", "replayed success (states)",
           "initial state error (actions)", "final state error (actions)", "max_state_error (actions)",
           "max_state_error (states)", "max_position_error (states) [m]")
# Only for tasks whose observation holds object orientations (hammer, pen; see state_layout.orientation_error).
ORIENTATION_COLUMNS = ("max_orientation_error (actions) [rad]", "max_orientation_error (states) [rad]")


def fidelity_rows(task_name: str, demos: list[dict]) -> list[dict]:
    task = get_adroit_task(task_name)
    env = make_env(task_name, 0, action_repeat=1, frame_stack=1, time_limit=False)
    rows = []
    with rendering_disabled(env):
        for index, demo in enumerate(demos):
            by_actions, by_states = replay_actions(env, demo), replay_states(env, demo)
            goals_actions = sum(step.n_goal_achieved for step in by_actions.steps)
            goals_states = sum(step.n_goal_achieved for step in by_states.steps)
            rows.append({
                "demo": index, "length": len(demo["actions"]),
                "recorded goal steps": by_actions.recorded_goal_steps,
                "replayed goal steps (actions)": goals_actions, "replayed goal steps (states)": goals_states,
                "recorded success": episode_success(task, by_actions.recorded_goal_steps),
                "replayed success (actions)": episode_success(task, goals_actions),
                "replayed success (states)": episode_success(task, goals_states),
                "initial state error (actions)": float(by_actions.joint_errors[0]),
                "final state error (actions)": float(by_actions.joint_errors[-1]),
                "max_state_error (actions)": by_actions.max_state_error,
                "max_state_error (states)": by_states.max_state_error,
                "max_position_error (states) [m]": by_states.max_position_error,
            })
            if LAYOUTS[task_name].orientation_obs:
                rows[-1]["max_orientation_error (actions) [rad]"] = by_actions.max_orientation_error
                rows[-1]["max_orientation_error (states) [rad]"] = by_states.max_orientation_error
    env.close()
    return rows


def markdown_table(rows: list[dict]) -> str:
    def cell(value) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)
    names = [column for column in COLUMNS + ORIENTATION_COLUMNS if rows and column in rows[0]]
    lines = ["| " + " | ".join(names) + " |", "|" + " --- |" * len(names)]
    lines += ["| " + " | ".join(cell(row[column]) for column in names) + " |" for row in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="door")
    parser.add_argument("--mirror", type=Path)
    parser.add_argument("--cache", type=Path)
    args = parser.parse_args(argv)
    task = get_adroit_task(args.task)
    input_file = fetch_hand_dapg_file(demo_file_name(task.name), args.mirror, args.cache or default_cache_dir())
    demos = load_demo_pickle(input_file.path, task, LAYOUTS[task.name].obs_dim)
    rows = fidelity_rows(task.name, demos)
    print(markdown_table(rows))
    agree = sum(row["recorded success"] == row["replayed success (actions)"] for row in rows)
    print(f"\nreplayed success (actions) == recorded success: {agree}/{len(rows)}; recorded successes: "
          f"{sum(row['recorded success'] for row in rows)}; max_state_error (states) max: "
          f"{max(row['max_state_error (states)'] for row in rows):.3g} rad; max_position_error (states) max: "
          f"{max(row['max_position_error (states) [m]'] for row in rows):.4f} m"
          + (f"; max_orientation_error (states) max: "
             f"{max(row['max_orientation_error (states) [rad]'] for row in rows):.3g} rad"
             if LAYOUTS[task.name].orientation_obs else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
