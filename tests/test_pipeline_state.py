"""vrl3.pipeline: resume-or-restart stamps, per-run metrics, run planning (no training: hand-made run dirs)."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import yaml

from vrl3.pipeline import plan
from vrl3.pipeline.metrics import stage2_metrics, stage3_metrics
from vrl3.pipeline.stage_state import STAMP, SUPERSEDED, content_digest, prepare_stage
from vrl3.pipeline.variants import selected_variants
from vrl3.train.config import DEFAULTS_PATH, load_config
from vrl3.train.stage_keys import stage2_params, stage3_params

SMOKE = plan.Path(__file__).resolve().parents[1] / "config" / "smoke.yaml"


def write_npz(path, **arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.fixture
def run_cfg(tmp_path):
    demos = tmp_path / "demos"
    write_npz(demos / "episodes" / "episode_000000.npz", reward=np.arange(5, dtype=np.float32))
    (demos / "manifest.json").write_text('{"task": "door"}')
    return load_config(SMOKE, [f"demos={demos}", f"run_dir={tmp_path / 'run'}"])


def fill_run(run_dir):
    """What `vrl3 train` leaves after both stages (contents do not matter here)."""
    for name in ("stage2/params.yaml", "stage2/stage2_eval.csv", "stage2/checkpoints/latest.pt",
                 "params.yaml", "eval.csv", "train.csv", "checkpoints/latest.pt", "episodes/episode_000000.npz"):
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_text("x")


def test_first_start_writes_a_stamp_and_a_second_call_resumes(run_cfg):
    assert prepare_stage(run_cfg, 2) == "start"
    stamp = json.loads((plan.Path(run_cfg["run_dir"]) / "stage2" / STAMP).read_text())
    assert json.loads(stamp["params"]) == stage2_params(run_cfg)
    assert prepare_stage(run_cfg, 2) == "resume"
    assert prepare_stage(run_cfg, 3) == "start"
    assert prepare_stage(run_cfg, 3) == "resume"


def test_changed_stage3_key_restarts_stage3_only(run_cfg):
    run_dir = plan.Path(run_cfg["run_dir"])
    prepare_stage(run_cfg, 2), prepare_stage(run_cfg, 3)
    fill_run(run_dir)
    changed = dict(run_cfg, num_train_frames=run_cfg["num_train_frames"] + 2)
    assert prepare_stage(changed, 3) == "restart"
    assert prepare_stage(changed, 2) == "resume"  # stage 2 does not read num_train_frames
    assert (run_dir / "stage2" / "checkpoints" / "latest.pt").exists()
    for gone in ("eval.csv", "train.csv", "params.yaml", "checkpoints", "episodes"):
        assert not (run_dir / gone).exists(), gone
    assert json.loads(json.loads((run_dir / STAMP).read_text())["params"]) == stage3_params(changed)
    # nothing the run produced is lost: the old logs and checkpoints are set aside, only saved episodes go
    (kept,) = (run_dir / SUPERSEDED).iterdir()
    assert sorted(str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file()) == [
        "checkpoints/latest.pt", "eval.csv", "params.yaml", "train.csv", STAMP]


def test_changed_stage2_agent_key_restarts_both_stages(run_cfg):
    run_dir = plan.Path(run_cfg["run_dir"])
    prepare_stage(run_cfg, 2), prepare_stage(run_cfg, 3)
    fill_run(run_dir)
    changed = dict(run_cfg, agent=dict(run_cfg["agent"], cql_weight=2.0))
    assert prepare_stage(changed, 2) == "restart"
    assert sorted(p.name for p in (run_dir / "stage2").iterdir()) == [STAMP]
    assert not (run_dir / "eval.csv").exists() and not (run_dir / "checkpoints").exists()
    (kept,) = (run_dir / SUPERSEDED).iterdir()
    assert (kept / "stage2" / "checkpoints" / "latest.pt").exists() and (kept / "eval.csv").exists()
    assert prepare_stage(changed, 3) == "start"  # its old state went with stage 2's
    changed_again = dict(changed, agent=dict(changed["agent"], cql_weight=3.0))
    fill_run(run_dir)
    assert prepare_stage(changed_again, 2) == "restart"
    assert len(list((run_dir / SUPERSEDED).iterdir())) == 2  # a second restart does not overwrite the first


def test_a_run_made_by_vrl3_train_is_adopted_when_its_params_match(run_cfg):
    run_dir = plan.Path(run_cfg["run_dir"])
    fill_run(run_dir)  # no workflow stamps: made by `vrl3 train` by hand
    (run_dir / "stage2" / "params.yaml").write_text(yaml.safe_dump(stage2_params(run_cfg)))
    (run_dir / "params.yaml").write_text(yaml.safe_dump(stage3_params(run_cfg)))
    assert prepare_stage(run_cfg, 2) == "resume" and prepare_stage(run_cfg, 3) == "resume"
    assert (run_dir / "eval.csv").exists() and (run_dir / "episodes").exists()
    assert not (run_dir / SUPERSEDED).exists()
    assert prepare_stage(run_cfg, 3) == "resume"  # the stamps written on adoption match from now on
    changed = dict(run_cfg, num_train_frames=run_cfg["num_train_frames"] + 2)
    assert prepare_stage(changed, 3) == "restart" and (run_dir / SUPERSEDED).exists()


def test_a_damaged_stamp_or_params_file_is_one_line_naming_it(run_cfg):
    from vrl3.errors import UserError
    from vrl3.train.stage_keys import check_params

    run_dir = plan.Path(run_cfg["run_dir"])
    assert prepare_stage(run_cfg, 2) == "start"
    stamp = run_dir / "stage2" / STAMP
    for damage in (b"{garb", bytes([0xff, 0xfe]), b"[1, 2]"):
        stamp.write_bytes(damage)
        with pytest.raises(UserError, match=f"{stamp} is damaged: delete it"):
            prepare_stage(run_cfg, 2)
    params = run_dir / "stage2" / "params.yaml"
    for damage in (b"", b"a: [", bytes([0xff]), b"- 1"):
        params.write_bytes(damage)
        with pytest.raises(UserError, match=f"{params} is damaged"):
            check_params(params, stage2_params(run_cfg))


def test_moved_inputs_resume_and_stamps_that_recorded_their_paths_still_match(run_cfg, tmp_path):
    """The stamps hash what the demos and the encoder hold; where they lie (data_dir) is no stage parameter."""
    run_dir = plan.Path(run_cfg["run_dir"])
    for stage, stage_dir, params in ((2, run_dir / "stage2", stage2_params(run_cfg)),
                                     (3, run_dir, stage3_params(run_cfg))):
        assert "demos" not in params and "stage1_checkpoint" not in params
        assert prepare_stage(run_cfg, stage) == "start"
        stamp = json.loads((stage_dir / STAMP).read_text())  # as written while the paths were stage params
        stamp["params"] = json.dumps(json.loads(stamp["params"]) | {"demos": "/old/data/demos/door"}, sort_keys=True)
        (stage_dir / STAMP).write_text(json.dumps(stamp))
        if stage == 3:  # stage 3's stamp holds the hash of stage 2's stamp file
            stamp["stage2"] = hashlib.sha256((run_dir / "stage2" / STAMP).read_bytes()).hexdigest()
            (stage_dir / STAMP).write_text(json.dumps(stamp))
    stage2_stamp_bytes = (run_dir / "stage2" / STAMP).read_bytes()
    moved = tmp_path / "moved" / "demos"
    shutil.copytree(run_cfg["demos"], moved)
    moved_cfg = dict(run_cfg, demos=str(moved))
    assert prepare_stage(moved_cfg, 2) == "resume" and prepare_stage(moved_cfg, 3) == "resume"
    assert (run_dir / "stage2" / STAMP).read_bytes() == stage2_stamp_bytes  # not rewritten: stage 3's stamp hashes it
    assert not (run_dir / SUPERSEDED).exists()
    write_npz(moved / "episodes" / "episode_000000.npz", reward=np.arange(6, dtype=np.float32))  # other content
    assert prepare_stage(moved_cfg, 2) == "restart"


def test_changed_stage3_agent_key_keeps_stage2(run_cfg):
    prepare_stage(run_cfg, 2), prepare_stage(run_cfg, 3)
    changed = dict(run_cfg, agent=dict(run_cfg["agent"], std0=0.5))
    assert prepare_stage(changed, 3) == "restart"
    assert prepare_stage(changed, 2) == "resume"


def test_new_demo_content_restarts_stage2_but_a_rewrite_of_the_same_arrays_does_not(run_cfg):
    demos = plan.Path(run_cfg["demos"])
    prepare_stage(run_cfg, 2)
    # same arrays written again (a re-render): the zip's time stamps change, the digest must not
    write_npz(demos / "episodes" / "episode_000000.npz", reward=np.arange(5, dtype=np.float32))
    (demos / ".snakemake_timestamp").write_text("")
    assert prepare_stage(run_cfg, 2) == "resume"
    write_npz(demos / "episodes" / "episode_000000.npz", reward=np.arange(1, 6, dtype=np.float32))
    assert prepare_stage(run_cfg, 2) == "restart"


def test_content_digest_sees_names_and_bytes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("1")
    first = content_digest(tmp_path / "a")
    (tmp_path / "a" / "x.txt").write_text("2")
    assert content_digest(tmp_path / "a") != first
    (tmp_path / "a" / "x.txt").rename(tmp_path / "a" / "y.txt")
    assert len({first, content_digest(tmp_path / "a")}) == 2
    assert content_digest(None) is None


def test_stage3_metrics_from_a_hand_made_eval_csv(tmp_path):
    rows = [(0, 0.0, -1.0), (500_000, 0.4, 2.0), (1_000_000, 0.6, 3.0), (1_500_000, 1.0, 5.0)]
    lines = ["episode,episode_length,episode_reward,frame,step,success_rate,total_time,variant"]
    lines += [f"0,200,{reward},{frame},{frame // 2},{success},1.0,no_safe_q" for frame, success, reward in rows]
    (tmp_path / "eval.csv").write_text("\n".join(lines) + "\n")
    metrics = stage3_metrics(tmp_path)
    assert metrics["frames"] == 1_500_000 and metrics["evaluations"] == 4
    assert metrics["final_success_rate"] == 1.0 and metrics["final_episode_reward"] == 5.0
    assert metrics["success_rate_1m"] == 0.6  # the evaluation at 1M frames, not after it
    assert metrics["mean_success_rate_to_1m"] == pytest.approx((0.0 + 0.4 + 0.6) / 3)


def test_metrics_of_a_run_without_logs_are_empty(tmp_path):
    assert stage3_metrics(tmp_path)["final_success_rate"] is None
    assert stage2_metrics(tmp_path) == {"evaluations": 0, "last_eval_update": None, "success_rate": None,
                                        "episode_reward": None}


def test_plan_resolves_runs_like_vrl3_train(tmp_path):
    raw = plan.merge(yaml.safe_load(DEFAULTS_PATH.read_text()), yaml.safe_load(SMOKE.read_text()))
    config = plan.merge(raw, {"tasks": ["door", "relocate"], "seeds": [1, 2],
                                             "stage1": {"source": "fetch"}, "data_dir": "d", "results_dir": "r"})
    config_file = plan.write_config(config, tmp_path)
    assert plan.write_config(config, tmp_path) == config_file  # named by content
    vrl3 = selected_variants(config)[0]
    run = plan.plan_run(config_file, config, vrl3, "relocate", 2)
    assert run.overrides() == ["variant=vrl3", "task=relocate", "seed=2", "demos=d/demos/relocate",
                               "run_dir=r/runs/vrl3/relocate/seed2",
                               "stage1_checkpoint=d/stage1/resnet6_32channel_checkpoint.pth.tar"]
    assert run.cfg["agent"]["encoder_lr_scale"] == 0.01  # relocate's "auto" value, resolved by vrl3 train's loader
    assert json.loads(run.stage2_params()) == stage2_params(run.cfg)
    assert plan.runs(config) == [(vrl3, "door", 1), (vrl3, "door", 2), (vrl3, "relocate", 1), (vrl3, "relocate", 2)]
    assert plan.merge({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": 3}, "l": [2]}) == {"a": {"b": 3, "c": 2}, "l": [2]}


def test_stage2_job_drops_stage3_state_made_with_other_stage3_values(run_cfg):
    run_dir = plan.Path(run_cfg["run_dir"])
    prepare_stage(run_cfg, 2), prepare_stage(run_cfg, 3)
    fill_run(run_dir)
    changed = dict(run_cfg, eval_every_frames=run_cfg["eval_every_frames"] * 2)
    assert prepare_stage(changed, 2) == "resume"
    assert (run_dir / "stage2" / "checkpoints" / "latest.pt").exists()
    assert not (run_dir / "params.yaml").exists() and not (run_dir / "checkpoints").exists()
    assert prepare_stage(run_cfg, 3) == "start"


def test_empty_folders_made_by_snakemake_are_not_stale_state(run_cfg):
    (plan.Path(run_cfg["run_dir"]) / "stage2").mkdir(parents=True)
    assert prepare_stage(run_cfg, 2) == "start"


def test_set_aside_names_never_reuse_a_taken_name(tmp_path):
    from vrl3.paths import set_aside_name

    first = set_aside_name(tmp_path, "params.yaml.edited-")
    first.write_text("kept")
    second = set_aside_name(tmp_path, "params.yaml.edited-")  # within the same second as a rule
    assert first.name.startswith("params.yaml.edited-") and first.name.endswith("Z")
    assert second != first and second.name.startswith(first.name.split("Z")[0])


def test_snakemake_config_strings_get_the_types_a_config_file_gives():
    """Snakemake hands nested --config values over as strings (YAML BaseLoader); the workflow retypes them."""
    config = {"seeds": [1], "resources": {"stage3": {"gpus": 0, "cpus": 2}}, "demo_source": {"mirror": "x"}}
    cli = {"seeds": "[1,2]", "resources": {"stage3": {"gpus": "1"}}, "demo_source": {"mirror": "null"},
           "num_demo": "3", "tasks": ["door", "pen"], "results_dir": "a: b: c"}
    plan.type_cli_config(config, cli)
    assert config == {"seeds": [1, 2], "resources": {"stage3": {"gpus": 1, "cpus": 2}},
                      "demo_source": {"mirror": None}, "num_demo": 3, "tasks": ["door", "pen"],
                      "results_dir": "a: b: c"}  # not YAML: kept as written


def test_the_1m_score_is_none_without_an_evaluation_up_to_1m_frames():
    from vrl3.pipeline.metrics import mean_success_to_1m

    assert mean_success_to_1m([1_500_000, 2_000_000], [0.5, 1.0]) is None
    assert mean_success_to_1m([0, 1_000_000, 1_500_000], [0.0, 0.5, 1.0]) == pytest.approx(0.25)


def test_write_text_atomic_keeps_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    import os
    from pathlib import Path

    from vrl3.paths import write_text_atomic

    target = tmp_path / "sub" / "params.yaml"
    write_text_atomic(target, "old")
    temp_names = []

    def failing_replace(self, other):
        temp_names.append(self.name)
        raise OSError("disk full")

    monkeypatch.setattr(Path, "replace", failing_replace)
    with pytest.raises(OSError):
        write_text_atomic(target, "new")
    assert target.read_text() == "old"
    assert temp_names == [f".params.yaml.{os.getpid()}.tmp"]  # per process: two writers never share one
