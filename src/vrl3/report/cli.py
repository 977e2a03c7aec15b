"""`vrl3 report --runs DIR --out DIR`: figures, tables and a reproduction report from eval.csv logs."""

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import yaml

from vrl3.errors import UserError
from vrl3.paths import removed_if_failed
from vrl3.pipeline.variants import expand_variants, merge
from vrl3.report import families, figures, paper, paper_figures, tables
from vrl3.report.publish import check_out, publish
from vrl3.report.report_md import write_report
from vrl3.report.runs import Run, coverage_warnings, discover_runs
from vrl3.train.config import DEFAULTS_PATH, read_overlay, validate

DEFAULT_BUDGETS = "100000,500000,1000000,2000000,4000000"


def _int_list(text: str) -> list[int]:
    try:
        values = [int(float(v)) for v in text.split(",") if v.strip()]
    except (ValueError, OverflowError):  # OverflowError: inf
        raise argparse.ArgumentTypeError(f"expected comma-separated frame counts, got {text!r}") from None
    if not values or min(values) < 0 or max(values) >= 2 ** 62:
        raise argparse.ArgumentTypeError(f"expected non-negative frame counts, got {text!r}")
    return values


def _fraction_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions, got {text!r}") from None
    if not values or not all(0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"thresholds are success fractions in (0, 1], got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", required=True, type=Path,
                        help="folder of runs: [<variant>/]<task>/seed<N>/eval.csv, <variant>_<env>_s<seed>/eval.csv "
                             "(official) or <variant>_<env>_s<seed>/log.csv (RRL)")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder: figures/, tables/ and report.md are (re)placed there, each atomically")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for every CI (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling (default 0)")
    parser.add_argument("--budgets", type=_int_list, default=_int_list(DEFAULT_BUDGETS),
                        help=f"frame budgets of the success table and aggregate metrics (default {DEFAULT_BUDGETS})")
    parser.add_argument("--thresholds", type=_fraction_list, default=[0.5, 0.9],
                        help="success thresholds for frames-to-threshold (default 0.5,0.9)")
    parser.add_argument("--window-frames", type=int, default=200_000,
                        help="sliding window of frames-to-threshold (default 200000, as plot_utils)")
    parser.add_argument("--profile-frames", type=_int_list, default=[1_000_000, 4_000_000],
                        help="budgets shown in the performance-profile figure (default 1000000,4000000)")
    parser.add_argument("--plot-max-frames", type=int, default=None,
                        help="clip the x axis of the success-rate figures (e.g. 4050000 as in the paper; "
                             "default: everything logged)")
    parser.add_argument("--label", action="append", default=[], metavar="METHOD=LABEL",
                        help="rename a method/variant (repeatable); variants given the same label are merged. The "
                             "paper figures look for this project's names (vrl3, rrl, drqv2fd, ...): give an official "
                             "log's long variant string the name of the variant it stands for")
    parser.add_argument("--paper", type=Path, default=None,
                        help="published numbers to compare with (default: the packaged data/paper_results.csv)")
    parser.add_argument("--config", type=Path, default=None,
                        help="the workflow config whose `variants` made the runs (an overlay of config/config.yaml, "
                             "e.g. the merged config; default: config/config.yaml)")


def _relabel(runs: list[Run], pairs: list[str]) -> list[Run]:
    labels = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise UserError(f"--label {pair!r}: write it as METHOD=LABEL, e.g. --label <official variant string>=vrl3")
        labels[old] = new
    unknown = sorted(set(labels) - {run.method for run in runs})
    if unknown:
        raise UserError(f"--label names method(s) {', '.join(unknown)} that no run has; methods found: "
                        f"{', '.join(sorted({run.method for run in runs}))}")
    seen = {}
    for run in runs:
        run.method = labels.get(run.method, run.method)
        key = (run.method, run.task, run.seed)
        if key in seen:
            raise UserError(f"--label merges {run.path} and {seen[key]} into the same method, task and seed; "
                            f"label them differently")
        seen[key] = run.path
    return sorted(runs, key=lambda r: (r.method, r.task, r.seed))


def load_variants(config_file: Path | None) -> dict:
    """The expanded variants of config/config.yaml overlaid by `config_file`."""
    config = yaml.safe_load(DEFAULTS_PATH.read_text())
    if config_file is not None:
        config = merge(config, read_overlay(config_file, "--config"))
        validate(config, f"--config {config_file}")
    return expand_variants(config)


def _profile_panels(runs: list[Run], budgets: list[int]) -> list[tuple[str, dict]]:
    panels = []
    for budget in budgets:
        scores = tables.budget_scores(runs, budget)
        if scores:
            panels.append((f"at {tables.format_frames(budget)} frames", scores))
    if not panels:  # every run is shorter than the budgets: profile their last evaluations
        last: dict[str, dict[str, list]] = {}
        for run in runs:
            last.setdefault(run.method, {}).setdefault(run.task, []).append(float(run.success[-1]))
        panels.append(("at each run's last evaluation",
                       {m: {t: np.array(v) for t, v in by_task.items()} for m, by_task in last.items()}))
    return panels


def aggregate_curves(runs: list[Run], reps: int, rng: np.random.Generator, warn) -> list[figures.Curve]:
    """Per method, the mean over the tasks of `runs` (one task family) of its success curves."""
    return figures.aggregate_curves(tables.group_runs(runs), sorted({run.method for run in runs}), reps, rng, warn)


def build(runs: list[Run], variants: dict, args, out: Path, notes: list[str], warn) -> None:
    """Write every figure, table and report.md into `out` (an empty folder)."""
    reps = args.bootstrap
    rng = np.random.default_rng(args.seed)
    (out / "figures").mkdir(parents=True)
    (out / "tables").mkdir()

    success = tables.success_at_budgets(runs, args.budgets, reps, rng)
    for r in success.itertuples():
        if 0 < r.n_seeds < r.seeds_total:
            notes.append(f"method {r.method}, task {r.task}: only {r.n_seeds} of {r.seeds_total} seeds reach "
                         f"{tables.format_frames(r.frames)} frames; that cell uses those seeds")
    thresholds = tables.frames_to_thresholds(runs, args.thresholds, args.window_frames, reps, rng)
    runs_by_family = families.split_runs(runs)
    several_families = len(runs_by_family) > 1
    aggregates = tables.family_aggregate_metrics(runs_by_family, args.budgets, reps, rng)
    # one family: the table as it was before families were told apart (no `family` column)
    aggregates_written = aggregates if several_families else aggregates.drop(columns="family")
    tables_md = {"success_at_budgets": tables.success_markdown(success),
                 "frames_to_threshold": tables.thresholds_markdown(thresholds),
                 "aggregate_metrics": tables.aggregate_markdown(aggregates_written)}
    for name, table in (("success_at_budgets", success), ("frames_to_threshold", thresholds),
                        ("aggregate_metrics", aggregates_written)):
        tables.write_table(table, tables_md[name], out / "tables" / name)

    methods = sorted({run.method for run in runs})
    colors = figures.method_colors(methods)
    groups = tables.group_runs(runs)
    names = []
    for task in sorted({run.task for run in runs}):
        curves = figures.task_curves(groups, methods, task, reps, rng, warn)
        figures.plot_curves(curves, colors, task, out / "figures" / f"success_rate_{task}", args.plot_max_frames)
        names.append(f"success_rate_{task}")
    for family, family_runs in runs_by_family.items():
        suffix = families.suffix(family, list(runs_by_family))
        title = f"Mean over tasks ({families.label(family)})" if several_families else "Mean over tasks"
        figures.plot_curves(aggregate_curves(family_runs, reps, rng, warn), colors, title,
                            out / "figures" / f"success_rate_aggregate{suffix}", args.plot_max_frames)
        figures.plot_performance_profile(_profile_panels(family_runs, args.profile_frames), colors, reps, rng,
                                         out / "figures" / f"performance_profile{suffix}")
        names += [f"success_rate_aggregate{suffix}", f"performance_profile{suffix}"]

    figure_map, drawn, sensitivity = paper_figures.draw(runs, variants, out, reps, rng, warn, args.plot_max_frames)
    figure_map.to_csv(out / "tables" / "figure_map.csv", index=False)
    sensitivity.to_csv(out / "tables" / "sensitivity.csv", index=False)

    ours = paper.our_metrics(runs, success, thresholds, aggregates, reps, rng)
    comparison = paper.compare(ours, paper.load_paper(args.paper or paper.default_paper_file()),
                               families_run=set(runs_by_family))
    if not several_families:
        comparison = comparison.drop(columns="family")
    comparison.to_csv(out / "tables" / "paper_comparison.csv", index=False)
    settings = (f"Bootstrap: {reps} resamples (seed {args.seed}); frames-to-threshold window "
                f"{args.window_frames:,} frames.")
    write_report(out / "report.md", str(args.runs), runs, notes, tables_md, comparison, names + drawn, settings,
                 figure_map, args.thresholds, f"{args.window_frames / 1000:g}k")


def run(args: argparse.Namespace) -> int:
    if args.bootstrap < 1:
        raise UserError(f"--bootstrap {args.bootstrap}: give a positive number of resamples (e.g. 2000)")
    if args.window_frames < 1:
        raise UserError(f"--window-frames {args.window_frames}: give a positive number of frames (e.g. 200000)")
    if args.plot_max_frames is not None and args.plot_max_frames < 1:
        raise UserError(f"--plot-max-frames {args.plot_max_frames}: give a positive number of frames (e.g. 4000000), "
                        f"or leave it out to plot every frame")
    notes: list[str] = []

    def warn(message: str) -> None:
        print(f"vrl3 report: warning: {message}", file=sys.stderr)
        notes.append(message)

    variants = load_variants(args.config)
    runs = _relabel(discover_runs(args.runs, warn), args.label)
    for line in coverage_warnings(runs):
        warn(line)
    out = args.out
    check_out(out)
    staged = out / f".report-tmp-{os.getpid()}"
    with removed_if_failed(out):
        shutil.rmtree(staged, ignore_errors=True)
        try:
            build(runs, variants, args, staged, notes, warn)
            publish(out, staged)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
    print(f"vrl3 report: {len(runs)} runs -> {out}/report.md, {out}/figures, {out}/tables")
    return 0
