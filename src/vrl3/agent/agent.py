"""VRL3Agent: acting and the shared stage-2/stage-3 update (reference §2, §3, §4.1)."""

import contextlib
import copy
from typing import Any

import numpy as np
import torch

from vrl3.agent import losses, precision
from vrl3.agent.augment import RandomShiftsAug
from vrl3.agent.config import AgentConfig
from vrl3.agent.encoder import RLEncoder, load_stage1_checkpoint, make_resnet84
from vrl3.agent.networks import (Actor, Critic, clamp_straight_through, normal_entropy, normal_log_prob,
                                 orthogonal_init, sample_action)

METRIC_NAMES = ("critic_target_q", "critic_q1", "critic_q2", "critic_loss", "actor_loss", "actor_loss_bc",
                "actor_logprob", "actor_ent", "abs_pretanh", "max_abs_pretanh", "batch_reward")


def metrics_to_floats(metrics: dict[str, Any]) -> dict[str, float]:
    """Convert tensor metrics to floats with a single device synchronisation."""
    tensor_keys = [k for k, v in metrics.items() if isinstance(v, torch.Tensor)]
    values = torch.stack([metrics[k].detach().float().reshape(()) for k in tensor_keys]).tolist() if tensor_keys else []
    floats = {k: float(v) for k, v in metrics.items() if not isinstance(v, torch.Tensor)}
    floats.update(zip(tensor_keys, values))
    return {k: floats[k] for k in metrics}


def _set_requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for param in module.parameters():
        param.requires_grad_(flag)


def _compile_in_place(module: torch.nn.Module) -> None:
    """nn.Module.compile keeps the module and its state_dict keys (torch.compile(module) would wrap it and prefix the
    keys with `_orig_mod.`). Inductor's default mode, without CUDA graphs of its own: GraphedUpdate captures the whole
    update around the compiled kernels. Static shapes: training uses one batch shape, and CUDA graphs need fixed
    shapes anyway."""
    module.compile(mode="default", dynamic=False)


class VRL3Agent:
    """Encoder (ResNet84), actor, twin critic + target; stages 2 and 3 share `update`.

    obs_shape is the stacked image shape (3·cameras·frame_stack, 84, 84). All randomness of acting and updating
    (augmentation shifts, policy noise, CQL random actions) comes from one torch.Generator on `device` seeded from
    `seed`; network initialisation from a CPU generator seeded from `seed`, so it is the same on every device.
    cfg.precision: fp32 keeps PyTorch's defaults; tf32 allows TF32 CUDA matmuls for the whole process when the agent
    is built; bf16 runs the network forward passes (encoder, actor, critic, critic target; in updates and acting)
    under bfloat16 autocast, while parameters, optimiser states, targets, losses and metrics stay float32.
    cfg.compile compiles the encoder, actor, critic and critic target in place (the same computation up to float
    rounding); updates run them compiled, acting runs them eagerly (see act_batch). The first update of each stage
    setting compiles its variants (grad mode, requires_grad and input shapes differ between the calls of one update;
    each call site keeps its variant, so no update after the first recompiles); with cuda_graphs that update is one
    of GraphedUpdate's eager warm-ups, never the capture.
    """

    def __init__(self, obs_shape: tuple[int, int, int], action_dim: int, sensor_dim: int, cfg: AgentConfig,
                 device: str | torch.device = "cpu", seed: int = 0, stage1_checkpoint: str | None = None,
                 cuda_graphs: bool | None = None, channels_last: bool | None = None):
        self.cfg = cfg
        precision.apply_process_flags(cfg.precision)
        self.device = torch.device(device)
        on_cuda = self.device.type == "cuda"
        if on_cuda:  # as VRL3's train_adroit.py: cuDNN times its convolution algorithms once per (fixed) shape
            torch.backends.cudnn.benchmark = True
        # speed only (same computation): NHWC convolutions/BatchNorm, replayed CUDA graphs for updates and acting
        self.channels_last = on_cuda if channels_last is None else channels_last
        self.cuda_graphs = on_cuda if cuda_graphs is None else cuda_graphs
        if self.cuda_graphs and not on_cuda:
            raise ValueError("cuda_graphs needs a CUDA device")
        self._graphed = None
        self._graphed_act = None
        self.obs_shape = tuple(obs_shape)
        self.action_dim = action_dim
        self.sensor_dim = sensor_dim if cfg.use_sensor else 0
        self.init_generator = torch.Generator().manual_seed(seed)
        self.generator = torch.Generator(device=self.device).manual_seed(seed + 1)

        self.switch_to_rl(self.obs_shape[0], stage1_checkpoint)
        input_dim = self.encoder.repr_dim + self.sensor_dim
        self.actor = Actor(input_dim, action_dim, cfg.feature_dim, cfg.hidden_dim)
        self.critic = Critic(input_dim, action_dim, cfg.feature_dim, cfg.hidden_dim)
        orthogonal_init(self.actor, self.init_generator)
        orthogonal_init(self.critic, self.init_generator)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.critic_target = copy.deepcopy(self.critic)
        _set_requires_grad(self.critic_target, False)
        if cfg.compile:  # after the deepcopy: a copied compiled module would call the original's forward
            for network in (self.actor, self.critic, self.critic_target):
                _compile_in_place(network)

        self.actor_opt = self._adam(self.actor.parameters(), cfg.lr)
        self.critic_opt = self._adam(self.critic.parameters(), cfg.lr)
        self.aug = RandomShiftsAug(pad=4)
        if self.cuda_graphs:
            from vrl3.agent.cuda_graph import GraphedAct, GraphedUpdate

            self._graphed = GraphedUpdate(self)
            self._graphed_act = GraphedAct(self)

    def _adam(self, params, lr: float) -> torch.optim.Adam:
        on_cuda = self.device.type == "cuda"
        return torch.optim.Adam(params, lr=lr, fused=on_cuda, capturable=on_cuda and self.cuda_graphs)

    # ------------------------------------------------------------------ setup
    def switch_to_rl(self, obs_channels: int, stage1_checkpoint: str | None = None) -> None:
        """Build the encoder from cfg.stage1_model_name, load the stage-1 checkpoint strictly (None keeps the
        Kaiming init: the `stage1: none` ablation), expand the stem to `obs_channels`, and (re)create its optimiser.
        """
        model = make_resnet84(self.cfg.stage1_model_name, num_classes=None, generator=self.init_generator)
        if stage1_checkpoint is not None:
            load_stage1_checkpoint(model, stage1_checkpoint)
        encoder = RLEncoder(model)
        encoder.expand_channels(obs_channels)
        if self.channels_last:
            encoder.use_channels_last()
        if self.cfg.compile:
            _compile_in_place(encoder)
        self.encoder = encoder.to(self.device).train()
        self.encoder_opt = self._adam(self.encoder.parameters(), self.cfg.lr * self.cfg.encoder_lr_scale)
        self._reset_graphs()

    def _reset_graphs(self) -> None:
        """Drop captured CUDA graphs: they read the tensors they were captured with, which a new encoder or new
        optimiser states replace."""
        if self._graphed is not None:
            self._graphed.reset()
        if self._graphed_act is not None:
            self._graphed_act.reset()

    # ------------------------------------------------------------------ schedules
    def stddev(self, step: int) -> float:
        """Stage-3 exploration/target σ: linear(std0, std1, std_n_decay) with std1 forced <= std0."""
        cfg = self.cfg
        return losses.linear_schedule(cfg.std0, min(cfg.std1, cfg.std0), cfg.std_n_decay, step)

    def is_update_step(self, step: int) -> bool:
        """Stage 3 updates only when step % update_every_steps == 0 (the caller checks; `update` always updates)."""
        return step % self.cfg.update_every_steps == 0

    def _forward(self, network: torch.nn.Module, *inputs: torch.Tensor):
        """network(*inputs) in cfg.precision (bf16: under autocast), its outputs as float32 so that everything
        computed from them (targets, losses, metrics, actions) is float32; for fp32 outputs .float() is a no-op."""
        with precision.autocast(self.device, self.cfg.precision):
            outputs = network(*inputs)
        if isinstance(outputs, tuple):
            return tuple(output.float() for output in outputs)
        return outputs.float()

    def _features(self, obs: torch.Tensor, sensor: torch.Tensor | None) -> torch.Tensor:
        features = self._forward(self.encoder, obs)
        if self.sensor_dim:
            features = torch.cat([features, sensor.to(features.dtype)], dim=1)
        return features

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(self, obs: np.ndarray | torch.Tensor, sensor: np.ndarray | torch.Tensor | None, step: int,
            eval_mode: bool) -> np.ndarray:
        """One action (action_dim,) for one uint8 observation (C, 84, 84): act_batch on a batch of one."""
        obs = torch.as_tensor(obs).unsqueeze(0)
        sensor = torch.as_tensor(sensor).unsqueeze(0) if self.sensor_dim else None
        return self.act_batch(obs, sensor, step, eval_mode)[0]

    @torch.no_grad()
    def act_batch(self, obs: np.ndarray | torch.Tensor, sensor: np.ndarray | torch.Tensor | None, step: int,
                  eval_mode: bool) -> np.ndarray:
        """Actions (N, action_dim) float32 for uint8 observations (N, C, 84, 84) and sensors (N, sensor_dim)
        (None when the agent uses no sensor): μ when evaluating, else μ + N(0, σ(step)²) clamped, the noise drawn
        as one (N, action_dim) standard-normal tensor from the agent's generator.

        BatchNorm uses its running statistics here. Before num_expl_steps (exploration only) the actions are
        Uniform[-1, 1), drawn as one (N, action_dim) tensor (VRL3 draws Uniform[0, 1), a bug; see
        docs/deviations.md). With cuda_graphs the network part replays a CUDA graph captured per batch shape and
        eval_mode. One device-to-host copy per call. With cfg.compile the networks still run eagerly here: batch
        sizes vary (evaluation envs finish their episodes at different steps), each size would be a compilation of
        its own, and the tiny acting batches gain little from inductor.
        """
        obs = torch.as_tensor(obs)
        if obs.dim() != 4:
            raise ValueError(f"act_batch needs observations shaped (N, C, 84, 84), got {tuple(obs.shape)}")
        if not eval_mode and step < self.cfg.num_expl_steps:
            actions = torch.rand((obs.shape[0], self.action_dim), generator=self.generator, device=self.device)
            return (actions * 2 - 1).cpu().numpy()
        sensor = torch.as_tensor(sensor, dtype=torch.float32) if self.sensor_dim else None
        std = None if eval_mode else self.stddev(step)
        self.encoder.eval()
        try:
            with torch.compiler.set_stance("force_eager") if self.cfg.compile else contextlib.nullcontext():
                if self._graphed_act is not None:
                    actions = self._graphed_act(obs, sensor, std)
                else:
                    actions = self._act_eager(obs, sensor, std)
        finally:
            self.encoder.train()
        return actions.cpu().numpy()

    def _act_eager(self, obs: torch.Tensor, sensor: torch.Tensor | None, std: float | None) -> torch.Tensor:
        obs = obs.to(self.device)
        sensor = sensor.to(self.device) if sensor is not None else None
        noise = None
        if std is not None:
            noise = torch.randn((obs.shape[0], self.action_dim), generator=self.generator, device=self.device)
        return self.policy_actions(obs, sensor, std, noise)

    def policy_actions(self, obs: torch.Tensor, sensor: torch.Tensor | None, std: float | torch.Tensor | None,
                       noise: torch.Tensor | None) -> torch.Tensor:
        """μ (std None) or μ + std·noise clamped to ±(1 - 1e-6), without a noise clip, for tensors on the device.
        The caller puts the encoder in eval mode; std may be a 0-d device tensor (CUDA graph replays)."""
        mu, _ = self._forward(self.actor, self._features(obs, sensor))
        if std is None:
            return mu
        return sample_action(mu, std, clip=None, noise=noise)

    # ------------------------------------------------------------------ learning
    def stage_settings(self, stage: int, step: int) -> dict[str, Any]:
        """σ, CQL weight, BC weight and whether the encoder learns, for a stage at an agent step."""
        cfg = self.cfg
        if stage == 2:
            return dict(std=cfg.stage2_std, cql_weight=cfg.cql_weight, bc_weight=cfg.stage2_bc_weight,
                        update_encoder=cfg.stage2_update_encoder and cfg.encoder_lr_scale > 0)
        if stage == 3:
            return dict(std=self.stddev(step), cql_weight=cfg.cql_weight if cfg.stage3_conservative else 0.0,
                        bc_weight=losses.stage3_bc_weight(step, cfg.stage3_bc_lam0, cfg.stage3_bc_lam1),
                        update_encoder=cfg.stage3_update_encoder and cfg.encoder_lr_scale > 0)
        raise ValueError(f"stage must be 2 or 3, got {stage}")

    def update(self, batch, stage: int, step: int, sync: bool = True) -> dict[str, Any]:
        """One gradient update on `batch` (fields obs, action, reward, discount, next_obs, sensor, next_sensor,
        tensors on the agent's device). Returns the §2.7 metrics: floats, or with sync=False 0-d tensors
        (convert later with metrics_to_floats to avoid a device synchronisation per update).
        """
        settings = self.stage_settings(stage, step)
        if self._graphed is not None:
            metrics = self._graphed(batch, settings)
        else:
            noise = self.draw_noise(batch.obs.shape[0], settings["cql_weight"] > 0)
            metrics = self.update_with_noise(batch, noise, settings["std"], settings["cql_weight"],
                                             settings["bc_weight"], settings["update_encoder"])
        return metrics_to_floats(metrics) if sync else metrics

    def noise_buffers(self, batch_size: int, conservative: bool) -> dict[str, torch.Tensor]:
        """Uninitialised tensors for all random numbers of one update (see draw_noise)."""
        shapes = {"target_noise": (batch_size, self.action_dim), "actor_noise": (batch_size, self.action_dim)}
        if self.cfg.use_data_aug:
            shapes.update(obs_shift=(batch_size, 2), next_obs_shift=(batch_size, 2))
        if conservative:
            shapes.update(random_actions=(batch_size, self.cfg.cql_n_random, self.action_dim),
                          pi_noise=(batch_size, self.action_dim), pi_next_noise=(batch_size, self.action_dim))
        return {name: torch.empty(shape, device=self.device, dtype=torch.int64 if name.endswith("shift") else None)
                for name, shape in shapes.items()}

    def draw_noise(self, batch_size: int, conservative: bool, out: dict[str, torch.Tensor] | None = None
                   ) -> dict[str, torch.Tensor]:
        """All random numbers of one update, drawn in a fixed order from the agent's generator (into `out`'s
        tensors when given): augmentation shifts, standard-normal policy noise, CQL's uniform random actions.
        """
        noise = out if out is not None else self.noise_buffers(batch_size, conservative)
        for name in sorted(noise):
            if name.endswith("shift"):
                noise[name].random_(0, 2 * self.aug.pad + 1, generator=self.generator)
            elif name == "random_actions":
                noise[name].uniform_(-1.0, 1.0, generator=self.generator)
            else:
                noise[name].normal_(generator=self.generator)
        return noise

    def update_with_noise(self, batch, noise: dict[str, torch.Tensor], std: float | torch.Tensor, cql_weight: float,
                          bc_weight: float | torch.Tensor, update_encoder: bool) -> dict[str, Any]:
        """The update itself, deterministic given `noise` (§2.7); std and bc_weight may be 0-d device tensors."""
        obs, next_obs = batch.obs.float(), batch.next_obs.float()
        if self.cfg.use_data_aug:
            obs = self.aug(obs, shift=noise["obs_shift"])
            next_obs = self.aug(next_obs, shift=noise["next_obs_shift"])
        with torch.set_grad_enabled(update_encoder):
            features = self._features(obs, batch.sensor)
        with torch.no_grad():
            next_features = self._features(next_obs, batch.next_sensor)

        metrics = self._update_critic(features, batch.action, batch.reward, batch.discount, next_features, noise, std,
                                      cql_weight, update_encoder)
        metrics.update(self._update_actor(features.detach(), batch.action, noise, std, bc_weight))
        metrics["batch_reward"] = batch.reward.mean()
        self._soft_update_target()
        return {k: metrics[k] for k in METRIC_NAMES}

    def _update_critic(self, features, action, reward, discount, next_features, noise, std, cql_weight,
                       update_encoder):
        cfg = self.cfg
        with torch.no_grad():
            next_mu, _ = self._forward(self.actor, next_features)
            next_action = sample_action(next_mu, std, cfg.stddev_clip, noise["target_noise"])
            target_q1, target_q2 = self._forward(self.critic_target, next_features, next_action)
            target = losses.safe_q_target(losses.td_target(reward, discount, target_q1, target_q2),
                                          cfg.safe_q_threshold, cfg.safe_q_target_factor)

        _set_requires_grad(self.critic, True)
        _set_requires_grad(self.actor, False)  # actor grads from this loss would be discarded anyway
        if cql_weight > 0:
            n_random = cfg.cql_n_random
            # the policy action at s keeps its graph (it reaches the encoder through the features)
            pi_mu, _ = self._forward(self.actor, features)
            pi_action = sample_action(pi_mu, std, cfg.stddev_clip, noise["pi_noise"])
            with torch.no_grad():  # the actor at s' is next_mu (same weights, same features): no second pass
                pi_next_action = sample_action(next_mu, std, cfg.stddev_clip, noise["pi_next_noise"])
            # all N + 3 actions are evaluated at the current state s, in one critic pass
            actions = torch.cat([noise["random_actions"], action.unsqueeze(1), pi_action.unsqueeze(1),
                                 pi_next_action.unsqueeze(1)], dim=1)
            q1_all, q2_all = (q.squeeze(-1) for q in self._forward(self.critic, features, actions))
            q1, q2 = q1_all[:, n_random:n_random + 1], q2_all[:, n_random:n_random + 1]
            critic_loss = losses.td_loss(q1, q2, target)
            conservative = sum(losses.cql_term(q[:, :n_random], q[:, n_random], q[:, n_random + 1],
                                               q[:, n_random + 2], cfg.cql_temp, cql_weight) for q in (q1_all, q2_all))
            total_loss = critic_loss + conservative
        else:
            q1, q2 = self._forward(self.critic, features, action)
            critic_loss = losses.td_loss(q1, q2, target)
            total_loss = critic_loss

        self.critic_opt.zero_grad(set_to_none=True)
        if update_encoder:
            self.encoder_opt.zero_grad(set_to_none=True)
        total_loss.backward()
        self.critic_opt.step()
        if update_encoder:
            self.encoder_opt.step()
        _set_requires_grad(self.actor, True)
        return {"critic_target_q": target.mean(), "critic_q1": q1.detach().mean(), "critic_q2": q2.detach().mean(),
                "critic_loss": critic_loss.detach()}

    def _update_actor(self, features, data_action, noise, std, bc_weight):
        cfg = self.cfg
        _set_requires_grad(self.critic, False)  # critic grads from the actor loss would be discarded anyway
        mu, pretanh = self._forward(self.actor, features)
        action = sample_action(mu, std, cfg.stddev_clip, noise["actor_noise"])
        q1, q2 = self._forward(self.critic, features, action)
        actor_loss = losses.actor_q_loss(q1, q2)
        total_loss = actor_loss
        actor_loss_bc = 0.0
        if isinstance(bc_weight, torch.Tensor) or bc_weight > 0:
            actor_loss_bc = losses.bc_loss(clamp_straight_through(mu), data_action, bc_weight)
            total_loss = total_loss + actor_loss_bc
            actor_loss_bc = actor_loss_bc.detach()
        if cfg.pretanh_penalty > 0:
            total_loss = total_loss + losses.pretanh_penalty(pretanh, cfg.pretanh_threshold, cfg.pretanh_penalty)
        self.actor_opt.zero_grad(set_to_none=True)
        total_loss.backward()
        self.actor_opt.step()
        _set_requires_grad(self.critic, True)

        abs_pretanh = pretanh.detach().abs()
        return {"actor_loss": actor_loss.detach(), "actor_loss_bc": actor_loss_bc,
                "actor_logprob": normal_log_prob(action.detach(), mu.detach(), std).sum(-1).mean(),
                "actor_ent": normal_entropy(std) * self.action_dim,
                "abs_pretanh": abs_pretanh.mean(), "max_abs_pretanh": abs_pretanh.max()}

    @torch.no_grad()
    def _soft_update_target(self) -> None:
        tau = self.cfg.critic_target_tau
        target_params = list(self.critic_target.parameters())
        torch._foreach_mul_(target_params, 1 - tau)
        torch._foreach_add_(target_params, list(self.critic.parameters()), alpha=tau)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder.state_dict(), "actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(), "encoder_opt": self.encoder_opt.state_dict(),
            "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
            "generator": self.generator.get_state(), "init_generator": self.init_generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.encoder.load_state_dict(state["encoder"])
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.encoder_opt.load_state_dict(state["encoder_opt"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.generator.set_state(state["generator"].cpu())
        self.init_generator.set_state(state["init_generator"].cpu())
        self._reset_graphs()  # the optimisers hold new state tensors now
