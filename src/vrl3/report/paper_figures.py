"""The paper's comparison figures, drawn from whichever variants have runs, and the table of what made each.

Figure files are named after the paper's figures (reference §6.2, `plot_main_vrl3_plots`) so they can be laid beside
it: fig2a/fig2b/fig7 main comparison, fig3 stage-2 and stage-2 → 3 transition ablations, fig4 stage and encoder
ablations, fig6 hyper-parameter sensitivity. A figure whose variants have no runs is skipped with a note.
Figures over several tasks are drawn once per task family (families.py): the first family under the plain name,
the others with `_<family>` appended.
"""

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from vrl3.pipeline.variants import Variant
from vrl3.report import families, figures, sensitivity, transition
from vrl3.report.runs import Run
from vrl3.report.tables import concat_parts, group_runs

MAIN = ("vrl3", "drqv2fd", "rrl")  # RRL: its converted logs, not a variant of our config


@dataclass(frozen=True)
class FigureSpec:
    name: str  # file stem below figures/
    paper: str  # the paper's figure
    content: str
    variants: tuple[str, ...]  # compared, the reference first
    title: str  # short, above the axes
    kind: str = "aggregate"  # aggregate | task | transition | sensitivity
    task: str | None = None
    needs_comparison: bool = True  # False: drawn with the reference alone (the main figures)


def curve_specs(tasks: list[str], variants: dict[str, Variant]) -> list[FigureSpec]:
    encoder_lr = tuple(v.name for v in variants.values() if v.sweep == "encoder_lr_scale")
    specs = [FigureSpec("fig2a_aggregate", "Fig. 2a", "success rate, mean over tasks", MAIN,
                        "Mean over tasks", needs_comparison=False),
             FigureSpec("fig2b_relocate", "Fig. 2b", "success rate on relocate", MAIN, "relocate", kind="task",
                        task="relocate", needs_comparison=False)]
    specs += [FigureSpec(f"fig7_per_task_{task}", "Fig. 7", f"success rate on {task}", MAIN, task, kind="task",
                         task=task, needs_comparison=False) for task in tasks]
    specs += [
        FigureSpec("fig3a_stage2", "Fig. 3", "stage-2 ablations: success rate, mean over tasks",
                   ("vrl3", "stage2_bc", "stage2_disabled", "stage2_naive"), "Stage 2"),
        FigureSpec("fig3b_transition_success", "Fig. 3", "stage 2 -> 3 transition (safe Q, S3 Cons): success rate",
                   ("vrl3", "no_safe_q", "stage3_conservative"), "Stage 2 -> 3"),
        FigureSpec("fig3c_transition_q", "Fig. 3", "critic Q1 across the stage 2 -> 3 boundary (train.csv)",
                   ("vrl3", "no_safe_q", "stage3_conservative", "stage2_naive"), "Critic Q across stages 2 -> 3",
                   kind="transition"),
        FigureSpec("fig3d_encoder_lr_scale", "Fig. 3", "encoder learning-rate scale: success rate, mean over tasks",
                   encoder_lr, "Encoder lr scale", needs_comparison=False),
        FigureSpec("fig4a_stages", "Fig. 4", "which stages run (S123, S23, S13, S3): success rate",
                   ("vrl3", "stage1_random", "stage2_disabled", "drqv2fd"), "Stages"),
        FigureSpec("fig4b_encoder_updates", "Fig. 4",
                   "which stages update the encoder (S123, S12, S1, S23, S2, S3; and S13): success rate",
                   ("vrl3", "encoder_frozen_s3", "encoder_frozen_s23", "stage1_random", "stage1_random_frozen_s3",
                    "stage1_random_frozen_s2", "encoder_frozen_s2"), "Encoder updates"),
        FigureSpec("extra_encoder_width_frame_stack", "- (wider encoder, frame stack 3)",
                   "wider encoder, frame stack 3, paper-era settings: success rate",
                   ("vrl3", "resnet6_64channel", "frame_stack3", "paper_era"), "Encoder width, frame stack"),
    ]
    return specs


def _present(spec: FigureSpec, methods: set[str]) -> tuple[list[str], str | None]:
    """(variants with runs, why the figure is skipped or None)."""
    present = [v for v in spec.variants if v in methods]
    if not spec.variants:
        return present, "the config defines no variants for it"
    if spec.needs_comparison:
        if spec.variants[0] not in present or len(present) < 2:
            return present, f"needs runs of {spec.variants[0]} and of one more of its variants"
    elif not present:
        return present, "none of its variants has runs"
    return present, None


def _config_text(names: list[str], variants: dict[str, Variant]) -> str:
    parts = []
    for name in names:
        if name in variants:
            parts.append(f"{name}: {' '.join(variants[name].dotlist) or '(the config as is)'}")
        else:
            parts.append(f"{name}: not a variant of the config (logs read as they are)")
    return "; ".join(parts)


def family_spec(spec: FigureSpec, family: str, family_names: list[str]) -> FigureSpec:
    """`spec` drawn on the tasks of one family: itself when only one family ran, else named and titled for it."""
    if len(family_names) == 1:
        return spec
    return replace(spec, name=spec.name + families.suffix(family, family_names),
                   content=f"{spec.content} ({family} tasks)", title=f"{spec.title} ({families.label(family)})")


def _draw_curves(spec: FigureSpec, runs: list[Run], out: Path, reps: int, rng: np.random.Generator, warn,
                 max_frames: int | None) -> tuple[list[str], str | None]:
    """Draw one success-rate or transition figure from `runs`; returns (variants drawn, why skipped or None)."""
    groups = group_runs(runs)
    present, skipped = _present(spec, {run.method for run in runs})
    if skipped is None and spec.kind == "task" and not any((m, spec.task) in groups for m in present):
        skipped = f"no runs on {spec.task}"
    stem = out / "figures" / spec.name
    colors = figures.method_colors(list(spec.variants))  # distinct colours within each figure
    if skipped is None and spec.kind == "task":
        present = [m for m in present if (m, spec.task) in groups]
        curves = figures.task_curves(groups, present, spec.task, reps, rng, warn)
        figures.plot_curves(curves, colors, spec.title, stem, max_frames)
    elif skipped is None and spec.kind == "aggregate":
        curves = figures.aggregate_curves(groups, present, reps, rng, warn)
        figures.plot_curves(curves, colors, spec.title, stem, max_frames)
    elif skipped is None and spec.kind == "transition":
        logs = transition.critic_q_logs([run for run in runs if run.method in present])
        if logs.empty:
            skipped = "no train.csv or stage2/train.csv beside the eval.csv of its variants"
        else:
            present = [m for m in present if m in set(logs["variant"])]
            transition.plot(logs, present, colors, spec.title, stem, reps)
    return present, skipped


def _sensitivity_summary(scores: pd.DataFrame, score_families: pd.Series, family_names: list[str]) -> pd.DataFrame:
    """The summary over each family's runs; with several families, a last column `family` says whose."""
    if len(family_names) == 1:
        return sensitivity.summary(scores)
    return concat_parts([sensitivity.summary(scores[score_families == family]).assign(family=family)
                         for family in family_names])


def draw(runs: list[Run], variants: dict[str, Variant], out: Path, reps: int, rng: np.random.Generator,
         warn, max_frames: int | None) -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    """Draw every paper figure the runs allow into out/figures; returns (figure map, drawn names, sensitivity).

    Figures over several tasks (and the sensitivity table) are drawn per task family: `family_spec`."""
    tasks = sorted({run.task for run in runs})
    runs_by_family = families.split_runs(runs)
    family_names = list(runs_by_family)
    rows, drawn = [], []

    def record(spec: FigureSpec, present: list[str], skipped: str | None) -> None:
        rows.append({"figure": f"figures/{spec.name}.png", "paper": spec.paper, "content": spec.content,
                     "variants": ", ".join(present), "missing": ", ".join(v for v in spec.variants if v not in present),
                     "status": "drawn" if skipped is None else f"skipped: {skipped}",
                     "config": _config_text(present, variants)})
        if skipped is None:
            drawn.append(spec.name)

    for base in curve_specs(tasks, variants):
        if base.kind == "task":
            per_family = [(base, runs)]
        else:
            per_family = [(family_spec(base, family, family_names), family_runs)
                          for family, family_runs in runs_by_family.items()]
        for spec, spec_runs in per_family:
            record(spec, *_draw_curves(spec, spec_runs, out, reps, rng, warn, max_frames))

    scores = sensitivity.scores(runs, variants)
    score_families = scores["task"].map(families.family_of)
    for sweep, panel in sensitivity.panels(variants).items():
        base = FigureSpec(f"fig6_sensitivity_{sweep}", "Fig. 6",
                          f"sensitivity to {panel.key}: mean success over evaluations up to 1M frames",
                          tuple(panel.settings), "Sensitivity", kind="sensitivity", needs_comparison=False)
        for family, family_runs in runs_by_family.items():
            spec = family_spec(base, family, family_names)
            family_methods = {run.method for run in family_runs}
            present = [name for name in panel.settings if name in family_methods]
            skipped = None if present else "none of its variants has runs"
            if panel.needs is not None and panel.needs not in present:
                skipped = f"needs runs of {panel.needs}"
            if skipped is None:
                chosen = (scores["sweep"] == sweep) & (score_families == family)
                sensitivity.plot(scores[chosen], panel.key, spec.title, out / "figures" / spec.name)
            record(spec, present, skipped)
    return pd.DataFrame(rows), drawn, _sensitivity_summary(scores, score_families, family_names)
