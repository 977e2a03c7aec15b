"""The one-line progress and summary messages of `vrl3 demos`."""

from pathlib import Path


def episode_line(index: int, episode: dict) -> str:
    line = (f"demo {index}: length {episode['length']}, return {episode['return']:.2f}, "
            f"goal steps {episode['goal_steps']}, success {episode['success']}")
    if "recorded_goal_steps" in episode:
        line += f" | recorded: goal steps {episode['recorded_goal_steps']}, success {episode['recorded_success']}"
    if episode.get("max_state_error") is not None:
        line += f", max state error {episode['max_state_error']:.3f}"
    if "reward_mismatches" in episode:
        line += f", reward mismatches {episode['reward_mismatches']}"
    return line


def summary_line(task: str, source: str, replay: str | None, episodes: list[dict], out: Path) -> str:
    succeeded = sum(episode["success"] for episode in episodes)
    mean_return = sum(episode["return"] for episode in episodes) / len(episodes)
    line = (f"{task} {source}{f' ({replay} replay)' if replay else ''}: {len(episodes)} episodes, "
            f"{succeeded} succeed, mean return {mean_return:.2f}")
    if episodes and "recorded_success" in episodes[0]:
        line += f", {sum(episode['recorded_success'] for episode in episodes)} succeed in the recording"
    return f"{line}; wrote {out}"
