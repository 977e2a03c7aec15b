"""`vrl3 encoder`: copy from a mirror (checksummed, recorded, atomic) and a one-line error when offline."""

import hashlib
import json

import pytest
import torch

from vrl3.agent import make_resnet84
from vrl3.cli import main
from vrl3.stage1 import fetch

ARCH = "resnet6_32channel"


def checkpoint_bytes(tmp_path, model_arch=ARCH, **extra) -> bytes:
    """A checkpoint in the authors' layout (DataParallel `module.` keys, 1000-class fc)."""
    state = {f"module.{k}": v for k, v in make_resnet84(model_arch).state_dict().items()}
    path = tmp_path / "made.pth.tar"
    torch.save({"epoch": 90, "state_dict": state, **extra}, path)
    payload = path.read_bytes()
    path.unlink()
    return payload


def run_mirror(mirror, out) -> int:
    return main(["encoder", "--source", "mirror", "--arch", ARCH, "--mirror", str(mirror), "--out", str(out)])


def test_mirror_copy_is_verified_and_recorded(tmp_path, capsys):
    mirror = tmp_path / "mirror" / "trained_models"
    mirror.mkdir(parents=True)
    payload = checkpoint_bytes(tmp_path, arch=ARCH)
    (mirror / f"{ARCH}_checkpoint.pth.tar").write_bytes(payload)
    out = tmp_path / "data" / "stage1" / f"{ARCH}_checkpoint.pth.tar"
    assert run_mirror(mirror.parent, out) == 0
    assert out.read_bytes() == payload
    record = json.loads(out.with_name(out.name + ".json").read_text())
    assert record["sha256"] == hashlib.sha256(payload).hexdigest()
    assert record["pinned"] is False  # no published sum for the authors' checkpoints
    assert "no registered sha256" in capsys.readouterr().err
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_a_registered_sum_rejects_another_file(tmp_path, monkeypatch):
    (tmp_path / f"{ARCH}_checkpoint.pth.tar").write_bytes(b"tampered")
    registry = json.loads(json.dumps(fetch.registry()))
    registry["files"][f"{ARCH}_checkpoint.pth.tar"]["sha256"] = hashlib.sha256(b"original").hexdigest()
    monkeypatch.setattr(fetch, "registry", lambda: registry)
    out = tmp_path / "out" / "enc.pth.tar"
    with pytest.raises(fetch.UserError, match="sha256"):
        fetch.get_encoder(ARCH, "mirror", out, tmp_path)
    assert not out.exists()


def test_missing_mirror_file_names_the_fix(tmp_path, capsys):
    assert main(["encoder", "--source", "mirror", "--arch", ARCH, "--mirror", str(tmp_path),
                 "--out", str(tmp_path / "x.pth.tar")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not found" in err and "stage1.source" in err


def test_offline_fetch_is_one_line_naming_the_fix(tmp_path, capsys, monkeypatch):
    # a proxy on a closed local port makes every request fail at once, with or without a network
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    out = tmp_path / "x.pth.tar"
    assert main(["encoder", "--source", "fetch", "--arch", ARCH, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "stage1.source: mirror" in err and "stage1.source: none" in err
    assert fetch.registry()["drive_folder_id"] in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_unknown_arch_is_refused(tmp_path):
    assert main(["encoder", "--source", "mirror", "--arch", "resnet7", "--mirror", str(tmp_path),
                 "--out", str(tmp_path / "x")]) == 2


BAD_CHECKPOINTS = {
    "empty": lambda tmp_path: b"",
    "text": lambda tmp_path: b"garbage\n",
    "other_arch": lambda tmp_path: checkpoint_bytes(tmp_path, model_arch="resnet6_64channel"),
    "other_arch_recorded": lambda tmp_path: checkpoint_bytes(tmp_path, arch="resnet10_32channel"),
}
DAMAGED = "is damaged or not a torch checkpoint"
BAD_CHECKPOINT_MESSAGES = {"empty": DAMAGED, "text": DAMAGED, "other_arch": "shapes differ",
                           "other_arch_recorded": "is for arch 'resnet10_32channel'"}


@pytest.mark.parametrize("case", sorted(BAD_CHECKPOINTS))
def test_a_file_training_cannot_load_is_refused_at_copy_time(case, tmp_path, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    source = mirror / f"{ARCH}_checkpoint.pth.tar"
    source.write_bytes(BAD_CHECKPOINTS[case](tmp_path))
    out = tmp_path / "stage1" / "enc.pth.tar"
    assert run_mirror(mirror, out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(source) in err and BAD_CHECKPOINT_MESSAGES[case] in err, err
    assert "unpinned" not in err and ".part" not in err
    assert not out.parent.exists()  # no checkpoint, no .json, no temp file, not even the folder this call made


def test_out_that_is_a_folder_is_refused_up_front(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / f"{ARCH}_checkpoint.pth.tar").write_bytes(checkpoint_bytes(tmp_path))
    out = tmp_path / "stage1"
    out.mkdir()
    assert run_mirror(mirror, out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--out {out} is a folder" in err, err
    assert list(out.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["mirror", "stage1"]
