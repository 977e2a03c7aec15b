"""The run config: one YAML file (shared with Snakemake and DVC) plus `key=value` overrides."""

from pathlib import Path

import jsonschema
import yaml
from omegaconf import OmegaConf

from vrl3.errors import UserError, first_line
from vrl3.tasks import get_task

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
SCHEMA_PATH = DATA_DIR / "config.schema.yaml"  # link to workflow/schemas/config.schema.yaml
DEFAULTS_PATH = DATA_DIR / "defaults.yaml"  # link to config/config.yaml: the paper's values


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _unknown_key(error: jsonschema.ValidationError) -> str:
    # jsonschema words these as "... ('name' was unexpected)" / "... ('name' were unexpected)"
    quoted = error.message.split("(")[-1].split("'")
    return quoted[1] if len(quoted) > 2 else "?"


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        parts.append(_unknown_key(error))
    return ".".join(parts) or "<top level>"


def validate(config: dict, source: str) -> None:
    """Raise UserError naming the first offending key of `config` (read from `source`)."""
    validator = jsonschema.Draft202012Validator(load_schema())
    # a failing subschema leaves its keys "unevaluated": report the real failure before those
    errors = sorted(validator.iter_errors(config),
                    key=lambda e: (e.validator == "unevaluatedProperties", len(e.path), [str(p) for p in e.path]))
    if not errors:
        return
    error = errors[0]
    key = _key_path(error)
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        raise UserError(f"{source}: unknown config key '{key}': check its spelling against config/config.yaml")
    raise UserError(f"{source}: bad value for config key '{key}': {error.message}{_fix_hint(error, key)}")


def _fix_hint(error: jsonschema.ValidationError, key: str) -> str:
    """How to write a value of the wanted type (a list or mapping on a command line is easy to get wrong)."""
    if error.validator != "type":
        return ": change that value (config/config.yaml documents each key)"
    wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
    if "array" in wanted:
        return f": write a YAML list, e.g. [a, b] (on a command line: {key}='[a, b]')"
    if "object" in wanted:
        return f": write a YAML mapping, e.g. {{name: value}} (on a command line: {key}='{{name: value}}')"
    return f": write a value of type {' or '.join(map(str, wanted))} (as in config/config.yaml)"


def _yaml_problem(error: Exception) -> str:
    """One line: what is wrong and where (PyYAML's message spans several lines, the place last)."""
    mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None)
    text = problem or (str(error).strip().splitlines() or [type(error).__name__])[0]
    return f"{text} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else text


def read_overlay(path: Path, flag: str) -> dict:
    """A config file (an overlay on config/config.yaml) as a mapping; one-line errors name it and `flag`."""
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "not found"
        raise UserError(f"config file {path} {what}: pass an existing YAML file to {flag}")
    try:
        overlay = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML ({_yaml_problem(error)}): fix the file") from None
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not a text file ({error.reason} at byte {error.start}): give a YAML file to "
                        f"{flag}") from None
    if overlay is not None and not isinstance(overlay, dict):
        raise UserError(f"{path}: expected a mapping of config keys (key: value lines), got a "
                        f"{type(overlay).__name__}: fix the file given to {flag}")
    return overlay or {}


def load_config(path: str | Path, overrides: list[str] = ()) -> dict:
    """The paper defaults, overlaid by `path`, its per-task overrides and `key=value` dotlist overrides.

    As with Snakemake's --configfile, `path` may hold only the keys it changes (config/smoke.yaml does).
    """
    path = Path(path)
    read_overlay(path, "--config")  # one-line errors for a missing file, bad YAML or no mapping, as everywhere
    try:  # the values through OmegaConf's loader (YAML 1.2 numbers such as 1e-4; interpolations)
        config = OmegaConf.merge(OmegaConf.load(DEFAULTS_PATH), OmegaConf.load(path))
    except Exception as error:  # yaml errors come in many classes
        raise UserError(f"{path}: not valid YAML ({_yaml_problem(error)}): fix the file") from None
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise UserError(f"override {item!r} is not key=value: write e.g. seed=2")
    try:
        cli = OmegaConf.from_dotlist(list(overrides))
        task_name = OmegaConf.merge(config, cli).get("task")
        per_task = (config.get("task_overrides") or {}).get(task_name) or {}
        resolved = OmegaConf.to_container(OmegaConf.merge(config, per_task, cli), resolve=True)
    except Exception as error:
        raise UserError(f"{path}: cannot apply overrides {list(overrides)}: {first_line(error)}") from None
    source = f"{path}" + (f" with overrides {' '.join(overrides)}" if overrides else "")
    validate(resolved, source)
    if resolved["num_train_frames"] < resolved["action_repeat"]:
        raise UserError(f"{source}: config key num_train_frames={resolved['num_train_frames']} is less than one agent "
                        f"step (action_repeat={resolved['action_repeat']} frames): raise it (`vrl3 train --stage 2` "
                        f"stops after stage 2)")
    task = get_task(resolved["task"])
    if resolved["agent"]["encoder_lr_scale"] == "auto":
        resolved["agent"]["encoder_lr_scale"] = task.encoder_lr_scale
    _resolve_stage1_checkpoint(resolved, source)
    return resolved


def default_stage1_checkpoint(data_dir: str, arch: str) -> str:
    """Where the workflow's stage-1 rules put the encoder of `arch`."""
    return f"{data_dir}/stage1/{arch}_checkpoint.pth.tar"


def _resolve_stage1_checkpoint(cfg: dict, source: str) -> None:
    """stage1.source decides whether a run starts from a stage-1 encoder (VRL3's default) or a random one (none);
    a null stage1_checkpoint then means the file the workflow puts in data_dir."""
    if cfg["stage1"]["source"] == "none":
        if cfg["stage1_checkpoint"] is not None:
            raise UserError(f"{source}: stage1_checkpoint={cfg['stage1_checkpoint']} but stage1.source is none "
                            f"(random init): set stage1_checkpoint=null, or stage1.source to fetch, mirror or pretrain")
    elif cfg["stage1_checkpoint"] is None:
        cfg["stage1_checkpoint"] = default_stage1_checkpoint(cfg["data_dir"], cfg["agent"]["stage1_model_name"])
