"""Atomic checkpoints: write to a temp file, fsync, rename; the previous one is kept as a fallback."""

import os
import warnings
from pathlib import Path

import torch

LATEST = "latest.pt"
PREVIOUS = "previous.pt"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(state: dict, folder: Path) -> Path:
    """Write `state` as folder/latest.pt; the checkpoint it replaces becomes folder/previous.pt."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{LATEST}.tmp"
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    latest = folder / LATEST
    if latest.exists():
        os.replace(latest, folder / PREVIOUS)
    os.replace(tmp, latest)
    _fsync_dir(folder)
    return latest


def load_checkpoint(folder: Path) -> dict | None:
    """The newest readable checkpoint in `folder`, or None when there is none.

    A corrupt latest.pt (e.g. a disk filled up mid-write on another system) falls back to previous.pt.
    """
    for name in (LATEST, PREVIOUS):
        path = folder / name
        if not path.exists():
            continue
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:  # any unpickling/zip error means the file is unusable
            warnings.warn(f"checkpoint {path} is unreadable ({type(error).__name__}); trying an older one")
    return None
