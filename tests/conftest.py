import os
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

REPO_ROOT = Path(__file__).resolve().parents[1]


def mirror_dir() -> Path:
    """The hand_dapg mirror: $VRL3_MIRROR, else ../shared/data/hand_dapg beside the checkout."""
    return Path(os.environ.get("VRL3_MIRROR", REPO_ROOT.parent / "shared" / "data" / "hand_dapg"))


@pytest.fixture(scope="session")
def mirror() -> Path:
    path = mirror_dir()
    if not (path / "demonstrations").is_dir():
        pytest.skip(f"hand_dapg mirror not found at {path}; set VRL3_MIRROR to a copy of hand_dapg to run this test")
    return path


@pytest.fixture(scope="session")
def door_demos(mirror, tmp_path_factory) -> Path:
    """2 human door demos rendered from the mirror by `vrl3 demos`, once per test session."""
    from vrl3.cli import main

    out = tmp_path_factory.mktemp("demos") / "door"
    assert main(["demos", "--task", "door", "--source", "human", "--mirror", str(mirror), "--episodes", "2",
                 "--out", str(out)]) == 0
    return out


@pytest.fixture
def minari_offline(tmp_path, monkeypatch) -> Path:
    """An empty Minari datasets folder and no network: a dataset `vrl3 demos` asks for is neither local nor
    downloadable (Minari's own download would retry for half a minute)."""
    import minari.storage.hosting

    def no_network(*args, **kwargs):
        raise ConnectionError("network unreachable")

    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    monkeypatch.setattr(minari.storage.hosting, "download_dataset", no_network)
    return root
