"""Small per-run metrics JSON files (DVC metrics, Snakemake stage outputs) read from a run's CSV logs."""

import csv
import json
import math
from pathlib import Path

from vrl3.paths import write_text_atomic

ONE_MILLION_FRAMES = 1_000_000


TEXT_COLUMNS = {"variant"}


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{key: float(value) for key, value in row.items() if value not in ("", None) and key not in TEXT_COLUMNS}
                for row in csv.DictReader(f)]


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def mean_success_to_1m(frames, success_rates) -> float | None:
    """The paper's hyper-parameter-sensitivity score (reference §6.2): the mean success rate over the evaluations
    at or before 1M frames (None when there are none)."""
    kept = [rate for frame, rate in zip(frames, success_rates) if frame <= ONE_MILLION_FRAMES]
    return _number(float(sum(kept) / len(kept))) if kept else None


def stage3_metrics(run_dir: str | Path) -> dict:
    """Final success rate, success at the last evaluation at or before 1M frames, and the mean success rate over
    the evaluations up to 1M frames (the paper's hyper-parameter-sensitivity score, reference §6.2)."""
    rows = _rows(Path(run_dir) / "eval.csv")
    upto_1m = [row for row in rows if row["frame"] <= ONE_MILLION_FRAMES]
    last = rows[-1] if rows else {}
    return {"frames": int(last["frame"]) if rows else 0,
            "evaluations": len(rows),
            "final_success_rate": _number(last.get("success_rate")),
            "final_episode_reward": _number(last.get("episode_reward")),
            "success_rate_1m": _number(upto_1m[-1]["success_rate"]) if upto_1m else None,
            "mean_success_rate_to_1m": mean_success_to_1m([r["frame"] for r in rows],
                                                          [r["success_rate"] for r in rows])}


def stage2_metrics(run_dir: str | Path) -> dict:
    """The last stage-2 evaluation (none when stage2_num_eval_episodes is 0)."""
    rows = _rows(Path(run_dir) / "stage2" / "stage2_eval.csv")
    last = rows[-1] if rows else {}
    return {"evaluations": len(rows),
            "last_eval_update": int(last["update"]) if rows else None,
            "success_rate": _number(last.get("success_rate")),
            "episode_reward": _number(last.get("episode_reward"))}


def write_json(data: dict, path: str | Path) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
