"""The DVC pipeline: generated from the same plan as the Snakefile, and `dvc repro` reruns exactly what changed."""

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))  # pytest's importlib mode does not put tests/ on sys.path
from workflow_support import BIN, REPO, TINY, env, make_workdir, run, shared_door_demos, snakemake  # noqa: E402

pytestmark = pytest.mark.slow

# below TINY: no stage-2 evaluation, 40 frames of stage 3 (one evaluation, 10 updates): each stage takes seconds
DVC_TINY = TINY | {"stage2_n_update": 2, "stage2_num_eval_episodes": 0, "num_train_frames": 40}


def dvc(repo: Path, *args: str):
    return run([str(BIN / "dvc"), *args], cwd=repo)


def dvc_repo(path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("DVC pipelines live in a git repository and git is not installed")
    path.mkdir(parents=True)
    run(["git", "init", "-q"], cwd=path)
    shutil.copy(REPO / ".gitignore", path / ".gitignore")  # results/ and data/ are git-ignored, as in the checkout
    dvc(path, "init", "-q")
    return path


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def normalized(command: str) -> str:
    """A command without its log redirection, the name of its config file, its thread count and repeated
    blanks."""
    command = re.sub(r"\s*\(?>{1,2}\s*\S+\.log.*$", "", command.strip()).strip("() ")
    command = re.sub(r"--config \S+", "--config CONFIG", command)
    command = re.sub(r"--workers \d+", "--workers N", command)  # Snakemake caps a job's threads at --cores
    return " ".join(command.split())


def snakemake_commands(workdir: Path, config_args: list[str]) -> set[str]:
    out = snakemake(workdir, "-n", "-p", "all", *config_args).stdout
    return {normalized(line.split("Shell command:", 1)[1]) for line in out.splitlines()
            if line.startswith("Shell command:") and "vrl3 " in line}


def dvc_commands(repo: Path) -> set[str]:
    """The commands as DVC itself renders them from dvc.yaml and params.yaml."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        return {normalized(stage.cmd) for stage in dvc_repo.index.stages}


def check_demos_command(command: str, scratch: Path) -> None:
    """A planned `vrl3 demos` command passes the CLI's own argument checks (a mirror a test names, which need not
    exist, replaced by an existing folder; --out by a new one)."""
    from vrl3.demos import cli

    words = shlex.split(command)
    assert words[:2] == ["vrl3", "demos"], command
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(words[2:])
    if args.mirror is not None:
        args.mirror = scratch
    args.out = scratch / "out"
    cli._check_arguments(args)  # raises UserError (exit 2) for what `vrl3 demos` refuses


def dvc_stage_names(repo: Path) -> set[str]:
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        return {stage.name for stage in dvc_repo.index.stages}


def test_committed_dvc_files_are_generated_from_the_paper_config():
    run([str(BIN / "vrl3"), "dvc-config", "--check"], cwd=REPO)


def dvc_config(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`vrl3 dvc-config` in a folder, its exit status and output kept (not raised)."""
    return subprocess.run([str(BIN / "vrl3"), "dvc-config", *args], cwd=folder, env=env(), capture_output=True,
                          text=True, timeout=300, check=False)


def one_line_error(result: subprocess.CompletedProcess, status: int = 2) -> str:
    assert result.returncode == status, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_a_hand_edit_of_params_yaml_is_never_dropped(tmp_path):
    """docs/workflow.md lets a user edit params.yaml for DVC: regenerating must not silently reset the value."""
    assert dvc_config(tmp_path).returncode == 0
    params, pipeline = tmp_path / "params.yaml", tmp_path / "dvc.yaml"
    assert "not Snakemake" in params.read_text()  # the header says what the doc says
    edited = re.sub(r"(?m)^num_train_frames: \d+$", "num_train_frames: 2000000", params.read_text())
    params.write_text(edited)
    dvc_yaml = pipeline.read_text()

    check = one_line_error(dvc_config(tmp_path, "--check"), status=1)
    assert "params.yaml (num_train_frames differs from the config) was edited" in check
    assert "out of date" not in check and "--force" in check

    refused = one_line_error(dvc_config(tmp_path))
    assert "nothing written" in refused and "num_train_frames" in refused and "--force" in refused
    assert params.read_text() == edited and pipeline.read_text() == dvc_yaml
    assert not list(tmp_path.glob(".*.tmp"))

    # carried into the config (here --set): the file is the config's again and is replaced, --check agrees
    assert dvc_config(tmp_path, "--set", "num_train_frames=2000000").returncode == 0
    assert yaml.safe_load(params.read_text())["num_train_frames"] == 2000000
    assert dvc_config(tmp_path, "--set", "num_train_frames=2000000", "--check").returncode == 0

    # --force discards an edit, by request only
    params.write_text(params.read_text().replace("num_train_frames: 2000000", "num_train_frames: 3000000"))
    edited = params.read_text()
    forced = dvc_config(tmp_path, "--force")
    assert forced.returncode == 0 and "discarded the edits: num_train_frames" in forced.stdout
    [kept] = tmp_path.glob("params.yaml.edited-*")  # nothing a user wrote is lost
    assert kept.read_text() == edited and f"kept as {kept.name}" in forced.stdout
    assert yaml.safe_load(params.read_text())["num_train_frames"] == 4100000
    assert dvc_config(tmp_path, "--check").returncode == 0


def test_check_tells_out_of_date_from_edited_and_dvc_exp_edits_are_kept(tmp_path):
    from dvc.utils.hydra import apply_overrides  # what `dvc exp run -S` does to params.yaml

    assert dvc_config(tmp_path, "--set", "seeds=[1]").returncode == 0
    stale = one_line_error(dvc_config(tmp_path, "--check"), status=1)  # the config changed, nobody edited a file
    assert "params.yaml, dvc.yaml out of date: run `vrl3 dvc-config`" in stale and "edited" not in stale
    assert dvc_config(tmp_path).returncode == 0  # files as written are replaced freely

    params = tmp_path / "params.yaml"
    apply_overrides(str(params), ["agent.lr=0.0005"])  # DVC rewrites the layout (null -> empty) and keeps comments
    edited = params.read_text()
    refused = one_line_error(dvc_config(tmp_path))
    assert "params.yaml (agent.lr differs from the config)" in refused and params.read_text() == edited
    assert dvc_config(tmp_path, "--set", "agent.lr=0.0005").returncode == 0  # same values, DVC's layout: replaced

    params.write_text(params.read_text() + "# why lr=5e-4: see notes\n")  # a comment of the user's own
    kept = one_line_error(dvc_config(tmp_path, "--set", "agent.lr=0.0005"))
    assert "comments of its own" in kept and params.read_text().endswith("see notes\n")

    (tmp_path / "dvc.yaml").write_text((tmp_path / "dvc.yaml").read_text() + "  mine:\n    cmd: echo hi\n")
    both = one_line_error(dvc_config(tmp_path, "--set", "agent.lr=0.0005", "--check"), status=1)
    assert "params.yaml (comments" in both and "dvc.yaml (stages.mine.cmd differs from the config)" in both


def test_params_yaml_without_a_digest_counts_as_edited(tmp_path):
    """A params.yaml of an older vrl3 dvc-config, or hand-written: replaced only where nothing in it would be lost."""
    assert dvc_config(tmp_path).returncode == 0
    params = tmp_path / "params.yaml"
    values = yaml.safe_load(params.read_text())
    params.write_text("# Generated by `vrl3 dvc-config` from the config files; edit those and rerun it.\n"
                      + yaml.safe_dump(values, sort_keys=False))
    assert dvc_config(tmp_path).returncode == 0  # the config's values: nothing to lose
    params.write_text(yaml.safe_dump(values | {"num_train_frames": 123}, sort_keys=False))
    assert "num_train_frames differs" in one_line_error(dvc_config(tmp_path))
    assert yaml.safe_load(params.read_text())["num_train_frames"] == 123


def test_out_dir_that_is_a_file_is_refused_in_one_line(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    for args in (["--out-dir", "afile"], ["--out-dir", "afile/sub"], ["--out-dir", "afile", "--check"]):
        error = one_line_error(dvc_config(tmp_path, *args))
        assert "--out-dir" in error and "afile is a file, not a folder" in error
    assert sorted(path.name for path in tmp_path.iterdir()) == ["afile"] and afile.read_text() == "mine\n"
    (tmp_path / "sub/params.yaml").mkdir(parents=True)
    error = one_line_error(dvc_config(tmp_path, "--out-dir", "sub"))
    assert "sub/params.yaml exists and is not a file" in error and not (tmp_path / "sub/dvc.yaml").exists()


VARIANTS = "run_variants=[vrl3,drqv2fd,stage1_random]"


@pytest.mark.parametrize("snakemake_args, dvc_args, n_runs", [
    ([], [], 12),
    (["--configfile", "config/smoke.yaml", "--config", "seeds=[1,2]", "demo_source={mirror: /m/hand_dapg}",
      "stage1={source: mirror, mirror: /m/models}"],
     ["--configfile", str(REPO / "config/smoke.yaml"), "--set", "seeds=[1,2]",
      "--set", "demo_source.mirror=/m/hand_dapg", "--set", "stage1.source=mirror",
      "--set", "stage1.mirror=/m/models"], 2),
    (["--config", VARIANTS, "tasks=[door,pen]", "seeds=[1,2]"],
     ["--set", VARIANTS, "--set", "tasks=[door,pen]", "--set", "seeds=[1,2]"], 12),  # variant x task x seed
    (["--config", "tasks=[door,kitchen-mixed]", "seeds=[1]"],  # door's demos from demo_source, kitchen's from Minari
     ["--set", "tasks=[door,kitchen-mixed]", "--set", "seeds=[1]"], 2),
    (["--config", "tasks=[door,kitchen-mixed]", "seeds=[1]", "demo_source={source: expert, mirror: /m/hand_dapg}"],
     ["--set", "tasks=[door,kitchen-mixed]", "--set", "seeds=[1]", "--set", "demo_source.source=expert",
      "--set", "demo_source.mirror=/m/hand_dapg"], 2),  # expert rollouts: no --replay (kitchen's keeps it)
    (["--config", "stage1={source: pretrain, imagenet: /m/imagenet, epochs: 2}"],  # one command: pretrain --publish
     ["--set", "stage1.source=pretrain", "--set", "stage1.imagenet=/m/imagenet", "--set", "stage1.epochs=2"], 12),
])
def test_dvc_and_snakemake_plan_the_same_runs_commands_and_config(tmp_path, snakemake_args, dvc_args, n_runs):
    workdir = make_workdir(tmp_path / "snakemake")
    repo = dvc_repo(tmp_path / "dvc")
    run([str(BIN / "vrl3"), "dvc-config", *dvc_args], cwd=repo)
    ours, theirs = snakemake_commands(workdir, snakemake_args), dvc_commands(repo)
    assert ours == theirs
    for command in ours:
        if command.startswith("vrl3 demos "):
            check_demos_command(command, tmp_path)
        assert " && " not in command, command  # each job is one vrl3 command
    if "stage1.source=pretrain" in dvc_args:
        assert any(command.startswith("vrl3 pretrain ") and "--publish data/stage1/resnet6_32channel_checkpoint"
                   in command for command in ours), ours
    stage3 = sorted(command for command in ours if "--stage 3" in command)
    assert len(stage3) == n_runs
    if VARIANTS in dvc_args:
        assert {name for name in dvc_stage_names(repo) if name.startswith("stage3@")} == {
            f"stage3@{v}-{t}-seed{s}" for v in ("vrl3", "drqv2fd", "stage1_random") for t in ("door", "pen")
            for s in (1, 2)}
    merged = yaml.safe_load(next((workdir / ".snakemake/vrl3-configs").glob("config-*.yaml")).read_text())
    assert yaml.safe_load((repo / "params.yaml").read_text()) == merged


def test_stage_params_are_the_keys_each_stage_reads(tmp_path):
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    keys2, keys3 = set(pipeline["stage2"]["do"]["params"]), set(pipeline["stage3"]["do"]["params"])
    assert {"stage2_n_update", "agent.lr", "agent.cql_weight", "batch_size", "task_overrides"} <= keys2
    assert not {"num_train_frames", "agent.std0", "agent.update_every_steps", "task", "seed", "run_dir"} & keys2
    assert keys2 < keys3 and {"num_train_frames", "agent.std0", "eval_every_frames"} <= keys3
    assert not {"seeds", "resources", "slurm", "device", "demos"} & keys3


def test_demos_stage_has_the_options_and_params_its_source_reads(tmp_path):
    def demos_stage(*sets: str) -> dict:
        assert dvc_config(tmp_path, "--force", *(f"--set={item}" for item in sets)).returncode == 0
        return yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"]["demos"]["do"]

    human = demos_stage()
    assert " --replay ${demo_source.replay} " in human["cmd"] and "--mirror" not in human["cmd"]
    assert human["params"] == ["demo_source.source", "demo_source.episodes", "demo_source.replay", "image_size",
                               "shadow_size"]
    # the runs render with both: the demos must too
    assert " --image-size ${image_size} --shadow-size ${shadow_size} " in human["cmd"]
    expert = demos_stage("demo_source.source=expert", "demo_source.mirror=/m/hand_dapg")
    assert "--replay" not in expert["cmd"] and " --mirror ${demo_source.mirror} " in expert["cmd"]
    # replay is not read, mirror is where
    assert expert["params"] == ["demo_source.source", "demo_source.episodes", "image_size", "shadow_size"]
    minari = demos_stage("demo_source.source=minari", "demo_source.replay=states")
    assert " --replay ${demo_source.replay} " in minari["cmd"] and "--mirror" not in minari["cmd"]


@pytest.mark.parametrize("sets, key", [
    (["demo_source.source=minari", "demo_source.mirror=/m/hand_dapg"], "demo_source.mirror=/m/hand_dapg"),
    (["demo_source.source=expert", "demo_source.replay=states"], "demo_source.replay=states"),
])
def test_a_demo_source_key_its_source_does_not_read_is_refused(tmp_path, sets, key):
    error = one_line_error(dvc_config(tmp_path, *(f"--set={item}" for item in sets)))
    assert f"config key {key} does not apply to" in error and "the default" in error
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("sets, message", [
    (["task=pen"], "config key task given with --set names one run, and the workflow would ignore it: set tasks="),
    (["stage1_checkpoint=/m/enc.pth"], "config key stage1_checkpoint given with --set names one run"),
    (["seed=3"], "config key seed given with --set names one run, and the workflow would ignore it: set seeds="),
    (["variant=no_safe_q"], "config key variant given with --set names one run"),
    (["demos=/m/demos"], "config key demos given with --set names one run"),
    (["run_dir=/m/run"], "config key run_dir given with --set names one run"),
    (["stage1.source=mirror"], "stage1.source is mirror but stage1.mirror is null"),
    (["stage1.source=pretrain"], "stage1.source is pretrain but stage1.imagenet is null"),
    # a task's demos are rendered once for all its runs: a run may not render otherwise
    (["task_overrides={door: {shadow_size: 512}}"], "config key shadow_size=512 (run vrl3/door/seed1, from its "
                                                     "variant or task_overrides) differs from the shadow_size=4096"),
    (["variants={vrl3: {image_size: 64}}"], "config key image_size=64 (run vrl3/door/seed1"),
    (["seeds=[1,"], "--set seeds=[1,: cannot read the values"),
])
def test_a_set_the_pipeline_would_ignore_or_cannot_run_is_refused(tmp_path, sets, message):
    error = one_line_error(dvc_config(tmp_path, *(f"--set={item}" for item in sets)))
    assert message in error
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def repo(tmp_path_factory, mirror) -> Path:
    """A git + DVC repository with the tiny smoke pipeline; demos pre-rendered and committed to DVC."""
    base = tmp_path_factory.getbasetemp()
    repo = dvc_repo(tmp_path_factory.mktemp("dvc") / "repo")
    (repo / "tiny.yaml").write_text(yaml.safe_dump(DVC_TINY))
    run([str(BIN / "vrl3"), "dvc-config", "--configfile", str(REPO / "config/smoke.yaml"), "--configfile", "tiny.yaml",
         "--set", f"demo_source.mirror={mirror}"], cwd=repo)
    shutil.copytree(shared_door_demos(base, mirror), repo / "data/demos/door")
    dvc(repo, "commit", "--force", "demos@door")  # rendering is tested by the Snakemake run; here it costs time
    return repo


def set_param(repo: Path, key: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    *parents, last = key.split(".")
    target = params
    for name in parents:
        target = target[name]
    target[last] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_dvc_repro_reruns_exactly_what_changed(repo):
    first = dvc(repo, "repro")
    assert ran_stages(first.stdout) == {"stage2@vrl3-door-seed1", "stage3@vrl3-door-seed1", "report"}
    assert "up to date" in dvc(repo, "status").stdout

    set_param(repo, "agent.std0", 0.05)  # stage 3 only
    second = dvc(repo, "repro")
    assert ran_stages(second.stdout) == {"stage3@vrl3-door-seed1", "report"}
    changed = "stage 3 of results/smoke/runs/vrl3/door/seed1: parameters or inputs changed"
    assert changed in second.stdout + second.stderr

    set_param(repo, "stage2_n_update", 3)  # stage 2, hence stage 3
    third = dvc(repo, "repro")
    assert ran_stages(third.stdout) == {"stage2@vrl3-door-seed1", "stage3@vrl3-door-seed1", "report"}

    assert ran_stages(dvc(repo, "repro").stdout) == set()
    run_dir = repo / "results/smoke/runs/vrl3/door/seed1"
    assert yaml.safe_load((run_dir / "params.yaml").read_text())["agent"]["std0"] == 0.05
    assert yaml.safe_load((run_dir / "stage2/params.yaml").read_text())["stage2_n_update"] == 3

    metrics = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    shown = json.dumps(metrics)
    assert "final_success_rate" in shown and "success_rate_1m" in shown
    assert (repo / "results/smoke/figures/success_rate_door.png").exists()
