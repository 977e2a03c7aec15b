"""Checks on the folders a command is told to write into, and names for what it sets aside there."""

import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def file_in_the_way(folder: str | Path) -> Path | None:
    """The file that keeps `folder` from being (or becoming) a folder: `folder` itself or the nearest existing
    place above it when that is not a folder; None when the folder exists or can be made."""
    for place in (Path(folder), *Path(folder).parents):
        if place.exists() or place.is_symlink():
            return None if place.is_dir() else place
    return None


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` through a temp file beside it: a kill leaves the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # per process: two writers never share a temp file
    tmp.write_text(text)
    tmp.replace(path)


def set_aside_name(folder: Path, prefix: str = "") -> Path:
    """folder/<prefix><UTC time>, with -1, -2, ... appended while that name is taken: where a command keeps what it
    replaces (run_dir/superseded/<time>/, params.yaml.edited-<time>)."""
    stamped = f"{prefix}{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    candidate, suffix = folder / stamped, 0
    while candidate.exists() or candidate.is_symlink():
        suffix += 1
        candidate = folder / f"{stamped}-{suffix}"
    return candidate


@contextmanager
def removed_if_failed(folder: Path, keep_files: bool = False) -> Iterator[None]:
    """Make `folder` (and its missing parents); if the block fails, remove the ones this call made, which hold
    nothing but the block's own output: a failed command leaves no empty folders behind. With `keep_files`, only
    while the block has left no file there (a long job's checkpoints outlive a later failure)."""
    made = next((place for place in reversed([folder, *folder.parents]) if not place.exists()), None)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if made is not None and not (keep_files and any(path.is_file() for path in made.rglob("*"))):
            shutil.rmtree(made, ignore_errors=True)
        raise
