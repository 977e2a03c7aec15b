"""`vrl3 report` on synthetic logs whose answers are known by construction."""

import shutil

import numpy as np
import pandas as pd
import pytest

from vrl3.cli import main
from vrl3.errors import UserError
from vrl3.report import stats
from vrl3.report.curves import align, value_at_budget
from vrl3.report.paper import _efficiency_rows, compare, default_paper_file, load_paper
from vrl3.report.runs import Run, discover_runs
from vrl3.report.tables import success_at_budgets

EVAL_COLUMNS = ["episode", "episode_length", "episode_reward", "frame", "step", "success_rate", "total_time"]
GRID = np.arange(0, 4_100_000, 50_000)  # the official 82 evaluations, frames 0 .. 4.05M


def step_curve(frames: np.ndarray, jump: int) -> np.ndarray:
    return (frames >= jump).astype(float)


def write_eval(folder, frames, success, total_time=None):
    folder.mkdir(parents=True, exist_ok=True)
    frames = np.asarray(frames)
    table = pd.DataFrame({"episode": frames // 400, "episode_length": 200.0, "episode_reward": 10 * success,
                          "frame": frames, "step": frames // 2, "success_rate": success,
                          "total_time": frames / 100.0 if total_time is None else total_time})
    table[EVAL_COLUMNS].to_csv(folder / "eval.csv", index=False)
    return folder / "eval.csv"


def make_run(frames, success, seed=1, task="door", method="vrl3") -> Run:
    return Run(method, task, seed, path=None, frames=np.asarray(frames), success=np.asarray(success, dtype=float),
               total_time=None)


def report(tmp_path, runs_dir, capsys, *extra):
    out = tmp_path / "out"
    code = main(["report", "--runs", str(runs_dir), "--out", str(out), "--bootstrap", "50", *extra])
    return code, out, capsys.readouterr()


# ---- frames to threshold (reference §6.2) ------------------------------------------------------------------

def test_frames_to_threshold_of_a_step_function():
    # success 0 before 1M frames, 1 from 1M (eval index 20). Window = 200k / 50k = 4 evals.
    # 50 %: first window with >= 2 ones starts at index 18 -> (18 + 4) * 50k = 1.1M.
    # 90 %: a window needs all 4 ones: starts at 20 -> (20 + 4) * 50k = 1.2M.
    seeds = np.stack([step_curve(GRID, 1_000_000)] * 3)
    rng = np.random.default_rng(0)
    assert stats.frames_to_threshold(GRID, seeds, 0.5, 200_000, 100, rng) == (1_100_000, 1_100_000, 1_100_000)
    assert stats.frames_to_threshold(GRID, seeds, 0.9, 200_000, 100, rng)[0] == 1_200_000


def test_frames_to_threshold_on_rrl_grid_uses_five_iteration_window():
    frames = np.arange(300) * 40_000  # RRL: 40k frames per iteration, window = 5 iterations
    seeds = step_curve(frames, 1_000_000)[None]  # jump at iteration 25
    # 50 %: >= 3 of 5 ones -> window starts at iteration 23 -> (23 + 5) * 40k = 1.12M
    assert stats.frames_to_threshold(frames, seeds, 0.5, 200_000, 10, np.random.default_rng(0))[0] == 1_120_000


def test_frames_to_threshold_averages_seeds_and_reports_not_reached():
    # one seed jumps at 1M, the other never: the mean is 0.5 from 1M on -> 50 % needs a full window (1.2M);
    # 90 % is never reached.
    seeds = np.stack([step_curve(GRID, 1_000_000), np.zeros(len(GRID))])
    rng = np.random.default_rng(0)
    assert stats.frames_to_threshold(GRID, seeds, 0.5, 200_000, 200, rng)[0] == 1_200_000
    point, low, high = stats.frames_to_threshold(GRID, seeds, 0.9, 200_000, 200, rng)
    assert np.isinf(point) and np.isinf(high)


def test_frames_to_threshold_interval_spans_the_seeds_own_crossings():
    # seeds jumping at 0.5M and 1M: the mean curve reaches 90 % only from 1M (window of 4 evals -> 1.2M). Resampling
    # the two seeds gives {early, early} (0.7M), a mixed pair (1.2M) or {late, late} (1.2M), each with probability
    # >= 1/4, so the 95 % percentile interval is [0.7M, 1.2M].
    seeds = np.stack([step_curve(GRID, 500_000), step_curve(GRID, 1_000_000)])
    point, low, high = stats.frames_to_threshold(GRID, seeds, 0.9, 200_000, 400, np.random.default_rng(0))
    assert (point, low, high) == (1_200_000, 700_000, 1_200_000)


def test_frames_to_threshold_skips_the_last_window_like_plot_utils():
    # success only in the last 4 evals: the window covering them would give frame (n)*50k, past the log;
    # plot_utils loops over range(n - window), so this counts as not reached.
    success = np.zeros(len(GRID))
    success[-4:] = 1
    assert stats.frames_to_threshold_index(success, 0.9, 4) == -1
    success[-5:] = 1
    assert GRID[stats.frames_to_threshold_index(success, 0.9, 4)] == GRID[-1]


# ---- aggregate metrics -------------------------------------------------------------------------------------

def test_iqm_and_optimality_gap_match_their_definitions():
    scores = {"a": np.array([0.0, 0.2, 0.4, 0.6]), "b": np.array([0.8, 1.0, 1.2, 1.4])}
    # IQM: middle 50 % of the 8 pooled scores = 0.4, 0.6, 0.8, 1.0
    assert stats.iqm(scores) == pytest.approx(0.7)
    # optimality gap: mean of max(1 - s, 0) = (1 + .8 + .6 + .4 + .2 + 0 + 0 + 0) / 8
    assert stats.optimality_gap(scores) == pytest.approx(3.0 / 8)
    assert stats.mean_of_task_means(scores) == pytest.approx((0.3 + 1.1) / 2)


def test_stratified_bootstrap_resamples_within_tasks():
    # the mean of task means never moves when runs are resampled within tasks (it would if runs were pooled)
    scores = {"a": np.zeros(3), "b": np.ones(3)}
    value, low, high = stats.stratified_bootstrap_ci(scores, stats.mean_of_task_means, 300, np.random.default_rng(0))
    assert value == low == high == 0.5
    spread = {"a": np.array([0.0, 1.0]), "b": np.array([0.5, 0.5])}
    for sample in stats.stratified_resamples(spread, 50, np.random.default_rng(1)):
        assert set(sample["a"]) <= {0.0, 1.0} and set(sample["b"]) == {0.5}


def test_stratified_bootstrap_interval_matches_the_exact_bootstrap_distribution():
    """Two tasks x 3 runs: all 27 x 27 within-task resamples are equally likely, so the percentile interval of
    the exact bootstrap distribution is known; the sampled one must converge to it (rliable's percentile method)."""
    import itertools

    scores = {"a": np.array([0.0, 0.3, 0.9]), "b": np.array([0.2, 0.6, 1.0])}
    resamples = {task: [np.array(pick) for pick in itertools.product(s, repeat=3)] for task, s in scores.items()}
    exact = np.array([stats.mean_of_task_means({"a": a, "b": b}) for a in resamples["a"] for b in resamples["b"]])
    expected_low, expected_high = np.percentile(exact, 2.5), np.percentile(exact, 97.5)
    value, low, high = stats.stratified_bootstrap_ci(scores, stats.mean_of_task_means, 20000,
                                                     np.random.default_rng(0))
    assert value == pytest.approx(0.5)
    assert low == pytest.approx(expected_low, abs=0.02) and high == pytest.approx(expected_high, abs=0.02)
    assert 0.15 < expected_low < 0.3 and 0.7 < expected_high < 0.85  # a real interval, not the range of scores


def test_performance_profile_counts_runs_strictly_above_tau():
    profile = stats.performance_profile({"a": np.array([0.2, 0.6]), "b": np.array([1.0, 0.6])},
                                        np.array([0.0, 0.2, 0.6, 0.99, 1.0]))
    np.testing.assert_allclose(profile, [1.0, 0.75, 0.25, 0.25, 0.0])


def test_bootstrap_ci_contains_the_mean_and_shrinks_with_more_seeds():
    few = np.array([0.2, 0.4, 0.6, 0.8, 1.0])
    many = np.tile(few, 10)
    mean5, low5, high5 = stats.bootstrap_mean_ci(few, 2000, np.random.default_rng(0))
    mean50, low50, high50 = stats.bootstrap_mean_ci(many, 2000, np.random.default_rng(0))
    assert mean5 == pytest.approx(0.6) and mean50 == pytest.approx(0.6)
    assert low5 < 0.6 < high5 and low50 < 0.6 < high50
    assert high50 - low50 < 0.5 * (high5 - low5)  # ~ 1/sqrt(10) of the width
    curves = np.array([[0.0, 0.5], [1.0, 0.5]])  # per-frame CIs in one call: a constant column has no width
    mean, low, high = stats.bootstrap_mean_ci(curves, 500, np.random.default_rng(0))
    np.testing.assert_allclose(mean, [0.5, 0.5])
    assert low[1] == high[1] == 0.5 and low[0] == 0.0 and high[0] == 1.0


# ---- budgets and alignment ---------------------------------------------------------------------------------

def test_success_at_budget_takes_the_last_eval_at_or_before_the_budget():
    frames = [0, 50_000, 100_000, 150_000, 400_000, 1_200_000]
    run = make_run(frames, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert value_at_budget(run, 100_000) == 0.2  # exact frame
    assert value_at_budget(run, 500_000) == 0.4  # the 400k eval
    assert value_at_budget(run, 1_000_000) == 0.4
    assert value_at_budget(run, 1_200_000) == 0.5
    assert value_at_budget(run, 2_000_000) is None  # run shorter than the budget
    other = make_run(frames[:5], [0.0, 0.3, 0.8, 0.6, 0.9], seed=2)  # stops at 400k
    table = success_at_budgets([run, other], [100_000, 400_000, 500_000], 100, np.random.default_rng(0))
    assert table["mean"].tolist() == pytest.approx([0.5, 0.65, 0.4])
    assert table["n_seeds"].tolist() == [2, 2, 1]  # seed 2 is left out where it stopped before the budget


def test_align_keeps_shared_frames_and_interpolates_otherwise():
    same = align([(np.array([0, 50, 100]), np.array([0.0, 0.5, 1.0])),
                  (np.array([0, 50]), np.array([0.2, 0.4]))], "test")
    assert same.frames.tolist() == [0, 50] and same.truncated and not same.interpolated
    mixed = align([(np.array([0, 40, 80]), np.array([0.0, 0.4, 0.8])),
                   (np.array([0, 50, 100]), np.array([1.0, 1.0, 1.0]))], "test")
    assert mixed.interpolated and mixed.frames.tolist() == [0, 40, 50, 80]
    np.testing.assert_allclose(mixed.values[0], [0.0, 0.4, 0.5, 0.8])


def test_seeds_evaluated_a_few_frames_apart_keep_their_evaluations():
    """With several envs an evaluation runs at the first block start after its frame: seeds (or runs with other
    num_envs) log it a few frames late. Their k-th evaluations still pair up, and the 200k-frame window of
    frames-to-threshold stays 4 evaluations long (interpolating onto the union of the frames shrank it)."""
    on_time = step_curve(GRID, 1_000_000)
    late = GRID + np.where(GRID > 0, 8, 0)
    aligned = align([(GRID, on_time), (late, on_time), (GRID[:-1] + 4, on_time[:-1])], "test")
    assert not aligned.interpolated and aligned.truncated
    assert aligned.frames.tolist() == GRID[:-1].tolist() and (aligned.values == on_time[:-1]).all()
    rng = np.random.default_rng(0)
    assert stats.frames_to_threshold(aligned.frames, aligned.values, 0.5, 200_000, 10, rng)[0] == 1_100_000
    far = align([(GRID, on_time), (GRID + 25_000, on_time)], "test")  # half an interval apart: not the same
    assert far.interpolated


# ---- reading logs ------------------------------------------------------------------------------------------

def test_official_and_rrl_layouts_are_parsed(tmp_path):
    variant = "vrl3_ar2_fs3_pixels_resnet6_32channel_pTrue_augTrue_lr0.0001_esauto_dbs64_pt5_0.001_s2eTrue"
    write_eval(tmp_path / "vrl3" / f"{variant}_door-v0_s1", [0, 50_000], np.array([0.0, 0.5]))
    write_eval(tmp_path / "drq" / "drqv2_author_door_s3", [0, 50_000], np.array([0.1, 0.2]))
    write_eval(tmp_path / "fs1" / "pen" / "seed4", [0, 50_000], np.array([0.3, 0.4]))
    rrl = tmp_path / "rrl" / "rrl_relocate-v0_s12"
    rrl.mkdir(parents=True)
    pd.DataFrame({"iteration": [0, 1, 2], "success_rate": [0.0, 50.0, 100.0],
                  "num_samples": 40000}).to_csv(rrl / "log.csv", index=False)
    runs = {(r.method, r.task, r.seed): r for r in discover_runs(tmp_path, warn=print)}
    assert set(runs) == {(variant, "door", 1), ("drqv2_author", "door", 3), ("fs1", "pen", 4),
                         ("rrl", "relocate", 12)}
    rrl_run = runs[("rrl", "relocate", 12)]
    assert rrl_run.frames.tolist() == [0, 40_000, 80_000]  # iteration x 40000
    assert rrl_run.success.tolist() == [0.0, 0.5, 1.0]  # percent -> fraction


@pytest.mark.parametrize("frame", ["inf", "1e400", "-50000", "12345678901234567890123"])
def test_a_frame_that_is_no_count_is_one_line_naming_the_row(tmp_path, frame):
    folder = tmp_path / "door" / "seed1"
    folder.mkdir(parents=True)
    (folder / "eval.csv").write_text(f"frame,success_rate\n0,0.1\n{frame},0.5\n")
    with pytest.raises(UserError, match="column 'frame' has .* in data row 2, not a count"):
        discover_runs(tmp_path, warn=print)


@pytest.mark.parametrize("budgets", ["inf", "1e30", "-1", "a,b"])
def test_budgets_that_are_no_frame_counts_are_a_usage_error(tmp_path, capsys, budgets):
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--runs", str(tmp_path), "--out", str(tmp_path / "out"), "--budgets", budgets])
    assert exit_info.value.code == 2 and "--budgets: expected" in capsys.readouterr().err


def test_drqv2_dmc_curves_of_an_official_log_tree_are_skipped_not_an_error(tmp_path):
    write_eval(tmp_path / "vrl3" / "vrl3_door-v0_s0", [0, 50_000], np.array([0.0, 0.5]))
    dmc = tmp_path / "drq" / "drqv2_author_cheetah_run_s1"  # as plot_utils' drq_converter.py writes them
    dmc.mkdir(parents=True)
    pd.DataFrame({"frame": [0, 100_000], "episode_reward": [12.0, 340.0], "seed": 1}).to_csv(dmc / "eval.csv",
                                                                                            index=False)
    skipped = []
    runs = discover_runs(tmp_path, warn=skipped.append)
    assert [(r.method, r.task, r.seed) for r in runs] == [("vrl3", "door", 0)]
    assert len(skipped) == 1 and "drqv2_author_cheetah_run_s1" in skipped[0] and "no success rate" in skipped[0]
    (tmp_path / "vrl3" / "vrl3_door-v0_s0" / "eval.csv").write_text("frame,episode_reward\n0,1.0\n")
    with pytest.raises(UserError, match="success_rate"):  # a run of ours without the column is still an error
        discover_runs(tmp_path, warn=skipped.append)


def test_our_layout_without_variant_is_method_vrl3_and_unknown_folders_are_skipped(tmp_path):
    write_eval(tmp_path / "door" / "seed2", [0, 50_000], np.array([0.0, 1.0]))
    write_eval(tmp_path / "scratch", [0], np.array([0.0]))
    skipped = []
    runs = discover_runs(tmp_path, warn=skipped.append)
    assert [(r.method, r.task, r.seed) for r in runs] == [("vrl3", "door", 2)]
    assert len(skipped) == 1 and "scratch" in skipped[0]


# ---- CLI -------------------------------------------------------------------------------------------------

def synthetic_runs(root, tasks=("door", "hammer", "pen", "relocate"), seeds=(1, 2)):
    """Every seed of `task` jumps from 0 to 1 success at JUMP[task] frames."""
    for task in tasks:
        for seed in seeds:
            write_eval(root / task / f"seed{seed}", GRID, step_curve(GRID, JUMP[task]))


JUMP = {"door": 300_000, "hammer": 500_000, "pen": 1_000_000, "relocate": 2_000_000}
FILES = ["report.md", "tables/success_at_budgets.csv", "tables/success_at_budgets.md",
         "tables/frames_to_threshold.csv", "tables/frames_to_threshold.md", "tables/aggregate_metrics.csv",
         "tables/aggregate_metrics.md", "figures/success_rate_aggregate.png", "figures/success_rate_aggregate.pdf",
         "figures/performance_profile.png", "figures/performance_profile.pdf"]


def test_cli_end_to_end_writes_every_file_with_known_values(tmp_path, capsys):
    synthetic_runs(tmp_path / "runs")
    code, out, _ = report(tmp_path, tmp_path / "runs", capsys)
    assert code == 0
    expected = FILES + [f"figures/success_rate_{t}.{ext}" for t in JUMP for ext in ("png", "pdf")]
    for name in expected:
        assert (out / name).stat().st_size > 0, name
    for png in out.glob("figures/*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    thresholds = pd.read_csv(out / "tables" / "frames_to_threshold.csv")
    at_90 = thresholds[thresholds.threshold == 0.9].set_index("task")["frames"]
    for task, jump in JUMP.items():  # a step at `jump` reaches 90 % with the window ending 4 evals later
        assert at_90[task] == jump + 200_000
    success = pd.read_csv(out / "tables" / "success_at_budgets.csv").set_index(["task", "frames"])
    assert success.loc[("pen", 500_000), "mean"] == 0 and success.loc[("pen", 1_000_000), "mean"] == 1
    aggregate = pd.read_csv(out / "tables" / "aggregate_metrics.csv").set_index(["frames", "metric"])
    # at 1M: door, hammer, pen solved, relocate not -> mean 0.75, optimality gap 0.25, IQM of [0,0,1,1,1,1,1,1] = 1
    assert aggregate.loc[(1_000_000, "mean"), "value"] == pytest.approx(0.75)
    assert aggregate.loc[(1_000_000, "optimality_gap"), "value"] == pytest.approx(0.25)
    assert aggregate.loc[(1_000_000, "iqm"), "value"] == pytest.approx(1.0)
    text = (out / "report.md").read_text()
    assert "no paper value" in text and "Wang" in text
    assert not list(tmp_path.glob(".out*"))  # the staging folder is gone
    code, out, _ = report(tmp_path, tmp_path / "runs", capsys)  # an earlier report is replaced
    assert code == 0 and (out / "report.md").exists()


def test_task_missing_for_some_seeds_is_reported_not_fatal(tmp_path, capsys):
    synthetic_runs(tmp_path / "runs", tasks=("door",), seeds=(1, 2, 3))
    synthetic_runs(tmp_path / "runs", tasks=("relocate",), seeds=(1, 2))
    synthetic_runs(tmp_path / "runs" / "fs1", tasks=("door",), seeds=(1,))  # a variant without relocate
    code, out, captured = report(tmp_path, tmp_path / "runs", capsys)
    assert code == 0
    assert "warning" in captured.err and "relocate: seed(s) 3 missing" in captured.err
    assert "method fs1: no runs for task(s) relocate" in captured.err
    assert "relocate: seed(s) 3 missing" in (out / "report.md").read_text()
    success = pd.read_csv(out / "tables" / "success_at_budgets.csv")
    assert set(success[success.task == "relocate"]["seeds_total"]) == {2}


@pytest.mark.parametrize("content, expected", [
    ("", "empty"),
    (",".join(EVAL_COLUMNS) + "\n", "no data rows"),
    ("episode,frame,step\n0,0,0\n", "missing column(s) success_rate"),
    (",".join(EVAL_COLUMNS) + "\n0,200,1.0,0,0,0.0,1.0\n1,200,1.0,50000,25000,abc,2.0\n", "non-numeric"),
    ("frame,success_rate\n0,40\n", "fraction"),
])
def test_bad_eval_csv_exits_2_naming_the_file(tmp_path, capsys, content, expected):
    synthetic_runs(tmp_path / "runs", tasks=("door",), seeds=(1,))
    bad = tmp_path / "runs" / "door" / "seed2" / "eval.csv"
    bad.parent.mkdir(parents=True)
    bad.write_text(content)
    code, out, captured = report(tmp_path, tmp_path / "runs", capsys)
    assert code == 2
    message = captured.err.strip()
    assert len(message.splitlines()) == 1 and str(bad) in message and expected in message
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_no_runs_is_a_user_error(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    code, out, captured = report(tmp_path, tmp_path / "runs", capsys)
    assert code == 2 and "no runs found" in captured.err and not out.exists()


def test_report_files_join_other_contents_of_out(tmp_path, capsys):
    synthetic_runs(tmp_path / "runs", tasks=("door",), seeds=(1,))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep")
    code, out, _ = report(tmp_path, tmp_path / "runs", capsys)
    assert code == 0 and (out / "report.md").exists() and (out / "figures" / "success_rate_door.png").exists()
    assert (out / "precious.txt").read_text() == "keep"
    assert sorted(p.name for p in out.iterdir()) == [".vrl3-report-files", "figures", "precious.txt", "report.md",
                                                     "tables"]
    code, out, _ = report(tmp_path, tmp_path / "runs", capsys)  # over the earlier report: its old outputs go
    assert code == 0 and sorted(p.name for p in out.iterdir()) == [".vrl3-report-files", "figures", "precious.txt",
                                                                   "report.md", "tables"]


def test_folders_of_out_that_no_report_wrote_are_kept(tmp_path, capsys):
    synthetic_runs(tmp_path / "runs", tasks=("door",), seeds=(1,))
    (tmp_path / "out" / "figures").mkdir(parents=True)
    (tmp_path / "out" / "figures" / "mine.png").write_text("a user's figure")
    code, out, captured = report(tmp_path, tmp_path / "runs", capsys)
    assert code == 2 and "figures" in captured.err and "report.md" in captured.err
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["mine.png"] and not (out / "tables").exists()
    (out / "report.md").write_text("my notes\n")  # a user's own report.md does not make the folder a report's
    code, out, captured = report(tmp_path, tmp_path / "runs", capsys)
    assert code == 2 and "no report.md of vrl3 report" in captured.err
    assert (out / "report.md").read_text() == "my notes\n" and (out / "figures" / "mine.png").exists()
    # an earlier report (of a vrl3 from before the list of written files): its folders are replaced
    (out / "report.md").write_text("# VRL3 reproduction report\n\nearlier\n")
    code, out, _ = report(tmp_path, tmp_path / "runs", capsys)
    assert code == 0 and not (out / "figures" / "mine.png").exists()


def test_a_users_file_put_into_an_earlier_reports_figures_is_kept(tmp_path, capsys):
    synthetic_runs(tmp_path / "runs", tasks=("door", "pen"), seeds=(1,))
    code, out, _ = report(tmp_path, tmp_path / "runs", capsys)
    assert code == 0 and (out / "figures" / "success_rate_pen.png").exists()
    (out / "tables" / "notes").mkdir()
    (out / "tables" / "notes" / "mine.csv").write_text("a user's table")
    code, out, captured = report(tmp_path, tmp_path / "runs", capsys)
    message = captured.err.strip()
    assert code == 2 and len(message.splitlines()) == 1 and str(out / "tables" / "notes" / "mine.csv") in message
    assert (out / "tables" / "notes" / "mine.csv").read_text() == "a user's table"
    (out / "tables" / "notes" / "mine.csv").unlink()
    shutil.rmtree(tmp_path / "runs" / "pen")  # the earlier report's own files are replaced, stale ones removed
    code, out, _ = report(tmp_path, tmp_path / "runs", capsys)
    assert code == 0 and not (out / "figures" / "success_rate_pen.png").exists()
    assert (out / "figures" / "success_rate_door.png").exists()


def test_a_failed_report_leaves_no_new_out_folder(tmp_path, capsys):
    synthetic_runs(tmp_path / "runs", tasks=("door",), seeds=(1,))
    (tmp_path / "empty.csv").write_text("")
    code = main(["report", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "new" / "out"),
                 "--bootstrap", "50", "--paper", str(tmp_path / "empty.csv")])
    assert code == 2 and "empty.csv" in capsys.readouterr().err and not (tmp_path / "new").exists()


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    synthetic_runs(tmp_path / "runs", tasks=("door",), seeds=(1,))
    (tmp_path / "out").write_text("not a folder")
    code, _, captured = report(tmp_path, tmp_path / "runs", capsys)
    assert code == 2 and "--out" in captured.err


# ---- the paper's numbers -----------------------------------------------------------------------------------

def test_paper_file_has_the_reference_numbers_and_citation():
    path = default_paper_file()
    assert "Wang" in path.read_text() and "NeurIPS 2022" in path.read_text()
    paper = load_paper(path).set_index(["task", "method", "metric"])
    assert paper.loc[("relocate", "vrl3", "frames_to_90"), "value"] == 900_000
    assert paper.loc[("relocate", "rrl", "frames_to_90"), "value"] == 11_000_000
    assert paper.loc[("aggregate", "vrl3", "sample_efficiency_vs_rrl_pct"), "value"] == 780
    hours = paper.loc[("relocate", "rrl", "hours_to_90")]
    assert (hours["low"], hours["high"]) == (50, 60)
    assert not paper.index.get_level_values("metric").str.startswith("success_rate").any()  # none published here


def test_efficiency_is_rrl_frames_over_ours():
    no_ci = (np.nan, np.nan)
    rows = _efficiency_rows({("vrl3", "relocate"): (900_000.0, *no_ci), ("rrl", "relocate"): (11_000_000.0, *no_ci)},
                            {})
    ratio = {(r["task"], r["metric"]): r["value"] for r in rows}
    assert ratio[("relocate", "sample_efficiency_vs_rrl_pct")] == pytest.approx(100 * 11 / 0.9)
    rows = _efficiency_rows({("vrl3", "door"): (1e6, *no_ci), ("rrl", "door"): (4e6, *no_ci),
                             ("vrl3", "pen"): (1e6, *no_ci), ("rrl", "pen"): (2e6, *no_ci),
                             ("vrl3", "relocate"): (1e6, *no_ci), ("rrl", "relocate"): (np.inf, *no_ci)}, {})
    aggregate = [r for r in rows if r["task"] == "aggregate"]
    assert len(aggregate) == 1 and aggregate[0]["value"] == pytest.approx(300.0)  # mean of 400 % and 200 %
    assert "not reached on relocate" in aggregate[0]["note"]


def test_efficiency_carries_our_frames_ci_so_the_headline_numbers_can_be_flagged():
    rows = _efficiency_rows({("vrl3", "door"): (1e6, 0.8e6, 1.25e6), ("rrl", "door"): (4e6, 3e6, 5e6),
                             ("vrl3", "pen"): (1e6, 0.5e6, np.inf), ("rrl", "pen"): (2e6, np.nan, np.nan)}, {})
    bounds = {r["task"]: (r["value"], r["low"], r["high"]) for r in rows}
    assert bounds["door"] == pytest.approx((400.0, 320.0, 500.0))  # 4M / 1.25M, 4M / 0.8M: RRL's value fixed
    assert bounds["pen"] == pytest.approx((200.0, 0.0, 400.0))  # our CI reaches "not reached": the ratio's low is 0
    assert bounds["aggregate"] == pytest.approx((300.0, 160.0, 450.0))  # means of the tasks' bounds
    paper = load_paper(default_paper_file())  # the paper's average claim: 780 %
    ours = pd.DataFrame(rows)[["task", "method", "metric", "value", "low", "high"]].assign(logged_until=np.nan)
    checks = compare(ours, paper).set_index(["task", "method", "metric"])["check"]
    assert checks[("aggregate", "vrl3", "sample_efficiency_vs_rrl_pct")].startswith("OUTSIDE: paper value not in")


def test_compare_flags_numbers_outside_the_paper():
    paper = load_paper(default_paper_file())
    columns = ["task", "method", "metric", "value", "low", "high", "logged_until"]
    ours = pd.DataFrame([
        ("relocate", "vrl3", "frames_to_90", 2.0e6, 1.8e6, 2.2e6, 4.05e6),  # paper 0.9M not in our CI
        ("relocate", "rrl", "frames_to_90", np.inf, 9e6, np.inf, 4.05e6),  # runs too short to tell
        ("relocate", "vrl3", "hours_to_90", 7.0, 6.5, 7.5, np.nan),  # paper band 5-6
        ("relocate", "rrl", "hours_to_90", 52.0, 50.0, 54.0, np.nan),
        ("door", "vrl3", "frames_to_90", 1.0e6, 0.9e6, 1.1e6, 4.05e6),  # no paper number for door
    ], columns=columns)
    checks = compare(ours, paper).set_index(["task", "method", "metric"])["check"]
    assert checks[("relocate", "vrl3", "frames_to_90")] == "OUTSIDE: paper value not in our 95 % CI"
    assert checks[("relocate", "rrl", "frames_to_90")].startswith("not comparable")
    assert checks[("relocate", "vrl3", "hours_to_90")] == "OUTSIDE paper band"
    assert checks[("relocate", "rrl", "hours_to_90")] == "within paper band"
    assert checks[("door", "vrl3", "frames_to_90")] == "no paper value"
    assert checks[("relocate", "vrl3_finetuned", "frames_to_90")] == "no run data"
    ours.loc[0, ["value", "low", "high"]] = [0.95e6, 0.8e6, 1.0e6]
    assert compare(ours, paper).set_index(["task", "method", "metric"])["check"][
        ("relocate", "vrl3", "frames_to_90")] == "paper value within our 95 % CI"


def test_the_wider_encoder_variant_is_compared_with_the_papers_wide_vrl3():
    paper = load_paper(default_paper_file())
    ours = pd.DataFrame([("relocate", "resnet6_64channel", "sample_efficiency_vs_rrl_pct", 2000.0, 1500.0, 2600.0,
                          4.05e6)], columns=["task", "method", "metric", "value", "low", "high", "logged_until"])
    row = compare(ours, paper).set_index(["task", "method", "metric"]).loc[
        ("relocate", "resnet6_64channel", "sample_efficiency_vs_rrl_pct")]
    assert row["paper_value"] == 2440 and row["check"] == "paper value within our 95 % CI"


def test_report_titles_follow_the_threshold_options(tmp_path, capsys):
    synthetic_runs(tmp_path / "runs", tasks=("door",), seeds=(1,))
    code, out, _ = report(tmp_path, tmp_path / "runs", capsys, "--thresholds", "0.3,0.8", "--window-frames", "100000")
    assert code == 0
    assert "## Frames to 30 % / 80 % success (sliding 100k-frame window" in (out / "report.md").read_text()


def test_runs_set_aside_by_a_restart_are_not_read(tmp_path, capsys):
    synthetic_runs(tmp_path / "runs", tasks=("door",), seeds=(1,))
    write_eval(tmp_path / "runs" / "door" / "seed1" / "superseded" / "20261126T080000Z", GRID, step_curve(GRID, 0))
    runs = discover_runs(tmp_path / "runs", warn=pytest.fail)
    assert [(run.task, run.seed) for run in runs] == [("door", 1)] and runs[0].success[0] == 0


def test_bad_label_is_a_user_error(tmp_path, capsys):
    synthetic_runs(tmp_path / "runs", tasks=("door",), seeds=(1,))
    code, _, captured = report(tmp_path, tmp_path / "runs", capsys, "--label", "nosuch=X")
    assert code == 2 and "nosuch" in captured.err
    with pytest.raises(UserError):
        discover_runs(tmp_path / "missing", warn=print)


def test_frame_tick_labels_stay_short_at_every_scale():
    from vrl3.report.figures import frames_label

    assert [frames_label(x) for x in (0, 400, 2000, 50_000, 500_000, 4_000_000)] == \
        ["0", "400", "2k", "50k", "0.5M", "4M"]


def test_a_config_with_a_malformed_key_is_a_one_line_error(tmp_path, capsys):
    synthetic_runs(tmp_path / "runs", tasks=("door",), seeds=(1,))
    config = tmp_path / "config.yaml"
    config.write_text("variants: 5\n")
    code, out, captured = report(tmp_path, tmp_path / "runs", capsys, "--config", str(config))
    message = captured.err.strip()
    assert code == 2 and len(message.splitlines()) == 1 and not out.exists()
    assert str(config) in message and "'variants'" in message and "mapping" in message


@pytest.mark.parametrize("flag, value", [("--window-frames", "0"), ("--plot-max-frames", "0"),
                                         ("--plot-max-frames", "-5")])
def test_a_non_positive_frame_count_is_a_one_line_error(tmp_path, capsys, flag, value):
    synthetic_runs(tmp_path / "runs", tasks=("door",), seeds=(1,))
    code, out, captured = report(tmp_path, tmp_path / "runs", capsys, flag, value)
    message = captured.err.strip()
    assert code == 2 and len(message.splitlines()) == 1 and f"{flag} {value}" in message and not out.exists()
