import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO_ROOT
from vrl3.errors import UserError
from vrl3.train.config import load_config
from vrl3.train.stage_keys import stage2_params, stage3_params

SMOKE = REPO_ROOT / "config" / "smoke.yaml"
PAPER = REPO_ROOT / "config" / "config.yaml"


def test_paper_defaults_match_the_reference():
    cfg = load_config(PAPER)
    assert cfg["tasks"] == ["door", "hammer", "pen", "relocate"] and cfg["seeds"] == [1, 2, 3]
    assert cfg["num_train_frames"] == 4_100_000 and cfg["stage2_n_update"] == 30_000
    assert cfg["agent"]["stage1_model_name"] == "resnet6_32channel"
    assert cfg["agent"]["safe_q_threshold"] == 200 and cfg["agent"]["safe_q_target_factor"] == 0.5
    assert cfg["agent"]["encoder_lr_scale"] == 1.0  # door
    assert load_config(PAPER, ["task=relocate"])["agent"]["encoder_lr_scale"] == 0.01


def test_runs_start_from_the_stage1_encoder_unless_stage1_source_is_none():
    """VRL3's default (stage1_use_pretrain): the encoder the workflow puts in data_dir; none = random init."""
    assert load_config(PAPER)["stage1_checkpoint"] == "data/stage1/resnet6_32channel_checkpoint.pth.tar"
    wide = load_config(PAPER, ["agent.stage1_model_name=resnet6_64channel", "data_dir=/d"])
    assert wide["stage1_checkpoint"] == "/d/stage1/resnet6_64channel_checkpoint.pth.tar"
    assert load_config(PAPER, ["stage1_checkpoint=/m/mine.pth.tar"])["stage1_checkpoint"] == "/m/mine.pth.tar"
    assert load_config(PAPER, ["stage1.source=none"])["stage1_checkpoint"] is None
    assert load_config(SMOKE)["stage1_checkpoint"] is None  # the smoke config: stage1.source none
    with pytest.raises(UserError, match="stage1_checkpoint=/m/mine.pth.tar but stage1.source is none"):
        load_config(PAPER, ["stage1.source=none", "stage1_checkpoint=/m/mine.pth.tar"])


def test_smoke_overlays_the_defaults_and_overrides_win():
    cfg = load_config(SMOKE, ["seed=7", "agent.lr=0.0003"])
    assert cfg["seed"] == 7 and cfg["agent"]["lr"] == 0.0003
    assert cfg["stage2_n_update"] < 100 and cfg["discount"] == 0.99  # smoke value, then a default


def test_task_overrides_apply_to_their_task_only(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task_overrides:\n  hammer:\n    nstep: 5\n    agent: {lr: 0.001}\n")
    assert load_config(path, ["task=hammer"])["nstep"] == 5
    assert load_config(path, ["task=hammer"])["agent"]["lr"] == 0.001
    assert load_config(path, ["task=door"])["nstep"] == 3
    assert load_config(path, ["task=hammer", "nstep=4"])["nstep"] == 4  # the command line wins


@pytest.mark.parametrize("override, key", [
    (["bogus=1"], "unknown config key 'bogus'"),
    (["agent.bogus=1"], "unknown config key 'agent.bogus'"),
    (["num_train_frames=-5"], "'num_train_frames'"),
    (["seeds=[]"], "'seeds'"),
    (["task=kitchen"], "'task'"),
    (["agent.lr=fast"], "'agent.lr'"),
    (["task_overrides.door.bogus=1"], "'task_overrides.door.bogus'"),
    (["device=tpu"], "'device'"),
    (["replay_device=gpu"], "'replay_device'"),
])
def test_bad_config_names_the_key(override, key):
    with pytest.raises(UserError, match=key.replace("[", r"\[")):
        load_config(SMOKE, override)


def test_cli_bad_config_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "vrl3.cli", "train", "--config", str(SMOKE), "bogus=1",
                             f"run_dir={tmp_path / 'run'}"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "bogus" in result.stderr
    assert not (tmp_path / "run").exists()


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(UserError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="is a folder"):
        load_config(tmp_path)


@pytest.mark.parametrize("text, overrides, message", [
    ("seed: 1\nagent: {lr: [1, 2\n", [], "at line 3, column 1"),  # the place of a YAML error, on one line
    ("seed: 1\n", ["seed=[1"], "cannot apply overrides"),
])
def test_unreadable_config_or_override_is_one_line(tmp_path, text, overrides, message):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(UserError, match=message) as error:
        load_config(tmp_path / "c.yaml", overrides)
    assert "\n" not in str(error.value)


def test_run_dir_below_a_file_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("mine")
    result = subprocess.run([sys.executable, "-m", "vrl3.cli", "train", "--config", str(SMOKE),
                             f"demos={tmp_path}", f"run_dir={tmp_path / 'afile' / 'run'}"], capture_output=True,
                            text=True)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "afile is a file" in result.stderr and (tmp_path / "afile").read_text() == "mine"


def test_stage_params_split():
    cfg = load_config(PAPER)
    s2, s3 = stage2_params(cfg), stage3_params(cfg)
    assert "num_train_frames" not in s2 and "std0" not in s2["agent"] and "cql_weight" in s2["agent"]
    assert s3["num_train_frames"] == 4_100_000 and s3["agent"]["std0"] == 0.01
    assert "tasks" not in s2 and "resources" not in s3


def test_changed_keys_and_the_resume_refusal_name_dotted_keys(tmp_path):
    from vrl3.train.stage_keys import changed_keys, check_params

    before = {"seed": 1, "agent": {"lr": 1e-4, "cql_weight": 1.0}, "tasks": ["door"]}
    now = {"seed": 1, "agent": {"lr": 2e-4}, "tasks": ["door", "pen"], "num_envs": 2}
    assert changed_keys(before, now) == ["agent.cql_weight", "agent.lr", "num_envs", "tasks"]
    assert changed_keys(before, before) == []
    stage2 = tmp_path / "run" / "stage2"
    stage2.mkdir(parents=True)
    (stage2 / "params.yaml").write_text(yaml.safe_dump(before))
    check_params(stage2 / "params.yaml", before)  # same values: resumes
    check_params(tmp_path / "run" / "params.yaml", now)  # not started yet
    with pytest.raises(UserError, match=r"stage2 was started with other values of agent.cql_weight, agent.lr, "
                                        r"num_envs, tasks: .*`vrl3 run-stage --stage 2`"):
        check_params(stage2 / "params.yaml", now)


@pytest.mark.parametrize("text, message", [
    ("seeds: [1, 2\n", "not valid YAML (expected ',' or ']', but got '<stream end>' at line 2, column 1)"),
    ("- seeds\n- tasks\n", "expected a mapping of config keys (key: value lines), got a list"),
    (bytes([0xff, 0xfe, 0x00]), "not a text file (invalid start byte at byte 0): give a YAML file to"),
])
def test_a_config_overlay_that_is_not_a_mapping_is_one_line_in_every_command(tmp_path, text, message):
    """`vrl3 train`, `vrl3 dvc-config` and `vrl3 report` read overlays with the same checks and words."""
    overlay = tmp_path / "overlay.yaml"
    overlay.write_bytes(text if isinstance(text, bytes) else text.encode())
    commands = [["train", "--config", str(overlay)], ["dvc-config", "--configfile", str(overlay)],
                ["report", "--runs", str(tmp_path), "--out", str(tmp_path / "report"), "--config", str(overlay)]]
    for command in commands:
        result = subprocess.run([sys.executable, "-m", "vrl3", *command], capture_output=True, text=True,
                                cwd=tmp_path)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, (command, result.stderr)
        assert f"{overlay}: {message}" in result.stderr, (command, result.stderr)
        if "mapping" in message:
            assert f"fix the file given to {command[command.index(str(overlay)) - 1]}" in result.stderr, result.stderr
    assert not (tmp_path / "report").exists() and not (tmp_path / "dvc.yaml").exists()


def test_an_empty_overlay_is_no_change_in_every_command(tmp_path):
    from vrl3.train.config import read_overlay

    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing to change\n")
    assert read_overlay(empty, "--config") == {}
    result = subprocess.run([sys.executable, "-m", "vrl3", "dvc-config", "--configfile", str(empty), "--out-dir",
                             str(tmp_path / "dvc")], capture_output=True, text=True)
    assert result.returncode == 0 and (tmp_path / "dvc" / "dvc.yaml").is_file(), result.stderr
    assert load_config(empty)["num_train_frames"] == load_config(REPO_ROOT / "config" / "config.yaml")[
        "num_train_frames"]


def test_flatten_keeps_empty_sections_and_check_params_names_the_stage_to_redo(tmp_path):
    from vrl3.train.stage_keys import changed_keys, check_params, flatten

    assert flatten({"a": {}, "b": {"c": 1}}) == {"a": {}, "b.c": 1}
    assert changed_keys({"task_overrides": {}}, {}) == ["task_overrides"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"num_envs": 1}))
    with pytest.raises(UserError, match=r"of num_envs: .*redo stage 3 on the finished stage 2 with "
                                        r"`vrl3 run-stage --stage 3`"):
        check_params(tmp_path / "params.yaml", {"num_envs": 2})  # one changed key is enough


def test_a_stage_started_before_shadow_size_existed_stays_current_at_the_old_value(tmp_path):
    from vrl3.train.stage_keys import check_params

    cfg = load_config(PAPER)
    assert cfg["shadow_size"] == 4096
    for params in (stage2_params, stage3_params):  # so params.yaml files and workflow stamps read as before
        assert "shadow_size" not in params(cfg) and params(cfg | {"shadow_size": 1024})["shadow_size"] == 1024
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(stage2_params({**cfg, "shadow_size": 4096})))
    check_params(tmp_path / "params.yaml", stage2_params(cfg))
    with pytest.raises(UserError, match="other values of shadow_size"):
        check_params(tmp_path / "params.yaml", stage2_params(cfg | {"shadow_size": 1024}))
