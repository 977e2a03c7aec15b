"""Hyper-parameter sensitivity (paper Fig. 6, `plot_hyper_sensitivity`): per run, the mean success rate over its
evaluations up to 1M frames; per setting, the seeds as points and, per task, their mean ± sd."""

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from vrl3.pipeline.metrics import mean_success_to_1m  # noqa: E402
from vrl3.pipeline.variants import Variant, value_word  # noqa: E402
from vrl3.report import figures  # noqa: E402
from vrl3.report.runs import Run  # noqa: E402

COLUMNS = ["sweep", "key", "setting", "variant", "task", "seed", "score"]
ALL_TASKS = "all"  # the summary row over every task's runs of a setting


STAGE1_PANEL = "stage1_source"


@dataclass
class Panel:
    """One Fig. 6 panel: the key it varies and its variants' settings, in the order the config lists them."""
    key: str
    settings: dict[str, str]  # variant name -> setting (the x-axis label)
    needs: str | None = None  # a variant without whose runs the panel says nothing (drawn and scored only with them)


def panels(variants: dict[str, Variant]) -> dict[str, Panel]:
    """A panel per sweep entry, plus "S1 pretrain/random" (reference §6.2) from `vrl3` and `stage1_random` where the
    config has both: a variant can only switch stage 1 off, so that comparison is two named variants, not a sweep."""
    grouped: dict[str, Panel] = {}
    for variant in variants.values():
        if variant.sweep is not None:
            grouped.setdefault(variant.sweep, Panel(variant.sweep_key, {})).settings[variant.name] = \
                value_word(variant.value)
    if {"vrl3", "stage1_random"} <= set(variants) and STAGE1_PANEL not in grouped:
        grouped[STAGE1_PANEL] = Panel("stage1.source", {"vrl3": "pretrained", "stage1_random": "none"},
                                      needs="stage1_random")
    return grouped


def run_score(run: Run) -> float:
    """Mean success over the evaluations at or before 1M frames (NaN when the run has none)."""
    score = mean_success_to_1m(run.frames, run.success)
    return float("nan") if score is None else score


def scores(runs: list[Run], variants: dict[str, Variant]) -> pd.DataFrame:
    """A row per run and panel it belongs to (a `vrl3` run also scores in the stage-1 panel, where there are runs of
    `stage1_random`)."""
    methods = {run.method for run in runs}
    rows = [{"sweep": name, "key": panel.key, "setting": panel.settings[run.method], "variant": run.method,
             "task": run.task, "seed": run.seed, "score": run_score(run)}
            for name, panel in panels(variants).items() if panel.needs is None or panel.needs in methods
            for run in runs if run.method in panel.settings]
    return pd.DataFrame(rows, columns=COLUMNS)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per sweep, setting and task: mean and sd of the run scores (over seeds) and the number of runs; then, as task
    `all`, the same over every task's runs of the setting."""
    scored = table.dropna(subset=["score"])
    setting = ["sweep", "key", "setting", "variant"]
    per_task = scored.groupby([*setting, "task"], sort=False)["score"].agg(mean="mean", sd="std", n_runs="count")
    pooled = scored.groupby(setting, sort=False)["score"].agg(mean="mean", sd="std", n_runs="count")
    pooled = pooled.reset_index().assign(task=ALL_TASKS)
    rows = pd.concat([per_task.reset_index(), pooled], ignore_index=True)
    # each setting's tasks, then its `all` row, in the order the settings were scored
    rows["order"] = rows.groupby(setting, sort=False).ngroup()
    rows = rows.sort_values(["order"], kind="stable").drop(columns="order")
    return rows[[*setting, "task", "mean", "sd", "n_runs"]].reset_index(drop=True)


def plot(table: pd.DataFrame, key: str, title: str, stem: Path) -> None:
    figures.style()
    fig, ax = plt.subplots(figsize=(figures.FIGSIZE[0] * 1.45, figures.FIGSIZE[1]))  # room for the task legend
    order = list(dict.fromkeys(table["setting"]))
    # as `plot_hyper_sensitivity`: the seeds as points and each task's mean ± sd, coloured by task
    hue_order = list(dict.fromkeys(table["task"]))
    sns.stripplot(data=table, x="setting", y="score", hue="task", order=order, hue_order=hue_order, dodge=True,
                  alpha=0.5, ax=ax, legend=False)
    sns.pointplot(data=table, x="setting", y="score", hue="task", order=order, hue_order=hue_order,
                  errorbar="sd", dodge=0.8 - 0.8 / len(hue_order), linestyles="none", markers="_", ax=ax)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(key)
    ax.set_ylabel("Mean success to 1M frames")
    ax.set_title(title, fontsize="medium")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", title="task")  # beside the data
    figures.save(fig, stem)
