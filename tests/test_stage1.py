"""Stage-1 pretraining (`vrl3 pretrain`) on a generated ImageFolder (reference §1.2)."""

import csv
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vrl3.agent import make_resnet84, load_stage1_checkpoint
from vrl3.cli import main
from vrl3.stage1.pretrain import learning_rate, topk_correct, train_transform, val_transform

ARCH = "resnet6_32channel"


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """3 classes x 6 random 100x100 PNGs in train/ and 3 per class in val/."""
    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 3)):
        for label in ("a", "b", "c"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def run_pretrain(data, out, epochs, *extra):
    return main(["pretrain", "--data", str(data), "--arch", ARCH, "--epochs", str(epochs), "--batch-size", "4",
                 "--workers", "0", "--out", str(out), "--seed", "0", *extra])


def test_pretrain_writes_loadable_checkpoint_and_resumes(image_folder, tmp_path):
    out = tmp_path / "stage1"
    assert run_pretrain(image_folder, out, epochs=1) == 0
    checkpoint_path = out / f"{ARCH}_checkpoint.pth.tar"
    assert checkpoint_path.is_file() and (out / f"{ARCH}_model_best.pth.tar").is_file()
    assert not list(out.glob("*.tmp"))
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    # the authors' keys, plus what a resume checks
    assert set(checkpoint) == {"epoch", "arch", "state_dict", "best_acc1", "optimizer", "classes", "settings"}
    assert checkpoint["classes"] == ["a", "b", "c"]
    assert checkpoint["settings"] == {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "batch_size": 4, "seed": 0}
    assert checkpoint["epoch"] == 1 and checkpoint["arch"] == ARCH
    assert checkpoint["optimizer"]["param_groups"][0]["momentum"] == 0.9
    assert checkpoint["optimizer"]["param_groups"][0]["weight_decay"] == 1e-4

    encoder = make_resnet84(ARCH, num_classes=None)
    load_stage1_checkpoint(encoder, checkpoint_path)  # strict
    torch.testing.assert_close(encoder.conv1.weight, checkpoint["state_dict"]["conv1.weight"])
    classifier = make_resnet84(ARCH, num_classes=3)
    load_stage1_checkpoint(classifier, checkpoint_path)

    published = tmp_path / "data" / "stage1" / f"{ARCH}_checkpoint.pth.tar"
    assert run_pretrain(image_folder, out, 2, "--publish", str(published)) == 0  # resumes at epoch 1
    assert published.read_bytes() == checkpoint_path.read_bytes()  # the finished run, for the workflow
    assert not list(published.parent.glob("*.tmp"))
    resumed = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    assert resumed["epoch"] == 2
    assert not torch.equal(resumed["state_dict"]["conv1.weight"], checkpoint["state_dict"]["conv1.weight"])
    with open(out / f"{ARCH}_log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    for row in rows:  # top-1 over the 9 validation images: a multiple of 100/9 percent
        correct = float(row["val_acc1"]) * 9 / 100
        assert 0 <= correct <= 9 and correct == pytest.approx(round(correct)), row
        assert float(row["val_acc5"]) == 100  # top-k with k = min(5, 3 classes): always right
        assert 0 < float(row["train_loss"]) < 3  # the mean over the 18 images (about ln 3), not their sum


def test_bad_arguments_are_user_errors(image_folder, tmp_path, capsys):
    assert main(["pretrain", "--data", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "train/" in capsys.readouterr().err
    assert main(["pretrain", "--data", str(image_folder), "--arch", "resnet50", "--out", str(tmp_path)]) == 2
    assert "resnet6_32channel" in capsys.readouterr().err
    assert main(["pretrain", "--data", str(image_folder), "--momentum", "-0.1", "--out", str(tmp_path)]) == 2
    assert "--momentum -0.1 must be a finite number >= 0" in capsys.readouterr().err
    assert main(["pretrain", "--data", str(image_folder), "--wd", "-1", "--out", str(tmp_path)]) == 2
    assert "--weight-decay -1.0 must be a finite number >= 0" in capsys.readouterr().err
    one_class = tmp_path / "one_class"
    for split in ("train", "val"):
        shutil.copytree(image_folder / split / "a", one_class / split / "a")
    assert main(["pretrain", "--data", str(one_class), "--out", str(tmp_path / "o")]) == 2
    assert "holds 1 class folder" in capsys.readouterr().err and not (tmp_path / "o").exists()
    for flag, value in (("--lr", "nan"), ("--lr", "inf"), ("--seed", "-1")):  # NaN weights would be published
        assert main(["pretrain", "--data", str(image_folder), flag, value, "--out", str(tmp_path / "o")]) == 2
        assert f"{flag} " in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_publish_that_is_a_folder_is_refused_before_training(image_folder, tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    assert run_pretrain(image_folder, tmp_path / "out", 1, "--publish", str(tmp_path / "folder")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--publish" in err and "is a folder" in err, err
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_is_a_user_error(image_folder, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    for out in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "sub"):
        assert run_pretrain(image_folder, out, epochs=1) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"--out {out}" in err and "is a file" in err, err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("workers", [0, 1])  # in this process, and in a DataLoader worker process
def test_an_unreadable_image_is_one_line_naming_it(image_folder, tmp_path, capsys, workers):
    data = tmp_path / "data"
    shutil.copytree(image_folder, data)
    bad = data / "train" / "b" / "3.png"
    bad.write_text("not an image")
    assert main(["pretrain", "--data", str(data), "--arch", ARCH, "--epochs", "1", "--batch-size", "4",
                 "--workers", str(workers), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    expected = f"vrl3 pretrain: error: {bad} is not a readable image (UnidentifiedImageError): delete or replace it"
    assert err == [expected], err
    assert not (tmp_path / "out").exists()  # nothing was written: no empty --out is left either


def test_an_interrupt_after_an_epoch_keeps_its_checkpoint(image_folder, tmp_path, monkeypatch):
    """--out is made by the interrupted call itself: the checkpoint of its finished epoch must survive."""
    from vrl3.stage1 import pretrain

    real_evaluate, calls = pretrain._evaluate, []

    def evaluate_then_interrupt(*args):
        calls.append(1)
        if len(calls) == 2:  # epoch 2's evaluation, after epoch 1's checkpoint
            raise KeyboardInterrupt
        return real_evaluate(*args)

    monkeypatch.setattr(pretrain, "_evaluate", evaluate_then_interrupt)
    out = tmp_path / "made" / "out"
    assert run_pretrain(image_folder, out, epochs=2) == 130
    saved = torch.load(out / f"{ARCH}_checkpoint.pth.tar", map_location="cpu", weights_only=True)
    assert saved["epoch"] == 1



def test_a_resumed_run_trains_on_the_data_of_an_uninterrupted_one(image_folder, tmp_path):
    """Epoch 2 after a resume gets epoch 2's shuffle and crops, not epoch 1's again: same weights, same losses."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert run_pretrain(image_folder, straight, epochs=2) == 0
    assert run_pretrain(image_folder, resumed, epochs=1) == 0
    assert run_pretrain(image_folder, resumed, epochs=2) == 0

    def load(out):
        return torch.load(out / f"{ARCH}_checkpoint.pth.tar", map_location="cpu", weights_only=True)["state_dict"]

    def losses(out):
        with open(out / f"{ARCH}_log.csv") as handle:
            return [row["train_loss"] for row in csv.DictReader(handle)]

    straight_weights, resumed_weights = load(straight), load(resumed)
    for name, value in straight_weights.items():
        torch.testing.assert_close(resumed_weights[name], value, rtol=0, atol=0, msg=name)
    assert losses(resumed) == losses(straight)
    assert len(set(losses(straight))) == 2

def test_resume_with_other_classes_names_the_difference(image_folder, tmp_path, capsys):
    out = tmp_path / "stage1"
    assert run_pretrain(image_folder, out, epochs=1) == 0
    checkpoint = (out / f"{ARCH}_checkpoint.pth.tar").read_bytes()
    two_classes = tmp_path / "two_classes"
    for split in ("train", "val"):
        for label in ("a", "b"):
            shutil.copytree(image_folder / split / label, two_classes / split / label)
    capsys.readouterr()
    assert run_pretrain(two_classes, out, epochs=2) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "3 classes" in err and "holds 2" in err and "another --out" in err, err
    assert (out / f"{ARCH}_checkpoint.pth.tar").read_bytes() == checkpoint


def test_topk_and_learning_rate_schedule():
    logits = torch.tensor([[0.1, 0.5, 0.2, 0.0], [0.9, 0.0, 0.05, 0.3], [0.0, 0.1, 0.2, 0.3]])
    target = torch.tensor([1, 3, 0])
    assert topk_correct(logits, target, (1, 2, 4)) == [1, 2, 3]
    assert learning_rate(0.1, 0) == 0.1 and learning_rate(0.1, 29) == 0.1
    assert learning_rate(0.1, 30) == pytest.approx(0.01) and learning_rate(0.1, 89) == pytest.approx(0.001)


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
MEAN, STD = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)


def test_val_transform_gives_normalised_84px_center_crop():
    """Resize(100) leaves a 100-row image as it is; CenterCrop(84) then starts at row 8 and column (150-84)/2 = 33.
    Pixels encode their column (red) and row (green), so a squashed or shifted crop shows."""
    rows, columns = np.mgrid[0:100, 0:150]
    image = np.stack([columns, 2 * rows, np.full_like(rows, 255)], axis=-1).astype(np.uint8)
    out = val_transform()(Image.fromarray(image))
    assert out.shape == (3, 84, 84)
    expected_red = (torch.arange(33, 33 + 84, dtype=torch.float32) / 255 - MEAN[0]) / STD[0]
    expected_green = (2 * torch.arange(8, 8 + 84, dtype=torch.float32) / 255 - MEAN[1]) / STD[1]
    torch.testing.assert_close(out[0], expected_red.expand(84, 84), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[1], expected_green[:, None].expand(84, 84), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[2], torch.full((84, 84), (1 - MEAN[2].item()) / STD[2].item()))


def test_val_transform_resizes_the_shorter_side_to_100():
    image = Image.fromarray(np.zeros((300, 200, 3), np.uint8))  # 300 rows, 200 columns
    assert val_transform().transforms[0](image).size == (100, 150)  # PIL: (width, height)


def test_train_transform_is_random_resized_crop_and_flip():
    """RandomResizedCrop(84) with torchvision's default scale (0.08, 1) and ratio (3/4, 4/3), a horizontal flip with
    p = 0.5, ImageNet normalisation (reference §1.2)."""
    crop, flip, _, normalize = train_transform().transforms
    assert crop.size == (84, 84) and crop.scale == (0.08, 1.0)
    assert crop.ratio == pytest.approx((3 / 4, 4 / 3))
    assert flip.p == 0.5
    assert tuple(normalize.mean) == IMAGENET_MEAN and tuple(normalize.std) == IMAGENET_STD
    rows, columns = np.mgrid[0:120, 0:160]
    image = Image.fromarray(np.stack([columns, rows, rows], axis=-1).astype(np.uint8))
    torch.manual_seed(0)
    outs = [train_transform()(image) for _ in range(40)]
    assert all(out.shape == (3, 84, 84) for out in outs)
    red_rising = [bool(out[0, 0, -1] > out[0, 0, 0]) for out in outs]  # columns left to right, or flipped
    assert 5 < sum(red_rising) < 35
    assert len({round(float(out[0].std()), 3) for out in outs}) > 10  # crops of different sizes


@pytest.mark.slow
def test_distributed_pretraining_under_torchrun(image_folder, tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun not installed next to this python")
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "vrl3.cli", "pretrain",
                             "--data", str(image_folder), "--arch", ARCH, "--epochs", "1", "--batch-size", "4",
                             "--workers", "0", "--out", str(out)], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    checkpoint = out / f"{ARCH}_checkpoint.pth.tar"
    load_stage1_checkpoint(make_resnet84(ARCH, num_classes=None), checkpoint)


def test_resume_with_other_class_names_or_settings_is_refused(image_folder, tmp_path, capsys):
    out = tmp_path / "stage1"
    assert run_pretrain(image_folder, out, epochs=1) == 0
    checkpoint = (out / f"{ARCH}_checkpoint.pth.tar").read_bytes()
    renamed = tmp_path / "renamed"  # same count, one class folder renamed
    for split in ("train", "val"):
        for label, new_label in (("a", "a"), ("b", "b"), ("c", "d")):
            shutil.copytree(image_folder / split / label, renamed / split / new_label)
    capsys.readouterr()
    assert run_pretrain(renamed, out, epochs=2) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other classes" in err and "c, d" in err, err
    assert run_pretrain(image_folder, out, 2, "--lr", "0.05") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--lr 0.1 (now 0.05)" in err, err
    assert run_pretrain(image_folder, out, 2, "--wd", "0", "--momentum", "0.5") == 2
    err = capsys.readouterr().err.strip()
    assert "--weight-decay 0.0001 (now 0.0)" in err and "--momentum 0.9 (now 0.5)" in err, err
    assert (out / f"{ARCH}_checkpoint.pth.tar").read_bytes() == checkpoint


def test_one_training_epoch_is_plain_sgd_on_cross_entropy_in_train_mode():
    """_train_one_epoch against a hand-written loop: zero the gradients, step per batch, train mode, mean loss."""
    from torch.utils.data import DataLoader, TensorDataset

    from vrl3.stage1.pretrain import _train_one_epoch

    class Recording(torch.nn.Linear):
        modes: list = []

        def forward(self, x):
            self.modes.append(self.training)
            return super().forward(x)

    g = torch.Generator().manual_seed(0)
    images, labels = torch.randn(6, 4, generator=g), torch.tensor([0, 1, 2, 0, 1, 2])
    loader = DataLoader(TensorDataset(images, labels), batch_size=3, shuffle=False)
    model = Recording(4, 3)
    twin = torch.nn.Linear(4, 3)
    twin.load_state_dict(model.state_dict())
    model.eval()
    loss = _train_one_epoch(model, loader, torch.optim.SGD(model.parameters(), lr=0.5), torch.device("cpu"),
                            "epoch 0", 0.5, print_every=0)
    assert Recording.modes == [True, True]
    losses = []
    for batch in (slice(0, 3), slice(3, 6)):
        twin.zero_grad()
        step_loss = torch.nn.functional.cross_entropy(twin(images[batch]), labels[batch])
        step_loss.backward()
        with torch.no_grad():
            for param in twin.parameters():
                param -= 0.5 * param.grad
        losses.append(step_loss.item())
    torch.testing.assert_close(model.weight, twin.weight)
    assert loss == pytest.approx(sum(losses) / 2)  # equal batches: the mean over images is the mean of the two
