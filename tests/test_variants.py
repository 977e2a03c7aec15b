"""Variants (issue 7): expansion and validation, planning per variant, a zero-update stage 2, and the report's paper
figures from synthetic logs of many variants."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tests.conftest import REPO_ROOT
from vrl3.cli import main
from vrl3.errors import UserError
from vrl3.pipeline import plan
from vrl3.pipeline.variants import expand_variants, selected_variants, sweep_name
from vrl3.report.transition import critic_q_logs
from vrl3.train.config import DEFAULTS_PATH
from vrl3.train.stage_keys import stage3_params

sys.path.insert(0, str(Path(__file__).parent))  # pytest's importlib mode does not put tests/ on sys.path
from workflow_support import BIN, shared_door_demos  # noqa: E402

SMOKE = REPO_ROOT / "config" / "smoke.yaml"


@pytest.fixture
def paper() -> dict:
    return yaml.safe_load(DEFAULTS_PATH.read_text())


# ---- expansion -----------------------------------------------------------------------------------------------

def test_the_paper_variants_and_their_overrides(paper):
    variants = expand_variants(paper)
    assert {"vrl3", "drqv2fd", "no_safe_q", "stage2_bc", "stage2_disabled", "stage3_conservative", "stage1_random",
            "encoder_frozen_s3", "resnet6_64channel", "frame_stack3"} <= set(variants)
    assert variants["vrl3"].overrides == {} and variants["vrl3"].dotlist == []
    assert variants["drqv2fd"].overrides == {"stage1": {"source": "none"}, "stage2_n_update": 0,
                                             "agent": {"safe_q_target_factor": 1}}
    assert variants["drqv2fd"].dotlist == ["stage1.source=none", "stage2_n_update=0", "agent.safe_q_target_factor=1"]
    assert variants["stage2_disabled"].dotlist == ["stage2_n_update=0"]
    assert variants["encoder_frozen_s3"].dotlist == ["agent.stage3_update_encoder=false"]
    # Fig. 4's encoder panel: S2 and S3 are a random encoder that learns in one stage only
    assert variants["stage1_random_frozen_s3"].dotlist == ["stage1.source=none", "agent.stage3_update_encoder=false"]
    assert variants["stage1_random_frozen_s2"].dotlist == ["stage1.source=none", "agent.stage2_update_encoder=false"]
    assert variants["frame_stack3"].dotlist == ["frame_stack=3"]
    assert variants["paper_era"].dotlist == ["frame_stack=3", "agent.stage3_bc_lam0=0.001", "agent.stage3_bc_lam1=0.5"]
    assert [v.name for v in selected_variants(paper)] == ["vrl3"]  # the default `all` runs VRL3 only


def test_a_sweep_expands_one_key_over_its_values_with_predictable_names(paper):
    variants = expand_variants(paper)
    factor = [v for v in variants.values() if v.sweep == "safe_q_target_factor"]
    assert [v.name for v in factor] == [f"safe_q_target_factor_{suffix}" for suffix in ["0", "0p3", "0p5", "0p9", "1"]]
    assert [v.overrides["agent"]["safe_q_target_factor"] for v in factor] == [0, 0.3, 0.5, 0.9, 1]
    assert {v.sweep_key for v in factor} == {"agent.safe_q_target_factor"}
    std = variants["stage3_std_0p2"]  # the entry's other items apply to every value
    assert std.overrides == {"agent": {"std1": 1, "std0": 0.2}} and std.value == 0.2
    assert [v.name for v in variants.values() if v.sweep == "lr"] == ["lr_3e-05", "lr_0p0001", "lr_0p0003",
                                                                      "lr_0p001"]
    assert sweep_name("aug", False) == "aug_false"
    config = paper | {"run_variants": ["no_safe_q", "cql_weight", "vrl3"]}
    assert [v.name for v in selected_variants(config)] == ["no_safe_q", "cql_weight_0", "cql_weight_0p1",
                                                           "cql_weight_1", "cql_weight_10", "vrl3"]


@pytest.mark.parametrize("entry, message", [
    ({"agent": {"lrr": 0.1}}, "variant 'bad': override key 'agent.lrr' does not exist in the config"),
    ({"bogus": 1}, "variant 'bad': override key 'bogus' does not exist"),
    ({"sweep": {"agent.nope": [1, 2]}}, "variant 'bad': override key 'agent.nope' does not exist"),
    ({"seeds": [1]}, "variant 'bad': key 'seeds' is not a per-run setting"),
    ({"stage1": {"source": "fetch"}}, "variant 'bad': stage1.source can only be overridden with none"),
    ({"sweep": {"stage1.source": ["none", "fetch"]}}, "stage1.source can only be overridden with none .*, not 'fetch'"),
    ({"agent": 5}, "variant 'bad': 'agent' is a section of the config"),
    ({"sweep": {"agent.lr": []}}, "variant 'bad': sweep agent.lr needs a non-empty list"),
    ({"sweep": {"agent.lr": [0.1], "agent.std0": [0.1]}}, "variant 'bad': sweep must map one dotted key"),
    ("cql", "variant 'bad': give a mapping of overrides"),
])
def test_a_bad_variant_is_one_line_naming_variant_and_key(paper, entry, message):
    config = copy.deepcopy(paper)
    config["variants"]["bad"] = entry
    with pytest.raises(UserError, match=message.replace("(", r"\(")) as error:
        expand_variants(config)
    assert "\n" not in str(error.value)


def test_clashing_names_and_unknown_run_variants_are_refused(paper):
    clash = copy.deepcopy(paper)
    clash["variants"]["lr_0p001"] = {}  # the lr sweep makes this name too
    with pytest.raises(UserError, match="'lr_0p001' is defined twice"):
        expand_variants(clash)
    with pytest.raises(UserError, match="run_variants names 'nosuch'"):
        selected_variants(paper | {"run_variants": ["vrl3", "nosuch"]})


def test_dvc_config_refuses_a_bad_variant_in_one_line(tmp_path):
    overlay = tmp_path / "c.yaml"
    overlay.write_text("variants: {mine: {agent: {cql_wieght: 0}}}\n")
    result = subprocess.run([str(BIN / "vrl3"), "dvc-config", "--configfile", str(overlay), "--out-dir",
                             str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "variant 'mine'" in result.stderr and "'agent.cql_wieght'" in result.stderr
    assert not (tmp_path / "dvc.yaml").exists()


# ---- planning ------------------------------------------------------------------------------------------------

def planned(tmp_path, paper, **changes) -> dict[tuple, plan.Run]:
    config = plan.merge(paper, {"tasks": ["door", "relocate"], "seeds": [1], "data_dir": "d", "results_dir": "r",
                                "stage1": {"source": "fetch"}} | changes)
    config_file = plan.write_config(config, tmp_path)
    return {(run.variant, run.task, run.seed): run for run in plan.plan_runs(config_file, config)}


def test_runs_are_variant_x_task_x_seed_resolved_like_vrl3_train(tmp_path, paper):
    runs = planned(tmp_path, paper, run_variants=["vrl3", "drqv2fd", "encoder_lr_scale"])
    assert len(runs) == (2 + 5) * 2
    drq = runs[("drqv2fd", "relocate", 1)]
    assert drq.run_dir == "r/runs/drqv2fd/relocate/seed1" and drq.stage1_checkpoint is None  # pFalse
    assert drq.overrides() == ["stage1.source=none", "stage2_n_update=0", "agent.safe_q_target_factor=1",
                               "variant=drqv2fd", "task=relocate", "seed=1", "demos=d/demos/relocate",
                               "run_dir=r/runs/drqv2fd/relocate/seed1", "stage1_checkpoint=null"]
    assert drq.cfg["stage2_n_update"] == 0 and drq.cfg["agent"]["safe_q_target_factor"] == 1
    assert drq.cfg["variant"] == "drqv2fd" and drq.cfg["agent"]["encoder_lr_scale"] == 0.01  # relocate's auto
    assert runs[("vrl3", "door", 1)].stage1_checkpoint == "d/stage1/resnet6_32channel_checkpoint.pth.tar"
    # a swept value beats relocate's "auto" encoder learning-rate scale
    assert runs[("encoder_lr_scale_0p1", "relocate", 1)].cfg["agent"]["encoder_lr_scale"] == 0.1
    # the variant's overrides are what its stages depend on; the variant's name is not
    assert json.loads(drq.stage2_params())["stage2_n_update"] == 0
    vrl3 = runs[("vrl3", "relocate", 1)]
    assert stage3_params(vrl3.cfg) == stage3_params(vrl3.cfg | {"variant": "other", "variants": {}})


def test_a_variant_with_another_encoder_needs_that_encoder(tmp_path, paper):
    runs = planned(tmp_path, paper, run_variants=["vrl3", "resnet6_64channel"])
    assert plan.stage1_archs(list(runs.values())) == ["resnet6_32channel", "resnet6_64channel"]
    wide = runs[("resnet6_64channel", "door", 1)]
    assert wide.stage1_checkpoint == "d/stage1/resnet6_64channel_checkpoint.pth.tar"
    assert wide.cfg["agent"]["stage1_model_name"] == "resnet6_64channel"


def test_stage2_disabled_trains_no_stage2_and_hands_stage3_the_initial_agent(tmp_path, mirror):
    demos = shared_door_demos(tmp_path.parent, mirror)
    run_dir = tmp_path / "run"
    result = subprocess.run([str(BIN / "vrl3"), "train", "--config", str(SMOKE), "--stage", "2", "stage2_n_update=0",
                             "variant=stage2_disabled", "num_demo=1", "agent.hidden_dim=32", f"demos={demos}",
                             f"run_dir={run_dir}"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    state = torch.load(run_dir / "stage2" / "checkpoints" / "latest.pt", weights_only=True)
    assert state["progress"]["stage"] == 3 and state["progress"]["update"] == 0
    assert not (run_dir / "stage2" / "train.csv").exists() and not (run_dir / "stage2" / "stage2_eval.csv").exists()
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["variant"] == "stage2_disabled"


# ---- the report's paper figures --------------------------------------------------------------------------------

GRID = np.arange(0, 1_300_000, 100_000)  # evaluations 0 .. 1.2M frames
TASKS = ("door", "relocate")


def write_run(folder: Path, success: np.ndarray, variant: str | None, q2=(1.0, 2.0), q3=(50.0, 60.0)) -> None:
    (folder / "stage2").mkdir(parents=True)
    table = pd.DataFrame({"episode": 0, "episode_length": 200.0, "episode_reward": 1.0, "frame": GRID,
                          "step": GRID // 2, "success_rate": success, "total_time": GRID / 100.0})
    if variant is not None:
        table["variant"] = variant
    table.to_csv(folder / "eval.csv", index=False)
    pd.DataFrame({"update": [2, 4], "critic_q1": q2}).to_csv(folder / "stage2" / "train.csv", index=False)
    pd.DataFrame({"frame": [100, 200], "critic_q1": q3}).to_csv(folder / "train.csv", index=False)


def synthetic_variants(root: Path, variants: dict) -> dict[str, float]:
    """Every named variant and one value of every sweep, 2 tasks x 2 seeds, each with a constant success rate."""
    chosen = [name for name, v in variants.items() if v.sweep is None]
    chosen += list({v.sweep: name for name, v in variants.items() if v.sweep is not None}.values())
    level = {name: round(0.02 * (i + 1), 2) for i, name in enumerate(chosen)}
    for name in chosen:
        for task in TASKS:
            for seed in (1, 2):
                write_run(root / name / task / f"seed{seed}", np.full(len(GRID), level[name]), name,
                          q3=(50.0 * seed, 60.0 * seed))
    for task in TASKS:  # RRL's own log layout
        folder = root / "rrl" / f"rrl_{task}-v0_s1"
        folder.mkdir(parents=True)
        pd.DataFrame({"iteration": range(30), "success_rate": 10.0}).to_csv(folder / "log.csv", index=False)
    return level


def test_report_draws_every_paper_figure_from_many_variants(tmp_path, capsys, paper):
    variants = expand_variants(paper)
    level = synthetic_variants(tmp_path / "runs", variants)
    out = tmp_path / "out"
    assert main(["report", "--runs", str(tmp_path / "runs"), "--out", str(out), "--bootstrap", "20"]) == 0
    capsys.readouterr()
    figure_map = pd.read_csv(out / "tables" / "figure_map.csv")
    n_sweeps = len({v.sweep for v in variants.values() if v.sweep})
    assert len(figure_map) == 2 + len(TASKS) + 7 + n_sweeps + 1  # + the stage-1 panel of Fig. 6
    assert (figure_map["status"] == "drawn").all(), figure_map[figure_map["status"] != "drawn"]
    for figure in figure_map["figure"]:
        png = out / figure
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000, figure
    expected = {"fig2a_aggregate", "fig2b_relocate", "fig7_per_task_door", "fig7_per_task_relocate", "fig3a_stage2",
                "fig3b_transition_success", "fig3c_transition_q", "fig3d_encoder_lr_scale", "fig4a_stages",
                "fig4b_encoder_updates", "fig6_sensitivity_safe_q_target_factor", "fig6_sensitivity_lr",
                "fig6_sensitivity_stage1_source"}
    assert expected <= {Path(f).stem for f in figure_map["figure"]}
    row = figure_map.set_index("figure").loc["figures/fig2a_aggregate.png"]
    assert row["variants"] == "vrl3, drqv2fd, rrl" and row["paper"] == "Fig. 2a"
    assert "drqv2fd: stage1.source=none stage2_n_update=0 agent.safe_q_target_factor=1" in row["config"]
    assert "rrl: not a variant of the config" in row["config"]
    # sensitivity: each run's score is the mean success up to 1M frames = its constant level; 2 tasks x 2 seeds
    table = pd.read_csv(out / "tables" / "sensitivity.csv")
    per_task = table[table["task"] != "all"]
    assert sorted(set(per_task["task"])) == sorted(TASKS) and (per_task["n_runs"] == 2).all()  # seeds of a task
    assert per_task["mean"].tolist() == pytest.approx([level[name] for name in per_task["variant"]])
    sensitivity = table[table["task"] == "all"].set_index("variant")
    for name, value in sensitivity["mean"].items():
        assert value == pytest.approx(level[name]) and sensitivity.loc[name, "n_runs"] == 4
        assert sensitivity.loc[name, "sd"] == pytest.approx(0.0)
    # each setting's rows: its tasks, then `all`
    assert table["task"].tolist()[:len(TASKS) + 1] == [*per_task["task"][:len(TASKS)], "all"]
    assert set(sensitivity["sweep"]) == {v.sweep for v in variants.values() if v.sweep} | {"stage1_source"}
    # S1 pretrain/random (reference §6.2): the vrl3 and stage1_random runs, not a sweep
    stage1 = sensitivity[sensitivity["sweep"] == "stage1_source"]
    assert stage1["setting"].to_dict() == {"vrl3": "pretrained", "stage1_random": "none"}
    text = (out / "report.md").read_text()
    assert "## The paper's figures" in text and f"{len(figure_map)} of {len(figure_map)} drawn" in text
    assert "![fig6_sensitivity_lr](figures/fig6_sensitivity_lr.png)" in text


def test_critic_q_across_the_boundary_reads_both_train_logs(tmp_path):
    write_run(tmp_path / "runs" / "no_safe_q" / "door" / "seed3", np.zeros(len(GRID)), "no_safe_q",
              q2=(1.5, 2.5), q3=(900.0, 1200.0))
    from vrl3.report.runs import discover_runs

    logs = critic_q_logs(discover_runs(tmp_path / "runs", warn=print))
    assert logs.values.tolist() == [["no_safe_q", "door", 3, 2, 2, 1.5], ["no_safe_q", "door", 3, 2, 4, 2.5],
                                    ["no_safe_q", "door", 3, 3, 100, 900.0], ["no_safe_q", "door", 3, 3, 200, 1200.0]]


def test_sensitivity_score_is_the_mean_success_up_to_1m_frames(tmp_path):
    from vrl3.report.runs import discover_runs
    from vrl3.report.sensitivity import run_score

    ramp = GRID / GRID[-1]  # 0 .. 1 over 0 .. 1.2M frames: the evaluations after 1M must not count
    write_run(tmp_path / "runs" / "lr_3e-05" / "door" / "seed1", ramp, "lr_3e-05")
    [run] = discover_runs(tmp_path / "runs", warn=print)
    assert run_score(run) == pytest.approx(np.mean(ramp[GRID <= 1_000_000]))  # 0.4167, not 0.5 over all 13


def test_a_torn_train_log_is_one_line_naming_the_file(tmp_path):
    write_run(tmp_path / "runs" / "vrl3" / "door" / "seed1", np.zeros(len(GRID)), "vrl3")
    from vrl3.report.runs import discover_runs

    log = tmp_path / "runs" / "vrl3" / "door" / "seed1" / "train.csv"
    log.write_text("frame,critic_q1\n100,1.0\n200,2.0,3.0,4.0\n")
    with pytest.raises(UserError, match="train.csv: not a readable CSV"):
        critic_q_logs(discover_runs(tmp_path / "runs", warn=print))


def test_absent_variants_skip_their_figures_with_a_note(tmp_path, capsys):
    for task in TASKS:
        write_run(tmp_path / "runs" / task / "seed1", np.linspace(0, 1, len(GRID)), None)  # the layout before variants
        write_run(tmp_path / "runs" / "renamed" / task / "seed1", np.zeros(len(GRID)), "no_safe_q")  # column wins
    out = tmp_path / "out"
    assert main(["report", "--runs", str(tmp_path / "runs"), "--out", str(out), "--bootstrap", "20"]) == 0
    capsys.readouterr()
    status = pd.read_csv(out / "tables" / "figure_map.csv").set_index("figure")["status"]
    assert status["figures/fig2a_aggregate.png"] == "drawn"
    assert status["figures/fig3b_transition_success.png"] == "drawn"
    assert status["figures/fig4a_stages.png"].startswith("skipped: needs runs of vrl3 and of one more")
    assert status["figures/fig6_sensitivity_lr.png"] == "skipped: none of its variants has runs"
    assert status["figures/fig6_sensitivity_stage1_source.png"] == "skipped: needs runs of stage1_random"
    assert not (out / "figures" / "fig4a_stages.png").exists()
    assert "skipped: none of its variants has runs" in (out / "report.md").read_text()
    assert pd.read_csv(out / "tables" / "sensitivity.csv").empty


def test_critic_q_logs_skip_missing_or_empty_logs_and_name_a_missing_column(tmp_path):
    from vrl3.report.runs import discover_runs

    folder = tmp_path / "runs" / "no_safe_q" / "door" / "seed3"
    write_run(folder, np.zeros(len(GRID)), "no_safe_q")
    (folder / "stage2" / "train.csv").write_text("update,critic_q1\n")  # header only: no stage-2 rows
    assert critic_q_logs(discover_runs(tmp_path / "runs", warn=print))["stage"].tolist() == [3, 3]
    (folder / "stage2" / "train.csv").unlink()
    assert critic_q_logs(discover_runs(tmp_path / "runs", warn=print))["stage"].tolist() == [3, 3]
    (folder / "train.csv").write_text("frame\n100\n")
    with pytest.raises(UserError, match=r"train.csv: missing column\(s\) critic_q1"):
        critic_q_logs(discover_runs(tmp_path / "runs", warn=print))


def test_sensitivity_summary_is_per_task_then_all_in_scoring_order():
    from vrl3.report.sensitivity import summary

    scores = pd.DataFrame([{"sweep": "s", "key": "agent.lr", "setting": setting, "variant": f"v{setting}",
                            "task": task, "seed": seed, "score": score}
                           for setting in ("y", "x")  # scored in this order, not sorted
                           for task, seeds in (("door", {1: 0.1, 2: 0.3}), ("pen", {1: 0.5, 2: 0.5}))
                           for seed, score in seeds.items()])
    table = summary(scores)
    assert table["setting"].tolist() == ["y"] * 3 + ["x"] * 3
    assert table["task"].tolist() == ["door", "pen", "all"] * 2
    door = table.iloc[0]
    assert door["mean"] == pytest.approx(0.2) and door["sd"] == pytest.approx(np.std([0.1, 0.3], ddof=1))
    assert table.iloc[2]["mean"] == pytest.approx(0.35) and table.iloc[2]["n_runs"] == 4


def test_sensitivity_plot_draws_each_tasks_seeds_and_mean_side_by_side(monkeypatch):
    """As plot_hyper_sensitivity: coloured by task, each task's points dodged to its own side of the setting."""
    from vrl3.report import sensitivity

    drawn = {}
    monkeypatch.setattr(sensitivity.figures, "save", lambda fig, stem: drawn.update(fig=fig))
    scores = pd.DataFrame([{"sweep": "s", "key": "agent.lr", "setting": "0.001", "variant": "v", "task": task,
                            "seed": seed, "score": 0.1 * seed} for task in ("door", "pen") for seed in (1, 2, 3)])
    sensitivity.plot(scores, "agent.lr", "lr", Path("unused"))
    ax = drawn["fig"].axes[0]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["door", "pen"]
    door_x, pen_x = (ax.collections[i].get_offsets()[:, 0] for i in (0, 1))  # the seeds of each task
    assert len(door_x) == len(pen_x) == 3 and door_x.max() < 0 < pen_x.min()
    import matplotlib.pyplot as plt

    plt.close(drawn["fig"])
