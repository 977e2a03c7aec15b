"""sha256 of files: downloads, mirrored inputs and the episode files a manifest lists are checked with it."""

import hashlib
from pathlib import Path

CHUNK_BYTES = 1 << 20


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
