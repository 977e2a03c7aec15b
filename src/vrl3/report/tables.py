"""The report's tables as long DataFrames, and writing them as CSV + Markdown."""

from pathlib import Path

import numpy as np
import pandas as pd

from vrl3.report import stats
from vrl3.report.curves import align_runs, value_at_budget
from vrl3.report.runs import Run


def group_runs(runs: list[Run]) -> dict[tuple[str, str], list[Run]]:
    """(method, task) -> its runs, in seed order."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.method, run.task), []).append(run)
    return groups


def budget_scores(runs: list[Run], budget: int) -> dict[str, dict[str, np.ndarray]]:
    """method -> task -> success of each run that reached `budget`; tasks with no such run are left out."""
    scores: dict[str, dict[str, list]] = {}
    for run in runs:
        value = value_at_budget(run, budget)
        if value is not None:
            scores.setdefault(run.method, {}).setdefault(run.task, []).append(value)
    return {m: {t: np.array(v) for t, v in by_task.items()} for m, by_task in scores.items()}


def success_at_budgets(runs: list[Run], budgets: list[int], reps: int, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for (method, task), group in sorted(group_runs(runs).items(), key=lambda kv: (kv[0][1], kv[0][0])):
        for budget in budgets:
            values = [v for v in (value_at_budget(r, budget) for r in group) if v is not None]
            row = {"task": task, "method": method, "frames": budget, "mean": np.nan, "low": np.nan,
                   "high": np.nan, "n_seeds": len(values), "seeds_total": len(group)}
            if values:
                mean, low, high = stats.bootstrap_mean_ci(np.array(values), reps, rng)
                row.update(mean=float(mean), low=float(low), high=float(high))
            rows.append(row)
    return pd.DataFrame(rows)


def frames_to_thresholds(runs: list[Run], thresholds: list[float], window_frames: int, reps: int,
                         rng: np.random.Generator) -> pd.DataFrame:
    """Reference §6.2 on the seeds' common grid; inf = not reached within the logged frames."""
    rows = []
    for (method, task), group in sorted(group_runs(runs).items(), key=lambda kv: (kv[0][1], kv[0][0])):
        aligned = align_runs(group, f"method {method}, task {task}")
        for threshold in thresholds:
            frames, low, high = stats.frames_to_threshold(aligned.frames, aligned.values, threshold, window_frames,
                                                          reps, rng)
            rows.append({"task": task, "method": method, "threshold": threshold, "frames": frames, "low": low,
                         "high": high, "n_seeds": len(group), "logged_until": int(aligned.frames[-1])})
    return pd.DataFrame(rows)


def aggregate_metrics(runs: list[Run], budgets: list[int], reps: int, rng: np.random.Generator) -> pd.DataFrame:
    """IQM, optimality gap and mean over tasks of the success at each budget, stratified-bootstrap CIs."""
    rows = []
    for budget in budgets:
        for method, by_task in sorted(budget_scores(runs, budget).items()):
            for name, statistic in stats.AGGREGATES.items():
                value, low, high = stats.stratified_bootstrap_ci(by_task, statistic, reps, rng)
                rows.append({"method": method, "frames": budget, "metric": name, "value": float(value),
                             "low": float(low), "high": float(high),
                             "n_runs": int(sum(len(s) for s in by_task.values())), "n_tasks": len(by_task),
                             "tasks": " ".join(sorted(by_task))})
    columns = ["method", "frames", "metric", "value", "low", "high", "n_runs", "n_tasks", "tasks"]
    return pd.DataFrame(rows, columns=columns)


def family_aggregate_metrics(runs_by_family: dict[str, list[Run]], budgets: list[int], reps: int,
                             rng: np.random.Generator) -> pd.DataFrame:
    """`aggregate_metrics` within each task family, one after the other, with a last column `family`."""
    return concat_parts([aggregate_metrics(family_runs, budgets, reps, rng).assign(family=family)
                         for family, family_runs in runs_by_family.items()])


def concat_parts(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The parts one below the other; empty ones are left out, as they would turn every column to object dtype."""
    filled = [part for part in parts if not part.empty]
    return pd.concat(filled or parts[:1], ignore_index=True)


# ---- formatting -------------------------------------------------------------------------------------------

def format_frames(frames: float) -> str:
    if not np.isfinite(frames):
        return "not reached"
    return f"{frames / 1e6:.2f}M"


def format_interval(value: float, low: float, high: float, fmt) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if np.isnan(low) or np.isnan(high) or fmt(low) == fmt(high) == fmt(value):
        return fmt(value)
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule] + body) + "\n"


def success_markdown(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, method), one column per budget: 'mean [low, high]' (n/N when seeds are missing)."""
    rows = []
    for (task, method), group in table.groupby(["task", "method"], sort=False):
        row = {"task": task, "method": method}
        for r in group.itertuples():
            cell = format_interval(r.mean, r.low, r.high, lambda v: f"{v:.2f}")
            if cell and r.n_seeds < r.seeds_total:
                cell += f" ({r.n_seeds}/{r.seeds_total} seeds)"
            row[format_frames(r.frames)] = cell
        rows.append(row)
    return pd.DataFrame(rows)


def thresholds_markdown(table: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (task, method), group in table.groupby(["task", "method"], sort=False):
        row = {"task": task, "method": method, "seeds": int(group["n_seeds"].iloc[0])}
        for r in group.itertuples():
            row[f"frames to {r.threshold:.0%}"] = format_interval(r.frames, r.low, r.high, format_frames)
        row["logged until"] = format_frames(group["logged_until"].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows)


def aggregate_markdown(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, budget); a table with a `family` column gets one per (family, method, budget)."""
    keys = (["family"] if "family" in table.columns else []) + ["method", "frames"]
    rows = []
    for key, group in table.groupby(keys, sort=False):
        row = dict(zip(keys, key))
        row["frames"] = format_frames(row["frames"])
        for r in group.itertuples():
            row[r.metric.replace("_", " ")] = format_interval(r.value, r.low, r.high, lambda v: f"{v:.3f}")
        row["runs"] = int(group["n_runs"].iloc[0])
        row["tasks"] = group["tasks"].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


def write_table(table: pd.DataFrame, markdown: pd.DataFrame, stem: Path) -> None:
    table.to_csv(stem.with_suffix(".csv"), index=False)
    stem.with_suffix(".md").write_text(markdown_table(markdown))
