"""agent.precision: validation, fp32 unchanged, tf32's process flag, bf16 autocast close to fp32 (CPU)."""

import math

import numpy as np
import pytest
import torch

from vrl3.agent import METRIC_NAMES, AgentConfig, VRL3Agent
from vrl3.agent.precision import apply_process_flags, autocast
from vrl3.errors import UserError
from vrl3.replay import Batch

from tests.agent_support import A, make_agent, make_batch, tiny_config


def test_invalid_precision_is_a_user_error():
    with pytest.raises(UserError, match=r"agent\.precision='fp16'.*fp32, tf32, bf16"):
        AgentConfig(precision="fp16")
    with pytest.raises(UserError, match=r"agent\.precision"):
        AgentConfig.from_dict({"precision": "BF16"})


def test_fp32_is_the_default_and_changes_nothing():
    batch = make_batch(seed=1)
    default, explicit = make_agent(seed=3), make_agent(seed=3, precision="fp32")
    assert default.cfg.precision == "fp32"
    for step in range(2):
        assert default.update(batch, 2, step) == explicit.update(batch, 2, step)
    obs, sensor = batch.obs[:3].numpy(), batch.sensor[:3].numpy()
    np.testing.assert_array_equal(default.act_batch(obs, sensor, 0, False), explicit.act_batch(obs, sensor, 0, False))
    for p, q in zip(default.encoder.parameters(), explicit.encoder.parameters()):
        assert torch.equal(p, q)


def test_tf32_allows_tf32_cuda_matmuls_when_the_agent_is_built():
    before = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        make_agent(precision="fp32")
        assert not torch.backends.cuda.matmul.allow_tf32
        make_agent(precision="tf32")
        assert torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before  # process-wide: later tests expect PyTorch's default


def test_autocast_only_for_bf16():
    cpu = torch.device("cpu")
    with autocast(cpu, "bf16"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert not torch.is_autocast_cache_enabled()
    before = torch.backends.cuda.matmul.allow_tf32
    apply_process_flags("fp32")
    apply_process_flags("bf16")
    assert torch.backends.cuda.matmul.allow_tf32 == before  # only tf32 touches the process-wide flags
    for precision in ("fp32", "tf32"):
        with autocast(cpu, precision):
            assert not torch.is_autocast_enabled("cpu")


def test_bf16_update_is_close_to_fp32_and_keeps_float32_state():
    """One stage-2 update with CQL (10 random actions, augmentation, encoder learning) from the same seed."""
    batch = make_batch(seed=4)
    fp32, bf16 = make_agent(seed=1), make_agent(seed=1, precision="bf16")
    m32, m16 = fp32.update(batch, 2, 0), bf16.update(batch, 2, 0)
    assert tuple(m16) == METRIC_NAMES and all(math.isfinite(v) for v in m16.values())
    for name in METRIC_NAMES:  # Q values near 0 need the absolute tolerance; measured differences are ~10x smaller
        assert m16[name] == pytest.approx(m32[name], rel=5e-2, abs=5e-3), name
    # the networks really ran in bfloat16: the Q values and losses are not fp32's to the bit
    assert m16["critic_q1"] != m32["critic_q1"] and m16["critic_loss"] != m32["critic_loss"]
    for module in (bf16.encoder, bf16.actor, bf16.critic, bf16.critic_target):
        assert {p.dtype for p in module.parameters()} == {torch.float32}
    for optimizer in (bf16.encoder_opt, bf16.actor_opt, bf16.critic_opt):
        states = [value for state in optimizer.state.values() for value in state.values()]
        assert states and {value.dtype for value in states} == {torch.float32}
    running_var = bf16.encoder.model.bn1.running_var
    assert running_var.dtype == torch.float32 and not torch.equal(running_var, torch.ones_like(running_var))


def test_bf16_act_gives_float32_actions_in_range_close_to_fp32():
    batch = make_batch(seed=5)
    fp32, bf16 = make_agent(seed=2, std0=1.0, std1=1.0), make_agent(seed=2, std0=1.0, std1=1.0, precision="bf16")
    obs, sensor = batch.obs[:4].numpy(), batch.sensor[:4].numpy()
    for eval_mode in (True, False):
        actions = bf16.act_batch(obs, sensor, 0, eval_mode)
        assert actions.dtype == np.float32 and actions.shape == (4, A)
        assert np.all(np.abs(actions) <= 1)
        # same generator state, so the same noise: only the network's rounding differs
        np.testing.assert_allclose(actions, fp32.act_batch(obs, sensor, 0, eval_mode), rtol=0, atol=2e-2)
    single = bf16.act(obs[0], sensor[0], 0, eval_mode=False)
    assert single.dtype == np.float32 and single.shape == (A,) and np.all(np.abs(single) <= 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_bf16_cuda_graphs_match_eager_bf16():
    device = torch.device("cuda")
    config = tiny_config(precision="bf16")
    eager = VRL3Agent((3, 84, 84), A, 24, config, device, seed=3, cuda_graphs=False)
    graphed = VRL3Agent((3, 84, 84), A, 24, config, device, seed=3, cuda_graphs=True)
    batches = [Batch(*(t.to(device) for t in make_batch(seed=s))) for s in range(3)]
    for step in range(6):  # 3 eager warm-up updates, then capture and replays
        m1, m2 = eager.update(batches[step % 3], 2, step), graphed.update(batches[step % 3], 2, step)
        for name in METRIC_NAMES:
            assert m1[name] == pytest.approx(m2[name], rel=2e-2, abs=2e-3), (step, name)
    eager.load_state_dict(graphed.state_dict())
    obs, sensor = batches[0].obs[:4], batches[0].sensor[:4]
    for eval_mode in (False, True):
        for _ in range(2):  # capture, then replay; a few bf16 steps of 2^-9 allowed for another cuDNN algorithm
            np.testing.assert_allclose(graphed.act_batch(obs, sensor, 0, eval_mode),
                                       eager.act_batch(obs, sensor, 0, eval_mode), rtol=0, atol=1e-2)
