# Helpers shared by the rules: the runs, their paths and per-stage parameters come from vrl3.pipeline.plan, the
# same code `vrl3 dvc-config` uses for dvc.yaml.
import shlex
import sys

from vrl3.errors import UserError
from vrl3.pipeline import plan
from vrl3.train.config import validate as validate_vrl3_config

CONDA_ENV = "../../envs/vrl3.yaml"  # relative to this folder, as Snakemake's conda: directive wants


def stop(message):
    """A config error: one line and exit 1 before any job (a WorkflowError adds a header and a traceback)."""
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(1)


plan.prepare_job_environment()


def logged(command):
    """`command` with its output in the rule's log. When it fails, the log's last lines (vrl3's one-line error)
    also reach the terminal, where Snakemake itself only names the log file."""
    return f"{command} > {{log}} 2>&1 || {{{{ status=$?; tail -n 3 {{log}} >&2; exit $status; }}}}"


def type_cli_config(config):
    plan.type_cli_config(config, workflow.config_settings.config)


def check_config(config):
    try:
        plan.check_run_keys(workflow.config_settings.config, "--config")
    except UserError as error:
        stop(error)
    files = ", ".join(map(str, workflow.configfiles)) or "config/config.yaml"
    try:
        validate_vrl3_config(config, f"config (files {files}; --config)")
    except UserError as error:
        stop(error)


def plan_runs(config):
    """Every (variant, task, seed) run, resolved exactly as `vrl3 train` will resolve it."""
    # the merged config Snakemake sees, as one file for `vrl3 train --config` (named by its content, so a job
    # never reads a file another invocation rewrote)
    config_file = plan.write_config(config, ".snakemake/vrl3-configs")
    try:
        return config_file, {(run.variant, run.task, run.seed): run for run in plan.plan_runs(config_file, config)}
    except UserError as error:
        stop(error)


def step_resources(step):
    """Per-rule resources from config `resources` and `slurm` (read by the SLURM executor plugin)."""
    wanted = config["resources"][step]
    resources = {"mem_mb": wanted["mem_mb"], "runtime": wanted["runtime"]}
    if wanted["gpus"] > 0:
        resources["gpu"] = wanted["gpus"]
    if config["slurm"]["partition"]:
        resources["slurm_partition"] = config["slurm"]["partition"]
    if config["slurm"]["account"]:
        resources["slurm_account"] = config["slurm"]["account"]
    return resources


def step_threads(step):
    return config["resources"][step]["cpus"]


def optional_arg(flag, value):
    """`--flag value`, or nothing when value is None."""
    return f"{flag} {shlex.quote(str(value))}" if value is not None else ""


def untracked(value):
    """A params entry Snakemake does not record, for values that say where things are, not what they are.

    Snakemake reruns a job when a recorded param changes, and it records no param computed from `input` (it counts
    as derived from files, whose changes it tracks itself). So a moved mirror, or the name of the merged config
    file (which changes with every key), reruns nothing; the keys a stage reads are recorded params of their own.
    """
    return lambda wildcards, input: value


# ---------------------------------------------------------------- per-run lookups (RUNS is set in train.smk)
def run_of(wildcards):
    return RUNS[(wildcards.variant, wildcards.task, int(wildcards.seed))]


def run_overrides(wildcards):
    return " ".join(shlex.quote(item) for item in run_of(wildcards).overrides())


def stage2_inputs(wildcards):
    run = run_of(wildcards)
    return {"demos": run.demos, **({"encoder": run.stage1_checkpoint} if run.stage1_checkpoint else {})}
