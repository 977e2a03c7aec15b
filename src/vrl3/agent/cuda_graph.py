"""Replay VRL3Agent's update as one captured CUDA graph (speed only: the same kernels on the same numbers).

An eager update launches ~600 small kernels, so on a fast GPU the host's launch overhead, not the GPU, sets the
pace. Here the update for one static setting (CQL on/off, BC on/off, encoder learning, batch shapes) is captured
once and replayed; the per-update inputs (the batch, the random numbers drawn from the agent's generator, σ and the
BC weight) are copied into the graph's static input tensors first. The first `warmup` updates of every setting run
eagerly on a side stream (they are real updates) so that optimiser state, cuDNN and cuBLAS are initialised before
capture, as PyTorch's whole-network capture recipe asks.
"""

from typing import Any

import torch

WARMUP_UPDATES = 3


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
        with torch.cuda.graph(graph):
            metrics = agent.update_with_noise(static_batch, noise, std, settings["cql_weight"],
                                              bc_weight if settings["bc_weight"] > 0 else 0.0,
                                              settings["update_encoder"])
            vector = torch.stack([_as_tensor(metrics[name], device) for name in METRIC_NAMES])
        captured = _Captured(graph, static_batch, noise, std, bc_weight, vector)
        self._captured[key] = captured
        return captured
