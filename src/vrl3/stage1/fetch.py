"""The authors' stage-1 encoder checkpoints: fetched from their Google Drive folder or copied from a local mirror.

The file is `vrl3data/trained_models/<arch>_checkpoint.pth.tar` (reference §1.3: the last-epoch file). Every copy
is checked against vrl3/data/stage1_checksums.json; no sha256 is published for these files, so an unknown sum is
accepted with a warning and recorded beside the checkpoint in `<file>.json` (as `vrl3 demos` records unpinned
demos in its manifest). The copy must load into the arch's encoder as training loads it (strict,
weights_only). The checkpoint appears atomically: a half-written file never has the final name.
"""

import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from vrl3.checksum import packaged_registry, verified_sha256
from vrl3.errors import UserError
from vrl3.paths import file_in_the_way, removed_if_failed, write_text_atomic

NETWORK_TIMEOUT_S = 60


@dataclass(frozen=True)
class EncoderFile:
    name: str  # e.g. resnet6_32channel_checkpoint.pth.tar
    origin: str  # where it came from: a Drive file id or the mirror path
    sha256: str
    pinned: bool  # True iff sha256 matched a registered value


@cache
def registry() -> dict:
    return packaged_registry("stage1_checksums.json")


def checkpoint_name(arch: str) -> str:
    return f"{arch}_checkpoint.pth.tar"


def drive_folder_url() -> str:
    return f"https://drive.google.com/drive/folders/{registry()['drive_folder_id']}"


def _expected_sha256(name: str) -> str | None:
    entry = registry()["files"].get(name)
    return entry["sha256"] if entry else None


def _offline_error(what: str, error: Exception, name: str) -> UserError:
    # requests' messages run to several hundred characters of pool internals: the class name says enough
    return UserError(f"could not {what} ({type(error).__name__}): check the network, or download "
                     f"vrl3data/{registry()['folder_path']}/{name} by hand from {drive_folder_url()} and set "
                     f"stage1.source: mirror with stage1.mirror: DIR (vrl3 encoder --source mirror --mirror DIR), "
                     f"or stage1.source: none to train without a pretrained encoder")


def _find_drive_file_id(name: str) -> str:
    import gdown  # imported here: it pulls in requests and bs4
    import requests

    try:
        listing = gdown.download_folder(id=registry()["drive_folder_id"], skip_download=True, quiet=True,
                                        timeout=NETWORK_TIMEOUT_S)
    except (requests.RequestException, gdown.exceptions.DownloadError, OSError) as error:
        raise _offline_error("list the authors' Google Drive folder", error, name) from None
    wanted = f"{registry()['folder_path']}/{name}"
    for entry in listing:
        if entry.path.replace(os.sep, "/").endswith(wanted):
            return entry.id
    raise UserError(f"{wanted} is not in the authors' Google Drive folder {drive_folder_url()} (it lists "
                    f"{len(listing)} files): download it by hand and use stage1.source: mirror")


def _download_drive_file(file_id: str, destination: Path, name: str) -> None:
    import gdown
    import requests

    try:
        gdown.download(id=file_id, output=str(destination), quiet=False, timeout=NETWORK_TIMEOUT_S, retries=2)
    except (requests.RequestException, gdown.exceptions.DownloadError, OSError) as error:
        raise _offline_error(f"download {name} from Google Drive", error, name) from None


def _verify(path: Path, name: str, origin: str, fix: str) -> EncoderFile:
    expected = _expected_sha256(name)
    digest = verified_sha256(path, expected, origin, f"the authors' {name}", fix)
    return EncoderFile(name, origin, digest, pinned=expected is not None)


def _check_loadable(path: Path, arch: str, origin: str) -> None:
    """Load the file as training will (strict, weights_only), so a bad file fails here and not in every job."""
    from vrl3.agent.encoder import load_stage1_checkpoint, make_resnet84  # imported here: it pulls in torch

    try:
        load_stage1_checkpoint(make_resnet84(arch, num_classes=None), path)
    except UserError as error:
        raise UserError(str(error).replace(str(path), origin)) from None  # the temp file's name means nothing


def _publish(temp: Path, record: EncoderFile, out: Path) -> None:
    """Move the verified temp file to `out`, its record first, so `out` exists only once complete."""
    sidecar = out.with_name(out.name + ".json")
    write_text_atomic(sidecar, json.dumps(asdict(record), indent=1) + "\n")
    os.replace(temp, out)


def get_encoder(arch: str, source: str, out: str | Path, mirror: str | Path | None = None) -> EncoderFile:
    """Place the authors' `<arch>_checkpoint.pth.tar` at `out`, from Google Drive (fetch) or a folder (mirror)."""
    name = checkpoint_name(arch)
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder: name the checkpoint file, e.g. --out {out / name}")
    if file_in_the_way(out.parent) is not None:
        raise UserError(f"--out {out}: its folder {out.parent} cannot be created, a file is in the way")
    with removed_if_failed(out.parent):
        return _place_encoder(arch, source, out, mirror, name)


def _place_encoder(arch: str, source: str, out: Path, mirror: str | Path | None, name: str) -> EncoderFile:
    """get_encoder's work once --out's folder exists: copy or download to a temp file, verify, publish."""
    handle, temp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    os.close(handle)
    temp = Path(temp_name)
    try:
        if source == "mirror":
            if mirror is None:
                raise UserError("--source mirror needs --mirror DIR (a folder holding " + name + ")")
            candidates = [Path(mirror) / name, Path(mirror) / registry()["folder_path"] / name]
            found = next((path for path in candidates if path.is_file()), None)
            if found is None:
                raise UserError(f"{candidates[0]} not found: stage1.mirror must name a folder holding {name} "
                                f"(or its trained_models/ subfolder), or set stage1.source: fetch")
            shutil.copyfile(found, temp)
            record = _verify(temp, name, str(found), "replace it with the authors' file")
        elif source == "fetch":
            file_id = _find_drive_file_id(name)
            _download_drive_file(file_id, temp, name)
            record = _verify(temp, name, f"Google Drive file {file_id}", "retry, or fetch it by hand (mirror)")
        else:
            raise UserError(f"--source {source!r}: choose fetch or mirror")
        _check_loadable(temp, arch, record.origin)
        if not record.pinned:
            print(f"warning: {name} has no registered sha256; accepted {record.origin} with sha256 {record.sha256} "
                  f"(unpinned, recorded in the .json beside the checkpoint)", file=sys.stderr)
        _publish(temp, record, out)
        return record
    finally:
        temp.unlink(missing_ok=True)
