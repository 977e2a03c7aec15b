"""sha256 of files: downloads, mirrored inputs and the episode files a manifest lists are checked with it."""

import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np

from vrl3.errors import UserError

CHUNK_BYTES = 1 << 20


def packaged_registry(file_name: str) -> dict:
    """One of the checksum registries shipped in vrl3/data (checksums.json, stage1_checksums.json)."""
    return json.loads(resources.files("vrl3.data").joinpath(file_name).read_text())


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def update_with_arrays(digest, named_arrays) -> None:
    """Feed (name, array) pairs to a hashlib digest: name, dtype and shape, then the bytes (npz files hold write
    times, so stamps and checkpoints hash their arrays, not the files)."""
    for name, array in named_arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())


def verified_sha256(path: Path, expected: str | None, where: str, what: str, fix: str) -> str:
    """sha256 of `path`; an error when a registered value (`expected`, None if there is none) differs from it.
    `where` names the file for the user, `what` the original it should be, `fix` what to do."""
    digest = sha256_of(path)
    if expected is not None and digest != expected:
        raise UserError(f"{where} has sha256 {digest}, expected {expected} ({what}): the file is corrupted or not "
                        f"the original; {fix}")
    return digest
