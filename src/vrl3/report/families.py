"""Task families: Adroit and Franka Kitchen runs are aggregated apart (the paper reports Adroit on its own).

A task of neither family (e.g. an official log of an environment this project does not know) is a family of its
own, named after the task. The first family in `ordered` order keeps the plain output names
(`success_rate_aggregate`, `fig2a_aggregate`, ...); the outputs of every other family end in `_<family>`.
"""

from typing import TYPE_CHECKING

from vrl3.tasks import ADROIT_TASKS, KITCHEN_TASKS

if TYPE_CHECKING:
    from vrl3.report.runs import Run

ADROIT = "adroit"
KITCHEN = "kitchen"
LABELS = {ADROIT: "Adroit", KITCHEN: "Kitchen"}  # in figure titles
AGGREGATE_TASK = "aggregate"  # the task column of an aggregate row of the paper comparison


def _family_by_name() -> dict[str, str]:
    """Our task names and their gym ids without the version (`AdroitHandDoor`, `FrankaKitchen`) -> family."""
    names = {}
    for family, tasks in ((ADROIT, ADROIT_TASKS), (KITCHEN, KITCHEN_TASKS)):
        for name, task in tasks.items():
            names[name] = family
            names[task.gym_id.rpartition("-v")[0]] = family  # as runs.task_from_env reads it
    return names


FAMILY_BY_NAME = _family_by_name()


def family_of(task: str) -> str:
    return FAMILY_BY_NAME.get(task, task)


def ordered(families) -> list[str]:
    """Adroit first (the paper's main results), then kitchen, then the others by name."""
    rank = {ADROIT: 0, KITCHEN: 1}
    return sorted(set(families), key=lambda family: (rank.get(family, 2), family))


def split_runs(runs: list["Run"]) -> dict[str, list["Run"]]:
    """family -> its runs (in their given order), families in `ordered` order."""
    by_family: dict[str, list] = {family: [] for family in ordered(family_of(run.task) for run in runs)}
    for run in runs:
        by_family[family_of(run.task)].append(run)
    return by_family


def suffix(family: str, families: list[str]) -> str:
    """'' for the first of `families` (the names a single-family report has always had), else `_<family>`."""
    return "" if family == families[0] else f"_{family}"


def label(family: str) -> str:
    return LABELS.get(family, family)


def aggregate_task(family: str) -> str:
    """The comparison's task name of a family's aggregate rows: `aggregate` is Adroit's, as in the paper file."""
    return AGGREGATE_TASK if family == ADROIT else f"{AGGREGATE_TASK}_{family}"


def family_of_row(task: str) -> str:
    """Family of a row of the paper comparison (ours or the paper's), from its task column."""
    if task == AGGREGATE_TASK:
        return ADROIT
    if task.startswith(f"{AGGREGATE_TASK}_"):
        return task[len(AGGREGATE_TASK) + 1:]
    return family_of(task)
