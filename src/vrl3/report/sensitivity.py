"""Hyper-parameter sensitivity (paper Fig. 6, `plot_hyper_sensitivity`): per run, the mean success rate over its
evaluations up to 1M frames; per setting, the seeds as points and their mean ± sd."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from vrl3.pipeline.variants import Variant, value_word  # noqa: E402
from vrl3.report import figures  # noqa: E402
from vrl3.report.runs import Run  # noqa: E402

SCORE_FRAMES = 1_000_000
COLUMNS = ["sweep", "key", "setting", "variant", "task", "seed", "score"]


def sweeps(variants: dict[str, Variant]) -> dict[str, list[Variant]]:
    """sweep entry -> its variants, in the order the config lists the values."""
    grouped: dict[str, list[Variant]] = {}
    for variant in variants.values():
        if variant.sweep is not None:
            grouped.setdefault(variant.sweep, []).append(variant)
    return grouped


def run_score(run: Run) -> float:
    """Mean success over the evaluations at or before 1M frames (NaN when the run has none)."""
    kept = run.success[run.frames <= SCORE_FRAMES]
    return float(kept.mean()) if len(kept) else float("nan")


def scores(runs: list[Run], variants: dict[str, Variant]) -> pd.DataFrame:
    rows = [{"sweep": variants[run.method].sweep, "key": variants[run.method].sweep_key,
             "setting": value_word(variants[run.method].value), "variant": run.method, "task": run.task,
             "seed": run.seed, "score": run_score(run)}
            for run in runs if run.method in variants and variants[run.method].sweep is not None]
    return pd.DataFrame(rows, columns=COLUMNS)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per sweep and setting: mean and sd of the run scores (over seeds and tasks) and the number of runs."""
    grouped = table.dropna(subset=["score"]).groupby(["sweep", "key", "setting", "variant"], sort=False)["score"]
    return grouped.agg(mean="mean", sd="std", n_runs="count").reset_index()


def plot(table: pd.DataFrame, key: str, title: str, stem: Path) -> None:
    figures._style()
    fig, ax = plt.subplots(figsize=figures.FIGSIZE)
    order = list(dict.fromkeys(table["setting"]))
    sns.stripplot(data=table, x="setting", y="score", hue="task", order=order, dodge=False, alpha=0.7, ax=ax)
    sns.pointplot(data=table, x="setting", y="score", order=order, errorbar="sd", color="black", linestyles="none",
                  markers="_", ax=ax)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(key)
    ax.set_ylabel("Mean success to 1M frames")
    ax.set_title(title, fontsize="medium")
    ax.legend(loc="best", fontsize="small")
    figures._save(fig, stem)
