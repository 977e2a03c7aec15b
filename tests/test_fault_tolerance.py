"""Fault tolerance of `vrl3 train`: kills at any point, corrupt checkpoints, bad input, diverging losses.

The kill mid-stage-3 case lives in tests/test_train.py; docs/reliability.md lists every fault and which test covers it.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tests.process_support import signal_group_when
from tests.test_train import SMOKE, without_time
from vrl3.agent.encoder import make_resnet84
from vrl3.cli import main
from vrl3.errors import UserError
from vrl3.train.checkpoint import load_checkpoint, save_checkpoint
from vrl3.train.episodes import write_episode

# test_train's tiny run with a shorter stage 3: evaluations at frames 0 and 200
TINY = ["stage2_n_update=6", "stage2_eval_every_frames=3", "stage2_num_eval_episodes=1", "num_train_frames=400",
        "eval_every_frames=200", "num_eval_episodes=1", "train_log_every_steps=50", "checkpoint_every_frames=200",
        "batch_size=8", "agent.hidden_dim=32", "num_demo=2", "device=cpu"]


def train_args(run_dir: Path, demos: Path, *extra: str) -> list[str]:
    return ["train", "--config", str(SMOKE), *TINY, f"demos={demos}", f"run_dir={run_dir}", *extra]


def train_command(run_dir: Path, demos: Path) -> list[str]:
    return [sys.executable, "-m", "vrl3.cli", *train_args(run_dir, demos)]


@pytest.fixture(scope="module")
def full_run(door_demos, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    subprocess.run(train_command(run_dir, door_demos), check=True, capture_output=True)
    return run_dir


def progress_of(path: Path) -> dict | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)["progress"]
    except Exception:  # noqa: BLE001 - not written yet, or written by a killed process
        return None


def kill_when(command: list[str], ready) -> None:
    """Start `command`, SIGKILL its whole process group as soon as `ready()` holds."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None and not ready():
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# ---------------------------------------------------------------- checkpoint.py alone
def test_checkpoint_save_load_and_fallback(tmp_path):
    assert load_checkpoint(tmp_path / "none") is None
    save_checkpoint({"step": 1, "w": torch.ones(2)}, tmp_path)
    save_checkpoint({"step": 2, "w": torch.zeros(2)}, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt", "previous.pt"]  # no temp file left
    assert load_checkpoint(tmp_path)["step"] == 2
    (tmp_path / "latest.pt").write_bytes(b"\x00garbage" * 10)
    with pytest.warns(UserWarning, match="latest.pt is unreadable"):
        state = load_checkpoint(tmp_path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(2))
    (tmp_path / "previous.pt").write_bytes((tmp_path / "previous.pt").read_bytes()[:100])  # truncated zip
    with warnings.catch_warnings(), pytest.raises(UserError, match="no readable checkpoint"):
        warnings.simplefilter("ignore")
        load_checkpoint(tmp_path)


def test_a_missing_or_truncated_episode_file_is_one_line_with_the_fix(tmp_path):
    from vrl3.train.episodes import EPISODE_KEYS, read_episode, write_episode

    path = tmp_path / "episode_000000.npz"
    write_episode(path, {key: np.zeros((3, 2), np.float32) for key in EPISODE_KEYS})
    assert read_episode(path, fix="restore it")["reward"].shape == (3, 2)
    path.write_bytes(path.read_bytes()[:200])  # a truncated zip: BadZipFile, not a traceback
    with pytest.raises(UserError, match=r"episode_000000.npz is unreadable or incomplete .*: restore it$"):
        read_episode(path, fix="restore it")
    path.unlink()
    with pytest.raises(UserError, match="No such file"):
        read_episode(path, fix="restore it")


def test_checkpoint_with_python_objects_is_refused_not_run(tmp_path):
    torch.save({"step": 1, "payload": Path("x")}, tmp_path / "latest.pt")  # needs a global: weights_only refuses
    with pytest.raises(UserError, match="Python objects besides tensors"):
        load_checkpoint(tmp_path)


# ---------------------------------------------------------------- kills
def test_kill_in_stage2_then_at_the_boundary_then_finish(full_run, door_demos, tmp_path):
    for name in ("latest.pt", "previous.pt"):  # checkpoints hold tensors and plain types only
        torch.load(full_run / "checkpoints" / name, weights_only=True)
        torch.load(full_run / "stage2" / "checkpoints" / name, weights_only=True)
    run_dir = tmp_path / "run"
    stage2_latest = run_dir / "stage2" / "checkpoints" / "latest.pt"
    stage2_eval = run_dir / "stage2" / "stage2_eval.csv"
    # inside stage 2: the update-0 checkpoint and evaluation are written, the update-3 checkpoint not yet
    kill_when(train_command(run_dir, door_demos), lambda: stage2_eval.exists())
    assert progress_of(stage2_latest)["stage"] == 2 and not (run_dir / "checkpoints").exists()
    # at the stage boundary: the final stage-2 checkpoint is written
    kill_when(train_command(run_dir, door_demos), lambda: (progress_of(stage2_latest) or {}).get("stage") == 3)
    assert not (run_dir / "eval.csv").exists() or len((run_dir / "eval.csv").read_text().splitlines()) <= 2
    subprocess.run(train_command(run_dir, door_demos), check=True, capture_output=True)
    pd.testing.assert_frame_equal(without_time(run_dir / "eval.csv"), without_time(full_run / "eval.csv"))
    pd.testing.assert_frame_equal(without_time(run_dir / "train.csv"), without_time(full_run / "train.csv"))
    pd.testing.assert_frame_equal(without_time(run_dir / "stage2" / "stage2_eval.csv"),
                                  without_time(full_run / "stage2" / "stage2_eval.csv"))


def test_total_time_of_a_resumed_run_counts_the_resumed_process_set_up(full_run, door_demos, tmp_path,
                                                                        monkeypatch):
    """total_time adds up over processes: refilling the replay after a resume is part of it, as at a fresh start."""
    from vrl3.train.workspace import Workspace

    run_dir = tmp_path / "run"
    shutil.copytree(full_run / "stage2", run_dir / "stage2")  # its latest.pt: the stage boundary
    boundary = progress_of(run_dir / "stage2" / "checkpoints" / "latest.pt")
    assert boundary["stage"] == 3
    fill_replay, pause = Workspace._fill_replay, 1.5

    def slow_fill_replay(self, *args):
        time.sleep(pause)
        return fill_replay(self, *args)

    monkeypatch.setattr(Workspace, "_fill_replay", slow_fill_replay)
    assert main(train_args(run_dir, door_demos)) == 0
    first_eval = pd.read_csv(run_dir / "eval.csv").iloc[0]  # frame 0, logged before stage 3's first evaluation
    assert first_eval["frame"] == 0 and first_eval["total_time"] >= boundary["elapsed"] + pause


def test_a_rerun_with_nothing_left_to_train_does_not_refill_the_replay(full_run, door_demos, tmp_path, monkeypatch):
    """A finished run, or a stage-2 job of a run past stage 2, ends without reading the run's episodes back (for
    the paper's config up to a 1M-transition replay)."""
    from vrl3.train.workspace import Workspace

    run_dir = tmp_path / "run"
    shutil.copytree(full_run, run_dir)

    def refill(self, evicted):
        raise AssertionError("the replay was refilled")

    monkeypatch.setattr(Workspace, "_fill_replay", refill)
    before = (run_dir / "eval.csv").read_text()
    assert main(train_args(run_dir, door_demos)) == 0
    assert main([train_args(run_dir, door_demos)[0], "--stage", "2", *train_args(run_dir, door_demos)[1:]]) == 0
    assert (run_dir / "eval.csv").read_text() == before


def test_moved_demos_resume_and_other_demos_are_refused(full_run, door_demos, tmp_path, capsys):
    """A run checks what its demos hold, not where they lie: params.yaml and checkpoints written while the path was
    a stage parameter still resume from a moved demos folder; demos with other content are refused in one line."""
    def stage2_boundary(run_dir: Path) -> Path:
        shutil.copytree(full_run / "stage2", run_dir / "stage2")
        params = yaml.safe_load((run_dir / "stage2" / "params.yaml").read_text())
        (run_dir / "stage2" / "params.yaml").write_text(yaml.safe_dump(params | {"demos": "/old/data/demos/door"}))
        for name in ("latest.pt", "previous.pt"):
            path = run_dir / "stage2" / "checkpoints" / name
            state = torch.load(path, weights_only=True)
            state["params"]["demos"] = "/old/data/demos/door"
            torch.save(state, path)
        return run_dir

    moved = tmp_path / "moved" / "door"
    shutil.copytree(door_demos, moved)
    assert main(train_args(stage2_boundary(tmp_path / "run"), moved)) == 0
    pd.testing.assert_frame_equal(without_time(tmp_path / "run" / "eval.csv"), without_time(full_run / "eval.csv"))

    other = tmp_path / "other" / "door"  # the first demo changed (and its checksum dropped from the manifest)
    shutil.copytree(door_demos, other)
    episode = dict(np.load(other / "episodes" / "episode_000.npz"))
    episode["reward"] = episode["reward"] + 1
    write_episode(other / "episodes" / "episode_000.npz", episode)
    manifest = json.loads((other / "manifest.json").read_text())
    del manifest["checksums"]["episodes/episode_000.npz"]
    (other / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(train_args(stage2_boundary(tmp_path / "run2"), other)) == 2
    assert "are not those the checkpoint in" in capsys.readouterr().err


def terminate_when(command: list[str], ready) -> subprocess.CompletedProcess:
    """Start `command`, SIGTERM its whole process group (as scancel, a SLURM time limit or Snakemake do) as soon as
    `ready()` holds; its exit code and stderr once every process of the group is gone."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    stderr = signal_group_when(process, ready, signal.SIGTERM)
    return subprocess.CompletedProcess(command, process.returncode, "", stderr)


def test_sigterm_mid_stage3_exits_143_and_the_rerun_resumes(full_run, door_demos, tmp_path):
    run_dir = tmp_path / "run"
    eval_csv = run_dir / "eval.csv"
    result = terminate_when(train_command(run_dir, door_demos),
                            lambda: eval_csv.exists() and len(eval_csv.read_text().splitlines()) >= 2)
    assert result.returncode == 143 and "vrl3 train: terminated" in result.stderr, result.stderr[-2000:]
    assert not list(run_dir.rglob("*.tmp"))
    subprocess.run(train_command(run_dir, door_demos), check=True, capture_output=True)
    pd.testing.assert_frame_equal(without_time(eval_csv), without_time(full_run / "eval.csv"))


def test_sigterm_while_rendering_demos_leaves_no_partial_folder(mirror, tmp_path):
    out = tmp_path / "demos" / "door"
    command = [sys.executable, "-m", "vrl3.cli", "demos", "--task", "door", "--source", "human", "--mirror",
               str(mirror), "--episodes", "5", "--out", str(out)]
    result = terminate_when(command, lambda: any(out.parent.glob(".door.partial-*/episodes/*")))
    assert result.returncode == 143 and "vrl3 demos: terminated" in result.stderr, result.stderr
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("folder, extra, names", [
    ("stage2", "seed=2", "seed"),
    ("stage2", "agent.hidden_dim=48", "agent.hidden_dim"),
    ("", "num_envs=2", "num_envs"),  # a stage-3 key, refused only by stage 3's checkpoint
])
def test_a_checkpoint_copied_from_another_run_is_refused_in_one_line(full_run, door_demos, tmp_path, capsys, folder,
                                                                     extra, names):
    """A checkpoints folder copied from another run, the params.yaml files (which would name the difference) gone."""
    run_dir = tmp_path / "run"
    shutil.copytree(full_run / folder / "checkpoints", run_dir / folder / "checkpoints")
    assert main(train_args(run_dir, door_demos, extra)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"the checkpoint in {run_dir / folder / 'checkpoints'} was made with other values of {names}: " in err, err
    assert not (run_dir / "eval.csv").exists()


def test_a_checkpoint_without_params_of_other_network_sizes_is_one_line(full_run, door_demos, tmp_path, capsys):
    """Checkpoints written before they carried their params: loading the networks names the misfit."""
    run_dir = tmp_path / "run"
    (run_dir / "stage2" / "checkpoints").mkdir(parents=True)
    state = torch.load(full_run / "stage2" / "checkpoints" / "latest.pt", map_location="cpu", weights_only=True)
    del state["params"]
    torch.save(state, run_dir / "stage2" / "checkpoints" / "latest.pt")
    assert main(train_args(run_dir, door_demos, "agent.hidden_dim=48")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not fit this run's agent" in err and "new run_dir" in err, err


def test_corrupt_checkpoint_mid_write_falls_back_to_previous(full_run, door_demos, tmp_path):
    """A kill or full disk during a checkpoint write, made deterministic: torn temp file + garbage latest.pt."""
    run_dir = tmp_path / "run"
    folder = run_dir / "stage2" / "checkpoints"
    folder.mkdir(parents=True)
    source = full_run / "stage2"
    (run_dir / "stage2" / "params.yaml").write_bytes((source / "params.yaml").read_bytes())
    (folder / "previous.pt").write_bytes((source / "checkpoints" / "previous.pt").read_bytes())  # update 3
    assert progress_of(folder / "previous.pt")["update"] == 3
    good = (source / "checkpoints" / "latest.pt").read_bytes()
    (folder / ".latest.pt.tmp").write_bytes(good[: len(good) // 2])
    (folder / "latest.pt").write_bytes(os.urandom(4096))
    rows = pd.read_csv(source / "stage2_eval.csv")
    rows[rows["update"] < 3].to_csv(run_dir / "stage2" / "stage2_eval.csv", index=False)
    result = subprocess.run(train_command(run_dir, door_demos), check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "latest.pt is unreadable" in result.stderr and "resuming" in result.stdout + result.stderr
    assert not (folder / ".latest.pt.tmp").exists()  # the next save replaced it
    pd.testing.assert_frame_equal(without_time(run_dir / "eval.csv"), without_time(full_run / "eval.csv"))
    # the loss columns of the row at the resumed update stay NaN: the update before a checkpoint is not in it
    evaluation = ["update", "episode_reward", "episode_length", "success_rate"]
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "stage2" / "stage2_eval.csv")[evaluation],
                                  pd.read_csv(source / "stage2_eval.csv")[evaluation])


# ---------------------------------------------------------------- bad input: one line, exit 2, nothing written
def fake_demos(folder: Path, task: str, manifest: bytes | None = None) -> Path:
    (folder / "episodes").mkdir(parents=True)
    (folder / "manifest.json").write_bytes(manifest if manifest is not None else
                                           json.dumps({"task": task, "frame_channels": 3, "image_size": 84}).encode())
    return folder


def without_first_episode(demos: Path, folder: Path) -> Path:
    shutil.copytree(demos, folder)
    (folder / "episodes" / "episode_000.npz").unlink()
    return folder


def test_demos_rendered_before_manifests_recorded_the_shadow_map_count_as_the_scenes_own(tmp_path):
    from vrl3.train.episodes import load_demos

    folder = fake_demos(tmp_path / "door", "door")  # its manifest has no shadow_size
    assert load_demos(folder, "door", 3, 84, -1) == load_demos(folder, "door", 3, 84, -1, shadow_size=4096) == []
    with pytest.raises(UserError, match="4096-texel shadow map, the run renders with shadow_size 512"):
        load_demos(folder, "door", 3, 84, -1, shadow_size=512)


def stage1_file(path: Path, state: dict, **extra) -> str:
    torch.save({"state_dict": state, **extra}, path)
    return f"stage1_checkpoint={path}"


PRETRAINED = "stage1.source=fetch"  # the smoke config trains a random encoder (stage1.source none)


def bad_inputs(tmp: Path, demos: Path) -> dict[str, tuple[list[str], str]]:
    """case -> (changed arguments, text the error must contain)."""
    good = make_resnet84("resnet6_32channel").state_dict()
    other = make_resnet84("resnet10_32channel").state_dict()
    missing = {k: v for k, v in good.items() if not k.startswith("layer1.")}
    no_gpu = {} if torch.cuda.is_available() else {
        "replay on a GPU that is not there": (["replay_device=cuda"], "config key replay_device=cuda but no CUDA")}
    return no_gpu | {
        "demos of another task": ([f"demos={fake_demos(tmp / 'hammer', 'hammer')}"], "'hammer' demos"),
        "demos without manifest": ([f"demos={(tmp / 'empty').mkdir() or tmp / 'empty'}"], "no manifest.json"),
        "num_demo too large": (["num_demo=5"], "num_demo=5"),
        "demos of another shadow map": (["shadow_size=1024"], "rendered with a 4096-texel shadow map, the run "
                                        "renders with shadow_size 1024: re-render them with `vrl3 demos --shadow-size"),
        "zero shadow map": (["shadow_size=0"], "shadow_size"),
        "stage-1 missing keys": ([PRETRAINED, stage1_file(tmp / "missing.pth", missing)], "missing keys [layer1."),
        "stage-1 extra keys": ([PRETRAINED, stage1_file(tmp / "extra.pth", good | {"extra.weight": torch.ones(1)})],
                               "unexpected keys [extra.weight]"),
        "stage-1 other architecture": ([PRETRAINED, stage1_file(tmp / "arch.pth", other, arch="resnet10_32channel")],
                                       "is for arch 'resnet10_32channel'"),
        "stage-1 other shapes": ([PRETRAINED,
                                  stage1_file(tmp / "shape.pth", make_resnet84("resnet6_64channel").state_dict())],
                                 "shapes differ"),
        "stage-1 file not there yet": (["stage1.source=fetch", f"data_dir={tmp / 'nodata'}"],
                                       "nodata/stage1/resnet6_32channel_checkpoint.pth.tar not found: get it with"),
        "negative frames": (["num_train_frames=-200"], "num_train_frames"),
        "empty seed list": (["seeds=[]"], "seeds"),
        "unknown key": (["agent.learning_rate=1"], "unknown config key 'agent.learning_rate'"),
        "override without a key": (["=3"], "override '=3' is not key=value"),
        "unknown task": (["task=pen2"], "pen2"),
        "demos with a deleted episode": ([f"demos={without_first_episode(demos, tmp / 'deleted')}", "num_demo=1"],
                                         "episode_000.npz is listed in"),
        "manifest not an object": ([f"demos={fake_demos(tmp / 'list', 'door', manifest=b'[]')}"],
                                   "is not a `vrl3 demos` manifest"),
        "manifest not UTF-8": ([f"demos={fake_demos(tmp / 'bytes', 'door', manifest=bytes([0xff, 0xfe]))}"],
                               "is not valid JSON"),
        "no demos": (["num_demo=0"], "config key num_demo=0: no demo episode has at least nstep=3 transitions"),
        "nstep longer than every demo": (["nstep=1000"], "nstep=1000"),
        "replay smaller than a demo": (["replay_buffer_size=10"], "config key replay_buffer_size=10 is smaller"),
        "seed too large": (["seed=4294967296"], "config key 'seed'"),
        "less than one agent step": (["num_train_frames=1"], "config key num_train_frames=1 is less than one agent"),
    }


def test_bad_input_gives_one_line_exit_2_and_no_outputs(door_demos, tmp_path, capsys):
    for case, (extra, expected) in bad_inputs(tmp_path, door_demos).items():
        run_dir = tmp_path / "runs" / case.replace(" ", "_")
        capsys.readouterr()
        code = main(train_args(run_dir, door_demos, *extra))
        err = capsys.readouterr().err.strip()
        assert code == 2, case
        assert len(err.splitlines()) == 1 and err.startswith("vrl3 train: error:"), (case, err)
        assert expected in err, (case, err)
        assert not run_dir.exists(), case


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")
def test_a_run_dir_that_cannot_be_made_is_one_line_naming_it(door_demos, capsys):
    run_dir = Path("/proc/vrl3-test/run")  # nobody, root included, may make a folder in /proc
    assert main(train_args(run_dir, door_demos)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("vrl3 train: error: ") and "/proc/vrl3-test" in err, err


def test_bad_input_to_run_stage_leaves_the_run_dir_untouched(door_demos, tmp_path, capsys):
    """What every workflow job calls: the stage bookkeeping (stamp, setting aside) waits for the inputs to pass."""
    cases = bad_inputs(tmp_path, door_demos)
    for case in ("demos of another task", "stage-1 missing keys", "num_demo too large"):
        extra, expected = cases[case]
        run_dir = tmp_path / "runs" / case.replace(" ", "_")
        args = train_args(run_dir, door_demos, *extra)[1:]
        capsys.readouterr()
        assert main(["run-stage", "--stage", "2", *args]) == 2, case
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("vrl3 run-stage: error:") and expected in err, err
        assert not run_dir.exists(), case
    # a demos folder given as run_dir (its episodes/ would be taken for a run's and replaced)
    before = sorted(path.relative_to(door_demos) for path in door_demos.rglob("*"))
    assert main(["run-stage", "--stage", "3", *train_args(door_demos, door_demos)[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a `vrl3 demos` output folder" in err, err
    assert sorted(path.relative_to(door_demos) for path in door_demos.rglob("*")) == before
    no_run_dir = [arg for arg in train_args(tmp_path / "unused", door_demos)[1:] if not arg.startswith("run_dir=")]
    assert main(["run-stage", "--stage", "2", *no_run_dir]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "config key run_dir is not set" in err, err


# ---------------------------------------------------------------- diverging losses
def test_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(door_demos, tmp_path, capsys, monkeypatch):
    from vrl3.agent import VRL3Agent

    real_update = VRL3Agent.update

    def update_going_nan(self, batch, stage, step, sync=False):
        metrics = real_update(self, batch, stage=stage, step=step, sync=sync)
        return metrics | {"critic_loss": torch.tensor(float("nan"))} if step >= 2 else metrics

    monkeypatch.setattr(VRL3Agent, "update", update_going_nan)
    run_dir = tmp_path / "run"
    assert main(train_args(run_dir, door_demos)) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "vrl3 train: error:" in line]  # besides tqdm
    assert len(errors) == 1 and "critic loss became nan at stage-2 update 3" in errors[0]
    assert str(run_dir / "stage2" / "checkpoints") in errors[0]
    folder = run_dir / "stage2" / "checkpoints"
    assert not (folder / "previous.pt").exists()  # nothing was saved after the divergence
    assert load_checkpoint(folder)["progress"]["update"] == 0
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "eval.csv").exists()


def test_nan_loss_in_stage3_stops_and_keeps_the_last_good_checkpoint(door_demos, tmp_path, capsys, monkeypatch):
    from vrl3.agent import VRL3Agent

    real_update = VRL3Agent.update
    nan_from_step = 120  # frame 240: after the stage-3 checkpoint at the first episode's end (frame 200)

    def update_going_nan_in_stage3(self, batch, stage, step, sync=False):
        metrics = real_update(self, batch, stage=stage, step=step, sync=sync)
        if stage == 3 and step >= nan_from_step:
            return metrics | {"critic_loss": torch.tensor(float("nan"))}
        return metrics

    monkeypatch.setattr(VRL3Agent, "update", update_going_nan_in_stage3)
    run_dir = tmp_path / "run"
    assert main(train_args(run_dir, door_demos)) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "vrl3 train: error:" in line]
    assert len(errors) == 1 and "critic loss became nan at frame 300" in errors[0]  # the train-log row after it
    assert str(run_dir / "checkpoints") in errors[0]
    progress = load_checkpoint(run_dir / "checkpoints")["progress"]
    assert progress["stage"] == 3 and progress["step"] * 2 == 200  # the last checkpoint before the divergence
    assert list(pd.read_csv(run_dir / "eval.csv")["frame"]) == [0, 200]  # logs written before it are kept
