"""The paper's baselines, ablations and sensitivity sweeps as named variants of one config.

A config's `variants` section maps a name to overrides of the config's own keys, e.g.
`no_safe_q: {agent: {safe_q_target_factor: 1}}`. An entry with a `sweep: {<dotted key>: [v1, v2, ...]}` item
expands into one variant per value, named `<entry>_<value>` (`.` in the value written as `p`, so
`safe_q_target_factor: {sweep: {agent.safe_q_target_factor: [0.5]}}` gives `safe_q_target_factor_0p5`); its other
items apply to every value. `run_variants` lists the variants (or whole sweeps) the workflow runs.
"""

import re
from dataclasses import dataclass, field

from vrl3.errors import UserError
from vrl3.train.stage_keys import RUN_KEYS, flatten

NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # folder names and DVC stage names: no dots, slashes or other punctuation
SWEEP = "sweep"
# keys that say which runs exist and where they live: the same for every variant
NOT_PER_RUN = {"tasks", "seeds", "results_dir", "data_dir", "demo_source", "variants", "run_variants",
               "task_overrides", "resources", "slurm", *RUN_KEYS}


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: dict  # nested, like the config itself
    sweep: str | None = None  # the sweep entry this variant came from
    sweep_key: str | None = None  # the dotted key the sweep varies
    value: object = None  # this variant's value of sweep_key
    dotlist: list = field(default_factory=list)  # the overrides as `key=value` words for `vrl3 train`


def merge(base: dict, overlay: dict) -> dict:
    """Deep merge as Snakemake's --configfile/--config do: dicts merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def value_word(value) -> str:
    """A value as the word `vrl3 train`'s key=value parser reads back to the same value (3e-05, true, null)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value) if isinstance(value, float) else str(value)


def sweep_name(entry: str, value) -> str:
    """`<entry>_<value>`, the value as %g with "." written "p": lr_3e-05, safe_q_target_factor_0p5, aug_false."""
    text = f"{value:g}" if isinstance(value, float) else value_word(value)
    return f"{entry}_{text.replace('.', 'p').replace('+', '')}"


def _nested(dotted: str, value) -> dict:
    for part in reversed(dotted.split(".")):
        value = {part: value}
    return value


def _lookup(config: dict, dotted: str):
    """(found, value) of a dotted key in the config."""
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _check_key(config: dict, variant: str, dotted: str, value) -> None:
    top = dotted.split(".")[0]
    if dotted == "stage1.source":
        if value != "none":
            raise UserError(f"variant '{variant}': stage1.source can only be overridden with none (random encoder), "
                            f"not {value!r}; the other stage-1 settings are the same for every variant")
        return
    if top in NOT_PER_RUN or top == "stage1":
        raise UserError(f"variant '{variant}': key '{dotted}' is not a per-run setting (it says which runs exist or "
                        f"where they live, the same for every variant): set it outside `variants`")
    found, current = _lookup(config, dotted)
    if not found:
        raise UserError(f"variant '{variant}': override key '{dotted}' does not exist in the config: check its "
                        f"spelling against config/config.yaml")
    if isinstance(current, dict):
        raise UserError(f"variant '{variant}': '{dotted}' is a section of the config; override its keys "
                        f"(e.g. {dotted}.<key>: value), not the whole section")


def _entry_overrides(config: dict, name: str, entry) -> tuple[dict, tuple[str, list] | None]:
    if entry is None:
        entry = {}
    if not isinstance(entry, dict):
        raise UserError(f"variant '{name}': give a mapping of overrides (e.g. {{agent: {{cql_weight: 0}}}}), "
                        f"not {entry!r}")
    entry = dict(entry)
    sweep = entry.pop(SWEEP, None)
    if sweep is not None:
        if not isinstance(sweep, dict) or len(sweep) != 1:
            raise UserError(f"variant '{name}': sweep must map one dotted key to a list of values, e.g. "
                            f"sweep: {{agent.lr: [0.0001, 0.0003]}}")
        ((key, values),) = sweep.items()
        if not isinstance(values, list) or not values or any(isinstance(v, (dict, list)) for v in values):
            raise UserError(f"variant '{name}': sweep {key} needs a non-empty list of plain values, got {values!r}")
        for value in values:
            _check_key(config, name, key, value)
        sweep = (key, values)
    for key, value in flatten(entry).items():
        _check_key(config, name, key, value)
    return entry, sweep


def expand_variants(config: dict) -> dict[str, Variant]:
    """Every variant of the config's `variants` section, sweeps expanded, in the order written; an unknown key, a
    badly formed entry or a clash of names is a UserError naming the variant."""
    base = {k: v for k, v in config.items() if k not in ("variants", "run_variants")}
    variants: dict[str, Variant] = {}

    def add(variant: Variant) -> None:
        if not NAME.match(variant.name):
            raise UserError(f"variant name '{variant.name}' may hold only letters, digits, _ and -: rename it")
        if variant.name in variants:
            raise UserError(f"variant name '{variant.name}' is defined twice (a sweep's `<entry>_<value>` names "
                            f"count too): rename one")
        words = [f"{key}={value_word(value)}" for key, value in flatten(variant.overrides).items()]
        variants[variant.name] = Variant(variant.name, variant.overrides, variant.sweep, variant.sweep_key,
                                         variant.value, words)

    for name, entry in (config.get("variants") or {}).items():
        overrides, sweep = _entry_overrides(base, str(name), entry)
        if sweep is None:
            add(Variant(str(name), overrides))
            continue
        key, values = sweep
        if len(set(map(value_word, values))) != len(values):
            raise UserError(f"variant '{name}': sweep {key} lists a value twice: {values!r}")
        for value in values:
            add(Variant(sweep_name(str(name), value), merge(overrides, _nested(key, value)), str(name), key, value))
    return variants


def selected_variants(config: dict, variants: dict[str, Variant] | None = None) -> list[Variant]:
    """The variants the workflow runs: `run_variants` (variant or sweep names), default `[vrl3]`."""
    variants = expand_variants(config) if variants is None else variants
    chosen: list[Variant] = []
    for name in config.get("run_variants") or ["vrl3"]:
        members = [v for v in variants.values() if v.name == name or (v.sweep == name and v.name != name)]
        if not members:
            known = ", ".join(sorted({v.sweep or v.name for v in variants.values()})) or "none"
            raise UserError(f"run_variants names '{name}', which is neither a variant nor a sweep of `variants` "
                            f"(known: {known})")
        chosen += [v for v in members if v not in chosen]
    return chosen
