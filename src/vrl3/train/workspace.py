"""One run: stage 2 (offline RL on the demos), then stage 3 (online RL), resuming from the last checkpoint."""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from vrl3.agent import AgentConfig, VRL3Agent, metrics_to_floats
from vrl3.envs.vector import EnvPool, LazyEnvPool, env_seeds
from vrl3.errors import UserError, first_line
from vrl3.paths import file_in_the_way, write_text_atomic
from vrl3.replay import ReplayBuffer, batch_to
from vrl3.tasks import get_task
from vrl3.train.checkpoint import load_checkpoint, save_checkpoint
from vrl3.train.episodes import (demos_digest, episode_arrays, load_demos, read_episode, replay_fields,
                                 write_episode)
from vrl3.train.evaluate import evaluate
from vrl3.train.logs import EVAL_COLUMNS, STAGE2_EVAL_COLUMNS, STAGE2_TRAIN_COLUMNS, TRAIN_COLUMNS, CsvLog
from vrl3.train.rng import global_rng_state, seed_everything, set_global_rng_state
from vrl3.train.stage_keys import check_checkpoint_params, check_params, stage2_params, stage3_params

EVAL_SEED_OFFSET = 100_000  # the eval env is seeded with seed + this, so train and eval episodes differ


@dataclass
class Progress:
    """Where a run stands: everything besides networks, replay and RNGs that a checkpoint must restore."""
    stage: int = 2
    update: int = 0  # stage-2 updates done
    step: int = 0  # stage-3 agent steps done
    episode: int = 0  # stage-3 training episodes finished
    online_episode_lengths: list = field(default_factory=list)  # transitions of each recorded online episode
    evicted_episodes: int = 0  # oldest episodes (demos first, then online ones) the replay has dropped (FIFO)
    elapsed: float = 0.0  # seconds spent in earlier processes of this run
    log_rows: dict = field(default_factory=dict)  # rows of each CSV that this state already accounts for
    metric_sums: dict = field(default_factory=dict)  # stage-3 update metrics since the last train.csv row
    metric_count: int = 0
    finished_returns: list = field(default_factory=list)  # training episodes since the last train.csv row
    finished_lengths: list = field(default_factory=list)
    time_at_last_row: float = 0.0  # total_time when the last train.csv row was written (for fps)
    last_checkpoint_frame: int = 0
    next_eval_step: int | None = None  # stage 3 evaluates at the first block start at or after this agent step
    next_log_step: int | None = None  # ... and writes a train.csv row at the first one at or after this


def resolve_device(name: str, key: str = "device") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"config key {key}={name} but no CUDA GPU is visible: use {key}=cpu or {key}=auto")
    return torch.device(name)


def _write_yaml(path: Path, params: dict) -> None:
    write_text_atomic(path, yaml.safe_dump(params, sort_keys=True))


class Workspace:
    def __init__(self, cfg: dict, prepare_run_dir: Callable[[], None] | None = None):
        """Check the config and inputs, build everything, then resume from run_dir. `prepare_run_dir` (the
        workflow's stage bookkeeping) runs once the inputs are known to be good, before run_dir is read: a bad
        input leaves run_dir untouched."""
        self.start_time = time.time()  # total_time counts from here, as VRL3's (demo loading and set-up included)
        if not cfg.get("run_dir"):
            raise UserError("config key run_dir is not set: pass run_dir=DIR")
        if not cfg.get("demos"):
            raise UserError("config key demos is not set: pass demos=DIR (a `vrl3 demos` output folder)")
        self.cfg = cfg
        self.run_dir = Path(cfg["run_dir"])
        if (blocker := file_in_the_way(self.run_dir)) is not None:
            raise UserError(f"run_dir={self.run_dir}: {blocker} is a file, not a folder: give a folder path")
        if (self.run_dir / "manifest.json").exists() or self.run_dir.resolve() == Path(cfg["demos"]).resolve():
            raise UserError(f"run_dir={self.run_dir} is a `vrl3 demos` output folder (it has manifest.json), whose "
                            f"episodes a run would overwrite: give the run its own folder")
        self.task = get_task(cfg["task"])
        self.device = resolve_device(cfg["device"])
        replay_device = cfg["replay_device"]
        self.replay_device = self.device if replay_device == "auto" else resolve_device(replay_device, "replay_device")
        # stage 2 writes only below run_dir/stage2, stage 3 only beside it: each stage's outputs can be
        # deleted and rebuilt alone (Snakemake and DVC do that when only a stage-3 key changed)
        self.stage2_dir = self.run_dir / "stage2"
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self.episode_dir = self.run_dir / "episodes"
        seed_everything(cfg["seed"])

        env_kwargs = {"action_repeat": cfg["action_repeat"], "frame_stack": cfg["frame_stack"],
                      "image_size": cfg["image_size"], "shadow_size": cfg["shadow_size"]}
        # stage 2 evaluates on one env in this process; stage 3 trains and evaluates on pools of num_envs envs
        # (worker processes when num_envs > 1) started with stage 3, the eval pool's env 0 continuing this env
        self.stage2_eval_envs = EnvPool(self.task.name, [cfg["seed"] + EVAL_SEED_OFFSET], env_kwargs)
        self.train_envs = LazyEnvPool(self.task.name, env_seeds(cfg["seed"], cfg["num_envs"]), env_kwargs)
        self.eval_envs = LazyEnvPool(self.task.name, env_seeds(cfg["seed"] + EVAL_SEED_OFFSET, cfg["num_envs"]),
                                     env_kwargs)
        self.demos = load_demos(cfg["demos"], self.task.name, self.task.frame_channels, cfg["image_size"],
                                cfg["num_demo"], cfg["shadow_size"])
        _check_demos_fit(self.demos, cfg)
        self.demos_digest = demos_digest(self.demos)

        agent_cfg = AgentConfig.from_dict(cfg["agent"])
        obs_shape = (self.task.frame_channels * cfg["frame_stack"], cfg["image_size"], cfg["image_size"])
        self.agent = VRL3Agent(obs_shape, self.task.action_dim, self.task.sensor_dim, agent_cfg,
                               self.device, seed=cfg["seed"], stage1_checkpoint=cfg["stage1_checkpoint"])
        frame_shape = (self.task.frame_channels, cfg["image_size"], cfg["image_size"])
        self.replay = ReplayBuffer(frame_shape, self.task.sensor_dim, self.task.action_dim, cfg["replay_buffer_size"],
                                   frame_stack=cfg["frame_stack"], nstep=cfg["nstep"], discount=cfg["discount"],
                                   device=self.replay_device, seed=cfg["seed"])

        if prepare_run_dir is not None:
            prepare_run_dir()
        check_params(self.stage2_dir / "params.yaml", stage2_params(cfg))
        check_params(self.run_dir / "params.yaml", stage3_params(cfg))
        self.logs = {"eval": CsvLog(self.run_dir / "eval.csv", EVAL_COLUMNS),
                     "train": CsvLog(self.run_dir / "train.csv", TRAIN_COLUMNS),
                     "stage2_eval": CsvLog(self.stage2_dir / "stage2_eval.csv", STAGE2_EVAL_COLUMNS),
                     "stage2_train": CsvLog(self.stage2_dir / "train.csv", STAGE2_TRAIN_COLUMNS)}
        self.progress = Progress()
        self._resume()

    # ------------------------------------------------------------------ checkpoints
    def total_time(self) -> float:
        return self.progress.elapsed + time.time() - self.start_time

    def _save(self, folder: Path) -> None:
        self.progress.log_rows = {name: log.rows for name, log in self.logs.items()}
        total_episodes = len(self.demos) + len(self.progress.online_episode_lengths)
        self.progress.evicted_episodes = total_episodes - self.replay.num_episodes
        progress = self.progress.__dict__ | {"elapsed": self.total_time(),
                                             "metric_sums": metrics_to_floats(self.progress.metric_sums)}
        state = {"progress": progress, "agent": self.agent.state_dict(), "params": self._checkpoint_params(folder),
                 "demos_digest": self.demos_digest, "replay_rng": self.replay.generator.get_state(),
                 "rng": global_rng_state(), "train_env_rngs": self.train_envs.rng_states(),
                 "eval_env_rngs": self._eval_env_rngs()}
        save_checkpoint(state, folder)
        # online episodes that both this checkpoint and the previous one (the fallback) have evicted are not
        # needed by any resume: delete their files
        for index in range(self._deletable_online, self._evicted_online(self._previous_evicted)):
            self._episode_path(index).unlink(missing_ok=True)
        self._deletable_online = max(self._deletable_online, self._evicted_online(self._previous_evicted))
        self._previous_evicted = self.progress.evicted_episodes

    def _checkpoint_params(self, folder: Path) -> dict:
        """The values a checkpoint in `folder` depends on: stage 2's in the stage-2 folder, all in stage 3's."""
        return stage2_params(self.cfg) if folder == self.stage2_dir / "checkpoints" else stage3_params(self.cfg)

    def _evicted_online(self, evicted_episodes: int) -> int:
        return max(evicted_episodes - len(self.demos), 0)

    def _fill_replay(self, evicted: int) -> None:
        """Demos, then the recorded online episodes, except the `evicted` oldest ones the replay had dropped."""
        n_demos = len(self.demos)
        lengths = [len(e["reward"]) - 1 for e in self.demos] + self.progress.online_episode_lengths
        for index in range(evicted, len(lengths)):
            episode = self.demos[index] if index < n_demos else read_episode(
                self._episode_path(index - n_demos),
                fix="resuming needs the run's recorded episodes (no run can re-create them): restore the file, or "
                    "start over in a new run_dir")
            self.replay.add_episode(**replay_fields(episode))
        self.replay.total_transitions_added += sum(lengths[:evicted])

    def _fill_replay_once(self) -> None:
        """Fill the replay when a stage is about to train: a rerun of a finished run, or a stage-2 job of a run
        already in stage 3, ends without reading the run's episodes (up to the whole replay's worth)."""
        if self._replay_to_fill is None:
            return
        evicted, generator_state = self._replay_to_fill
        self._replay_to_fill = None
        self._fill_replay(evicted)
        if generator_state is not None:
            self.replay.generator.set_state(generator_state)

    def _resume(self) -> None:
        for folder in (self.checkpoint_dir, self.stage2_dir / "checkpoints"):
            state = load_checkpoint(folder)
            if state is not None:
                check_checkpoint_params(folder, state.get("params"), self._checkpoint_params(folder))
                if state.get("demos_digest", self.demos_digest) != self.demos_digest:
                    raise UserError(f"the demos in {self.cfg['demos']} are not those the checkpoint in {folder} was "
                                    f"trained on (num_demo={self.cfg['num_demo']}): point demos= at them, or use a "
                                    f"new run_dir")
                break
        self._previous_evicted = self._deletable_online = 0
        if state is None:
            self._replay_to_fill = (0, None)
            return
        self.progress = Progress(**state["progress"])
        self._previous_evicted = self.progress.evicted_episodes
        try:
            self.agent.load_state_dict(state["agent"])
        except (RuntimeError, KeyError, ValueError) as error:  # e.g. a checkpoint copied from a run of other sizes
            raise UserError(f"the checkpoint in {self.run_dir} does not fit this run's agent ({first_line(error)}): it "
                            f"was made with other settings; use a new run_dir") from None
        self._replay_to_fill = (self.progress.evicted_episodes, state["replay_rng"])
        set_global_rng_state(state["rng"])
        self.train_envs.set_rng_states(self._checkpointed_env_rngs(state, "train_env_rngs", "train_env_rng"))
        eval_rngs = self._checkpointed_env_rngs(state, "eval_env_rngs", "eval_env_rng")
        self.stage2_eval_envs.set_rng_states(eval_rngs[:1])
        self.eval_envs.set_rng_states(eval_rngs)
        for name, log in self.logs.items():
            log.truncate(self.progress.log_rows.get(name, 0))
        where = f"stage 2 update {self.progress.update}" if self.progress.stage == 2 else \
            f"stage 3 frame {self.progress.step * self.cfg['action_repeat']}"
        tqdm.write(f"resuming {self.run_dir} at {where}")

    def _eval_env_rngs(self) -> list[dict | None]:
        if self.progress.stage == 2:  # only the stage-2 eval env has been used
            return self.stage2_eval_envs.rng_states() + [None] * (self.eval_envs.num_envs - 1)
        return self.eval_envs.rng_states()

    def _checkpointed_env_rngs(self, state: dict, key: str, single_env_key: str) -> list[dict | None]:
        """A checkpoint's env RNG states for num_envs envs. Stage-2 checkpoints used env 0 at most, so they fit any
        num_envs (a stage-3 key); checkpoints of older versions held one env's state under `single_env_key`."""
        rngs = state[key] if key in state else [state[single_env_key]]
        num_envs = self.cfg["num_envs"]
        if len(rngs) != num_envs:
            if any(rng is not None for rng in rngs[1:]):  # stage 3 ran; the stage-3 params check refuses it earlier
                raise UserError(f"the checkpoint in {self.checkpoint_dir} has {len(rngs)} envs but "
                                f"num_envs={num_envs}: use a new run_dir, or delete that folder to start stage 3 over")
            rngs = rngs[:1] + [None] * (num_envs - 1)
        return rngs

    def _check_metrics(self, metrics: dict, where: str, folder: Path) -> None:
        """Refuse to checkpoint a diverged agent, so that `folder` keeps the last good state."""
        if "critic_loss" in metrics:
            _check_finite(float(metrics["critic_loss"]), where, folder)

    def _episode_path(self, index: int) -> Path:
        return self.episode_dir / f"episode_{index:06d}.npz"

    # ------------------------------------------------------------------ stage 2
    def run_stage2(self) -> None:
        _write_yaml(self.stage2_dir / "params.yaml", stage2_params(self.cfg))
        self._fill_replay_once()
        cfg, progress = self.cfg, self.progress
        n_update = cfg["stage2_n_update"]
        bar = tqdm(total=n_update, initial=progress.update, desc=f"stage 2 {self.task.name}", unit="update",
                   dynamic_ncols=True)
        metrics = {}
        while progress.update < n_update:
            if progress.update % cfg["stage2_eval_every_frames"] == 0:
                self._check_metrics(metrics, f"stage-2 update {progress.update}", self.stage2_dir / "checkpoints")
                self._save(self.stage2_dir / "checkpoints")
                self._stage2_eval(metrics)
            batch = batch_to(self.replay.sample(cfg["batch_size"]), self.device)
            metrics = self.agent.update(batch, stage=2, step=progress.update, sync=False)
            self._accumulate(metrics)
            progress.update += 1
            if progress.update % cfg["train_log_every_steps"] == 0:
                self._log_stage2_row()
            bar.update(1)
        bar.close()
        self._check_metrics(metrics, f"stage-2 update {progress.update}", self.stage2_dir / "checkpoints")
        if progress.metric_count > 0:  # the last updates, so the log reaches the stage boundary
            self._log_stage2_row()
        self.eval_envs.set_rng_states(self._eval_env_rngs())  # stage 3's env 0 continues the stage-2 eval env
        progress.stage = 3
        progress.time_at_last_row = self.total_time()  # the first train.csv row's fps counts stage-3 time only
        self._save(self.stage2_dir / "checkpoints")  # the stage boundary: stage 3 starts from this state

    def _log_stage2_row(self) -> None:
        """Stage-2 update metrics averaged since the last row (for the critic's Q across the stage-2/3 boundary)."""
        row = self._take_metric_means()
        self.logs["stage2_train"].write(row | {"update": self.progress.update, "total_time": self.total_time()})

    def _stage2_eval(self, metrics: dict) -> None:
        if self.cfg["stage2_num_eval_episodes"] == 0:
            return
        metrics = metrics_to_floats(metrics)
        critic_loss = metrics.get("critic_loss", float("nan"))  # NaN before the first update
        started = self.total_time()  # read before the evaluation, as eval.csv's
        result = evaluate(self.agent, self.stage2_eval_envs, self.cfg["stage2_num_eval_episodes"], step=0)
        self.logs["stage2_eval"].write(result | {"update": self.progress.update, "critic_loss": critic_loss,
                                                 "critic_q1": metrics.get("critic_q1", float("nan")),
                                                 "total_time": started})
        tqdm.write(f"stage 2 update {self.progress.update}: success {result['success_rate']:.2f} "
                   f"return {result['episode_reward']:.2f} critic loss {critic_loss:.4f} "
                   f"critic q1 {metrics.get('critic_q1', float('nan')):.2f}")

    # ------------------------------------------------------------------ stage 3
    def run_stage3(self) -> None:
        _write_yaml(self.run_dir / "params.yaml", stage3_params(self.cfg))
        self._fill_replay_once()
        self.episode_dir.mkdir(exist_ok=True)
        _warn_if_few_cpus(self.cfg["num_envs"])
        try:
            self._stage3_loop()
        finally:
            self.train_envs.close()
            self.eval_envs.close()

    def _stage3_loop(self) -> None:
        """Agent steps in blocks: one action per running env (one batched act), then the envs step (in their
        worker processes) while this process runs the updates due at those steps. All envs start their episodes
        together; an env whose episode ended early (the pen dropped) waits for the others. With one env a block
        is one step: VRL3's loop, in its order (train row, episode end, checkpoint, reset, eval, act, update, step).
        """
        cfg, progress, envs = self.cfg, self.progress, self.train_envs.get()
        repeat = cfg["action_repeat"]
        total_steps = cfg["num_train_frames"] // repeat
        eval_every = max(cfg["eval_every_frames"] // repeat, 1)
        log_every = cfg["train_log_every_steps"]
        if progress.next_eval_step is None:  # a checkpoint of a single-env run made before these fields existed
            progress.next_eval_step = -(-progress.step // eval_every) * eval_every
            progress.next_log_step = -(-progress.step // log_every) * log_every
        bar = tqdm(total=total_steps * repeat, initial=progress.step * repeat, desc=f"stage 3 {self.task.name}",
                   unit="frame", dynamic_ncols=True)
        slots = [_EpisodeSlot() for _ in range(envs.num_envs)]
        while progress.step < total_steps:
            if progress.step >= progress.next_log_step:  # before the episode that just ended is counted, as VRL3
                if progress.metric_count > 0:
                    # VRL3's replay stored that episode with its last step, so its buffer_size already holds it
                    ended = sum(len(slot.time_steps) - 1 for slot in slots if slot.ended and not slot.recorded)
                    self._log_train_row(ended)
                progress.next_log_step = (progress.step // log_every + 1) * log_every
            for slot in slots:
                if slot.ended and not slot.recorded:
                    self._finish_episode(slot.time_steps, slot.episode_return)
                    slot.recorded = True
            between_episodes = all(slot.recorded or not slot.time_steps for slot in slots)
            if between_episodes:
                frame = progress.step * repeat
                if not slots[0].time_steps or frame - progress.last_checkpoint_frame >= cfg["checkpoint_every_frames"]:
                    progress.last_checkpoint_frame = frame
                    self._check_metrics(progress.metric_sums, f"frame {frame}", self.checkpoint_dir)
                    self._save(self.checkpoint_dir)
                for index, time_step in envs.call("reset").items():
                    slots[index] = _EpisodeSlot(time_steps=[time_step])
            if progress.step >= progress.next_eval_step:
                self._stage3_eval()
                progress.next_eval_step = (progress.step // eval_every + 1) * eval_every
            running = [i for i, slot in enumerate(slots) if not slot.ended][:total_steps - progress.step]
            latest = [slots[i].time_steps[-1] for i in running]
            actions = self.agent.act_batch(np.stack([t.observation for t in latest]),
                                           np.stack([t.sensor for t in latest]), progress.step, eval_mode=False)
            envs.call_async("step", {index: (action,) for index, action in zip(running, actions)})
            for step in range(progress.step, progress.step + len(running)):
                if self.agent.is_update_step(step):
                    batch = batch_to(self.replay.sample(cfg["batch_size"]), self.device)
                    self._accumulate(self.agent.update(batch, stage=3, step=step, sync=False))
            for index, time_step in envs.wait().items():
                slots[index].time_steps.append(time_step)
                slots[index].episode_return += time_step.reward
            progress.step += len(running)
            bar.update(repeat * len(running))
        bar.close()
        self._check_metrics(progress.metric_sums, f"frame {total_steps * repeat}", self.checkpoint_dir)
        progress.stage = 4
        self._save(self.checkpoint_dir)

    def _finish_episode(self, episode: list, episode_return: float) -> None:
        progress = self.progress
        fields = episode_arrays(episode)
        write_episode(self._episode_path(len(progress.online_episode_lengths)), fields)
        self.replay.add_episode(**replay_fields(fields))
        progress.online_episode_lengths.append(len(episode) - 1)
        progress.episode += 1
        progress.finished_returns.append(float(episode_return))
        progress.finished_lengths.append((len(episode) - 1) * self.cfg["action_repeat"])

    def _accumulate(self, metrics: dict) -> None:
        """Sum metrics on the device in float64 (no synchronisation per update; exact across a resume)."""
        sums = self.progress.metric_sums
        for key, value in metrics.items():
            value = torch.as_tensor(value, device=self.device, dtype=torch.float64)
            sums[key] = sums[key] + value if key in sums else value
        self.progress.metric_count += 1

    def _take_metric_means(self) -> dict[str, float]:
        """The update metrics averaged since the last log row; the sums start again from zero."""
        progress = self.progress
        means = {key: value / progress.metric_count for key, value in metrics_to_floats(progress.metric_sums).items()}
        progress.metric_sums, progress.metric_count = {}, 0
        return means

    def _log_train_row(self, unrecorded_transitions: int) -> None:
        progress = self.progress
        frame = progress.step * self.cfg["action_repeat"]
        row = self._take_metric_means()
        _check_finite(row.get("critic_loss", 0.0), f"frame {frame}", self.checkpoint_dir)
        elapsed = self.total_time()
        row |= {"buffer_size": self.replay.total_transitions_added + unrecorded_transitions,
                "episode": progress.episode, "frame": frame,
                "step": progress.step, "total_time": elapsed,
                "episode_reward": float(np.mean(progress.finished_returns)) if progress.finished_returns else 0.0,
                "episode_length": float(np.mean(progress.finished_lengths)) if progress.finished_lengths else 0.0,
                "fps": sum(progress.finished_lengths) / max(elapsed - progress.time_at_last_row, 1e-9)}
        self.logs["train"].write(row)
        progress.finished_returns, progress.finished_lengths = [], []
        progress.time_at_last_row = elapsed

    def _stage3_eval(self) -> None:
        progress = self.progress
        started = self.total_time()  # VRL3 logs the time before the evaluation runs
        result = evaluate(self.agent, self.eval_envs.get(), self.cfg["num_eval_episodes"], progress.step)
        frame = progress.step * self.cfg["action_repeat"]
        self.logs["eval"].write(result | {"episode": progress.episode, "frame": frame, "step": progress.step,
                                          "total_time": started,
                                          "variant": self.cfg["variant"]})
        tqdm.write(f"eval at frame {frame}: success {result['success_rate']:.2f} "
                   f"return {result['episode_reward']:.2f}")

    def run(self, until_stage: int | None = None) -> None:
        _write_yaml(self.run_dir / "config.yaml", self.cfg)  # the whole resolved config of the latest start
        try:
            if self.progress.stage == 2:
                self.run_stage2()
            if until_stage == 2:
                tqdm.write(f"stage 2 finished: {self.checkpoint_dir}")
                return
            if self.progress.stage == 3:
                self.run_stage3()
            tqdm.write(f"run finished: {self.run_dir / 'eval.csv'}")
        finally:
            self.stage2_eval_envs.close()


@dataclass
class _EpisodeSlot:
    """One training env's current episode in stage 3."""
    time_steps: list = field(default_factory=list)
    episode_return: float = 0.0
    recorded: bool = False  # ended and written to the replay; the env waits for the others to end theirs

    @property
    def ended(self) -> bool:
        return bool(self.time_steps) and self.time_steps[-1].last()


def _check_demos_fit(demos: list[dict], cfg: dict) -> None:
    """Before run_dir is touched: the updates start from the demos (stage 2, and stage 3's first steps), so one of
    them must hold an n-step window, and each must fit the replay."""
    lengths = [len(episode["reward"]) - 1 for episode in demos]
    if not any(length >= cfg["nstep"] for length in lengths):
        raise UserError(f"config key num_demo={cfg['num_demo']}: no demo episode has at least nstep={cfg['nstep']} "
                        f"transitions, and the updates start from the demos: raise num_demo or lower nstep")
    if max(lengths) > cfg["replay_buffer_size"]:
        raise UserError(f"config key replay_buffer_size={cfg['replay_buffer_size']} is smaller than a demo episode "
                        f"({max(lengths)} transitions): raise it")


def _warn_if_few_cpus(num_envs: int) -> None:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if num_envs > 1 and cpus < num_envs + 1:
        tqdm.write(f"warning: num_envs={num_envs} env worker processes and the training process share {cpus} CPUs; "
                   f"stage 3 runs faster with at least {num_envs + 1} (resources.stage3.cpus in the workflow)")


def _check_finite(value: float, where: str, checkpoint_dir: Path) -> None:
    if not np.isfinite(value):
        raise UserError(f"critic loss became {value} at {where}: training diverged; the last good checkpoint is "
                        f"kept in {checkpoint_dir} — lower agent.lr or check the demos, then rerun")
