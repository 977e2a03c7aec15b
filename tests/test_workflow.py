"""The Snakemake workflow: DAG of the paper config, config errors, lint, conda env, and one tiny run end to end that
is interrupted in stage 3 and resumed, then asked to rerun after changed keys."""

import csv
import json
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))  # pytest's importlib mode does not put tests/ on sys.path
from process_support import signal_group_when  # noqa: E402
from workflow_support import BIN, REPO, TINY, env, job_counts, make_workdir, mirror_config, snakemake  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return make_workdir(tmp_path_factory.mktemp("snakemake") / "wd", overlay=TINY)


def test_paper_config_dry_run_lists_every_run(workdir):
    counts = job_counts(snakemake(workdir, "-n", "all").stdout)
    assert counts == {"demos": 4, "stage1_encoder": 1, "stage2": 12, "stage3": 12, "report": 1,
                      "resolved_config": 1, "all": 1}
    assert not (workdir / "results").exists() and not (workdir / "data").exists()


def test_dry_run_shows_the_commands_and_resources(workdir):
    out = snakemake(workdir, "-n", "-p", "all", "--config", "tasks=[relocate]", "seeds=[2]",
                    "slurm={partition: gpu, account: lab}").stdout
    assert ("vrl3 run-stage --stage 3 --config .snakemake/vrl3-configs/config-" in out
            and " variant=vrl3 task=relocate seed=2 demos=data/demos/relocate run_dir=results/runs/vrl3/relocate/seed2 "
                "stage1_checkpoint=data/stage1/resnet6_32channel_checkpoint.pth.tar" in out)
    assert "vrl3 encoder --source fetch --arch resnet6_32channel  --out data/stage1/" in out
    assert "vrl3 report --runs results/runs --out results --config .snakemake/vrl3-configs/config-" in out
    stage3 = out.split("rule stage3:", 1)[1].split("\n\n", 1)[0]
    for resource in ("runtime=1440", "mem_mb=32000", "gpu=1", "slurm_partition=gpu", "slurm_account=lab"):
        assert resource in stage3, resource
    demos = out.split("rule demos:", 1)[1].split("\n\n", 1)[0]
    assert "gpu=" not in demos and "runtime=60" in demos


VARIANTS = ["vrl3", "drqv2fd", "stage1_random"]


def test_three_variants_dry_run_lists_task_x_seed_x_variant(workdir):
    out = snakemake(workdir, "-n", "-p", "all", "--config", f"run_variants=[{','.join(VARIANTS)}]",
                    "tasks=[door,pen]", "seeds=[1,2]").stdout
    assert job_counts(out) == {"demos": 2, "stage1_encoder": 1, "stage2": 12, "stage3": 12, "report": 1,
                               "resolved_config": 1, "all": 1}
    stage3 = [line for line in out.splitlines() if "vrl3 run-stage --stage 3" in line]
    assert sorted(re.search(r"run_dir=(\S+)", line).group(1) for line in stage3) == sorted(
        f"results/runs/{v}/{t}/seed{s}" for v in VARIANTS for t in ("door", "pen") for s in (1, 2))
    drq = next(line for line in stage3 if "run_dir=results/runs/drqv2fd/pen/seed2 " in line)
    assert (" stage1.source=none stage2_n_update=0 agent.safe_q_target_factor=1 variant=drqv2fd task=pen seed=2 "
            in drq and "stage1_checkpoint=null > results/logs/drqv2fd/pen/seed2/stage3.log 2>&1 " in drq)
    vrl3 = next(line for line in stage3 if "run_dir=results/runs/vrl3/pen/seed2 " in line)
    assert "--config .snakemake/vrl3-configs/config-" in vrl3 and " variant=vrl3 task=pen seed=2 " in vrl3
    assert "stage1_checkpoint=data/stage1/resnet6_32channel_checkpoint.pth.tar" in vrl3


def test_a_bad_variant_stops_before_any_job_naming_variant_and_key(workdir):
    result = snakemake(workdir, "-n", "all", "--config", "variants={mine: {agent: {lrr: 1}}}", check=False)
    assert result.returncode != 0
    assert "variant 'mine': override key 'agent.lrr' does not exist" in result.stdout + result.stderr


def test_the_written_config_is_what_vrl3_train_resolves(workdir):
    snakemake(workdir, "-n", "all", "--configfile", "config/smoke.yaml", "--config", "num_train_frames=800")
    written = sorted((workdir / ".snakemake" / "vrl3-configs").glob("config-*.yaml"))
    merged = [yaml.safe_load(path.read_text()) for path in written]
    smoke = next(config for config in merged if config["num_train_frames"] == 800)
    assert smoke["tasks"] == ["door"] and smoke["agent"]["hidden_dim"] == 256  # smoke overlay
    assert smoke["agent"]["lr"] == 0.0001 and smoke["discount"] == 0.99  # paper defaults kept


@pytest.mark.parametrize("args, key", [
    (["--config", "foo=1"], "'foo'"),
    (["--config", "agent={lrr: 0.1}"], "'agent.lrr'"),
    (["--config", "num_train_frames=-5"], "'num_train_frames'"),
    (["--config", "seeds=[]"], "'seeds'"),
    (["--config", "tasks=[door, kitchen]"], "'tasks.1'"),
    (["--configfile", "config/smoke.yaml", "--config", "num_demo=30"], "num_demo=30"),  # 3 episodes rendered
    (["--config", "data_dir=Snakefile"], "data_dir"),
    # keys the source does not read, which `vrl3 demos` would refuse (--mirror with minari, --replay with expert)
    (["--config", "demo_source={source: minari, mirror: /m/hand_dapg}"], "demo_source.mirror=/m/hand_dapg"),
    (["--config", "demo_source={source: expert, replay: states}"], "demo_source.replay=states"),
    # more episodes than the Minari dataset holds (kitchen-complete: 19; the paper config renders 25 Adroit demos)
    (["--config", "tasks=[door,kitchen-complete]"], "demo_source.episodes=25 is more than the 19 episodes"),
    (["--config", "tasks=door"], "'tasks': 'door' is not of type 'array': write a YAML list, e.g. [a, b]"),
    # one run's key, which the workflow sets per run: refused, not silently ignored
    (["--config", "task=hammer"], "config key task given with --config names one run"),
    (["--config", "stage1_checkpoint=/m/enc.pth"], "config key stage1_checkpoint given with --config names one run"),
])
def test_bad_config_stops_before_any_job_naming_the_key(workdir, args, key):
    result = snakemake(workdir, "all", "--cores", "1", *args, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    message = next(line for line in output.splitlines() if "config key" in line)
    assert key in message, output
    assert message.startswith("Error: ") and "File \"" not in output and "WorkflowError" not in output, output
    assert not (workdir / "results").exists()


def test_expert_demos_are_rendered_by_the_planned_command(tmp_path, mirror):
    """`demo_source.source: expert` (with replay at its default, which expert rollouts do not read): the rule's
    command leaves --replay out, and `vrl3 demos` runs it."""
    workdir = make_workdir(tmp_path / "wd")
    config = ["--configfile", "config/smoke.yaml", "--config", "num_demo=1",
              f"demo_source={{source: expert, episodes: 1, mirror: {mirror}}}"]
    planned = snakemake(workdir, "-n", "-p", "data/demos/door", *config).stdout
    [command] = [line for line in planned.splitlines() if line.startswith("Shell command: vrl3 demos")]
    assert "--source expert --episodes 1 --mirror" in command and "--replay" not in command, command
    snakemake(workdir, "--cores", "1", "data/demos/door", *config)
    manifest = json.loads((workdir / "data/demos/door/manifest.json").read_text())
    assert manifest["source"] == "expert" and manifest["replay"] is None and len(manifest["episodes"]) == 1


def test_a_failing_job_shows_its_error_on_the_terminal(workdir, tmp_path):
    """A job's error is in its log; the terminal gets the log's last lines too, not only the log's name."""
    result = snakemake(workdir, "--cores", "1", "data/demos/door", "--config",
                       f"demo_source={{mirror: {tmp_path / 'no-such-mirror'}}}", check=False)
    assert result.returncode != 0
    assert f"--mirror {tmp_path / 'no-such-mirror'} is not a folder" in result.stderr, result.stderr
    assert not (workdir / "data" / "demos" / "door").exists()


def test_stage1_mirror_without_a_folder_is_refused(workdir):
    result = snakemake(workdir, "-n", "all", "--config", "stage1={source: mirror}", check=False)
    assert result.returncode != 0 and "stage1.mirror is null" in result.stdout + result.stderr


def test_lint_is_clean(workdir):
    result = snakemake(workdir, "--lint", check=False)
    assert result.returncode == 0 and "Congratulations" in result.stdout + result.stderr, result.stdout


def test_conda_env_pins_match_pyproject():
    pins = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])
    spec = yaml.safe_load((REPO / "envs" / "vrl3.yaml").read_text())
    pip = next(item["pip"] for item in spec["dependencies"] if isinstance(item, dict))
    assert set(pip) == pins
    python = next(item for item in spec["dependencies"] if isinstance(item, str) and item.startswith("python="))
    assert tuple(map(int, python.split("=")[1].split("."))) >= (3, 10)


def test_profiles_are_valid_snakemake_settings():
    slurm = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    assert slurm["executor"] == "slurm" and slurm["retries"] >= 1 and slurm["rerun-incomplete"] is True
    local = yaml.safe_load((REPO / "workflow/profiles/local/config.yaml").read_text())
    assert local["cores"] >= 1


# ---------------------------------------------------------------- one tiny run, end to end
def eval_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def as_from_a_terminal() -> None:
    """The run starts with SIGINT's default action and unblocked, as from an interactive shell (a disposition or
    mask inherited from the test process would otherwise decide whether Ctrl-C reaches it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def interrupt_mid_stage3(workdir: Path, args: list[str], run_dir: Path, signal_number: int) -> str:
    """Start the workflow, send `signal_number` to its whole process group once stage 3 has written two
    evaluations, wait until every process of it is gone; returns what it printed."""
    process = subprocess.Popen([str(BIN / "snakemake"), *args], cwd=workdir, env=env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True,
                               preexec_fn=as_from_a_terminal)
    # SIGINT: what Ctrl-C does; SIGKILL: a preemption or the OOM killer
    printed = signal_group_when(process, lambda: (run_dir / "eval.csv").exists()
                                and len(eval_rows(run_dir / "eval.csv")) >= 2, signal_number)
    assert process.returncode != 0, f"signal {signal_number} did not stop the run:\n{printed[-3000:]}"
    return printed


@pytest.fixture(scope="module")
def finished(workdir, mirror):
    """The smoke workflow (+ tiny budgets) interrupted with SIGINT mid stage 3, then rerun to the end."""
    args = ["all", "--cores", "2", "--configfile", "config/smoke.yaml", "tiny.yaml", "--config", mirror_config(mirror)]
    run_dir = workdir / "results/smoke/runs/vrl3/door/seed1"
    first = interrupt_mid_stage3(workdir, args, run_dir, signal.SIGINT)
    interrupted_log = (workdir / "results/smoke/logs/vrl3/door/seed1/stage3.log").read_text()
    result = snakemake(workdir, *args, "--rerun-incomplete")
    return {"workdir": workdir, "run_dir": run_dir, "args": args, "first": first, "interrupted": interrupted_log,
            "second": result.stdout + result.stderr}


def test_interrupted_run_resumes_from_its_checkpoint(finished):
    stage3_log = (finished["workdir"] / "results/smoke/logs/vrl3/door/seed1/stage3.log").read_text()
    assert "run finished" not in finished["interrupted"]  # the first attempt really stopped mid stage 3
    assert "stage 3 of results/smoke/runs/vrl3/door/seed1: resuming" in stage3_log
    assert "resuming results/smoke/runs/vrl3/door/seed1 at stage 3 frame 200" in stage3_log
    frames = [int(row["frame"]) for row in eval_rows(finished["run_dir"] / "eval.csv")]
    assert frames == [0, 200, 400]  # one row per evaluation: none lost, none repeated
    assert "rule stage2" not in finished["second"] and "rule demos" not in finished["second"]


def test_a_killed_workflow_resumes_with_rerun_incomplete_and_writes_the_same_evaluations(finished,
                                                                                          tmp_path_factory):
    """SIGKILL leaves Snakemake no time to clean up: its lock stays; after `--unlock`, the rerun must resume the
    run from its checkpoint (not start it over) and log the same evaluations as the SIGINT-interrupted run."""
    workdir = make_workdir(tmp_path_factory.mktemp("killed") / "wd", overlay=TINY)
    run_dir = workdir / "results/smoke/runs/vrl3/door/seed1"
    interrupt_mid_stage3(workdir, finished["args"], run_dir, signal.SIGKILL)
    locked = snakemake(workdir, *finished["args"], check=False)  # Snakemake's lock outlived it: docs/workflow.md
    assert locked.returncode != 0 and "--unlock" in locked.stderr
    snakemake(workdir, *finished["args"], "--unlock")
    snakemake(workdir, *finished["args"], "--rerun-incomplete")
    assert "resuming results/smoke/runs/vrl3/door/seed1 at stage 3 frame" in (
        workdir / "results/smoke/logs/vrl3/door/seed1/stage3.log").read_text()
    columns = ["episode", "episode_length", "episode_reward", "frame", "step", "success_rate"]  # not total_time
    killed, interrupted = eval_rows(run_dir / "eval.csv"), eval_rows(finished["run_dir"] / "eval.csv")
    assert [[row[c] for c in columns] for row in killed] == [[row[c] for c in columns] for row in interrupted]


def test_end_to_end_outputs(finished):
    results = finished["workdir"] / "results/smoke"
    figures = {path.name for path in (results / "figures").iterdir()}
    assert {"success_rate_door.png", "success_rate_aggregate.png"} <= figures
    assert (results / "tables/success_at_budgets.csv").exists()
    assert "door" in (results / "report.md").read_text()
    rows = eval_rows(finished["run_dir"] / "eval.csv")
    metrics = json.loads((finished["run_dir"] / "metrics.json").read_text())
    assert metrics["frames"] == int(rows[-1]["frame"]) and metrics["evaluations"] == len(rows)
    assert metrics["final_success_rate"] == float(rows[-1]["success_rate"])
    successes = [float(row["success_rate"]) for row in rows]
    assert metrics["mean_success_rate_to_1m"] == pytest.approx(sum(successes) / len(successes))
    stage2 = json.loads((finished["run_dir"] / "stage2/metrics.json").read_text())
    assert stage2["last_eval_update"] == 2  # evaluations at updates 0 and 2 of 4
    config = yaml.safe_load((results / "config.yaml").read_text())
    assert config["num_train_frames"] == 600 and config["demo_source"]["episodes"] == 1
    demos = json.loads((finished["workdir"] / "data/demos/door/manifest.json").read_text())
    assert demos["task"] == "door" and len(list((finished["workdir"] / "data/demos/door/episodes").iterdir())) == 1


@pytest.mark.parametrize("config, rerun", [
    (["MIRROR"], set()),
    (["demo_source={mirror: /moved/hand_dapg}"], set()),  # where the inputs lie is not what they are
    (["MIRROR", "num_train_frames=800"], {"stage3", "report"}),
    (["MIRROR", "agent={std0: 0.05}"], {"stage3", "report"}),
    (["MIRROR", "stage2_n_update=6"], {"stage2", "stage3", "report"}),
    (["MIRROR", "agent={cql_weight: 2}"], {"stage2", "stage3", "report"}),
    (["MIRROR", "demo_source={episodes: 2}"], {"demos", "stage2", "stage3", "report"}),
    (["MIRROR", "variants={extra: {agent: {lr: 0.001}}}"], set()),  # a variant that does not run changes nothing
    (["MIRROR", "run_variants=[vrl3,extra]", "variants={extra: {agent: {lr: 0.001}}}"],
     {"stage2", "stage3", "report"}),  # only the new variant's jobs (and the report) run
])
def test_changed_keys_rerun_exactly_the_stages_that_read_them(finished, mirror, config, rerun):
    config = [mirror_config(mirror) if item == "MIRROR" else item for item in config]
    args = ["all", "--cores", "2", "--configfile", "config/smoke.yaml", "tiny.yaml", "--config", *config]
    counts = job_counts(snakemake(finished["workdir"], "-n", *args).stdout)
    # `all` and the copy of the merged config follow any change; they cost nothing
    assert set(counts) - {"all", "resolved_config"} == rerun


def test_rerunning_a_finished_stage_keeps_its_state(finished):
    """After a failed stage-3 job (no metrics file, no report) Snakemake reruns it: it resumes, nothing is lost."""
    before = (finished["run_dir"] / "eval.csv").read_bytes()
    (finished["run_dir"] / "metrics.json").unlink()
    shutil.rmtree(finished["workdir"] / "results/smoke/figures")
    snakemake(finished["workdir"], *finished["args"])
    assert (finished["run_dir"] / "eval.csv").read_bytes() == before
    assert (finished["run_dir"] / "metrics.json").exists()
    log = (finished["workdir"] / "results/smoke/logs/vrl3/door/seed1/stage3.log").read_text()
    assert "resuming (same parameters" in log and "run finished" in log


def test_html_report_gathers_figures_tables_and_config(finished, tmp_path):
    report = tmp_path / "report.html"
    snakemake(finished["workdir"], "--report", str(report), *finished["args"][3:])
    html = report.read_text(errors="replace")
    for name in ("success_rate_door.png", "success_at_budgets.csv", "config.yaml"):
        assert name in html, name
