"""Runs, paths and per-stage parameters of the workflow, computed from one merged config."""

import hashlib
import json
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from vrl3.demos.task_source import demo_source_for
from vrl3.errors import UserError
from vrl3.paths import file_in_the_way, write_text_atomic
from vrl3.pipeline import variants as variant_specs
from vrl3.pipeline.variants import merge  # noqa: F401 (dvc_cli uses plan.merge)
from vrl3.tasks import get_task
from vrl3.train.config import default_stage1_checkpoint, load_config
from vrl3.train.stage_keys import RUN_KEYS, stage2_params, stage3_params


def prepare_job_environment() -> None:
    """Let Snakemake's jobs find `vrl3` beside the Python running Snakemake (e.g. an unactivated .venv/bin;
    --use-conda puts its environment first), and render offscreen with EGL unless the user chose otherwise."""
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ.setdefault("MUJOCO_GL", "egl")


def demos_dir(config: dict, task: str) -> str:
    return f"{config['data_dir']}/demos/{task}"


# demo_source keys that only some sources read: the sources, the value meaning "not used" (replay must hold one, the
# schema gives it no null) and why the others do not read it. `vrl3 demos` refuses --replay with --source expert and
# --mirror with --source minari, so the commands leave those options out, and a config setting them otherwise stops.
SOURCE_SPECIFIC_KEYS = {
    "replay": (("human", "minari"), "actions", "expert rollouts replay no recorded demos"),
    "mirror": (("human", "expert"), None, "Minari reads $MINARI_DATASETS_PATH, not hand_dapg's files"),
}


def demos_keys(demo_source: dict) -> list[str]:
    """The keys of a task's demo_source (vrl3.demos.task_source) that `vrl3 demos` gets, in command order: source and
    episodes; replay for recorded demos (human, minari); mirror for hand_dapg's files (human, expert) when set."""
    return ["source", "episodes"] + [
        key for key, (sources, _, _) in SOURCE_SPECIFIC_KEYS.items()
        if demo_source["source"] in sources and demo_source[key] is not None]


def demos_values(demo_source: dict) -> dict:
    """demos_keys with their values."""
    return {key: demo_source[key] for key in demos_keys(demo_source)}


def demos_options(demo_source: dict, spell: Callable[[str], str] | None = None) -> str:
    """`--source S --episodes N [--replay R] [--mirror DIR]` of `vrl3 demos` (the flags are the keys' names), each
    value as spell(key) writes it (default: the value, shell-quoted): the Snakemake rule and dvc.yaml's demos stages
    both build their commands here."""
    spell = spell or (lambda key: shlex.quote(str(demo_source[key])))
    return " ".join(f"--{key} {spell(key)}" for key in demos_keys(demo_source))


def _yaml_typed(value):
    if isinstance(value, str):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    if isinstance(value, list):
        return [_yaml_typed(item) for item in value]
    return value


def type_cli_config(config: dict, cli: dict) -> None:
    """Give Snakemake's --config values (`cli`, merged into `config`) the types a config file would give them.

    Snakemake reads nested --config values with YAML's BaseLoader: in `resources='{stage3: {gpus: 1}}'` the 1 is
    the string '1', and `seeds=[1,2]` or `demo_source='{mirror: null}'` hold strings too.
    """
    for key, value in cli.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            type_cli_config(config[key], value)
        else:
            config[key] = _yaml_typed(value)


def check_run_keys(given: dict, flag: str) -> None:
    """A workflow's command-line config must not set one run's keys: every planned run would override them."""
    for key in given:
        if key in RUN_KEYS:
            raise UserError(f"config key {key} given with {flag} names one run, and the workflow would ignore it: "
                            f"{RUN_KEYS[key]} (`vrl3 train` takes it as an override)")


def check_stage1(config: dict) -> None:
    """Before any job: the stage-1 source has what it reads."""
    stage1 = config["stage1"]
    if stage1["source"] == "mirror" and not stage1["mirror"]:
        raise UserError("config stage1.source is mirror but stage1.mirror is null: set stage1.mirror to a folder "
                        "holding <arch>_checkpoint.pth.tar, or use stage1.source: fetch or none")
    if stage1["source"] == "pretrain" and not stage1["imagenet"]:
        raise UserError("config stage1.source is pretrain but stage1.imagenet is null: set stage1.imagenet to an "
                        "ImageFolder root (train/, val/), or use stage1.source: fetch, mirror or none")


def check_demo_source(config: dict) -> None:
    """Before any job: no task's demo_source sets a key its source does not read (`vrl3 demos` would refuse it)."""
    for task in config["tasks"]:
        demo_source = demo_source_for(task, config["demo_source"])  # kitchen tasks: Minari's, always valid
        source = demo_source["source"]
        for key, (sources, unused, why) in SOURCE_SPECIFIC_KEYS.items():
            if source not in sources and demo_source[key] != unused:
                unused_text = "null" if unused is None else unused
                raise UserError(f"config key demo_source.{key}={demo_source[key]} does not apply to "
                                f"demo_source.source={source} ({why}): set demo_source.{key} to {unused_text} "
                                f"(the default, unused by {source}) or choose source {' or '.join(sources)}")
        task_spec = get_task(task)
        held = getattr(task_spec, "dataset_episodes", None)
        if held is not None and demo_source["episodes"] > held:
            raise UserError(f"config key demo_source.episodes={demo_source['episodes']} is more than the {held} "
                            f"episodes of {task_spec.minari_dataset} (task {task}): set demo_source.episodes and "
                            f"num_demo to at most {held} (config/kitchen.yaml does)")


def encoder_path(config: dict, arch: str) -> str | None:
    """The stage-1 checkpoint runs load; None when stage1.source is none (random init)."""
    if config["stage1"]["source"] == "none":
        return None
    return default_stage1_checkpoint(config["data_dir"], arch)


def run_dir(config: dict, variant: str, task: str, seed: int) -> str:
    return f"{config['results_dir']}/runs/{variant}/{task}/seed{seed}"


def runs(config: dict) -> list[tuple[variant_specs.Variant, str, int]]:
    """Every (variant, task, seed) the workflow runs: `run_variants` x tasks x seeds."""
    return [(variant, task, seed) for variant in variant_specs.selected_variants(config)
            for task in config["tasks"] for seed in config["seeds"]]


def write_config(config: dict, folder: str | Path) -> Path:
    """`config` as a YAML file named by its content, for `vrl3 train --config`; written once, atomically."""
    text = yaml.safe_dump(config, sort_keys=True)
    path = Path(folder) / f"config-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    if not path.exists():
        write_text_atomic(path, text)
    return path


@dataclass(frozen=True)
class Run:
    """One (variant, task, seed) run as the workflow passes it to `vrl3 train`."""
    variant: str
    task: str
    seed: int
    demos: str
    run_dir: str
    stage1_checkpoint: str | None
    cfg: dict  # the run's resolved config, exactly as `vrl3 train` will see it
    variant_overrides: tuple = ()  # the variant's `key=value` words, before the run's own keys

    @property
    def key(self) -> str:
        """The run's name in DVC stage names (`stage3@<variant>-<task>-seed<N>`)."""
        return f"{self.variant}-{self.task}-seed{self.seed}"

    def overrides(self) -> list[str]:
        return [*self.variant_overrides, f"variant={self.variant}", f"task={self.task}", f"seed={self.seed}",
                f"demos={self.demos}", f"run_dir={self.run_dir}",
                f"stage1_checkpoint={self.stage1_checkpoint or 'null'}"]

    def stage2_params(self) -> str:
        return canonical(stage2_params(self.cfg))

    def stage3_params(self) -> str:
        return canonical(stage3_params(self.cfg))


def canonical(value) -> str:
    """A stable text form (sorted keys), so Snakemake's params-change check sees only real changes."""
    return json.dumps(value, sort_keys=True)


def plan_run(config_file: str | Path, config: dict, variant: variant_specs.Variant, task: str, seed: int) -> Run:
    """Resolve one run through `vrl3 train`'s own loader (defaults, per-task overrides, the variant's overrides
    given as key=value words, validation)."""
    words = tuple(variant.dotlist)
    base = load_config(config_file, [*words, f"task={task}", f"seed={seed}"])
    arch = base["agent"]["stage1_model_name"]  # per-task overrides or the variant may pick another encoder
    checkpoint = encoder_path(base, arch)  # base holds the variant's stage1.source (stage1_random: none)
    demos, folder = demos_dir(config, task), run_dir(config, variant.name, task, seed)
    run = Run(variant.name, task, seed, demos, folder, checkpoint, cfg={}, variant_overrides=words)
    cfg = load_config(config_file, run.overrides())
    return Run(variant.name, task, seed, demos, folder, checkpoint, cfg, words)


RENDER_KEYS = ("image_size", "shadow_size")  # how the demos and the runs' envs render: one value per workflow


def plan_runs(config_file: str | Path, config: dict) -> list[Run]:
    check_paths(config)
    check_stage1(config)
    check_demo_source(config)
    planned = [plan_run(config_file, config, variant, task, seed) for variant, task, seed in runs(config)]
    rendered = config["demo_source"]["episodes"]
    for run in planned:
        for key in RENDER_KEYS:  # a task's demos are rendered once, for all its runs, with the workflow's values
            if run.cfg[key] != config[key]:
                raise UserError(f"config key {key}={run.cfg[key]} (run {run.variant}/{run.task}/seed{run.seed}, from "
                                f"its variant or task_overrides) differs from the {key}={config[key]} the workflow "
                                f"renders the demos with: set {key} for the whole workflow instead")
        if run.cfg["num_demo"] > rendered:
            raise UserError(f"config key num_demo={run.cfg['num_demo']} (run {run.variant}/{run.task}/seed{run.seed}) "
                            f"is more than the demo_source.episodes={rendered} the workflow renders: raise "
                            f"demo_source.episodes or lower num_demo")
    return planned


def check_paths(config: dict) -> None:
    """Before any job: the output folders are not files. (Mirrors are checked by the jobs that read them: a mirror
    that moved away after the demos were rendered is no error.)"""
    for key in ("results_dir", "data_dir"):
        if (blocker := file_in_the_way(config[key])) is not None:
            raise UserError(f"config key {key}: {blocker} is a file; give a folder")


def stage1_archs(planned: list[Run]) -> list[str]:
    return sorted({run.cfg["agent"]["stage1_model_name"] for run in planned if run.stage1_checkpoint})
