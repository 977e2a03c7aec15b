"""Success-rate curves (per task and averaged over tasks) and performance profiles, as PNG and PDF."""

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from vrl3.report import stats  # noqa: E402
from vrl3.report.curves import align, align_runs  # noqa: E402
from vrl3.report.runs import Run  # noqa: E402

FIGSIZE = (3.6, 2.8)  # inches: a half-column panel that stays legible when printed at this size
TAUS = np.linspace(0.0, 1.0, 101)
MAX_INLINE_LEGEND = 6  # more curves than this: the legend goes beside the axes


@dataclass
class Curve:
    label: str
    frames: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_seeds: int


def frames_label(frames: float, _position=None) -> str:
    """Tick label for a frame count: 4M, 0.5M, 200k, 400 (short labels that do not overlap)."""
    if abs(frames) >= 1e5:
        return f"{frames / 1e6:g}M"
    if abs(frames) >= 1e3:
        return f"{frames / 1e3:g}k"
    return f"{frames:g}"


def task_curve(label: str, runs: list[Run], reps: int, rng: np.random.Generator, warn) -> Curve:
    what = f"method {runs[0].method}, task {runs[0].task}"
    aligned = align_runs(runs, what)
    if aligned.interpolated:
        warn(f"{what}: seeds were evaluated at different frames; curves interpolated linearly onto their union")
    if aligned.truncated:
        warn(f"{what}: seeds end at different frames ({min(r.last_frame for r in runs):,} to "
             f"{max(r.last_frame for r in runs):,}); the curve stops where the shortest seed stops")
    mean, low, high = stats.bootstrap_mean_ci(aligned.values, reps, rng)
    return Curve(label, aligned.frames, mean, low, high, len(runs))


def aggregate_curve(label: str, runs_by_task: dict[str, list[Run]], reps: int, rng: np.random.Generator,
                    warn) -> Curve:
    """Mean over tasks of the per-task mean over seeds; band from a bootstrap over seeds within each task."""
    per_task = {task: align_runs(runs, f"task {task}") for task, runs in runs_by_task.items()}
    grid = align([(a.frames, a.frames) for a in per_task.values()], f"method {label}").frames
    on_grid = {t: np.stack([np.interp(grid, a.frames, row) for row in a.values]) for t, a in per_task.items()}
    mean = np.mean([values.mean(axis=0) for values in on_grid.values()], axis=0)
    samples = np.zeros((reps, len(grid)))
    for values in on_grid.values():
        picks = rng.integers(0, len(values), size=(reps, len(values)))
        samples += values[picks].mean(axis=1)
    low, high = stats.percentile_interval(samples / len(on_grid))
    return Curve(label, grid, mean, low, high, sum(len(r) for r in runs_by_task.values()))


def task_curves(groups: dict[tuple[str, str], list[Run]], methods: list[str], task: str, reps: int,
                rng: np.random.Generator, warn) -> list[Curve]:
    """A curve per method (in that order) that has runs on `task`; `groups` maps (method, task) to runs."""
    return [task_curve(m, groups[(m, task)], reps, rng, warn) for m in methods if (m, task) in groups]


def aggregate_curves(groups: dict[tuple[str, str], list[Run]], methods: list[str], reps: int,
                     rng: np.random.Generator, warn) -> list[Curve]:
    """A mean-over-tasks curve per method (in that order), over the tasks of its runs in `groups`."""
    return [aggregate_curve(m, {t: rs for (mm, t), rs in groups.items() if mm == m}, reps, rng, warn)
            for m in methods]


def style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.15,
                  rc={"lines.linewidth": 1.8, "legend.framealpha": 0.85, "legend.edgecolor": "0.8",
                      "axes.titleweight": "bold"})


def _frames_axis(ax) -> None:
    ax.xaxis.set_major_formatter(FuncFormatter(frames_label))
    ax.set_xlabel("Frames")


def save(fig, stem: Path) -> None:
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=200)
    fig.savefig(stem.with_suffix(".pdf"))
    plt.close(fig)


def _legend(ax, n_entries: int) -> None:
    if n_entries > MAX_INLINE_LEGEND:  # many variants: the legend beside the axes, in columns
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="xx-small", ncol=1 + n_entries // 16)
    else:
        ax.legend(loc="best", fontsize="small")


def _short(label: str, limit: int = 28) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def plot_curves(curves: list[Curve], colors: dict[str, tuple], title: str, stem: Path,
                max_frames: int | None = None) -> None:
    """Mean line and 95 % band per curve; `max_frames` clips the x axis (None: everything logged)."""
    style()
    crowded = len(curves) > MAX_INLINE_LEGEND
    fig, ax = plt.subplots(figsize=(FIGSIZE[0] * (1.8 if crowded else 1), FIGSIZE[1] * (1.4 if crowded else 1)))
    for curve in curves:
        keep = slice(None) if max_frames is None else curve.frames <= max_frames
        color = colors[curve.label]
        ax.fill_between(curve.frames[keep], curve.low[keep], curve.high[keep], color=color, alpha=0.22, linewidth=0)
        ax.plot(curve.frames[keep], curve.mean[keep], color=color,
                label=f"{_short(curve.label)} (n={curve.n_seeds})")
    if max_frames is not None:
        ax.set_xlim(-0.0125 * max_frames, 1.0125 * max_frames)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("Success rate")
    ax.set_title(title)
    _frames_axis(ax)
    _legend(ax, len(curves))
    save(fig, stem)


def plot_performance_profile(panels: list[tuple[str, dict[str, dict[str, np.ndarray]]]], colors: dict[str, tuple],
                             reps: int, rng: np.random.Generator, stem: Path) -> None:
    """One panel per budget: fraction of runs with success > tau, with stratified-bootstrap 95 % bands."""
    style()
    n_methods = max((len(scores) for _, scores in panels), default=0)
    crowded = n_methods > MAX_INLINE_LEGEND  # then one legend, beside the last panel
    width = FIGSIZE[0] * (len(panels) + (0.8 if crowded else 0))
    fig, axes = plt.subplots(1, len(panels), figsize=(width, FIGSIZE[1] * (1.4 if crowded else 1)), squeeze=False)
    for ax, (title, scores_by_method) in zip(axes[0], panels):
        for method, by_task in scores_by_method.items():
            profile, low, high = stats.stratified_bootstrap_ci(
                by_task, lambda s: stats.performance_profile(s, TAUS), reps, rng)
            n_runs = sum(len(s) for s in by_task.values())
            ax.fill_between(TAUS, low, high, color=colors[method], alpha=0.22, linewidth=0, step="post")
            ax.step(TAUS, profile, where="post", color=colors[method], label=f"{_short(method)} (n={n_runs})")
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(r"Success-rate threshold $\tau$")
        ax.set_title(title)
        if not crowded or ax is axes[0][-1]:
            _legend(ax, len(scores_by_method))
    axes[0][0].set_ylabel(r"Fraction of runs > $\tau$")
    save(fig, stem)


def method_colors(methods: list[str]) -> dict[str, tuple]:
    # colour-blind safe while it has enough colours; past its 10, evenly spaced hues so no two methods share one
    name = "colorblind" if len(methods) <= 10 else "husl"
    palette = sns.color_palette(name, n_colors=max(len(methods), 1))
    return {m: palette[i % len(palette)] for i, m in enumerate(methods)}
