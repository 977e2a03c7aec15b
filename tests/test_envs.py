"""VRL3's Adroit environments: cameras, rewards, goals, termination, seeding, action repeat, frame stack.

Expected values come from reference §4.2-4.6 and are recomputed here by hand, not taken from vrl3.envs.
"""

import pickle

import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vrl3.demos.replay import rendering_disabled
from vrl3.envs import AdroitEnv, episode_success, make_env, pen_dropped, reward_and_goal
from vrl3.envs.timestep import StepType
from vrl3.envs.vector import EnvPool
from vrl3.errors import UserError
from vrl3.tasks import DEFAULT_SHADOW_SIZE, get_task
from vrl3.train.evaluate import evaluate

TASKS = ("door", "hammer", "pen", "relocate")
HAND_JOINT_PREFIXES = ("WRJ", "FFJ", "MFJ", "RFJ", "LFJ", "THJ")


@pytest.fixture(scope="module")
def envs():
    """One env per task (seed 0, action repeat 2, frame stack 1), built on first use."""
    built: dict[str, AdroitEnv] = {}

    def get(task: str) -> AdroitEnv:
        if task not in built:
            built[task] = make_env(task, seed=0)
        return built[task]

    yield get
    for env in built.values():
        env.close()


def xml_euler_quat(euler) -> np.ndarray:
    """MuJoCo's default eulerseq "xyz" is intrinsic, i.e. scipy's upper-case "XYZ"; scipy quats are (x, y, z, w)."""
    x, y, z, w = Rotation.from_euler("XYZ", euler).as_quat()
    return np.array([w, x, y, z])


def same_rotation(q1, q2) -> bool:
    return abs(abs(np.dot(q1, q2)) - 1.0) < 1e-9


def joint_qpos(model, name: str) -> int:
    return int(model.joint(name).qposadr[0])


# --- observations --------------------------------------------------------------------------------------

@pytest.mark.parametrize("task, channels", [("door", 3), ("hammer", 3), ("pen", 3), ("relocate", 9)])
def test_first_time_step_shapes_and_sensor(envs, task, channels):
    env = envs(task)
    time_step = env.reset()
    assert env.obs_shape == (channels, 84, 84) and env.frame_channels == channels
    assert time_step.observation.shape == (channels, 84, 84) and time_step.observation.dtype == np.uint8
    assert np.array_equal(time_step.observation, time_step.frame)
    assert time_step.step_type == StepType.FIRST and time_step.reward == 0.0 and time_step.discount == 1.0
    assert time_step.n_goal_achieved == 0 and not time_step.action.any()
    assert time_step.action.shape == (env.action_dim,) == (get_task(task).action_dim,)
    # The sensor is exactly the 24 hand joints, found by joint name.
    model = env.sim.model
    hand = [joint_qpos(model, model.joint(j).name) for j in range(model.njnt)
            if model.joint(j).name.startswith(HAND_JOINT_PREFIXES)]
    assert len(hand) == 24
    assert time_step.sensor.dtype == np.float32
    assert np.array_equal(time_step.sensor, env.sim.data.qpos[hand].astype(np.float32))


def test_frame_stack_keeps_last_frames_oldest_first():
    env = make_env("door", seed=0, frame_stack=3)
    try:
        first_step = env.reset()
        first, frames = first_step.observation, [first_step.frame]
        assert env.obs_shape == (9, 84, 84) and first.shape == (9, 84, 84)
        assert np.array_equal(first[:3], frames[0])
        assert np.array_equal(first[:3], first[3:6]) and np.array_equal(first[3:6], first[6:])
        observations = []
        for _ in range(3):
            time_step = env.step(np.full(env.action_dim, 0.8))
            frames.append(time_step.frame)
            observations.append(time_step.observation)
        assert not np.array_equal(frames[0], frames[1])  # the hand moved
        assert np.array_equal(observations[0], np.concatenate([frames[0], frames[0], frames[1]]))
        assert np.array_equal(observations[2], np.concatenate(frames[1:4]))
    finally:
        env.close()


def test_images_are_flipped_vertically_by_default():
    env = make_env("hammer", seed=5, flip_images=False)
    try:
        upright = env.reset().frame
    finally:
        env.close()
    flipped = make_env("hammer", seed=5)
    try:
        assert np.array_equal(flipped.reset().frame, upright[:, ::-1, :])
    finally:
        flipped.close()


def test_shadow_size_is_the_scenes_own_by_default_and_reaches_the_renderer():
    import gymnasium

    stock = gymnasium.make("AdroitHandDoor-v1")
    try:  # the default keeps the scene's shadow map, as VRL3 rendered it
        assert stock.unwrapped.model.vis.quality.shadowsize == DEFAULT_SHADOW_SIZE == 4096
    finally:
        stock.close()
    default, small = make_env("door", seed=3), make_env("door", seed=3, shadow_size=256)
    try:
        assert small.sim.model.vis.quality.shadowsize == 256
        difference = np.abs(default.reset().frame.astype(int) - small.reset().frame.astype(int)).max(axis=0)
        assert difference.max() > 8  # the renderer drew the shadows from the smaller map
        assert (difference > 8).mean() < 0.05  # only around the edges of shadows
    finally:
        default.close()
        small.close()
    with pytest.raises(UserError, match=r"shadow_size \(0\) must all be >= 1"):
        make_env("door", seed=0, shadow_size=0)


# --- cameras --------------------------------------------------------------------------------------------

REFERENCE_CAMERAS = [  # reference §4.6: (task, camera, pos, euler or None, quat or None)
    ("door", "top", (0, 0, 1.5), (0, 0, 3.14), None),
    ("hammer", "top", (0, 0, 1.1), (0, 0, 3.14), None),
    ("pen", "vil_camera", (0, -0.8, 0.8), None, (0.92388, 0.382683, 0, 0)),
    ("relocate", "cam1", (0, -0.04, -1.0), (-3.14, 0, 3.14), None),
    ("relocate", "cam2", (0, 0.8, 0.2), (-1.57, 0, 3.14), None),
    ("relocate", "cam3", (0.8, 0, 0.2), (0, 1.57, 1.57), None),
]


@pytest.mark.parametrize("task, camera, pos, euler, quat", REFERENCE_CAMERAS)
def test_camera_pose_matches_reference(envs, task, camera, pos, euler, quat):
    model = envs(task).sim.model
    cam = model.camera(camera)
    assert cam.bodyid[0] == 0 and cam.fovy[0] == pytest.approx(45.0)
    assert np.allclose(cam.pos, pos, atol=1e-12)
    expected = xml_euler_quat(euler) if euler is not None else np.array(quat) / np.linalg.norm(quat)
    assert same_rotation(cam.quat, expected)


def test_door_top_camera_looks_straight_down(envs):
    env = envs("door")
    env.reset()
    # A MuJoCo camera looks along its local -z axis.
    view_direction = -env.sim.data.cam("top").xmat.reshape(3, 3)[:, 2]
    assert np.allclose(view_direction, [0, 0, -1], atol=1e-9)


@pytest.mark.parametrize("task", TASKS)
def test_vrl3_cameras_render_distinct_non_blank_images(envs, task):
    env = envs(task)
    frame = env.reset().frame
    renderer = mujoco.Renderer(env.sim.model, 84, 84)
    try:
        renderer.update_scene(env.sim.data, camera="fixed")
        fixed = renderer.render()[::-1].transpose(2, 0, 1).astype(int)
    finally:
        renderer.close()
    images = [frame[3 * i:3 * i + 3].astype(int) for i in range(len(env.task.cameras))]
    for image in images:
        assert image.std() > 5.0 and (image.max(axis=0) > 0).mean() > 0.02
        assert np.abs(image - fixed).mean() > 10.0
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.abs(images[i] - images[j]).mean() > 2.0


def test_pen_vil_camera_was_moved_not_duplicated(envs):
    model = envs("pen").sim.model
    names = [model.camera(i).name for i in range(model.ncam)]
    assert names.count("vil_camera") == 1


def test_physics_are_those_of_gymnasium_robotics(envs):
    import gymnasium

    env = envs("relocate")
    env.reset(seed=11)
    reference = gymnasium.make("AdroitHandRelocate-v1").unwrapped
    reference.reset(seed=11)
    # Same reset draws apart from the target height that VRL3 fixes.
    reference.model.site_pos[reference.model.site("target").id, 2] = 0.25
    mujoco.mj_forward(reference.model, reference.data)
    rng = np.random.default_rng(0)
    for _ in range(5):
        action = rng.uniform(-1, 1, env.action_dim).astype(np.float32)
        env.sim.step(action)
        reference.step(action)
    assert np.array_equal(env.sim.data.qpos, reference.data.qpos)
    reference.close()


# --- rewards and goals (reference §4.5) -----------------------------------------------------------------

def test_door_hinge_is_second_to_last_qpos(envs):
    model = envs("door").sim.model
    assert joint_qpos(model, "door_hinge") == model.nq - 2
    assert joint_qpos(model, "latch") == model.nq - 1


@pytest.mark.parametrize("hinge, reward, goal", [
    (0.1, -0.1 * 1.47 ** 2, False),
    (0.5, -0.1 * 1.07 ** 2 + 2, False),
    (1.2, -0.1 * 0.37 ** 2 + 10, False),
    (1.38, -0.1 * 0.19 ** 2 + 20, False),
    (1.45, -0.1 * 0.12 ** 2 + 20, True),
])
def test_door_reward(envs, hinge, reward, goal):
    env = envs("door")
    env.reset()
    env.sim.data.qpos[-2] = hinge
    mujoco.mj_forward(env.sim.model, env.sim.data)
    assert reward_and_goal("door", env.sim.model, env.sim.data) == (pytest.approx(reward, abs=1e-9), goal)


@pytest.mark.parametrize("nail_depth, reward, goal", [
    # S_target sits 0.101 above the board along the nail axis, nail_goal 0.01: distance = 0.091 - depth.
    (0.0, -0.91, False),
    (0.075, -0.16 + 25, False),
    (0.085, -0.06 + 100, True),
])
def test_hammer_reward(envs, nail_depth, reward, goal):
    env = envs("hammer")
    env.reset()
    env.sim.data.qpos[joint_qpos(env.sim.model, "nail_dir")] = nail_depth
    mujoco.mj_forward(env.sim.model, env.sim.data)
    assert reward_and_goal("hammer", env.sim.model, env.sim.data) == (pytest.approx(reward, abs=1e-9), goal)


def pen_slides(env: AdroitEnv, world_offset) -> np.ndarray:
    """Values of the pen's slide joints OBJTx-z (axes in the rotated pen body frame) moving it by world_offset."""
    model = env.sim.model
    assert [model.joint(j).name for j in range(model.njnt)][-6:-3] == ["OBJTx", "OBJTy", "OBJTz"]
    body_rotation = Rotation.from_quat(np.roll(model.body("Object").quat, -1))
    return body_rotation.inv().apply(world_offset)


def set_pen(env: AdroitEnv, target_tilt: float, pen_offset=(0.0, 0.0, 0.0)) -> None:
    """Target pen = the pen's rest orientation tilted by `target_tilt` rad; pen moved by `pen_offset` (world)."""
    model, data = env.sim.model, env.sim.data
    pen = Rotation.from_quat(np.roll(model.body("Object").quat, -1))
    data.qpos[-6:] = 0.0
    data.qpos[-6:-3] = pen_slides(env, pen_offset)
    target = pen * Rotation.from_rotvec([target_tilt, 0, 0])  # tilt about an axis normal to the pen
    model.body_quat[model.body("target").id] = np.roll(target.as_quat(), 1)
    mujoco.mj_forward(model, data)


@pytest.mark.parametrize("tilt_deg, offset, reward, goal", [
    (0, (0, 0, 0), 50.0, True),
    (15, (0.05, 0, 0), 50.0, True),  # cos 15 deg = 0.966 > 0.95, 0.05 < 0.075 from the ball
    (15, (0, 0, -0.1), 0.0, True),  # the goal ignores the position
    (20, (0, 0, 0), 0.0, False),  # cos 20 deg = 0.940
    (90, (0, 0, 0), 0.0, False),
])
def test_pen_reward(envs, tilt_deg, offset, reward, goal):
    env = envs("pen")
    env.reset()
    set_pen(env, np.radians(tilt_deg), offset)
    assert reward_and_goal("pen", env.sim.model, env.sim.data) == (reward, goal)


def test_pen_dropped_below_0075(envs):
    env = envs("pen")
    env.reset()
    set_pen(env, 0.0, (0, 0, -0.15))  # rest height 0.25 -> 0.10
    assert not pen_dropped(env.sim.model, env.sim.data) and not env.terminated()
    set_pen(env, 0.0, (0, 0, -0.2))  # -> 0.05
    assert pen_dropped(env.sim.model, env.sim.data) and env.terminated()


def test_dropped_pen_terminates_with_discount_zero(envs):
    env = envs("pen")
    env.reset()
    state = env.sim.get_env_state()
    state["qpos"][-6:-3] = pen_slides(env, (0, 0, -0.2))  # rest height 0.25 -> 0.05
    env.reset_to_state(state)
    time_step = env.step(np.zeros(env.action_dim))
    assert time_step.step_type == StepType.LAST and time_step.discount == 0.0
    assert not time_step.time_limit_reached


@pytest.mark.parametrize("distance, reward, goal", [(0.03, 30.0, True), (0.07, 10.0, True), (0.2, 0.0, False)])
def test_relocate_reward(envs, distance, reward, goal):
    env = envs("relocate")
    env.reset()
    model, data = env.sim.model, env.sim.data
    direction = np.array([1.0, -2.0, 2.0]) / 3.0
    model.site_pos[model.site("target").id] = data.body("Object").xpos + distance * direction  # target is in world
    mujoco.mj_forward(model, data)
    assert np.linalg.norm(data.site("target").xpos - data.body("Object").xpos) == pytest.approx(distance)
    assert reward_and_goal("relocate", model, data) == (reward, goal)


def test_episode_success_rule():
    assert not episode_success("door", 25) and episode_success("door", 26)
    assert not episode_success(get_task("hammer"), 25) and episode_success("relocate", 26)
    assert not episode_success("pen", 20) and episode_success("pen", 21)


def script_goal_states(env: AdroitEnv, goal_env_steps: set[int], monkeypatch) -> None:
    """After every physics env step k (1, 2, ...), set the simulator state so the goal holds iff k in goal_env_steps.

    door: hinge 1.5 rad (goal: > 1.4) or 0; pen: the pen at rest, its axis along the target's (similarity 1 > 0.95)
    or tilted 0.5 rad away from it (cos 0.5 = 0.88), held still so it never drops.
    """
    model, data, real_step = env.sim.model, env.sim.data, env.sim.step
    counter = {"env_steps": 0}
    if env.task.name == "pen":
        set_pen(env, 0.0)  # target = the pen's rest orientation
        tilt = joint_qpos(model, "OBJRx")  # a turn about the pen body's x axis, normal to the pen

    def step(action):
        result = real_step(action)
        counter["env_steps"] += 1
        goal = counter["env_steps"] in goal_env_steps
        if env.task.name == "door":
            data.qpos[joint_qpos(model, "door_hinge")] = 1.5 if goal else 0.0
            data.qvel[model.joint("door_hinge").dofadr[0]] = 0.0
        else:
            data.qpos[-6:], data.qvel[-6:] = 0.0, 0.0
            data.qpos[tilt] = 0.0 if goal else 0.5
        mujoco.mj_forward(model, data)
        return result

    monkeypatch.setattr(env.sim, "step", step)


@pytest.mark.parametrize("task, threshold", [("door", 25), ("pen", 20)])
@pytest.mark.parametrize("extra", [0, 1])
def test_success_flips_at_the_goal_step_threshold_in_a_driven_episode(envs, monkeypatch, task, threshold, extra):
    """A whole episode (action repeat 2, time limit) whose goal holds on exactly `threshold + extra` env steps,
    starting on the second sub-step of an agent step: goal steps are counted per env step, not per agent step, and
    VRL3's rule (reference §4.2/§4.5: more than 25 goal steps, pen more than 20) flips between 25 and 26 (20, 21)."""
    env = envs(task)
    assert env.action_repeat == 2
    goal_env_steps = set(range(10, 10 + threshold + extra))  # env step 10 = 2nd sub-step of agent step 5
    with rendering_disabled(env):  # frames are not checked here; rendering is slow on a CPU
        env.reset()
        script_goal_states(env, goal_env_steps, monkeypatch)
        time_steps = [env.step(np.zeros(env.action_dim))]
        while not time_steps[-1].last():
            time_steps.append(env.step(np.zeros(env.action_dim)))
    agent_steps = get_task(task).max_env_steps // 2
    assert len(time_steps) == agent_steps and time_steps[-1].time_limit_reached and time_steps[-1].discount == 1.0
    # agent step t (from 1) holds env steps 2t - 1 and 2t
    expected = [len({2 * t - 1, 2 * t} & goal_env_steps) for t in range(1, agent_steps + 1)]
    assert [step.n_goal_achieved for step in time_steps] == expected
    assert expected[4] == 1  # a half-goal agent step: per-agent-step counting would give 2 or 0 here
    goal_steps = sum(step.n_goal_achieved for step in time_steps)  # what evaluation sums (vrl3.train.evaluate)
    assert goal_steps == threshold + extra
    assert episode_success(task, goal_steps) == (extra == 1)


class ZeroPolicy:
    def act_batch(self, obs, sensor, step, eval_mode):
        assert eval_mode
        return np.zeros((len(obs), get_task("door").action_dim), np.float32)


def test_evaluation_success_rate_and_return_of_scripted_episodes(monkeypatch):
    """Five 200-step door episodes whose goal holds on 26, 25, 40, 0 and 30 env steps: success rate 3/5 (more than
    25 goal steps, reference §4.2); the return sums rewards rescaled by 1/20 (hinge 1.5: 20 - 0.1 * 0.07^2, hinge 0:
    -0.1 * 1.57^2)."""
    goal_counts = (26, 25, 40, 0, 30)
    goal_env_steps = set()
    for episode, count in enumerate(goal_counts):
        goal_env_steps |= set(range(200 * episode + 50, 200 * episode + 50 + count))
    pool = EnvPool("door", [0], {"action_repeat": 2})
    try:
        env = pool._envs[0]
        with rendering_disabled(env):
            script_goal_states(env, goal_env_steps, monkeypatch)
            result = evaluate(ZeroPolicy(), pool, num_episodes=5, step=0)
    finally:
        pool.close()
    assert result["success_rate"] == pytest.approx(0.6)
    assert result["episode_length"] == 200
    goal_reward, other_reward = 20 - 0.1 * 0.07 ** 2, -0.1 * 1.57 ** 2
    returns = [(count * goal_reward + (200 - count) * other_reward) / 20 for count in goal_counts]
    assert result["episode_reward"] == pytest.approx(np.mean(returns), rel=1e-9)


REWARD_SCALES = {"door": 1 / 20, "hammer": 1 / 100, "pen": 1 / 50, "relocate": 1 / 30}  # reference §4.3


def bonus_state(env: AdroitEnv) -> None:
    """pen: the target along the pen (bonus 50); relocate: the target 3 cm from the ball (bonus 10 + 20)."""
    if env.task.name == "pen":
        set_pen(env, 0.0)
    elif env.task.name == "relocate":
        model, data = env.sim.model, env.sim.data
        model.site_pos[model.site("target").id] = data.body("Object").xpos + [0.0, 0.0, 0.03]
        mujoco.mj_forward(model, data)


@pytest.mark.parametrize("task", REWARD_SCALES)
def test_step_reward_is_the_task_reward_rescaled(task):
    env = make_env(task, seed=0, action_repeat=1)
    try:
        with rendering_disabled(env):
            env.reset()
            bonus_state(env)
            time_step = env.step(np.zeros(env.action_dim))
        raw, _ = reward_and_goal(task, env.sim.model, env.sim.data)
    finally:
        env.close()
    assert raw != 0
    assert time_step.reward == pytest.approx(raw * REWARD_SCALES[task], rel=1e-12)


# --- resets, seeding, action repeat, time limit --------------------------------------------------------

def test_seeding_makes_first_frames_reproducible(envs):
    env = envs("door")
    first = env.reset(seed=123)
    door_pos = env.sim.get_env_state()["door_body_pos"]
    again = env.reset(seed=123)
    assert np.array_equal(first.observation, again.observation)
    other = env.reset(seed=124)
    assert not np.array_equal(env.sim.get_env_state()["door_body_pos"], door_pos)
    assert not np.array_equal(first.observation, other.observation)


def test_make_env_seed_is_used_by_first_reset_only():
    envs_ = [make_env("door", seed=s) for s in (7, 7, 8)]
    try:
        firsts = [env.reset() for env in envs_]
        assert np.array_equal(firsts[0].observation, firsts[1].observation)
        assert not np.array_equal(firsts[0].observation, firsts[2].observation)
        positions = [envs_[0].sim.get_env_state()["door_body_pos"]]
        envs_[0].reset()  # continues the RNG: a new door position
        positions.append(envs_[0].sim.get_env_state()["door_body_pos"])
        assert not np.array_equal(positions[0], positions[1])
        lo, hi = np.array([-0.3, 0.25, 0.252]), np.array([-0.2, 0.35, 0.35])
        assert all(np.all((lo <= p) & (p <= hi)) for p in positions)
    finally:
        for env in envs_:
            env.close()


def test_relocate_target_height_is_fixed(envs):
    env = envs("relocate")
    targets = []
    for _ in range(3):
        env.reset()
        targets.append(env.sim.data.site("target").xpos.copy())
    targets = np.array(targets)
    assert np.all(targets[:, 2] == 0.25)
    assert np.all(np.abs(targets[:, :2]) <= 0.2) and len(np.unique(targets[:, 0])) == 3


def test_reset_to_state_drops_extra_keys_and_restores_state(envs):
    env = envs("hammer")
    env.reset()
    for _ in range(3):
        env.step(np.full(env.action_dim, 0.5))
    state = env.sim.get_env_state()  # carries target_pos, which AdroitHandHammer-v1's set_env_state rejects
    assert set(state) > set(env.task.state_keys)
    env.reset()
    time_step = env.reset_to_state(state)
    assert time_step.first()
    assert np.array_equal(env.sim.data.qpos, state["qpos"])
    assert np.array_equal(env.sim.model.body("nail_board").pos, state["board_pos"])
    with pytest.raises(UserError, match="board_pos"):
        env.reset_to_state({"qpos": state["qpos"], "qvel": state["qvel"]})


def test_reset_to_door_demo_state(envs, mirror):
    with open(mirror / "demonstrations" / "door-v0_demos.pickle", "rb") as f:
        demo = pickle.load(f)[0]
    env = envs("door")
    time_step = env.reset_to_state(demo["init_state_dict"])
    assert np.array_equal(env.sim.data.qpos, demo["init_state_dict"]["qpos"])
    # DAPG door observation: index 28 is the hinge angle (qpos[-2]).
    assert env.sim.data.qpos[-2] == pytest.approx(demo["observations"][0][28])
    assert np.array_equal(time_step.sensor, demo["init_state_dict"]["qpos"][4:-2].astype(np.float32))


def test_action_repeat_sums_rewards_and_counts_goal_sub_steps():
    """Door swinging shut through the 1.4 rad goal threshold: goal on the first sub-step only."""
    repeat2 = make_env("door", seed=0, action_repeat=2)
    repeat1 = make_env("door", seed=0, action_repeat=1)
    try:
        repeat2.reset()
        state = repeat2.sim.get_env_state()
        state["qpos"][-2], state["qvel"][-2] = 1.43, -2.0
        repeat2.reset_to_state(state)
        repeat1.reset()
        repeat1.reset_to_state(state)
        action = np.zeros(repeat2.action_dim)
        two = repeat2.step(action)
        one_a, one_b = repeat1.step(action), repeat1.step(action)
        assert (one_a.n_goal_achieved, one_b.n_goal_achieved) == (1, 0)
        assert two.n_goal_achieved == 1
        assert two.reward == pytest.approx(one_a.reward + one_b.reward, abs=1e-12)
        hinges = 1.41, 1.39  # approximately, both above 1.35: 2 * (20 - 0.1 (h - 1.57)^2) / 20
        assert two.reward == pytest.approx(sum(20 - 0.1 * (h - 1.57) ** 2 for h in hinges) / 20, abs=1e-3)
        assert np.array_equal(two.frame, one_b.frame) and np.array_equal(two.sensor, one_b.sensor)
    finally:
        repeat2.close()
        repeat1.close()


def test_actions_are_clipped(envs):
    env = envs("hammer")
    env.reset()
    time_step = env.step(np.full(env.action_dim, 3.0))
    assert time_step.action.dtype == np.float32 and np.all(time_step.action == 1.0)


@pytest.mark.parametrize("task, agent_steps", [("door", 100), ("pen", 50)])
def test_time_limit_in_env_steps(envs, task, agent_steps):
    env = envs(task)
    env.reset()
    for step in range(1, agent_steps + 1):
        time_step = env.step(np.zeros(env.action_dim))  # the pen is held, not dropped, with zero actions
        if step < agent_steps:
            assert time_step.step_type == StepType.MID and not time_step.time_limit_reached
    assert time_step.step_type == StepType.LAST and time_step.time_limit_reached and time_step.discount == 1.0


def test_euler_convention_matches_mujoco_xml_compiler(envs):
    # pen's XML declares view_2 with euler="-1.57 0 3.14", the angles of relocate's cam2 in the fork's XML.
    xml_compiled = envs("pen").sim.model.camera("view_2").quat
    assert same_rotation(envs("relocate").sim.model.camera("cam2").quat, xml_compiled)


def test_restored_rng_state_continues_the_reset_sequence(envs):
    env = envs("door")
    env.reset(seed=3)
    state = env.rng_state()
    env.reset()
    expected = env.sim.get_env_state()["door_body_pos"]
    restored = make_env("door", seed=99)
    try:
        restored.set_rng_state(state)
        restored.reset()  # does not re-seed with 99
        assert np.array_equal(restored.sim.get_env_state()["door_body_pos"], expected)
    finally:
        restored.close()


@pytest.mark.parametrize("demo_index, succeeds", [(11, True), (17, False)])
def test_open_loop_door_demo_replay_reproduces_recorded_goal_steps(mirror, demo_index, succeeds):
    """Reference §11: replaying the human demos on MuJoCo 4 gives goal-step counts within 1-2 of the recordings."""
    with open(mirror / "demonstrations" / "door-v0_demos.pickle", "rb") as f:
        demo = pickle.load(f)[demo_index]
    recorded_goal_steps = int((demo["observations"][:, 28] > 1.4).sum())  # index 28: hinge before each action
    env = make_env("door", seed=0, action_repeat=1, time_limit=False)
    env.sim.model.light_castshadow[:] = 0  # 4x faster software rendering; pixels are not checked here
    try:
        env.reset_to_state(demo["init_state_dict"])
        goal_steps = 0
        for action in demo["actions"]:
            time_step = env.step(action)
            assert time_step.step_type == StepType.MID
            goal_steps += time_step.n_goal_achieved
    finally:
        env.close()
    assert abs(goal_steps - recorded_goal_steps) <= 3
    assert episode_success("door", goal_steps) == succeeds
