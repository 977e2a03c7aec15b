"""The SLURM profile against a real one-node SLURM that the test starts itself (Debian's slurm-wlm and munge, as
root, as docs/workflow.md describes). The node advertises one fake GPU (gres on /dev/null), so jobs that ask for a
GPU are scheduled and run on the CPU: the test checks what SLURM was asked for, and that the jobs did their work."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))  # pytest's importlib mode does not put tests/ on sys.path
from workflow_support import TINY, make_workdir, mirror_config, shared_door_demos, snakemake  # noqa: E402

pytestmark = pytest.mark.slow

TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "srun")
# srun inside a job (the executor plugin's job step) drops SLURM_CONF, so the config must be at the default path
SLURM_CONF = Path("/etc/slurm/slurm.conf")
MARK = "# written by vrl3-repro tests/test_slurm.py; removed when the test ends"
MUNGE_PID = Path("/run/munge/munged.pid")


def _install_or_skip() -> None:
    if all(shutil.which(tool) for tool in TOOLS):
        return
    if not shutil.which("apt-get"):
        pytest.skip(f"SLURM tools missing ({', '.join(t for t in TOOLS if not shutil.which(t))}) and no apt-get "
                    "to install slurm-wlm and munge")
    result = subprocess.run(["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"], capture_output=True, text=True,
                            env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"}, timeout=600)
    if result.returncode != 0 or not all(shutil.which(tool) for tool in TOOLS):
        pytest.skip(f"could not install slurm-wlm and munge with apt-get: {result.stderr.strip()[-300:]}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(predicate, what: str, seconds: float = 30.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _stop(pid: int) -> None:
    if _alive(pid):
        os.kill(pid, 15)
        try:
            _wait_for(lambda: not _alive(pid), f"process {pid} to stop", 20)
        except AssertionError:
            os.kill(pid, 9)


def _why(error: Exception, folder: Path) -> str:
    """The failed command's stderr, or the last lines of the daemons' logs."""
    if isinstance(error, subprocess.CalledProcessError):
        detail = (error.stderr or b"").decode(errors="replace").strip() or f"exit {error.returncode}"
        return f"{Path(error.cmd[0]).name}: {detail.splitlines()[-1] if detail else ''}"
    logs = [log for log in (folder / "slurmctld.log", folder / "slurmd.log") if log.exists()]
    tail = " | ".join(line for log in logs for line in log.read_text(errors="replace").splitlines()[-2:])
    return f"{error}; {tail}" if tail else str(error)


def _slurm_conf(folder: Path, host: str) -> str:
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return "\n".join([
        MARK, "ClusterName=vrl3test", f"SlurmctldHost={host}", "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", "MpiDefault=none", f"StateSaveLocation={folder}/state",
        f"SlurmdSpoolDir={folder}/spool", f"SlurmctldPidFile={folder}/slurmctld.pid",
        f"SlurmdPidFile={folder}/slurmd.pid", f"SlurmctldLogFile={folder}/slurmctld.log",
        f"SlurmdLogFile={folder}/slurmd.log", "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        "ReturnToService=2", "MinJobAge=3600", "GresTypes=gpu",
        f"NodeName={host} CPUs={os.cpu_count()} RealMemory={min(20000, int(memory_mb * 0.9))} Gres=gpu:1 "
        "State=UNKNOWN",
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP", ""])


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("starting munged, slurmctld and slurmd needs root")
    _install_or_skip()
    if SLURM_CONF.exists() and MARK not in SLURM_CONF.read_text():
        pytest.skip(f"{SLURM_CONF} exists: this machine has its own SLURM, which the test will not touch")
    if subprocess.run(["pgrep", "-x", "slurmctld"], capture_output=True).returncode == 0:
        pytest.skip("a slurmctld is already running on this machine")
    folder = tmp_path_factory.mktemp("slurm")
    for name in ("state", "spool"):
        (folder / name).mkdir()
    host = socket.gethostname().split(".")[0]
    started: list[int] = []
    written = [SLURM_CONF, SLURM_CONF.with_name("gres.conf")]
    env = os.environ | {"SLURM_CONF": str(SLURM_CONF)}
    try:
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            key.write_bytes(os.urandom(1024))
            key.chmod(0o400)
            shutil.chown(key, "munge", "munge")
        try:  # a machine where the daemons cannot run (no network namespace, a broken munge, ...) skips
            MUNGE_PID.parent.mkdir(exist_ok=True)
            if not (MUNGE_PID.exists() and _alive(int(MUNGE_PID.read_text()))):
                subprocess.run(["munged", "--force"], check=True, capture_output=True)
                started.append(int(_wait_for(lambda: MUNGE_PID.exists() and MUNGE_PID.read_text().strip(), "munged")))
            SLURM_CONF.parent.mkdir(exist_ok=True)
            SLURM_CONF.write_text(_slurm_conf(folder, host))
            written[1].write_text(f"{MARK}\nNodeName={host} Name=gpu Count=1 File=/dev/null\n")
            for daemon in ("slurmctld", "slurmd"):
                subprocess.run([daemon], check=True, env=env, capture_output=True)
                pid_file = folder / f"{daemon}.pid"
                started.append(int(_wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), daemon)))
            _wait_for(lambda: "idle" in subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True,
                                                       text=True).stdout, "the node to be idle")
        except (subprocess.CalledProcessError, AssertionError) as error:
            pytest.skip(f"a local SLURM could not be started here ({_why(error, folder)})")
        yield {"env": env, "folder": folder}
    finally:
        for pid in reversed(started):
            _stop(pid)
        for path in written:
            if path.exists() and MARK in path.read_text():
                path.unlink()


def scontrol_job(job_id: str, env: dict) -> dict[str, str]:
    text = subprocess.run(["scontrol", "show", "job", job_id], env=env, capture_output=True, text=True,
                          check=True).stdout
    return dict(re.findall(r"(\w+)=(\S*)", text))


def test_profile_runs_the_workflow_on_slurm_asking_for_the_configured_resources(slurm, mirror, tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("slurm-wf") / "wd", overlay=TINY | {
        "num_train_frames": 40, "stage2_num_eval_episodes": 0,
        "slurm": {"partition": "debug", "account": None},
        "resources": {"stage2": {"cpus": 1, "mem_mb": 2000, "runtime": 10, "gpus": 1},
                      "stage3": {"cpus": 2, "mem_mb": 3000, "runtime": 15, "gpus": 1},
                      "report": {"cpus": 1, "mem_mb": 1000, "runtime": 5, "gpus": 0}}})
    # rendering the demos is tested locally; a copy saves a job here (Snakemake takes it as made)
    shutil.copytree(shared_door_demos(tmp_path_factory.getbasetemp(), mirror), workdir / "data/demos/door")
    os.environ["SLURM_CONF"] = str(SLURM_CONF)  # snakemake (sbatch, squeue) runs with the test's environment
    try:
        result = snakemake(workdir, "--profile", "workflow/profiles/slurm", "all", "--configfile", "config/smoke.yaml",
                           "tiny.yaml", "--config", mirror_config(mirror), "--slurm-status-command", "squeue",
                           "--slurm-init-seconds-before-status-checks", "1", timeout=900)
    finally:
        os.environ.pop("SLURM_CONF")
    output = result.stdout + result.stderr
    submitted = dict((rule, job) for job, rule in
                     re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/", output))
    assert set(submitted) == {"stage2", "stage3", "report"}, output[-3000:]

    stage3 = scontrol_job(submitted["stage3"], slurm["env"])
    assert stage3["JobState"] == "COMPLETED" and stage3["Partition"] == "debug"
    assert stage3["TresPerJob"] == "gres:gpu:1" and stage3["TimeLimit"] == "00:15:00"
    assert stage3["MinMemoryNode"] == "3000M" and stage3["NumCPUs"] == "2"
    stage2 = scontrol_job(submitted["stage2"], slurm["env"])
    assert stage2["TresPerJob"] == "gres:gpu:1" and stage2["TimeLimit"] == "00:10:00"
    report = scontrol_job(submitted["report"], slurm["env"])
    assert "gpu" not in report.get("TresPerJob", "") and report["TimeLimit"] == "00:05:00"

    run_dir = workdir / "results/smoke/runs/vrl3/door/seed1"
    assert (run_dir / "metrics.json").exists() and (run_dir / "eval.csv").exists()
    assert (workdir / "results/smoke/figures/success_rate_door.png").exists()
    assert yaml.safe_load((workdir / "results/smoke/config.yaml").read_text())["slurm"]["partition"] == "debug"
