"""Atomic checkpoints: write to a temp file, fsync, rename; the previous one is kept as a fallback."""

import os
import pickle
import warnings
from pathlib import Path

import torch

from vrl3.errors import UserError

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

    A corrupt latest.pt (e.g. a disk filled up mid-write on another system) falls back to previous.pt. Checkpoints
    hold tensors and plain Python types only, so they load with weights_only=True (no code runs while loading).
    """
    found = []
    for name in (LATEST, PREVIOUS):
        path = folder / name
        if not path.exists():
            continue
        found.append(path)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            if "Unsupported global" in str(error):  # a well-formed file with objects other than tensors
                raise UserError(f"checkpoint {path} holds Python objects besides tensors (written by an older vrl3 "
                                "or another program) and is not loaded: delete that run_dir and start over") from None
            warnings.warn(f"checkpoint {path} is unreadable ({type(error).__name__}); trying an older one")
        except Exception as error:  # any zip/unpickling error means the file is unusable
            warnings.warn(f"checkpoint {path} is unreadable ({type(error).__name__}); trying an older one")
    if found:
        # starting over would append to logs that the lost checkpoints accounted for
        raise UserError(f"no readable checkpoint in {folder} ({', '.join(p.name for p in found)} are corrupt): "
                        "use a new run_dir, or delete this one to start over")
    return None
