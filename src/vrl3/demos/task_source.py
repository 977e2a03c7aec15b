"""Which demonstrations the workflow renders for a task: config `demo_source` for Adroit tasks; Franka Kitchen
tasks have demos only in Minari (D4RL/kitchen/*-v2), re-rendered from their recorded states (docs/kitchen.md)."""

from vrl3.tasks import KitchenTask, get_task

KITCHEN_DEMO_SOURCE = {"source": "minari", "replay": "states", "mirror": None}


def demo_source_for(task: str, demo_source: dict) -> dict:
    """`demo_source` with source, replay and mirror replaced by the kitchen ones for a kitchen task."""
    if isinstance(get_task(task), KitchenTask):
        return {**demo_source, **KITCHEN_DEMO_SOURCE}
    return demo_source
