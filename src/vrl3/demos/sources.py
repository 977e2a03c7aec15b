"""Where the hand_dapg input files come from: a local mirror, the download cache, or the public repository.

Every file is checked against the sha256 registry in vrl3/data/checksums.json. Files without a published checksum
(the hammer and pen human demos) are accepted on first use (`InputFile.pinned` is False); the caller warns and
records the computed sha256 in the manifest.
"""

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from vrl3.checksum import CHUNK_BYTES, packaged_registry, verified_sha256
from vrl3.errors import UserError

DOWNLOAD_TIMEOUT_S = 60
# Tests (and users behind a proxy mirror) may point the downloads elsewhere; {path} is the file inside hand_dapg/dapg.
URL_ENV = "VRL3_HAND_DAPG_URL"
CACHE_ENV = "VRL3_CACHE"


@dataclass(frozen=True)
class InputFile:
    name: str  # path inside hand_dapg, e.g. "demonstrations/door-v0_demos.pickle"
    path: Path  # the local copy that was verified
    sha256: str
    pinned: bool  # True iff sha256 equals a published (or reported) value


@cache
def hand_dapg_registry() -> dict:
    return packaged_registry("checksums.json")["hand_dapg"]


def demo_file_name(task: str) -> str:
    return f"demonstrations/{task}-v0_demos.pickle"


def policy_file_name(task: str) -> str:
    return f"policies/{task}-v0.pickle"


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, "data/downloads"))


def download_url(name: str) -> str:
    return os.environ.get(URL_ENV, hand_dapg_registry()["url"]).format(path=name)


def download(url: str, destination: Path, expected_sha256: str | None) -> None:
    """Stream url into a temp file beside destination, verify it, then rename it into place."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    temp_path = Path(temp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            while chunk := response.read(CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
        if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
            raise UserError(f"download of {url} has sha256 {digest.hexdigest()}, expected {expected_sha256}: "
                            f"the upstream file changed or the transfer was corrupted; retry, or pass --mirror DIR "
                            f"with a verified copy (workflow: --config demo_source='{{mirror: DIR}}')")
        os.replace(temp_path, destination)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise UserError(f"could not download {url} ({reason}): check the network, or fetch the files by hand and "
                        f"pass --mirror DIR (layout demonstrations/, policies/ as in hand_dapg/dapg; workflow: "
                        f"--config demo_source='{{mirror: DIR}}')") from None
    finally:
        temp_path.unlink(missing_ok=True)


def fetch_hand_dapg_file(name: str, mirror: Path | None, cache_dir: Path) -> InputFile:
    """Local path of a verified hand_dapg file, from the mirror if given, else from (or into) the download cache."""
    entry = hand_dapg_registry()["files"][name]
    expected = entry["sha256"]
    if mirror is not None:
        path = mirror / name
        if not path.is_file():
            raise UserError(f"{path} not found: --mirror must name a copy of hand_dapg's dapg folder with {name} "
                            f"inside, or drop --mirror to download it")
        fix = "replace it with the original hand_dapg file"
    else:
        path = cache_dir / "hand_dapg" / name
        if not path.is_file():
            download(download_url(name), path, expected)
        fix = "delete it to download it again"
    digest = verified_sha256(path, expected, str(path), f"{entry['provenance']} for hand_dapg {name}", fix)
    return InputFile(name, path, digest, pinned=expected is not None)
