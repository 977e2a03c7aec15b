"""agent.compile: compiled updates match eager ones, no recompiles after the first update, checkpoints unchanged.

Inductor compiles C++ on the CPU, so the first compiled update takes tens of seconds; the tests share one agent
size, and dynamo's cache is per process, so later tests reuse the compiled graphs.
"""

import io

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from vrl3.agent import METRIC_NAMES, AgentConfig
from vrl3.replay import Batch

from tests.agent_support import make_agent, make_batch


def checkpoint_round_trip(state: dict) -> dict:
    """The state as torch.save + torch.load(weights_only=True) give it back: new tensors. Loading a live agent's
    state_dict directly would share its Adam moments (Optimizer.load_state_dict keeps same-device tensors)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def compiled_graphs() -> int:
    """Graphs dynamo has compiled in this process so far (a recompile adds one)."""
    return counters["stats"]["unique_graphs"]


def assert_close_metrics(actual: dict, expected: dict, context) -> None:
    # fp32 both ways: inductor fuses and reorders float operations, so only rounding differs (measured ≤ 1e-5 rel)
    for name in METRIC_NAMES:
        assert actual[name] == pytest.approx(expected[name], rel=1e-4, abs=1e-6), (context, name)


def test_compile_is_off_by_default_and_a_config_key():
    assert AgentConfig().compile is False
    assert AgentConfig.from_dict({"compile": True}).compile is True
    agent = make_agent()
    assert all(network._compiled_call_impl is None
               for network in (agent.encoder, agent.actor, agent.critic, agent.critic_target))


def test_compiled_updates_match_eager_and_do_not_recompile():
    batches = [make_batch(seed=s) for s in range(2)]
    eager, compiled = make_agent(seed=1), make_agent(seed=1, compile=True)
    assert all(network._compiled_call_impl is not None
               for network in (compiled.encoder, compiled.actor, compiled.critic, compiled.critic_target))
    graphs_before = compiled_graphs()
    settled = None
    for step in range(4):  # stage 2 (CQL) and stage 3 alternate: each compiles its variants at its first update
        stage = 2 if step % 2 == 0 else 3
        assert_close_metrics(compiled.update(batches[step % 2], stage, step),
                             eager.update(batches[step % 2], stage, step), (step, stage))
        if step == 1:
            settled = compiled_graphs()
    assert settled > graphs_before  # the networks really ran compiled

    # acting runs the networks eagerly: from the same state the same numbers, and nothing compiles
    eager.load_state_dict(checkpoint_round_trip(compiled.state_dict()))
    obs, sensor = batches[0].obs[:3].numpy(), batches[0].sensor[:3].numpy()
    for eval_mode in (True, False, True, False):
        np.testing.assert_array_equal(compiled.act_batch(obs, sensor, 0, eval_mode),
                                      eager.act_batch(obs, sensor, 0, eval_mode))
    np.testing.assert_array_equal(compiled.act(obs[0], sensor[0], 0, True), eager.act(obs[0], sensor[0], 0, True))
    assert_close_metrics(compiled.update(batches[0], 2, 4), eager.update(batches[0], 2, 4), "after acting")
    assert compiled_graphs() == settled


def test_compiled_checkpoint_has_the_same_keys_and_loads_into_an_uncompiled_agent():
    batch = make_batch(seed=2)
    compiled, plain = make_agent(seed=3, compile=True), make_agent(seed=3)
    for step in range(2):
        compiled.update(batch, 2, step)
    state = compiled.state_dict()
    for name, module_state in plain.state_dict().items():
        if isinstance(module_state, dict):
            assert list(state[name]) == list(module_state), name  # no `_orig_mod.` prefixes
    restored = make_agent(seed=9)
    restored.load_state_dict(checkpoint_round_trip(state))
    for p, q in zip(compiled.encoder.state_dict().values(), restored.encoder.state_dict().values()):
        assert torch.equal(p, q)
    assert_close_metrics(restored.update(batch, 2, 2), compiled.update(batch, 2, 2), "restored")
    # and back: an uncompiled checkpoint loads into a compiled agent
    recompiled = make_agent(seed=10, compile=True)
    recompiled.load_state_dict(checkpoint_round_trip(restored.state_dict()))
    assert_close_metrics(recompiled.update(batch, 2, 3), restored.update(batch, 2, 3), "recompiled")


def test_switch_to_rl_compiles_the_new_encoder():
    batch = make_batch(seed=4)
    compiled, plain = make_agent(seed=5, compile=True), make_agent(seed=5)
    for agent in (compiled, plain):
        agent.switch_to_rl(3)
    assert compiled.encoder._compiled_call_impl is not None and plain.encoder._compiled_call_impl is None
    assert_close_metrics(compiled.update(batch, 2, 0), plain.update(batch, 2, 0), "new encoder")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_cuda_graphed_compiled_update_matches_eager_compiled_update():
    """Both agents run the same compiled kernels (dynamo shares them between same-shaped agents); the graphed one
    compiles during its eager warm-ups and replays them from a graph afterwards."""
    device = torch.device("cuda")
    eager = make_agent(seed=3, device=device, cuda_graphs=False, compile=True)
    graphed = make_agent(seed=3, device=device, cuda_graphs=True, compile=True)
    batches = [Batch(*(t.to(device) for t in make_batch(seed=s))) for s in range(3)]
    for step in range(6):  # 3 eager warm-up updates per stage, then capture and replays
        for stage in (2, 3):
            m1 = eager.update(batches[step % 3], stage, step)
            m2 = graphed.update(batches[step % 3], stage, step)
            for name in METRIC_NAMES:
                # as in test_agent.py's graph test: capturable and plain fused Adam round differently
                assert m1[name] == pytest.approx(m2[name], rel=1e-3, abs=1e-4), (step, stage, name)
    assert len(graphed._graphed._captured) == 2
    for p, q in zip(eager.encoder.parameters(), graphed.encoder.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4)
    obs, sensor = batches[0].obs[:4], batches[0].sensor[:4]
    eager.load_state_dict(checkpoint_round_trip(graphed.state_dict()))
    for eval_mode in (False, True):
        for _ in range(2):  # capture, then replay
            np.testing.assert_allclose(graphed.act_batch(obs, sensor, 0, eval_mode),
                                       eager.act_batch(obs, sensor, 0, eval_mode), rtol=1e-5, atol=1e-6)
