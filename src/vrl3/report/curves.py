"""Put the seeds (and tasks) of one method on a common evaluation grid and summarise them."""

from dataclasses import dataclass

import numpy as np

from vrl3.errors import UserError
from vrl3.report.runs import Run


@dataclass
class Aligned:
    frames: np.ndarray  # the common grid
    values: np.ndarray  # (curves, frames)
    interpolated: bool  # True when the curves did not share their evaluation frames
    truncated: bool  # True when some curve went on past the grid's end


def _same_evaluations(curves: list[tuple[np.ndarray, np.ndarray]]) -> Aligned | None:
    """Curves whose k-th evaluations lie less than half an evaluation interval apart, on the grid of the earliest
    of each (with several envs an evaluation runs at the first block start after its frame, so runs with other
    num_envs, or with episodes cut short, log it a few frames apart); None when they do not."""
    count = min(len(f) for f, _ in curves)
    if count < 2:
        return None
    frames = np.stack([f[:count] for f, _ in curves]).astype(np.float64)
    interval = np.diff(frames, axis=1).min()
    if interval <= 0 or 2 * np.ptp(frames, axis=0).max() >= interval:
        return None
    return Aligned(frames.min(axis=0).astype(curves[0][0].dtype), np.stack([v[:count] for _, v in curves]),
                   interpolated=False, truncated=any(len(f) > count for f, _ in curves))


def align(curves: list[tuple[np.ndarray, np.ndarray]], what: str) -> Aligned:
    """Curves on the frames they share, up to the shortest one's end.

    Curves logged at the same frames (the normal case) keep their exact values, and so do curves whose k-th
    evaluations are a few frames apart. Otherwise each is linearly interpolated onto the union of their frames
    inside the range all of them cover.
    """
    start = max(int(f[0]) for f, _ in curves)
    end = min(int(f[-1]) for f, _ in curves)
    if start > end:
        raise UserError(f"{what}: the runs' evaluation frames do not overlap (one ends before another starts); "
                        f"remove the stray run or re-run it")
    inside = [f[(f >= start) & (f <= end)] for f, _ in curves]
    truncated = any(int(f[-1]) > end for f, _ in curves)
    same = all(len(g) == len(inside[0]) and np.array_equal(g, inside[0]) for g in inside)
    if not same and (evaluations := _same_evaluations(curves)) is not None:
        return evaluations
    grid = inside[0] if same else np.unique(np.concatenate(inside))
    values = np.stack([np.interp(grid, f, v) for f, v in curves])
    return Aligned(grid, values, interpolated=not same, truncated=truncated)


def align_runs(runs: list[Run], what: str) -> Aligned:
    return align([(r.frames, r.success) for r in runs], what)


def value_at_budget(run: Run, budget: int) -> float | None:
    """Success at the last evaluation at or before `budget`; None when the run stops before `budget`."""
    if run.last_frame < budget:
        return None
    index = np.searchsorted(run.frames, budget, side="right") - 1
    return float(run.success[index]) if index >= 0 else None


def time_at_frame(run: Run, frame: float) -> float | None:
    """Seconds the run had spent when it logged its first evaluation at or after `frame`."""
    if run.total_time is None or not np.isfinite(frame) or run.last_frame < frame:
        return None
    return float(run.total_time[np.searchsorted(run.frames, frame, side="left")])
