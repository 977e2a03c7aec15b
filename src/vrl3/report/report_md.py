"""OUT/report.md: the reproduction report, our numbers beside the paper's."""

import numpy as np
import pandas as pd

from vrl3.report import families
from vrl3.report.publish import REPORT_TITLE
from vrl3.report.runs import Run
from vrl3.report.tables import format_frames, markdown_table

CHECK_HELP = """`check` reads: *within paper band* / *OUTSIDE paper band* where the paper gives a range;
*paper value within our 95 % CI* / *OUTSIDE: paper value not in our 95 % CI* where it gives one number;
*no paper value* where the paper (as available to this project) has no number for it; *no run data* where our
runs do not produce that number (missing method, task, timing column, or runs too short)."""


def _format_number(metric: str, value: float) -> str:
    if np.isnan(value):
        return ""
    if metric.startswith("frames_to"):
        return format_frames(value)
    if metric.endswith("_pct"):
        return f"{value:.0f} %"
    if metric.startswith("hours"):
        return f"{value:.2f} h"
    return f"{value:.3f}"


def _cell(metric: str, value: float, low: float, high: float) -> str:
    text = _format_number(metric, value)
    if text and not (np.isnan(low) or np.isnan(high)) and not (low == high == value):
        text += f" [{_format_number(metric, low)}, {_format_number(metric, high)}]"
    return text


def comparison_markdown(comparison: pd.DataFrame) -> pd.DataFrame:
    """Paper and our numbers as text; a comparison with a `family` column (several families ran) keeps it."""
    columns = ["task", "method", "metric", "paper", "ours", "check", "source"]
    rows = []
    for c in comparison.itertuples():
        rows.append({"task": c.task, "method": c.method, "metric": c.metric,
                     "paper": _cell(c.metric, c.paper_value, c.paper_low, c.paper_high),
                     "ours": _cell(c.metric, c.our_value, c.our_low, c.our_high), "check": c.check,
                     "source": c.source, "family": getattr(c, "family", "")})
    if "family" not in comparison.columns:
        return pd.DataFrame(rows, columns=columns)
    return pd.DataFrame(rows, columns=["family"] + columns)


def families_markdown(runs: list[Run]) -> list[str]:
    """Lines saying which task family each aggregate (curves, profiles, tables, paper figures) covers."""
    runs_by_family = families.split_runs(runs)
    names = list(runs_by_family)
    tasks = {family: ", ".join(sorted({run.task for run in family_runs}))
             for family, family_runs in runs_by_family.items()}
    if len(names) == 1:
        family = names[0]
        return [f"All runs are of one task family, {family} ({tasks[family]}): every aggregate over tasks (the "
                f"mean-over-tasks curves, the performance profile, `tables/aggregate_metrics.csv`, the paper's "
                f"mean-over-tasks figures, `tables/sensitivity.csv`) covers these tasks; its rows in the paper "
                f"comparison are task `{families.aggregate_task(family)}`.", ""]
    rows = []
    for family in names:
        suffix = families.suffix(family, names)
        paper_figures = ("the paper's figures over tasks without a family suffix (`fig2a_aggregate`, ...)" if not suffix
                         else f"the paper's figures over tasks ending in `{suffix}` (`fig2a_aggregate{suffix}`, ...)")
        rows.append({"family": family, "tasks": tasks[family],
                     "figures": f"`success_rate_aggregate{suffix}`, `performance_profile{suffix}`, {paper_figures}",
                     "rows of aggregate_metrics, sensitivity, paper_comparison": f"`family` = {family}",
                     "comparison task": families.aggregate_task(family)})
    return ["Every aggregate over tasks is taken within one task family, never across families. The "
            "per-task tables and figures hold every task; the files and rows of each family's aggregates are:", "",
            markdown_table(pd.DataFrame(rows))]


def runs_markdown(runs: list[Run]) -> pd.DataFrame:
    rows = {}
    for run in runs:
        row = rows.setdefault((run.method, run.task), {"method": run.method, "task": run.task, "seeds": [],
                                                       "logged until": []})
        row["seeds"].append(run.seed)
        row["logged until"].append(run.last_frame)
    for row in rows.values():
        ends = row["logged until"]
        row["logged until"] = format_frames(min(ends)) + ("" if min(ends) == max(ends) else
                                                          f" to {format_frames(max(ends))}")
        row["seeds"] = ", ".join(str(s) for s in row["seeds"])
    return pd.DataFrame(list(rows.values()))


def write_report(path, runs_arg: str, runs: list[Run], notes: list[str], tables_md: dict[str, pd.DataFrame],
                 comparison: pd.DataFrame, figures: list[str], settings: str, figure_map: pd.DataFrame,
                 thresholds: tuple = (0.5, 0.9), window: str = "200k") -> None:
    flagged = comparison[comparison["check"].str.startswith("OUTSIDE")]
    lines = [REPORT_TITLE, "",
             f"Generated by `vrl3 report` from `{runs_arg}`: {len(runs)} runs. {settings}", "",
             "Paper: Wang, Luo, Ross, Li. *VRL3: A Data-Driven Framework for Visual Deep Reinforcement Learning.* "
             "NeurIPS 2022 (arXiv:2202.10324); published numbers from `vrl3/data/paper_results.csv`.", "",
             "## Runs", "", markdown_table(runs_markdown(runs)),
             "## Task families", ""] + families_markdown(runs) + ["## Warnings and notes", ""]
    lines += [f"- {note}" for note in notes] or ["- none: every method has every task with the same seeds."]
    lines += ["", "## Comparison with the paper", "",
              f"{len(flagged)} number(s) flagged OUTSIDE." if len(flagged) else "No number flagged OUTSIDE.", "",
              CHECK_HELP, "", "The paper's per-task success rates are not available to this project: those rows read "
              "*no paper value* (see docs/report.md to add them).", "",
              markdown_table(comparison_markdown(comparison))]
    titles = {"success_at_budgets": "Success rate at frame budgets (mean over seeds [95 % bootstrap CI])",
              "frames_to_threshold": f"Frames to {' / '.join(f'{t * 100:g} %' for t in thresholds)} success "
                                     f"(sliding {window}-frame window, reference §6.2)",
              "aggregate_metrics": "Aggregate metrics over tasks (stratified bootstrap 95 % CI)"}
    if "family" in tables_md["aggregate_metrics"].columns:
        titles["aggregate_metrics"] = "Aggregate metrics over the tasks of each family (stratified bootstrap 95 % CI)"
    for name, title in titles.items():
        lines += [f"## {title}", "", markdown_table(tables_md[name]), f"CSV: `tables/{name}.csv`", ""]
    drawn = figure_map[figure_map["status"] == "drawn"]
    lines += ["## The paper's figures", "",
              f"{len(drawn)} of {len(figure_map)} drawn from the variants that have runs; the others are skipped "
              "(the status says what they need). `config` gives each variant's overrides of the config "
              "(`tables/figure_map.csv`).", "", markdown_table(figure_map), ""]
    lines += ["## Figures", ""] + [f"![{name}](figures/{name}.png)" for name in figures] + [""]
    path.write_text("\n".join(lines))
