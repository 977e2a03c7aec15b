"""Franka Kitchen: env observations, rewards and success of hand-set states, Minari demos and stage 2 -> stage 3.

The demos come from a tiny dataset recorded here with minari.DataCollector on FrankaKitchen-v1 (as Farama's
generation script records D4RL/kitchen/*-v2: remove_task_when_completed and terminate_on_tasks_completed off)
and stored under the real dataset id in a temporary MINARI_DATASETS_PATH, so minari's own loading code runs.
Goal values and joint names are written out from gymnasium-robotics' FrankaKitchen-v1 documentation.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO_ROOT
from tests.workflow_support import job_counts, make_workdir, snakemake
from vrl3.cli import main
from vrl3.demos.replay import rendering_disabled
from vrl3.demos.task_source import demo_source_for
from vrl3.envs import episode_success, make_env
from vrl3.errors import UserError
from vrl3.tasks import get_task
from vrl3.train.config import load_config

COMPLETE = ("microwave", "kettle", "light switch", "slide cabinet")
# subtask -> (joint names, goal positions of their qpos entries)
GOALS = {
    "microwave": (("microwave",), (-0.75,)),
    "kettle": (("kettle",), (-0.23, 0.75, 1.62, 0.99, 0.0, 0.0, -0.06)),
    "light switch": (("light_switch", "light_joint"), (-0.69, -0.05)),
    "slide cabinet": (("slide_cabinet",), (0.37,)),
    "bottom burner": (("knob_Joint_2", "bottom_left_burner"), (-0.88, -0.01)),
    "top burner": (("knob_Joint_4", "top_left_burner"), (-0.92, -0.01)),
    "hinge cabinet": (("left_hinge_cabinet", "right_hinge_cabinet"), (0.0, 1.45)),
}
EPISODE_STEPS = 5
SMOKE = REPO_ROOT / "config" / "smoke.yaml"
TINY = ["stage2_n_update=4", "stage2_eval_every_frames=2", "stage2_num_eval_episodes=0", "num_train_frames=40",
        "eval_every_frames=1000", "num_eval_episodes=1", "train_log_every_steps=10", "checkpoint_every_frames=20",
        "batch_size=8", "agent.hidden_dim=32", "num_demo=3", "device=cpu", "replay_buffer_size=200"]


def goal_qpos(model: mujoco.MjModel, qpos: np.ndarray, subtasks) -> np.ndarray:
    """qpos with the joints of `subtasks` at their goal values."""
    qpos = qpos.copy()
    for name in subtasks:
        joints, goal = GOALS[name]
        start = model.joint(joints[0]).qposadr[0]
        qpos[start:start + len(goal)] = goal
    return qpos


@pytest.fixture(scope="module")
def kitchen_env():
    env = make_env("kitchen-complete", seed=0)
    yield env
    env.close()


# --- the environment -----------------------------------------------------------------------------------

def test_observations_sensor_and_time_limit(kitchen_env):
    env = kitchen_env
    first = env.reset()
    assert env.obs_shape == (3, 84, 84) and env.action_dim == 9 and env.task.sensor_dim == 18
    assert first.observation.shape == (3, 84, 84) and first.observation.dtype == np.uint8
    assert first.observation.std() > 10  # a rendered scene, not a blank frame
    data = env.sim.data
    np.testing.assert_array_equal(first.sensor, np.concatenate([data.qpos[:9], data.qvel[:9]]).astype(np.float32))
    assert first.sensor.shape == (18,) and first.sensor.dtype == np.float32
    step = env.step(np.full(9, 0.5))
    assert step.observation.shape == (3, 84, 84) and step.sensor.shape == (18,) and step.action.shape == (9,)
    assert not np.array_equal(step.frame, first.frame)  # the arm moved
    with rendering_disabled(env):  # 280 env steps = 140 agent steps at action repeat 2; no early termination
        env.reset()
        steps = [env.step(np.zeros(9)) for _ in range(140)]
    assert [s.last() for s in steps].index(True) == 139
    assert steps[-1].time_limit_reached and steps[-1].discount == 1.0


def test_the_camera_sees_every_subtask(kitchen_env):
    env = kitchen_env
    env.reset()
    rest = env.sim.data.qpos.copy()
    before = env.render_frame().astype(int)
    for name in GOALS:
        env.set_sim_state(goal_qpos(env.sim.model, rest, [name]), np.zeros(env.sim.model.nv))
        changed = (np.abs(env.render_frame().astype(int) - before).sum(axis=0) > 30).sum()
        assert changed >= 5, name


def test_frame_stack_and_action_repeat():
    env = make_env("kitchen-mixed", seed=0, action_repeat=3, frame_stack=2, image_size=32)
    try:
        first = env.reset()
        assert env.obs_shape == (6, 32, 32) and first.observation.shape == (6, 32, 32)
        np.testing.assert_array_equal(first.observation[:3], first.observation[3:])
        step = env.step(np.zeros(9))
        np.testing.assert_array_equal(step.observation[:3], first.frame)
        np.testing.assert_array_equal(step.observation[3:], step.frame)
        assert env._env_steps == 3
    finally:
        env.close()


def test_reward_counts_completed_subtasks_and_success_needs_all(kitchen_env):
    env = kitchen_env
    env.reset()
    model, rest = env.sim.model, env.sim.data.qpos.copy()
    zero_velocity = np.zeros(model.nv)
    env.set_sim_state(goal_qpos(model, rest, ["microwave"]), zero_velocity)
    assert env.reward_and_goal() == (1.0, False)
    # within 0.3 (Euclidean norm) of the goal counts, beyond does not
    near, far = rest.copy(), rest.copy()
    near[model.joint("microwave").qposadr[0]] = -0.75 + 0.29
    far[model.joint("microwave").qposadr[0]] = -0.75 + 0.31
    env.set_sim_state(near, zero_velocity)
    assert env.reward_and_goal() == (1.0, False)
    env.set_sim_state(far, zero_velocity)
    assert env.reward_and_goal() == (0.0, False)
    # subtasks the task does not request earn nothing
    env.set_sim_state(goal_qpos(model, rest, ["hinge cabinet", "top burner", "bottom burner"]), zero_velocity)
    assert env.reward_and_goal() == (0.0, False)
    env.set_sim_state(goal_qpos(model, rest, COMPLETE[:3]), zero_velocity)
    assert env.reward_and_goal() == (3.0, False)
    env.set_sim_state(goal_qpos(model, rest, COMPLETE), zero_velocity)
    assert env.reward_and_goal() == (4.0, True)
    # one agent step = 2 env steps, each with all 4 done: reward 2 x 4 x (1/4), 2 goal steps, no termination
    step = env.step(np.zeros(9))
    assert step.reward == pytest.approx(2.0) and step.n_goal_achieved == 2 and step.discount == 1.0
    assert not step.last()
    assert episode_success("kitchen-complete", 1) and not episode_success("kitchen-complete", 0)


def test_mixed_task_counts_the_bottom_burner():
    env = make_env("kitchen-mixed", seed=0)
    try:
        env.reset()
        model, rest = env.sim.model, env.sim.data.qpos.copy()
        env.set_sim_state(goal_qpos(model, rest, ["bottom burner", "slide cabinet"]), np.zeros(model.nv))
        assert env.reward_and_goal() == (1.0, False)
        env.set_sim_state(goal_qpos(model, rest, ["microwave", "kettle", "bottom burner", "light switch"]),
                          np.zeros(model.nv))
        assert env.reward_and_goal() == (4.0, True)
    finally:
        env.close()


def test_seeded_resets_repeat_the_observation_noise():
    """The reset state is fixed; make_env's seed fixes the observation noise the controller reads."""
    def rollout(seed):
        env = make_env("kitchen-partial", seed=seed)
        try:
            with rendering_disabled(env):
                env.reset()
                return np.array([env.step(np.full(9, 0.3)).sensor for _ in range(3)])
        finally:
            env.close()

    np.testing.assert_array_equal(rollout(1), rollout(1))
    assert not np.array_equal(rollout(1), rollout(2))


# --- Minari demos --------------------------------------------------------------------------------------

def record_tiny_dataset(root: Path, dataset_id: str, subtasks) -> None:
    """Three 5-step episodes: random actions; all subtasks set done after the reset; the microwave set done."""
    import gymnasium
    import minari

    os.environ["MINARI_DATASETS_PATH"] = str(root)
    env = minari.DataCollector(gymnasium.make(
        "FrankaKitchen-v1", tasks_to_complete=list(subtasks), remove_task_when_completed=False,
        terminate_on_tasks_completed=False, max_episode_steps=EPISODE_STEPS))
    kitchen = env.unwrapped
    rng = np.random.default_rng(0)
    for done_after_reset in ([], list(subtasks), ["microwave"]):
        env.reset(seed=len(done_after_reset))
        kitchen.data.qpos[:] = goal_qpos(kitchen.model, kitchen.data.qpos, done_after_reset)
        mujoco.mj_forward(kitchen.model, kitchen.data)
        truncated = False
        while not truncated:
            truncated = env.step(rng.uniform(-1, 1, 9))[3]
    env.create_dataset(dataset_id=dataset_id, algorithm_name="random actions", author="vrl3-repro tests",
                       author_email="tests@example.org", code_permalink="tests/test_kitchen.py",
                       description="three 5-step test episodes")
    env.close()


@pytest.fixture(scope="module")
def minari_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("minari")
    before = os.environ.get("MINARI_DATASETS_PATH")
    try:
        record_tiny_dataset(root, "D4RL/kitchen/complete-v2", COMPLETE)
    finally:
        if before is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = before
    return root


@pytest.fixture(scope="module")
def kitchen_demos(minari_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demos") / "kitchen-complete"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(minari_root))
        assert main(["demos", "--task", "kitchen-complete", "--source", "minari", "--out", str(out)]) == 0
    return out


def test_demos_are_rendered_from_the_recorded_states(kitchen_demos, minari_root, monkeypatch):
    import minari

    manifest = json.loads((kitchen_demos / "manifest.json").read_text())
    assert {key: manifest[key] for key in ("task", "source", "replay", "action_repeat", "image_size", "cameras",
                                           "frame_channels", "flip_images", "input", "subtasks")} == {
        "task": "kitchen-complete", "source": "minari", "replay": "states", "action_repeat": 1, "image_size": 84,
        "cameras": ["counter"], "frame_channels": 3, "flip_images": False, "input": "D4RL/kitchen/complete-v2",
        "subtasks": list(COMPLETE)}
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(minari_root))
    recorded = list(minari.load_dataset("D4RL/kitchen/complete-v2").iterate_episodes())
    assert len(manifest["episodes"]) == len(recorded) == 3
    for index, (episode, entry) in enumerate(zip(recorded, manifest["episodes"])):
        with np.load(kitchen_demos / f"episodes/episode_{index:03d}.npz") as data:
            arrays = {key: data[key] for key in data.files}
        rows = EPISODE_STEPS + 1
        assert {key: value.shape for key, value in arrays.items()} == {
            "frame": (rows, 3, 84, 84), "sensor": (rows, 18), "action": (rows, 9), "reward": (rows,),
            "discount": (rows,), "n_goal_achieved": (rows,)}
        # the sensor is the recorded robot joint positions and velocities; actions are the recorded ones
        np.testing.assert_allclose(arrays["sensor"], episode.observations["observation"][:, :18], atol=1e-6)
        np.testing.assert_allclose(arrays["action"][1:], episode.actions, atol=1e-6)
        assert not arrays["action"][0].any() and arrays["reward"][0] == 0 and (arrays["discount"] == 1).all()
        # rewards recomputed from the restored states equal the recorded ones (scaled by 1/4)
        np.testing.assert_allclose(arrays["reward"][1:], episode.rewards / 4, atol=1e-6)
        assert entry["reward_mismatches"] == 0 and entry["recorded_return"] == pytest.approx(episode.rewards.sum())
    all_done, microwave = manifest["episodes"][1], manifest["episodes"][2]
    assert all_done["goal_steps"] == all_done["recorded_goal_steps"] == EPISODE_STEPS
    assert all_done["success"] and all_done["recorded_success"]
    assert microwave["return"] == pytest.approx(EPISODE_STEPS / 4) and not microwave["success"]
    assert not manifest["episodes"][0]["success"]


def test_stage2_then_stage3_on_kitchen_demos(kitchen_demos, tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "vrl3.cli", "train", "--config", str(SMOKE), "task=kitchen-complete", *TINY,
               f"demos={kitchen_demos}", f"run_dir={run_dir}"]
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    evals = pd.read_csv(run_dir / "eval.csv")
    assert evals["frame"].tolist() == [0] and evals["episode_length"].tolist() == [280]
    stage2 = yaml_keys(run_dir / "stage2" / "params.yaml")
    assert stage2["task"] == "kitchen-complete"
    assert (run_dir / "checkpoints" / "latest.pt").exists()
    assert (run_dir / "train.csv").exists()


def yaml_keys(path: Path) -> dict:
    import yaml
    return yaml.safe_load(path.read_text())


def run_demos(argv, capsys) -> tuple[int, str]:
    code = main(["demos", *map(str, argv)])
    return code, capsys.readouterr().err


def test_missing_minari_dataset_is_a_one_line_error(tmp_path, capsys, minari_offline):
    out = tmp_path / "out"
    code, err = run_demos(["--task", "kitchen-mixed", "--source", "minari", "--out", out], capsys)
    assert code == 2 and not out.exists() and len(err.strip().splitlines()) == 1
    assert "D4RL/kitchen/mixed-v2" in err and "MINARI_DATASETS_PATH" in err and "network unreachable" in err


def test_kitchen_demo_arguments_and_foreign_datasets_are_user_errors(minari_root, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    code, err = run_demos(["--task", "kitchen-complete", "--source", "human", "--out", out], capsys)
    assert code == 2 and "--source minari" in err
    code, err = run_demos(["--task", "kitchen-complete", "--source", "minari", "--replay", "actions", "--out", out],
                          capsys)
    assert code == 2 and "--replay states" in err
    # a dataset whose subtasks are not the task's (the complete-v2 test data under the mixed-v2 id)
    root = tmp_path / "minari"
    shutil.copytree(minari_root / "D4RL/kitchen/complete-v2", root / "D4RL/kitchen/mixed-v2")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    code, err = run_demos(["--task", "kitchen-mixed", "--source", "minari", "--out", out], capsys)
    assert code == 2 and "bottom burner" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(minari_root))
    code, err = run_demos(["--task", "kitchen-complete", "--source", "minari", "--episodes", 4, "--out", out],
                          capsys)
    assert code == 2 and "holds only 3 episodes" in err
    assert not out.exists()


# --- configuration -------------------------------------------------------------------------------------

def test_kitchen_config_overlay_validates():
    config = load_config(REPO_ROOT / "config" / "kitchen.yaml")
    assert config["tasks"] == ["kitchen-complete", "kitchen-partial", "kitchen-mixed"]
    assert config["task"] == "kitchen-complete" and config["num_demo"] == config["demo_source"]["episodes"] == 19
    assert config["action_repeat"] == 2 and config["frame_stack"] == 1 and config["agent"]["encoder_lr_scale"] == 1
    assert load_config(SMOKE, ["task=kitchen-mixed"])["task"] == "kitchen-mixed"
    with pytest.raises(UserError, match="'task'"):
        load_config(SMOKE, ["task=kitchen-burner"])
    assert get_task("kitchen-partial").minari_dataset == "D4RL/kitchen/partial-v2"


def test_workflow_renders_kitchen_demos_from_minari(tmp_path):
    adroit_source = {"source": "human", "mirror": "/somewhere/hand_dapg", "episodes": 19, "replay": "actions"}
    assert demo_source_for("door", adroit_source) == adroit_source
    assert demo_source_for("kitchen-mixed", adroit_source) == {"source": "minari", "mirror": None, "episodes": 19,
                                                               "replay": "states"}
    workdir = make_workdir(tmp_path / "wd")
    out = snakemake(workdir, "-n", "-p", "all", "--configfile", "config/smoke.yaml", "--config",
                    "tasks=[door,kitchen-mixed]", "demo_source={mirror: /somewhere/hand_dapg}").stdout
    assert job_counts(out)["demos"] == 2
    assert ("vrl3 demos --task kitchen-mixed --source minari --episodes 3 --replay states  --image-size 84"
            " --shadow-size 4096 --out" in out)
    assert "vrl3 demos --task door --source human --episodes 3 --replay actions --mirror /somewhere/hand_dapg" in out
