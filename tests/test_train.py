"""`vrl3 train` end to end at tiny size: real rendering, real demos, real torch updates; kill and resume."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import REPO_ROOT

SMOKE = REPO_ROOT / "config" / "smoke.yaml"
# smaller than the smoke config: 3 stage-3 episodes, evaluations at frames 0, 200, 400, 600
TINY = ["stage2_n_update=6", "stage2_eval_every_frames=3", "stage2_num_eval_episodes=1", "num_train_frames=600",
        "eval_every_frames=200", "num_eval_episodes=1", "train_log_every_steps=50", "checkpoint_every_frames=200",
        "batch_size=8", "agent.hidden_dim=32", "num_demo=2", "device=cpu",
        "replay_buffer_size=450"]  # below the 600 demo transitions: demos are evicted (FIFO) and resumes must skip them
TIME_COLUMNS = ["total_time", "fps"]


def train_command(run_dir: Path, demos: Path) -> list[str]:
    return [sys.executable, "-m", "vrl3.cli", "train", "--config", str(SMOKE), *TINY, f"demos={demos}",
            f"run_dir={run_dir}"]


@pytest.fixture(scope="session")
def full_run(door_demos, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("full") / "run"
    subprocess.run(train_command(run_dir, door_demos), check=True, capture_output=True)
    return run_dir


def without_time(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    return frame.drop(columns=[c for c in TIME_COLUMNS if c in frame.columns])


def test_run_writes_the_official_logs(full_run):
    evals = pd.read_csv(full_run / "eval.csv")
    assert list(evals.columns) == ["episode", "episode_length", "episode_reward", "frame", "step", "success_rate",
                                   "total_time", "variant"]
    assert set(evals["variant"]) == {"vrl3"}
    stage2_train = pd.read_csv(full_run / "stage2" / "train.csv")  # ours: stage-2 updates, a row at the boundary
    assert stage2_train["update"].tolist() == [6] and stage2_train["critic_q1"].notna().all()
    assert evals["frame"].tolist() == [0, 200, 400]  # every eval_every_frames from frame 0, before the last step
    assert evals["step"].tolist() == [0, 100, 200]
    assert evals["episode"].tolist() == [0, 1, 2]
    assert set(evals["success_rate"]) <= {0.0, 1.0} and (evals["episode_length"] == 200).all()
    train = pd.read_csv(full_run / "train.csv")
    assert train["frame"].tolist() == [100, 200, 300, 400, 500]
    assert train["critic_loss"].notna().all()
    # every transition ever added, evicted or not; as in VRL3 the row at an episode's last step (100, 200) is written
    # before that episode is counted, but its buffer_size holds it (VRL3's replay stored it with its last step)
    assert train["buffer_size"].tolist() == [600, 700, 700, 800, 800]
    assert train["episode"].tolist() == [0, 0, 1, 1, 2]
    stage2 = pd.read_csv(full_run / "stage2" / "stage2_eval.csv")
    assert stage2["update"].tolist() == [0, 3]
    # fps counts from the start of stage 3 (VRL3 reset its timer there): the clock of the first train.csv row
    # starts at the stage boundary, not at the run's start (demo loading and stage 2 took seconds here)
    boundary = torch.load(full_run / "stage2" / "checkpoints" / "latest.pt", weights_only=True)["progress"]
    assert boundary["elapsed"] > 2.0 and 0 <= boundary["elapsed"] - boundary["time_at_last_row"] < 1.0
    assert (full_run / "params.yaml").exists() and (full_run / "stage2" / "params.yaml").exists()
    # one update per stage-2 step, then one every update_every_steps = 2 agent steps of stage 3 (300 steps)
    final = torch.load(full_run / "checkpoints" / "latest.pt", weights_only=True)
    assert final["agent"]["critic_opt"]["state"][0]["step"].item() == 6 + 150
    assert len(list((full_run / "episodes").glob("episode_*.npz"))) == 2  # the episode cut by the budget is not kept


def test_rerunning_a_finished_run_does_nothing(full_run, door_demos):
    before = (full_run / "eval.csv").read_text()
    result = subprocess.run(train_command(full_run, door_demos), capture_output=True, text=True, check=True)
    assert (full_run / "eval.csv").read_text() == before
    assert "stage 2 update" not in result.stdout + result.stderr


def test_changed_stage2_key_refuses_to_resume(full_run, door_demos):
    result = subprocess.run(train_command(full_run, door_demos) + ["agent.cql_weight=2"], capture_output=True,
                            text=True)
    assert result.returncode == 2 and "agent.cql_weight" in result.stderr


def kill_after_evals(command: list[str], eval_csv: Path, evals: int) -> None:
    """Start a run and SIGKILL its process group once eval.csv has `evals` rows."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:
        if eval_csv.exists() and len(eval_csv.read_text().splitlines()) >= evals + 1:
            break
        time.sleep(0.1)
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_kill_mid_stage3_and_resume_gives_the_same_logs(full_run, door_demos, tmp_path):
    run_dir = tmp_path / "run"
    kill_after_evals(train_command(run_dir, door_demos), run_dir / "eval.csv", evals=2)  # frames 0 and 200
    subprocess.run(train_command(run_dir, door_demos), check=True, capture_output=True)
    pd.testing.assert_frame_equal(without_time(run_dir / "eval.csv"), without_time(full_run / "eval.csv"))
    pd.testing.assert_frame_equal(without_time(run_dir / "train.csv"), without_time(full_run / "train.csv"))


# two training envs in worker processes; 5 blocks of episodes' worth of frames, evaluations at frames 0 ... 800
TWO_ENVS = ["num_envs=2", "num_train_frames=1000"]


@pytest.fixture(scope="session")
def two_env_run(door_demos, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("two_envs") / "run"
    subprocess.run(train_command(run_dir, door_demos) + TWO_ENVS, check=True, capture_output=True)
    return run_dir


def test_two_envs_collect_episodes_in_parallel(two_env_run, full_run):
    evals = pd.read_csv(two_env_run / "eval.csv")
    assert evals["frame"].tolist() == [0, 200, 400, 600, 800]
    assert evals["episode"].tolist() == [0, 0, 2, 2, 4]  # both envs finish an episode every 200 agent steps
    train = pd.read_csv(two_env_run / "train.csv")
    assert train["frame"].tolist() == [100, 200, 300, 400, 500, 600, 700, 800, 900]
    # two 100-step episodes end at step 200 (frame 400); as in VRL3 that row is written before they are counted, but
    # its buffer_size holds them
    assert train["buffer_size"].tolist()[:5] == [600, 600, 600, 800, 800]
    assert train["episode"].tolist()[:5] == [0, 0, 0, 0, 2]
    assert len(list((two_env_run / "episodes").glob("episode_*.npz"))) == 4
    stage2 = pd.read_csv(two_env_run / "stage2" / "stage2_eval.csv")  # stage 2 does not depend on num_envs
    pd.testing.assert_frame_equal(stage2.drop(columns="total_time"),
                                  pd.read_csv(full_run / "stage2" / "stage2_eval.csv").drop(columns="total_time"))
    # env 0 is seeded with the run's seed: its first episode starts where the single-env run's first episode does
    one_env = np.load(full_run / "episodes" / "episode_000000.npz")
    two_env = np.load(two_env_run / "episodes" / "episode_000000.npz")
    np.testing.assert_array_equal(one_env["frame"][0], two_env["frame"][0])


def test_two_envs_kill_and_resume_gives_the_same_logs(two_env_run, door_demos, tmp_path):
    run_dir = tmp_path / "run"
    command = train_command(run_dir, door_demos) + TWO_ENVS
    kill_after_evals(command, run_dir / "eval.csv", evals=3)  # after the checkpoint at frame 400
    subprocess.run(command, check=True, capture_output=True)
    pd.testing.assert_frame_equal(without_time(run_dir / "eval.csv"), without_time(two_env_run / "eval.csv"))
    pd.testing.assert_frame_equal(without_time(run_dir / "train.csv"), without_time(two_env_run / "train.csv"))


def test_the_smoke_config_runs_as_written(door_demos, tmp_path):
    """config/smoke.yaml's own budgets (only num_demo lowered to the 2 demos this session renders): what the README's
    main command runs for every task."""
    run_dir = tmp_path / "smoke"
    subprocess.run([sys.executable, "-m", "vrl3.cli", "train", "--config", str(SMOKE), "num_demo=2",
                    f"demos={door_demos}", f"run_dir={run_dir}"], check=True, capture_output=True)
    evals = pd.read_csv(run_dir / "eval.csv")
    assert evals["frame"].tolist() == [0, 400, 800]  # eval_every_frames 400 up to num_train_frames 1200
    assert (evals["episode_length"] == 200).all()
    stage2 = pd.read_csv(run_dir / "stage2" / "stage2_eval.csv")
    assert stage2["update"].tolist() == [0, 20]  # stage2_eval_every_frames 20 of stage2_n_update 40
    assert pd.read_csv(run_dir / "train.csv")["frame"].max() <= 1200
    assert (run_dir / "config.yaml").is_file() and (run_dir / "checkpoints" / "latest.pt").is_file()
