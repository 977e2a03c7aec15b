"""Statistics over seeds and tasks: bootstrap CIs, IQM, optimality gap, performance profiles, frames-to-threshold.

Point estimates of IQM and optimality gap come from `rliable.metrics`. `rliable.library` (its bootstrap) cannot be
imported with the pinned stack (arch 7.2 breaks on pandas 3), so the stratified bootstrap is implemented here with
rliable's definitions: resample runs with replacement within each task, percentile interval.
"""

import numpy as np
from rliable import metrics as rly_metrics

CI_LEVEL = 0.95


def percentile_interval(samples: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    tail = (1 - CI_LEVEL) / 2 * 100
    return np.percentile(samples, tail, axis=axis), np.percentile(samples, 100 - tail, axis=axis)


def bootstrap_mean_ci(values: np.ndarray, reps: int, rng: np.random.Generator):
    """Mean over seeds (axis 0) and its 95 % percentile-bootstrap interval, for every column at once.

    `values` is (seeds,) or (seeds, frames); each resample draws whole seeds so a curve stays one seed's curve.
    """
    values = np.asarray(values, dtype=float)
    mean = values.mean(axis=0)
    if len(values) == 1:
        return mean, mean.copy(), mean.copy()
    picks = rng.integers(0, len(values), size=(reps, len(values)))
    low, high = percentile_interval(values[picks].mean(axis=1))
    return mean, low, high


def stratified_resamples(scores_by_task: dict[str, np.ndarray], reps: int, rng: np.random.Generator):
    """`reps` resampled copies of `scores_by_task`: runs drawn with replacement within each task."""
    for _ in range(reps):
        yield {task: s[rng.integers(0, len(s), size=len(s))] for task, s in scores_by_task.items()}


def pooled(scores_by_task: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(s, dtype=float).reshape(-1) for s in scores_by_task.values()])


def iqm(scores_by_task: dict[str, np.ndarray]) -> float:
    """Interquartile mean of all run scores (rliable: 25 % trimmed from each end of the pooled scores)."""
    return float(rly_metrics.aggregate_iqm(pooled(scores_by_task)))


def optimality_gap(scores_by_task: dict[str, np.ndarray]) -> float:
    """Mean over all runs of max(1 - score, 0) (rliable with gamma = 1)."""
    return float(rly_metrics.aggregate_optimality_gap(pooled(scores_by_task), gamma=1))


def mean_of_task_means(scores_by_task: dict[str, np.ndarray]) -> float:
    return float(np.mean([np.mean(s) for s in scores_by_task.values()]))


AGGREGATES = {"iqm": iqm, "optimality_gap": optimality_gap, "mean": mean_of_task_means}


def stratified_bootstrap_ci(scores_by_task: dict[str, np.ndarray], statistic, reps: int, rng: np.random.Generator):
    """(point estimate, low, high) of `statistic(scores_by_task)` with a stratified percentile bootstrap."""
    point = np.asarray(statistic(scores_by_task), dtype=float)
    samples = np.array([statistic(r) for r in stratified_resamples(scores_by_task, reps, rng)], dtype=float)
    low, high = percentile_interval(samples)
    return point, low, high


def performance_profile(scores_by_task: dict[str, np.ndarray], taus: np.ndarray) -> np.ndarray:
    """Fraction of all runs whose score is strictly above each tau (rliable's run-score distribution)."""
    scores = pooled(scores_by_task)
    return (scores[:, None] > np.asarray(taus)[None, :]).mean(axis=0)


def frames_to_threshold_index(mean_success: np.ndarray, threshold: float, window: int) -> np.ndarray:
    """Index of the first eval after the first `window`-eval window whose mean success >= threshold; -1 if none.

    `mean_success` is (evals,) or (resamples, evals). As in plot_utils, window starts run over
    range(n_evals - window), so the returned index (start + window) always names a logged evaluation.
    """
    curves = np.atleast_2d(np.asarray(mean_success, dtype=float))
    n_starts = curves.shape[1] - window
    if window < 1 or n_starts < 1:
        found = np.full(len(curves), -1)
    else:
        sums = np.cumsum(np.pad(curves, ((0, 0), (1, 0))), axis=1)
        window_means = (sums[:, window:window + n_starts] - sums[:, :n_starts]) / window
        hit = window_means >= threshold - 1e-12
        found = np.where(hit.any(axis=1), hit.argmax(axis=1) + window, -1)
    return found if np.ndim(mean_success) == 2 else found[0]


def frames_to_threshold(frames: np.ndarray, seed_success: np.ndarray, threshold: float, window_frames: int,
                        reps: int, rng: np.random.Generator):
    """Frames to reach `threshold` (reference §6.2) on a uniform eval grid, with a seed-bootstrap interval.

    `seed_success` is (seeds, evals) on the grid `frames` (which starts at frame 0 for the official formula
    frames = (start + window) * frames_per_eval). Returns (frames, low, high) with np.inf for "not reached".
    """
    frames = np.asarray(frames)
    frames_per_eval = int(np.median(np.diff(frames))) if len(frames) > 1 else window_frames
    window = int(window_frames / frames_per_eval)
    as_frames = lambda index: np.where(index >= 0, frames[np.maximum(index, 0)], np.inf)  # noqa: E731
    point = float(as_frames(frames_to_threshold_index(seed_success.mean(axis=0), threshold, window)))
    if len(seed_success) == 1:
        return point, point, point
    picks = rng.integers(0, len(seed_success), size=(reps, len(seed_success)))
    resampled = as_frames(frames_to_threshold_index(seed_success[picks].mean(axis=1), threshold, window))
    tail = (1 - CI_LEVEL) / 2
    low, high = np.quantile(resampled, [tail, 1 - tail], method="inverted_cdf")  # no interpolation with inf
    return point, float(low), float(high)
