"""Checks on the folders a command is told to write into, and names for what it sets aside there."""

import time
from pathlib import Path


def file_in_the_way(folder: str | Path) -> Path | None:
    """The file that keeps `folder` from being (or becoming) a folder: `folder` itself or the nearest existing
    place above it when that is not a folder; None when the folder exists or can be made."""
    for place in (Path(folder), *Path(folder).parents):
        if place.exists() or place.is_symlink():
            return None if place.is_dir() else place
    return None


def set_aside_name(folder: Path, prefix: str = "") -> Path:
    """folder/<prefix><UTC time>, with -1, -2, ... appended while that name is taken: where a command keeps what it
    replaces (run_dir/superseded/<time>/, params.yaml.edited-<time>)."""
    stamped = f"{prefix}{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    candidate, suffix = folder / stamped, 0
    while candidate.exists() or candidate.is_symlink():
        suffix += 1
        candidate = folder / f"{stamped}-{suffix}"
    return candidate
