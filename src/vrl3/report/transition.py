"""The critic's Q across the stage 2 -> 3 boundary (paper Fig. 3, safe Q): stage2/train.csv, then train.csv."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from vrl3.report import figures  # noqa: E402
from vrl3.report.runs import Run, numeric_column, read_table  # noqa: E402

Q_LIMIT = 1050  # plot_utils clamps the critic_q1 axis to ±1050


def _read(path: Path, x: str) -> pd.DataFrame | None:
    """A train log's x column (update or frame) and critic_q1; None when there is no log or it has no rows."""
    table = read_table(path, (x, "critic_q1"), allow_empty=True) if path.exists() else None
    if table is None:
        return None
    return pd.DataFrame({"x": numeric_column(table, x, path), "critic_q1": numeric_column(table, "critic_q1", path)})


def critic_q_logs(runs: list[Run]) -> pd.DataFrame:
    """Long table (variant, task, seed, stage, x, critic_q1): x = stage-2 update or stage-3 frame."""
    parts = []
    for run in runs:
        for stage, path, x in ((2, run.folder / "stage2" / "train.csv", "update"),
                               (3, run.folder / "train.csv", "frame")):
            table = _read(path, x)
            if table is not None:
                parts.append(table.assign(variant=run.method, task=run.task, seed=run.seed, stage=stage))
    columns = ["variant", "task", "seed", "stage", "x", "critic_q1"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def plot(logs: pd.DataFrame, variants: list[str], colors: dict, title: str, stem: Path, reps: int) -> None:
    """Two panels sharing the Q axis: stage 2 over updates, stage 3 over frames; mean over seeds and tasks with a
    95 % bootstrap band (seaborn, as plot_utils), the axis clamped to ±1050."""
    figures.style()
    fig, axes = plt.subplots(1, 2, figsize=(figures.FIGSIZE[0] * 2, figures.FIGSIZE[1]), sharey=True)
    palette = {v: colors[v] for v in variants}
    for ax, stage, xlabel in ((axes[0], 2, "Stage-2 updates"), (axes[1], 3, "Frames (stage 3)")):
        data = logs[logs["stage"] == stage]
        if data.empty:
            ax.text(0.5, 0.5, f"no stage-{stage} train log", ha="center", va="center", transform=ax.transAxes)
        else:
            sns.lineplot(data=data, x="x", y="critic_q1", hue="variant", hue_order=[v for v in variants
                                                                                   if v in set(data["variant"])],
                         palette=palette, errorbar=("ci", 95), n_boot=reps, seed=0, ax=ax)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(figures.frames_label))
        ax.set_xlabel(xlabel)
        ax.set_title(f"Stage {stage}")
    if axes[0].get_legend() is not None and axes[1].get_legend() is not None:
        axes[0].get_legend().remove()  # one legend for both panels
    for ax in axes:
        if ax.get_legend() is not None:
            sns.move_legend(ax, "best", fontsize="small", title=None)
    low, high = logs["critic_q1"].min(), logs["critic_q1"].max()
    margin = 0.05 * max(high - low, 1.0)
    axes[0].set_ylim(max(low - margin, -Q_LIMIT), min(high + margin, Q_LIMIT))
    axes[0].set_ylabel("Critic Q1")
    fig.suptitle(title, fontsize="medium")
    figures.save(fig, stem)
