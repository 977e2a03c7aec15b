"""Replay VRL3Agent's update and acting as captured CUDA graphs (speed only: the same kernels on the same numbers).

An eager update launches ~600 small kernels, so on a fast GPU the host's launch overhead, not the GPU, sets the
pace. Here the update for one static setting (CQL on/off, BC on/off, encoder learning, batch shapes) is captured
once and replayed; the per-update inputs (the batch, the random numbers drawn from the agent's generator, σ and the
BC weight) are copied into the graph's static input tensors first. The first `warmup` updates of every setting run
eagerly on a side stream (they are real updates) so that optimiser state, cuDNN and cuBLAS are initialised before
capture, as PyTorch's whole-network capture recipe asks. With agent.compile the first warm-up update compiles
the networks (every variant an update calls) and the capture only runs the compiled kernels: a compilation during
capture is an error (torch.compiler stance fail_on_recompile). Acting (encoder and actor at batch N, a few dozen
small kernels) is captured too, one graph per batch shape and eval_mode: see GraphedAct.
"""

from typing import Any

import torch

WARMUP_UPDATES = 3
WARMUP_ACTS = 2


def _as_tensor(value: Any, device: torch.device) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.reshape(()).float()
    return torch.full((), float(value), device=device)


class _Captured:
    def __init__(self, graph, batch, noise, std, bc_weight, metrics):
        self.graph, self.batch, self.noise, self.std, self.bc_weight, self.metrics = (
            graph, batch, noise, std, bc_weight, metrics)


class GraphedUpdate:
    def __init__(self, agent, warmup: int = WARMUP_UPDATES):
        self.agent = agent
        self.warmup = warmup
        self.stream = torch.cuda.Stream(agent.device)
        self.reset()

    def reset(self) -> None:
        """Forget captured graphs (after new optimisers/state tensors); the next updates warm up again."""
        self._captured: dict[tuple, _Captured] = {}
        self._eager_left: dict[tuple, int] = {}

    def __call__(self, batch, settings: dict[str, Any]) -> dict[str, torch.Tensor]:
        from vrl3.agent.agent import METRIC_NAMES

        agent = self.agent
        conservative = settings["cql_weight"] > 0
        key = (settings["cql_weight"], settings["bc_weight"] > 0, settings["update_encoder"],
               tuple((tuple(t.shape), t.dtype) for t in batch))
        captured = self._captured.get(key)
        if captured is None:
            left = self._eager_left.setdefault(key, self.warmup)
            if left > 0:
                self._eager_left[key] = left - 1
                return self._eager(batch, settings, conservative)
            captured = self._capture(key, batch, settings, conservative)
        for static, value in zip(captured.batch, batch):
            static.copy_(value, non_blocking=True)
        agent.draw_noise(batch.obs.shape[0], conservative, out=captured.noise)
        captured.std.fill_(float(settings["std"]))
        captured.bc_weight.fill_(float(settings["bc_weight"]))
        captured.graph.replay()
        return dict(zip(METRIC_NAMES, captured.metrics.clone().unbind()))

    def _eager(self, batch, settings, conservative) -> dict[str, Any]:
        agent = self.agent
        self.stream.wait_stream(torch.cuda.current_stream(agent.device))
        with torch.cuda.stream(self.stream):
            noise = agent.draw_noise(batch.obs.shape[0], conservative)
            metrics = agent.update_with_noise(batch, noise, settings["std"], settings["cql_weight"],
                                              settings["bc_weight"], settings["update_encoder"])
        torch.cuda.current_stream(agent.device).wait_stream(self.stream)
        torch.cuda.synchronize(agent.device)  # rare (warm-up only): keeps cross-stream tensor lifetimes simple
        return metrics

    def _capture(self, key, batch, settings, conservative) -> _Captured:
        from vrl3.agent.agent import METRIC_NAMES

        agent = self.agent
        device = agent.device
        static_batch = type(batch)(*(t.clone() for t in batch))
        noise = agent.noise_buffers(batch.obs.shape[0], conservative)  # filled before every replay
        std = torch.full((), float(settings["std"]), device=device)
        bc_weight = torch.full((), float(settings["bc_weight"]), device=device)
        for optimizer in (agent.actor_opt, agent.critic_opt, agent.encoder_opt):
            optimizer.zero_grad(set_to_none=True)  # captured backward passes must write, not accumulate
        torch.cuda.synchronize(device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.compiler.set_stance("fail_on_recompile"):
            metrics = agent.update_with_noise(static_batch, noise, std, settings["cql_weight"],
                                              bc_weight if settings["bc_weight"] > 0 else 0.0,
                                              settings["update_encoder"])
            vector = torch.stack([_as_tensor(metrics[name], device) for name in METRIC_NAMES])
        captured = _Captured(graph, static_batch, noise, std, bc_weight, vector)
        self._captured[key] = captured
        return captured


class _CapturedAct:
    def __init__(self, graph, obs, sensor, noise, std, actions):
        self.graph, self.obs, self.sensor, self.noise, self.std, self.actions = graph, obs, sensor, noise, std, actions


class GraphedAct:
    """VRL3Agent.policy_actions replayed from a CUDA graph per (observation shape and dtype, eval_mode).

    The graph reads the encoder's and actor's parameters and BatchNorm running statistics where they are, so
    replays see later updates (optimiser steps and load_state_dict write in place); a new encoder (switch_to_rl)
    or a checkpoint load calls reset. The caller puts the encoder in eval mode for capture and replays. Before a
    replay the inputs are copied into the graph's static tensors and, when exploring, the standard-normal noise is
    drawn from the agent's generator into its static buffer, as many numbers in the same order as eager acting.
    Acting changes no state, so the warm-up runs before capture are repeats of the first call, not extra acts.
    """

    def __init__(self, agent, warmup: int = WARMUP_ACTS):
        self.agent = agent
        self.warmup = warmup
        self.stream = torch.cuda.Stream(agent.device)
        self.reset()

    def reset(self) -> None:
        """Forget captured graphs (after a new encoder or a checkpoint load); the next calls capture again."""
        self._captured: dict[tuple, _CapturedAct] = {}

    def __call__(self, obs: torch.Tensor, sensor: torch.Tensor | None, std: float | None) -> torch.Tensor:
        """Actions (N, action_dim) on the device for obs (N, C, 84, 84) and float32 sensor (N, S) or None, on the
        host or the device; std None for μ. The result is the graph's output tensor: read it before the next call.
        """
        key = (tuple(obs.shape), obs.dtype, std is None)
        captured = self._captured.get(key)
        if captured is None:
            captured = self._static_inputs(obs, sensor, std)
        captured.obs.copy_(obs, non_blocking=True)
        if captured.sensor is not None:
            captured.sensor.copy_(sensor, non_blocking=True)
        if captured.noise is not None:
            captured.noise.normal_(generator=self.agent.generator)
            captured.std.fill_(std)
        if captured.graph is None:
            self._capture(captured)
            self._captured[key] = captured
        captured.graph.replay()
        return captured.actions

    def _static_inputs(self, obs, sensor, std) -> _CapturedAct:
        agent = self.agent
        device = agent.device
        static_obs = torch.empty(obs.shape, dtype=obs.dtype, device=device)
        static_sensor = torch.empty(sensor.shape, device=device) if sensor is not None else None
        noise = static_std = None
        if std is not None:
            noise = torch.empty((obs.shape[0], agent.action_dim), device=device)
            static_std = torch.empty((), device=device)
        return _CapturedAct(None, static_obs, static_sensor, noise, static_std, None)

    def _capture(self, captured: _CapturedAct) -> None:
        agent = self.agent
        inputs = (captured.obs, captured.sensor, captured.std, captured.noise)
        self.stream.wait_stream(torch.cuda.current_stream(agent.device))
        with torch.cuda.stream(self.stream):
            for _ in range(self.warmup):  # cuDNN/cuBLAS choose and initialise their kernels outside the capture
                agent.policy_actions(*inputs)
        torch.cuda.current_stream(agent.device).wait_stream(self.stream)
        torch.cuda.synchronize(agent.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured.actions = agent.policy_actions(*inputs)
        captured.graph = graph
