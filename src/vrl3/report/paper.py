"""The paper's published numbers (data/paper_results.csv) beside ours, in one long format.

Long format, one row per number: task, method, metric, value, low, high (+ source for the paper, logged_until
for ours). Metrics: success_rate@<frames>, iqm@<frames>, optimality_gap@<frames> (task `aggregate` for the Adroit
tasks, `aggregate_<family>` for another task family, see families.py),
frames_to_<pct>, hours_total, hours_stage2, hours_stage3, hours_to_90, sample_efficiency_vs_rrl_pct,
compute_fraction_of_rrl_pct.
"""

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from vrl3.errors import UserError
from vrl3.report import families, stats
from vrl3.report.curves import time_at_frame
from vrl3.report.runs import Run
from vrl3.report.tables import format_frames, group_runs

PAPER_COLUMNS = ["task", "method", "metric", "value", "low", "high", "source"]
COMPARISON_COLUMNS = ["task", "method", "metric", "paper_value", "paper_low", "paper_high", "our_value", "our_low",
                      "our_high", "check", "source"]  # and `family`, which the report writes when several ran
FULL_RUN_FRAMES = 4_000_000  # hours_total is only reported for runs that went this far ("4M frames")
HEADLINE_METRICS = {"frames_to_50", "frames_to_90", "success_rate@1000000", "success_rate@4000000"}


def default_paper_file() -> Path:
    return Path(str(resources.files("vrl3") / "data" / "paper_results.csv"))


def load_paper(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, comment="#", skipinitialspace=True)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise UserError(f"--paper {path}: cannot read it ({type(error).__name__}); give a CSV with columns "
                        f"{', '.join(PAPER_COLUMNS)}") from None
    missing = [c for c in PAPER_COLUMNS if c not in table.columns]
    if missing:
        raise UserError(f"--paper {path}: missing column(s) {', '.join(missing)}; the file needs "
                        f"{', '.join(PAPER_COLUMNS)}")
    for column in ("value", "low", "high"):
        numbers = pd.to_numeric(table[column], errors="coerce")
        if (numbers.isna() & table[column].notna()).any() or table["value"].isna().any():
            raise UserError(f"--paper {path}: column {column!r} must hold numbers (value is required, "
                            f"low/high may be empty)")
        table[column] = numbers.astype(float)
    return table[PAPER_COLUMNS]


# our variants that are a method of the paper under another name: the "wider encoder" of the abstract's 2440 %
PAPER_NAMES = {"resnet6_64channel": "vrl3_wide"}


def paper_method_key(method: str, paper_methods: set[str]) -> str:
    """Our method label -> the paper's method it is compared with: exact match, a PAPER_NAMES entry, else the name
    up to the first `_`.

    So an official variant string `vrl3_ar2_fs3_...` is compared with `vrl3`, and `rrl` with `rrl`.
    """
    if method.lower() in paper_methods:
        return method.lower()
    if method in PAPER_NAMES:
        return PAPER_NAMES[method]
    return method.replace("/", "_").split("_")[0].lower()


def _row(task, method, metric, value, low=np.nan, high=np.nan, logged_until=np.nan, note="") -> dict:
    return {"task": task, "method": method, "metric": metric, "value": float(value), "low": float(low),
            "high": float(high), "logged_until": float(logged_until), "note": note}


def _hours(runs: list[Run], reps: int, rng, pick) -> tuple | None:
    """Mean (and seed-bootstrap CI) over seeds of pick(run) in hours; None unless every seed has it."""
    seconds = [pick(run) for run in runs]
    if not seconds or any(s is None for s in seconds):
        return None
    mean, low, high = stats.bootstrap_mean_ci(np.array(seconds) / 3600.0, reps, rng)
    return float(mean), float(low), float(high)


def _seconds_after_stage2(run: Run) -> float | None:
    """total_time of the frame-0 evaluation: logged as it starts, right after stage 2 (loading the demos included)."""
    return float(run.total_time[0]) if run.total_time is not None and run.frames[0] == 0 else None


def _seconds_full_run(run: Run) -> float | None:
    if run.total_time is None or run.last_frame < FULL_RUN_FRAMES:
        return None
    return float(run.total_time[-1])


def _seconds_stage3(run: Run) -> float | None:
    start, end = _seconds_after_stage2(run), _seconds_full_run(run)
    return None if start is None or end is None else end - start


def _timing_rows(runs: list[Run], frames_to_90: dict, reps: int, rng) -> list[dict]:
    rows = []
    for (method, task), group in group_runs(runs).items():
        reached = frames_to_90.get((method, task), np.inf)
        pickers = {"hours_stage2": _seconds_after_stage2, "hours_stage3": _seconds_stage3,
                   "hours_total": _seconds_full_run, "hours_to_90": lambda run: time_at_frame(run, reached)}
        for metric, pick in pickers.items():
            hours = _hours(group, reps, rng, pick)
            if hours is not None:
                rows.append(_row(task, method, metric, *hours))
    return rows


def _ratio_bounds(rrl_frames: float, low: float, high: float) -> tuple[float, float]:
    """100 x rrl / ours over our frames-to-90 % CI [low, high] (RRL's value taken as fixed): the ratio falls as our
    frames grow, so our high bound gives its low one; no bound where ours has none."""
    if np.isnan(low) or np.isnan(high):
        return np.nan, np.nan
    return 100.0 * rrl_frames / high, 100.0 * rrl_frames / low  # high = inf ("not reached" in the CI) -> 0


def _efficiency_rows(frames_to_90: dict, hours_to_90: dict) -> list[dict]:
    """100 x (RRL frames to 90 %) / (ours frames to 90 %), per task and averaged over the tasks of each family.

    frames_to_90 maps (method, task) to (frames, low, high) with our 95 % CI. This reading of "X % better sample
    efficiency" matches the published pairs: 11M / 0.9M = 1222 % (1220 %) and 11M / 0.45M = 2444 % (2440 %) on
    relocate. A family's mean carries the mean of its tasks' bounds, a conservative interval.
    """
    rrl = {task: f for (method, task), (f, _, _) in frames_to_90.items() if method.lower() == "rrl"}
    rows, ratios_by_method = [], {}
    tasks_by_method: dict[tuple[str, str], list] = {}  # (method, family) -> tasks
    for method, task in frames_to_90:
        tasks_by_method.setdefault((method, families.family_of(task)), []).append(task)
    for (method, task), (frames, low, high) in sorted(frames_to_90.items()):
        if method.lower() == "rrl" or task not in rrl or not (np.isfinite(frames) and np.isfinite(rrl[task])):
            continue
        ratio = 100.0 * rrl[task] / frames
        bounds = _ratio_bounds(rrl[task], low, high)
        rows.append(_row(task, method, "sample_efficiency_vs_rrl_pct", ratio, *bounds))
        ratios_by_method.setdefault((method, families.family_of(task)), []).append((task, ratio, bounds))
        if (method, task) in hours_to_90 and ("rrl", task) in hours_to_90:
            rows.append(_row(task, method, "compute_fraction_of_rrl_pct",
                             100.0 * hours_to_90[(method, task)] / hours_to_90[("rrl", task)]))
    for (method, family), ratios in ratios_by_method.items():
        used = [task for task, _, _ in ratios]
        left_out = sorted(set(tasks_by_method[(method, family)]) - set(used))
        note = f"mean over {', '.join(used)}" + (f"; 90 % not reached on {', '.join(left_out)}" if left_out else "")
        lows, highs = zip(*(bounds for _, _, bounds in ratios))
        rows.append(_row(families.aggregate_task(family), method, "sample_efficiency_vs_rrl_pct",
                         np.mean([r for _, r, _ in ratios]), np.mean(lows), np.mean(highs), note=note))
    return rows


def our_metrics(runs: list[Run], success: pd.DataFrame, thresholds: pd.DataFrame, aggregates: pd.DataFrame,
                reps: int, rng) -> pd.DataFrame:
    rows = [_row(r.task, r.method, f"success_rate@{r.frames}", r.mean, r.low, r.high)
            for r in success.itertuples() if r.n_seeds > 0]
    rows += [_row(r.task, r.method, f"frames_to_{round(r.threshold * 100)}", r.frames, r.low, r.high,
                  r.logged_until) for r in thresholds.itertuples()]
    rows += [_row(families.aggregate_task(getattr(r, "family", families.ADROIT)), r.method,
                  f"{'success_rate' if r.metric == 'mean' else r.metric}@{r.frames}", r.value, r.low, r.high)
             for r in aggregates.itertuples()]
    to_90 = {(r.method, r.task): (r.frames, r.low, r.high) for r in thresholds.itertuples()
             if np.isclose(r.threshold, 0.9)}
    timing = _timing_rows(runs, {key: frames for key, (frames, _, _) in to_90.items()}, reps, rng)
    hours_to_90 = {(r["method"], r["task"]): r["value"] for r in timing if r["metric"] == "hours_to_90"}
    rows += timing + _efficiency_rows(to_90, hours_to_90)
    return pd.DataFrame(rows, columns=["task", "method", "metric", "value", "low", "high", "logged_until", "note"])


def _check(paper, ours) -> str:
    """How our number relates to the paper's: the paper's band when it has one, else our 95 % CI."""
    value, low, high = ours.value, ours.low, ours.high
    if not np.isfinite(value) and np.isfinite(paper.value):
        if np.isfinite(ours.logged_until) and ours.logged_until < paper.value:
            return f"not comparable: our runs stop at {format_frames(ours.logged_until)}, before the paper value"
        return "OUTSIDE: not reached by our runs"
    if np.isfinite(paper.low) and np.isfinite(paper.high):
        return "within paper band" if paper.low <= value <= paper.high else "OUTSIDE paper band"
    if np.isnan(low) or np.isnan(high) or low == high:
        return f"no band to compare (ours is {100 * (value / paper.value - 1):+.0f} % off the paper value)"
    return "paper value within our 95 % CI" if low <= paper.value <= high else "OUTSIDE: paper value not in our 95 % CI"


def _with_note(check: str, ours) -> str:
    note = getattr(ours, "note", "")
    return f"{check} ({note})" if isinstance(note, str) and note else check


def compare(ours: pd.DataFrame, paper: pd.DataFrame, families_run: set[str] | None = None) -> pd.DataFrame:
    """Every paper number of the task families that ran (all of them when `families_run` is None) with ours beside
    it, then our headline numbers that have no paper value; the last column names each row's family."""
    paper_metrics = set(paper["metric"])  # ours are listed for these on every family, even without a paper value
    if families_run is not None:
        paper = paper[[families.family_of_row(task) in families_run for task in paper["task"]]]
    paper_methods = set(paper["method"].str.lower())
    ours = ours.assign(paper_method=[paper_method_key(m, paper_methods) for m in ours["method"]])
    rows, matched = [], set()
    for p in paper.itertuples():
        hits = ours[(ours.task == p.task) & (ours.metric == p.metric) & (ours.paper_method == p.method.lower())]
        for o in hits.itertuples():
            matched.add(o.Index)
            rows.append(dict(task=p.task, method=o.method, metric=p.metric, paper_value=p.value, paper_low=p.low,
                             paper_high=p.high, our_value=o.value, our_low=o.low, our_high=o.high,
                             check=_with_note(_check(p, o), o), source=p.source))
        if hits.empty:
            rows.append(dict(task=p.task, method=p.method, metric=p.metric, paper_value=p.value, paper_low=p.low,
                             paper_high=p.high, our_value=np.nan, our_low=np.nan, our_high=np.nan,
                             check="no run data", source=p.source))
    for o in ours.itertuples():
        if o.Index not in matched and (o.metric in HEADLINE_METRICS or o.metric in paper_metrics):
            rows.append(dict(task=o.task, method=o.method, metric=o.metric, paper_value=np.nan, paper_low=np.nan,
                             paper_high=np.nan, our_value=o.value, our_low=o.low, our_high=o.high,
                             check=_with_note("no paper value", o), source=""))
    comparison = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    return comparison.assign(family=[families.family_of_row(task) for task in comparison["task"]])
