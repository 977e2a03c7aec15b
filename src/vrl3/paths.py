"""Checks on the folders a command is told to write into."""

from pathlib import Path


def file_in_the_way(folder: str | Path) -> Path | None:
    """The file that keeps `folder` from being (or becoming) a folder: `folder` itself or the nearest existing
    place above it when that is not a folder; None when the folder exists or can be made."""
    for place in (Path(folder), *Path(folder).parents):
        if place.exists() or place.is_symlink():
            return None if place.is_dir() else place
    return None
