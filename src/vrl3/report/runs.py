"""Find runs under a folder and read their evaluation logs into (frame, success_rate) curves.

Layouts understood (each folder holding a log is one seed of one method on one task):
* ours:      [<variant>/]<task>/seed<N>/eval.csv              (method `vrl3` when there is no variant level; an
             eval.csv with a `variant` column names its method there)
* official:  .../<variant>_<env>_s<seed>/eval.csv             (plot_utils naming, e.g. `..._door-v0_s1`)
* RRL:       .../<variant>_<env>_s<seed>/log.csv              (iteration, success_rate in percent)
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vrl3.errors import UserError, first_line
from vrl3.pipeline.stage_state import SUPERSEDED
from vrl3.report import families

RRL_FRAMES_PER_ITERATION = 40_000  # RRL/DAPG: 200 trajectories x 200 steps per iteration (reference §6.2)
OUR_SEED_DIR = re.compile(r"^seed(\d+)$")
DRQV2_DMC = "drqv2_author"  # plot_utils' DrQ-v2 baseline folders: DMC episode rewards (drq_converter.py)
OFFICIAL_RUN_DIR = re.compile(r"^(.+)_s(\d+)$")  # seed after the last `_s`
ENV_VERSION = re.compile(r"-v\d+$")


@dataclass
class Run:
    method: str
    task: str
    seed: int
    path: Path  # the log file
    frames: np.ndarray  # int64, increasing
    success: np.ndarray  # fraction in [0, 1]
    total_time: np.ndarray | None  # seconds since the run started, where the log has it

    @property
    def last_frame(self) -> int:
        return int(self.frames[-1])

    @property
    def folder(self) -> Path:
        """The run's folder, where `vrl3 train` also leaves train.csv and stage2/train.csv."""
        return self.path.parent


def task_from_env(env: str) -> str:
    """`door-v0` -> `door`; names without a version stay as they are."""
    return ENV_VERSION.sub("", env)


def numeric_column(table: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    values = pd.to_numeric(table[column], errors="coerce")
    bad = values.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(f"{path}: column {column!r} has a non-numeric value {table[column].iloc[row]!r} in data row "
                        f"{row + 1}; fix or delete that row (or re-run the evaluation that wrote it)")
    return values.to_numpy(dtype=float)


def read_table(path: Path, required: tuple[str, ...], allow_empty: bool = False) -> pd.DataFrame | None:
    """A log's rows as text; None for an empty file or a header without rows when `allow_empty`."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        if allow_empty:
            return None
        raise UserError(f"{path}: the file is empty; delete it or re-run the run that should have written it") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not a readable CSV ({first_line(error)}); delete it or re-run the run that wrote "
                        f"it") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(table.columns)}); "
                        f"the file needs columns {', '.join(required)} — point --runs at training logs")
    if len(table) == 0:
        if allow_empty:
            return None
        raise UserError(f"{path}: no data rows (header only); delete the run folder or let the run write an evaluation")
    return table


def _sorted_unique(frames: np.ndarray, *columns):
    """Sort by frame; a frame logged twice (e.g. after a resume) keeps its last row."""
    order = np.argsort(frames, kind="stable")
    frames = frames[order]
    keep = np.append(frames[1:] != frames[:-1], True)
    return (frames[keep],) + tuple(None if c is None else c[order][keep] for c in columns)


def _counts(values: np.ndarray, column: str, path: Path) -> np.ndarray:
    """Frame or iteration numbers: finite, not negative, and small enough to count in int64 frames."""
    bad = ~np.isfinite(values) | (values < 0) | (values >= 2 ** 50)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise UserError(f"{path}: column {column!r} has {values[row]:g} in data row {row + 1}, not a count: fix or "
                        f"delete that row")
    return values


def read_eval_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(frames, success fraction, total_time or None) of an eval.csv (ours, official or RRL-converted)."""
    table = read_table(path, ("frame", "success_rate"))
    frames = _counts(numeric_column(table, "frame", path), "frame", path)
    success = numeric_column(table, "success_rate", path)
    total_time = numeric_column(table, "total_time", path) if "total_time" in table.columns else None
    if success.min() < 0 or success.max() > 1:
        raise UserError(f"{path}: success_rate must be a fraction in [0, 1] (found {success.max():g}); "
                        f"a percent-valued RRL log belongs in log.csv, or divide the column by 100")
    return _sorted_unique(frames.astype(np.int64), success, total_time)


def logged_variant(path: Path) -> str | None:
    """The variant an eval.csv of ours records in its `variant` column (None for logs without one)."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                        usecols=lambda column: column.strip() == "variant")
    names = set(table.iloc[:, 0]) - {""} if len(table.columns) else set()
    if len(names) > 1:
        raise UserError(f"{path}: column 'variant' holds several names ({', '.join(sorted(names))}); one run folder "
                        f"holds one variant: move the rows apart or delete the file")
    return names.pop() if names else None


def read_rrl_log(path: Path) -> tuple[np.ndarray, np.ndarray, None]:
    """RRL's log.csv converted as plot_utils/rrl_result_converter.py does: frame = iteration * 40000, % -> fraction."""
    table = read_table(path, ("iteration", "success_rate"))
    iterations = _counts(numeric_column(table, "iteration", path), "iteration", path)
    percent = numeric_column(table, "success_rate", path)
    if percent.min() < 0 or percent.max() > 100:
        raise UserError(f"{path}: RRL success_rate must be a percentage in [0, 100] (found {percent.max():g}); "
                        f"fix the file or delete the run folder")
    frames = (iterations * RRL_FRAMES_PER_ITERATION).astype(np.int64)
    return _sorted_unique(frames, percent / 100.0, None)


def identify(folder: Path, root: Path, default_method: str) -> tuple[str, str, int] | None:
    """(method, task, seed) from the folder's place in the tree, or None when no layout matches."""
    name = folder.name
    ours = OUR_SEED_DIR.match(name)
    if ours:
        rel = folder.relative_to(root).parts if folder != root else ()
        task = folder.parent.name
        method = "/".join(rel[:-2]) or default_method
        return method, task_from_env(task), int(ours.group(1))
    official = OFFICIAL_RUN_DIR.match(name)
    if official:
        prefix, seed = official.group(1), int(official.group(2))
        variant, _, env = prefix.rpartition("_")
        return variant or default_method, task_from_env(env), seed
    return None


def _header(path: Path) -> list[str]:
    return [column.strip() for column in pd.read_csv(path, nrows=0).columns]


def discover_runs(root: Path, warn) -> list[Run]:
    """Every run below `root`, sorted by (method, task, seed). `warn(message)` receives skipped folders."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"--runs {root}: no such folder; give the folder that holds <task>/seed<N>/eval.csv")
    runs: dict[tuple[str, str, int], Run] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(name for name in dirnames if name != SUPERSEDED)  # stages that started over
        folder = Path(dirpath)
        if "eval.csv" in filenames:
            log, reader, default_method = folder / "eval.csv", read_eval_csv, "vrl3"
        elif "log.csv" in filenames:
            log, reader, default_method = folder / "log.csv", read_rrl_log, "rrl"
        else:
            continue
        key = identify(folder, root, default_method)
        if key is None:
            warn(f"skipped {log}: its folder is named neither seed<N> (in <task>/seed<N>) nor <variant>_<env>_s<seed>")
            continue
        if folder.name.startswith(f"{DRQV2_DMC}_") and "success_rate" not in _header(log):
            warn(f"skipped {log}: DrQ-v2's DMC curves ({DRQV2_DMC}_<task>) have no success rate")
            continue
        if key in runs:
            raise UserError(f"{log} and {runs[key].path} are both method {key[0]}, task {key[1]}, seed {key[2]}; "
                            f"point --runs at a folder that holds each run once")
        frames, success, total_time = reader(log)
        variant = logged_variant(log) if reader is read_eval_csv else None
        if variant is not None:
            key = (variant, *key[1:])
        if key in runs:
            raise UserError(f"{log} and {runs[key].path} are both method {key[0]}, task {key[1]}, seed {key[2]}; "
                            f"point --runs at a folder that holds each run once")
        runs[key] = Run(*key, path=log, frames=frames, success=success, total_time=total_time)
    if not runs:
        raise UserError(f"--runs {root}: no runs found; expected <task>/seed<N>/eval.csv, "
                        f"<variant>_<env>_s<seed>/eval.csv or an RRL <variant>_<env>_s<seed>/log.csv below it")
    return [runs[k] for k in sorted(runs)]


def coverage_warnings(runs: list[Run]) -> list[str]:
    """Lines naming tasks that lack some of their method's seeds, and methods that lack some tasks."""
    seeds: dict[str, dict[str, set]] = {}
    for run in runs:
        seeds.setdefault(run.method, {}).setdefault(run.task, set()).add(run.seed)
    tasks_by_family = {family: sorted({run.task for run in family_runs})
                       for family, family_runs in families.split_runs(runs).items()}
    lines = []
    for method, by_task in seeds.items():
        every_seed = set().union(*by_task.values())
        for task, have in sorted(by_task.items()):
            if have != every_seed:
                lacking = ", ".join(str(s) for s in sorted(every_seed - have))
                lines.append(f"method {method}, task {task}: seed(s) {lacking} missing (has "
                             f"{', '.join(str(s) for s in sorted(have))}); its statistics use the seeds present")
        for family, family_tasks in tasks_by_family.items():
            lines += _family_coverage(method, family, family_tasks, sorted(by_task), len(tasks_by_family) > 1)
    return lines


def _family_coverage(method: str, family: str, family_tasks: list[str], method_tasks: list[str],
                     several_families: bool) -> list[str]:
    """The line (if any) saying which tasks of one family a method lacks; aggregates are taken within a family."""
    absent = [t for t in family_tasks if t not in method_tasks]
    if not absent:
        return []
    have = [t for t in family_tasks if t in method_tasks]
    if not have:
        return [f"method {method}: no runs for task(s) {', '.join(absent)}; it has no {family} aggregate"]
    which = f"its {family} aggregate" if several_families else "its aggregate"
    return [f"method {method}: no runs for task(s) {', '.join(absent)}; {which} covers only {', '.join(have)} and "
            f"is not comparable with methods that have all tasks"]
