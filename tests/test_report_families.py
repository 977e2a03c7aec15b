"""`vrl3 report` takes every aggregate within one task family (Adroit, Franka Kitchen) on synthetic logs."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.test_report import GRID, report, step_curve, write_eval
from vrl3.report import families
from vrl3.report.cli import aggregate_curves
from vrl3.report.paper import compare, default_paper_file, load_paper
from vrl3.report.runs import coverage_warnings, discover_runs

# every seed of a task jumps from 0 to 1 success at its frame; at 0.5M door is 1/3 solved and kitchen-mixed 2/3,
# at 1M door 2/3 and kitchen-mixed all: numbers that a mean over both families would blur
JUMPS = {"door": (300_000, 600_000, 1_500_000), "kitchen-mixed": (200_000, 400_000, 800_000)}
BUDGETS = ("--budgets", "500000,1000000")
AGGREGATE_COLUMNS = ["method", "frames", "metric", "value", "low", "high", "n_runs", "n_tasks", "tasks"]


def family_runs(root, tasks=("door", "kitchen-mixed")):
    for task in tasks:
        for seed, jump in enumerate(JUMPS[task], start=1):
            write_eval(root / task / f"seed{seed}", GRID, step_curve(GRID, jump))
    return root


def aggregate_table(out) -> pd.DataFrame:
    return pd.read_csv(out / "tables" / "aggregate_metrics.csv")


def point_values(table: pd.DataFrame) -> pd.DataFrame:
    """The columns that do not depend on where the bootstrap's random stream stands."""
    return table[["method", "frames", "metric", "value", "n_runs", "n_tasks", "tasks"]].reset_index(drop=True)


@pytest.fixture
def three_reports(tmp_path, capsys):
    """Reports of door + kitchen-mixed, of the same door logs alone and of the same kitchen-mixed logs alone."""
    both = family_runs(tmp_path / "runs" / "both")
    for task in JUMPS:
        shutil.copytree(both / task, tmp_path / "runs" / task / task)
    outs = {}
    for name in ("both", *JUMPS):
        code, out, _ = report(tmp_path / name, tmp_path / "runs" / name, capsys, *BUDGETS)  # out: tmp_path/name/out
        assert code == 0
        outs[name] = out
    return outs


def test_families_of_task_names():
    assert families.family_of("door") == families.family_of("relocate") == "adroit"
    assert families.family_of("kitchen-mixed") == "kitchen"
    assert families.family_of("AdroitHandPen") == "adroit" and families.family_of("FrankaKitchen") == "kitchen"
    assert families.family_of("mystery") == "mystery"  # unknown: a family of its own
    assert families.ordered(["mystery", "kitchen", "adroit", "antmaze"]) == ["adroit", "kitchen", "antmaze", "mystery"]
    assert families.aggregate_task("adroit") == "aggregate" and families.family_of_row("aggregate") == "adroit"
    assert families.family_of_row(families.aggregate_task("kitchen")) == "kitchen"


def test_official_names_map_to_families(tmp_path):
    write_eval(tmp_path / "vrl3_ar2_door-v0_s1", GRID, step_curve(GRID, 300_000))
    write_eval(tmp_path / "vrl3_ar2_kitchen-mixed-v0_s1", GRID, step_curve(GRID, 300_000))
    write_eval(tmp_path / "vrl3_ar2_antmaze-v2_s1", GRID, step_curve(GRID, 300_000))
    by_family = families.split_runs(discover_runs(tmp_path, warn=print))
    assert {family: [run.task for run in runs] for family, runs in by_family.items()} == {
        "adroit": ["door"], "kitchen": ["kitchen-mixed"], "antmaze": ["antmaze"]}


def test_aggregate_metrics_are_taken_within_each_family(three_reports):
    both = aggregate_table(three_reports["both"])
    assert list(both.columns) == AGGREGATE_COLUMNS + ["family"]
    assert list(dict.fromkeys(both["family"])) == ["adroit", "kitchen"]
    for family, task in (("adroit", "door"), ("kitchen", "kitchen-mixed")):
        alone = aggregate_table(three_reports[task])
        assert list(alone.columns) == AGGREGATE_COLUMNS  # one family: no family column
        pd.testing.assert_frame_equal(point_values(both[both.family == family]), point_values(alone))
    mean = both[both.metric == "mean"].set_index(["family", "frames"])["value"]
    assert mean[("adroit", 500_000)] == pytest.approx(1 / 3) and mean[("kitchen", 500_000)] == pytest.approx(2 / 3)
    assert mean[("adroit", 1_000_000)] == pytest.approx(2 / 3) and mean[("kitchen", 1_000_000)] == 1.0
    gap = both[both.metric == "optimality_gap"].set_index(["family", "frames"])["value"]
    assert gap[("adroit", 1_000_000)] == pytest.approx(1 / 3) and gap[("kitchen", 1_000_000)] == 0.0
    assert set(both[both.family == "adroit"]["tasks"]) == {"door"}
    markdown = (three_reports["both"] / "tables" / "aggregate_metrics.md").read_text()
    assert markdown.startswith("| family | method | frames |") and "| kitchen | vrl3 | 1.00M |" in markdown


def test_two_family_report_names_the_kitchen_outputs(three_reports):
    out = three_reports["both"]
    for stem in ("success_rate_aggregate", "performance_profile", "fig2a_aggregate"):
        for name in (stem, f"{stem}_kitchen"):
            assert (out / "figures" / f"{name}.png").stat().st_size > 5000, name
    for task in JUMPS:  # the reports of one family keep the plain names only
        assert not list((three_reports[task] / "figures").glob("*_kitchen.*"))
        assert (three_reports[task] / "figures" / "success_rate_aggregate.png").exists()
    figure_map = pd.read_csv(out / "tables" / "figure_map.csv").set_index("figure")
    assert figure_map.loc["figures/fig2a_aggregate.png", "content"].endswith("(adroit tasks)")
    assert figure_map.loc["figures/fig2a_aggregate_kitchen.png", "content"].endswith("(kitchen tasks)")
    assert figure_map.loc["figures/fig2a_aggregate_kitchen.png", "status"] == "drawn"
    assert "figures/fig2b_relocate_kitchen.png" not in figure_map.index  # one task: nothing to split
    text = (out / "report.md").read_text()
    assert "## Task families" in text and "`success_rate_aggregate_kitchen`" in text
    assert "![fig2a_aggregate_kitchen](figures/fig2a_aggregate_kitchen.png)" in text
    assert "Aggregate metrics over the tasks of each family" in text
    alone = (three_reports["kitchen-mixed"] / "report.md").read_text()
    assert "All runs are of one task family, kitchen (kitchen-mixed)" in alone


def test_the_aggregate_curve_of_a_family_ignores_the_other_family(tmp_path):
    by_family = families.split_runs(discover_runs(family_runs(tmp_path / "both"), warn=print))
    door_only = discover_runs(family_runs(tmp_path / "door", tasks=("door",)), warn=print)
    [mixed_adroit] = aggregate_curves(by_family["adroit"], 100, np.random.default_rng(3), print)
    [alone] = aggregate_curves(door_only, 100, np.random.default_rng(3), print)
    for field in ("frames", "mean", "low", "high"):
        np.testing.assert_array_equal(getattr(mixed_adroit, field), getattr(alone, field))
    [kitchen] = aggregate_curves(by_family["kitchen"], 100, np.random.default_rng(3), print)
    at_half_million = list(GRID).index(500_000)
    assert kitchen.mean[at_half_million] == pytest.approx(2 / 3) and alone.mean[at_half_million] == pytest.approx(1 / 3)


def test_comparison_rows_follow_the_families_that_ran(three_reports):
    kitchen = pd.read_csv(three_reports["kitchen-mixed"] / "tables" / "paper_comparison.csv")
    assert "family" not in kitchen.columns
    assert not ({"door", "hammer", "pen", "relocate", "aggregate"} & set(kitchen["task"]))
    assert not (kitchen["check"] == "no run data").any()  # every row left is one of ours
    assert set(kitchen[kitchen.task.str.startswith("aggregate")]["task"]) == {"aggregate_kitchen"}
    both = pd.read_csv(three_reports["both"] / "tables" / "paper_comparison.csv")
    assert both.columns[-1] == "family"
    paper = load_paper(default_paper_file())
    assert len(both[both.source.notna()]) == len(paper)  # every paper row is Adroit's, and Adroit ran
    ours = both[(both.metric == "success_rate@1000000") & both.task.str.startswith("aggregate")]
    assert ours.set_index("task")["our_value"].to_dict() == pytest.approx({"aggregate": 2 / 3,
                                                                           "aggregate_kitchen": 1.0})
    assert set(ours["family"]) == {"adroit", "kitchen"}


def test_compare_keeps_paper_rows_of_the_families_given():
    paper = load_paper(default_paper_file())
    ours = pd.DataFrame(columns=["task", "method", "metric", "value", "low", "high", "logged_until"])
    assert compare(ours, paper, families_run={"kitchen"}).empty
    assert len(compare(ours, paper, families_run={"adroit", "kitchen"})) == len(paper)
    assert len(compare(ours, paper)) == len(paper)


def test_a_method_lacking_a_whole_family_is_noted_per_family(tmp_path):
    root = family_runs(tmp_path / "runs")
    write_eval(root / "rrl" / "door" / "seed1", GRID, step_curve(GRID, 300_000))
    lines = coverage_warnings(discover_runs(root, warn=print))
    assert lines == ["method rrl: no runs for task(s) kitchen-mixed; it has no kitchen aggregate"]


# aggregate_metrics of the door + pen report below as `vrl3 report` wrote it before families were told apart
# (commit f50931f): a report of one family keeps these bytes
GOLDEN_AGGREGATE_CSV = """\
method,frames,metric,value,low,high,n_runs,n_tasks,tasks
drqv2fd,500000,iqm,0.0,0.0,0.0,4,2,door pen
drqv2fd,500000,optimality_gap,1.0,1.0,1.0,4,2,door pen
drqv2fd,500000,mean,0.0,0.0,0.0,4,2,door pen
vrl3,500000,iqm,0.0,0.0,0.5,4,2,door pen
vrl3,500000,optimality_gap,0.75,0.5,1.0,4,2,door pen
vrl3,500000,mean,0.25,0.0,0.5,4,2,door pen
drqv2fd,1000000,iqm,0.0,0.0,0.5,4,2,door pen
drqv2fd,1000000,optimality_gap,0.75,0.5,1.0,4,2,door pen
drqv2fd,1000000,mean,0.25,0.0,0.5,4,2,door pen
vrl3,1000000,iqm,1.0,0.5,1.0,4,2,door pen
vrl3,1000000,optimality_gap,0.25,0.0,0.5,4,2,door pen
vrl3,1000000,mean,0.75,0.5,1.0,4,2,door pen
"""
GOLDEN_AGGREGATE_MD = """\
| method | frames | iqm | optimality gap | mean | runs | tasks |
| --- | --- | --- | --- | --- | --- | --- |
| drqv2fd | 0.50M | 0.000 | 1.000 | 0.000 | 4 | door pen |
| vrl3 | 0.50M | 0.000 [0.000, 0.500] | 0.750 [0.500, 1.000] | 0.250 [0.000, 0.500] | 4 | door pen |
| drqv2fd | 1.00M | 0.000 [0.000, 0.500] | 0.750 [0.500, 1.000] | 0.250 [0.000, 0.500] | 4 | door pen |
| vrl3 | 1.00M | 1.000 [0.500, 1.000] | 0.250 [0.000, 0.500] | 0.750 [0.500, 1.000] | 4 | door pen |
"""


def test_a_single_family_report_keeps_its_tables_byte_for_byte(tmp_path, capsys):
    root = tmp_path / "runs"
    for task, jumps in (("door", (300_000, 600_000)), ("pen", (800_000, 2_000_000))):
        for seed, jump in enumerate(jumps, start=1):
            write_eval(root / task / f"seed{seed}", GRID, step_curve(GRID, jump))
            write_eval(root / "drqv2fd" / task / f"seed{seed}", GRID, step_curve(GRID, jump + 500_000))
    code, out, _ = report(tmp_path, root, capsys, *BUDGETS)
    assert code == 0
    assert (out / "tables" / "aggregate_metrics.csv").read_text() == GOLDEN_AGGREGATE_CSV
    assert (out / "tables" / "aggregate_metrics.md").read_text() == GOLDEN_AGGREGATE_MD
    comparison = pd.read_csv(out / "tables" / "paper_comparison.csv")
    assert list(comparison.columns) == ["task", "method", "metric", "paper_value", "paper_low", "paper_high",
                                        "our_value", "our_low", "our_high", "check", "source"]
    assert "family" not in pd.read_csv(out / "tables" / "sensitivity.csv").columns
    assert sorted(p.stem for p in (out / "figures").glob("*.png")) == [
        "fig2a_aggregate", "fig4a_stages", "fig7_per_task_door", "fig7_per_task_pen", "performance_profile",
        "success_rate_aggregate", "success_rate_door", "success_rate_pen"]


def test_each_methods_aggregate_curve_averages_its_own_tasks():
    """Two methods at constant levels: a (door 0.2, pen 0.4) and b (door 0.8, pen 0.6) -> 0.3 and 0.7, with a
    band of width 0 (the seeds of a task agree)."""
    from vrl3.report import figures
    from vrl3.report.runs import Run

    frames = np.array([0, 100_000, 200_000])
    levels = {("a", "door"): 0.2, ("a", "pen"): 0.4, ("b", "door"): 0.8, ("b", "pen"): 0.6}
    groups = {key: [Run(method=key[0], task=key[1], seed=seed, frames=frames, success=np.full(3, level),
                        path=Path(f"{key[0]}/{key[1]}/seed{seed}/eval.csv"), total_time=None) for seed in (1, 2)]
              for key, level in levels.items()}
    curves = figures.aggregate_curves(groups, ["b", "a"], 50, np.random.default_rng(0), print)
    assert [curve.label for curve in curves] == ["b", "a"]
    for curve, level in zip(curves, (0.7, 0.3)):
        np.testing.assert_allclose(curve.mean, level)
        np.testing.assert_allclose(curve.low, level)
        np.testing.assert_allclose(curve.high, level)
    assert [c.label for c in figures.task_curves(groups, ["b", "a"], "door", 20, np.random.default_rng(0),
                                                 print)] == ["b", "a"]


def test_method_colours_are_distinct_past_the_ten_colour_palette():
    from vrl3.report import figures

    assert len(set(figures.method_colors([f"m{i}" for i in range(12)]).values())) == 12
