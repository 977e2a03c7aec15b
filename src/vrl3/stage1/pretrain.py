"""Stage 1: classification pretraining of a ResNet84 on an ImageFolder root (reference §1.2).

Single process on one device, or DistributedDataParallel when launched by torchrun (WORLD_SIZE > 1; NCCL with
GPUs, gloo on CPU). Writes `<arch>_checkpoint.pth.tar` after every epoch and `<arch>_model_best.pth.tar` for the
best top-1, both atomically, and resumes from the checkpoint in the output directory.
"""

import csv
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from torchvision import datasets, transforms

from vrl3.agent.encoder import IMAGENET_MEAN, IMAGENET_STD, load_stage1_checkpoint, make_resnet84
from vrl3.errors import UserError
from vrl3.paths import file_in_the_way, removed_if_failed

LR_DECAY_EVERY_EPOCHS = 30


@dataclass
class PretrainSettings:
    data: Path
    arch: str = "resnet6_32channel"
    epochs: int = 90
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    workers: int = 4
    out: Path = Path(".")
    seed: int = 0
    print_every: int = 10
    publish: Path | None = None  # where the finished checkpoint goes (the file a workflow waits for)


def train_transform() -> transforms.Compose:
    return transforms.Compose([transforms.RandomResizedCrop(84), transforms.RandomHorizontalFlip(),
                               transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def val_transform() -> transforms.Compose:
    return transforms.Compose([transforms.Resize(100), transforms.CenterCrop(84),
                               transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def learning_rate(base_lr: float, epoch: int) -> float:
    return base_lr * 0.1 ** (epoch // LR_DECAY_EVERY_EPOCHS)


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: tuple[int, ...]) -> list[int]:
    """Number of samples whose target is among the k highest logits, for each k."""
    top = logits.topk(max(ks), dim=1).indices
    hits = top == target.unsqueeze(1)
    return [int(hits[:, :k].any(dim=1).sum()) for k in ks]


def checkpoint_paths(out: Path, arch: str) -> tuple[Path, Path]:
    return out / f"{arch}_checkpoint.pth.tar", out / f"{arch}_model_best.pth.tar"


def save_atomic(obj: object, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def copy_atomic(source: Path, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, path)


def read_rgb_image(path: str) -> Image.Image:
    """ImageFolder's PIL loader, with an unreadable file named in one line."""
    try:
        with open(path, "rb") as handle:
            return Image.open(handle).convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise UserError(f"{path} is not a readable image ({error.__class__.__name__}): delete or replace it") from None


def batches(loader: DataLoader):
    """Iterate `loader`; a UserError raised in a worker process arrives wrapped in its traceback: keep its message."""
    try:
        yield from loader
    except UserError as error:
        last_line = str(error).strip().splitlines()[-1]
        raise UserError(last_line.removeprefix(f"{UserError.__module__}.{UserError.__name__}: ")) from None


def _image_folders(data: Path) -> tuple[datasets.ImageFolder, datasets.ImageFolder]:
    for split in ("train", "val"):
        if not (data / split).is_dir():
            raise UserError(f"--data {data}: no {split}/ folder; expected an ImageFolder root with train/ and val/")
    try:
        train_set = datasets.ImageFolder(str(data / "train"), train_transform(), loader=read_rgb_image)
        val_set = datasets.ImageFolder(str(data / "val"), val_transform(), loader=read_rgb_image)
    except (FileNotFoundError, RuntimeError) as error:
        raise UserError(f"--data {data}: {error}") from None
    if train_set.classes != val_set.classes:
        raise UserError(f"--data {data}: train/ and val/ hold different class folders; they must be the same")
    if len(train_set.classes) < 2:  # the cross-entropy of one class is 0 from the start: nothing would be learnt
        raise UserError(f"--data {data}: train/ holds {len(train_set.classes)} class folder; classification needs "
                        f"at least 2")
    return train_set, val_set


def _setup_distributed() -> tuple[int, int, torch.device]:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return dist.get_rank(), world_size, torch.device("cuda", local_rank)
    return dist.get_rank(), world_size, torch.device("cpu")


def check_out(out: Path, publish: Path | None) -> None:
    """--out must be a folder or not exist yet (nor sit below a file); --publish a file path."""
    if (blocker := file_in_the_way(out)) is not None:
        raise UserError(f"--out {out}: {blocker} is a file; name a folder (it is created if missing)")
    if publish is not None and publish.is_dir():
        raise UserError(f"--publish {publish} is a folder: name the checkpoint file it should become")
    if publish is not None and (blocker := file_in_the_way(publish.parent)) is not None:
        raise UserError(f"--publish {publish}: {blocker} is a file, its folder cannot be created")


def publish_checkpoint(checkpoint_path: Path, arch: str, target: Path) -> None:
    """Copy the finished checkpoint to `target` once it loads strictly as a stage-1 encoder; atomic."""
    load_stage1_checkpoint(make_resnet84(arch, num_classes=None), checkpoint_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    copy_atomic(checkpoint_path, target)


def recorded_settings(settings: PretrainSettings) -> dict[str, float | int]:
    """The settings a resumed run must share with the run that wrote the checkpoint (--epochs may grow)."""
    return {"lr": settings.lr, "momentum": settings.momentum, "weight_decay": settings.weight_decay,
            "batch_size": settings.batch_size, "seed": settings.seed}


def _check_same_run(path: Path, checkpoint: dict, classes: list[str], settings: PretrainSettings) -> None:
    """Checkpoints of this code record their classes and settings (the authors' do not: nothing to compare)."""
    recorded_classes = checkpoint.get("classes")
    if recorded_classes is not None and list(recorded_classes) != classes:
        differing = sorted(set(recorded_classes) ^ set(classes)) or ["the class order"]
        raise UserError(f"{path} was trained on other classes than --data holds (differing: "
                        f"{', '.join(differing[:5])}): resuming needs the same classes; use another --out or delete it")
    recorded = checkpoint.get("settings") or {}
    changed = [f"--{key.replace('_', '-')} {recorded[key]} (now {value})"
               for key, value in recorded_settings(settings).items() if key in recorded and recorded[key] != value]
    if changed:
        raise UserError(f"{path} was trained with {', '.join(changed)}: resume with the same values, "
                        f"or use another --out")


def _resume(path: Path, settings: PretrainSettings, classes: list[str], model: nn.Module,
            optimizer: torch.optim.Optimizer) -> tuple[int, float]:
    arch, num_classes = settings.arch, len(classes)
    if not path.is_file():
        return 0, 0.0
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        recorded_arch = checkpoint["arch"]
        state = {k.removeprefix("module."): v for k, v in checkpoint["state_dict"].items()}
        epoch, best_acc1 = int(checkpoint["epoch"]), float(checkpoint["best_acc1"])
    except Exception as error:  # noqa: BLE001
        raise UserError(f"cannot resume from {path} ({type(error).__name__}); use another --out or delete it "
                        f"to start over") from None
    if recorded_arch != arch:
        raise UserError(f"{path} is a checkpoint of {recorded_arch!r}, not {arch!r}: use another --out or delete it")
    fc_weight = state.get("fc.weight")
    if isinstance(fc_weight, torch.Tensor) and fc_weight.shape[0] != num_classes:
        raise UserError(f"{path} was trained on {fc_weight.shape[0]} classes but --data holds {num_classes}: "
                        f"resuming needs the same classes; use another --out or delete it")
    _check_same_run(path, checkpoint, classes, settings)
    try:
        model.load_state_dict(state)
        optimizer.load_state_dict(checkpoint["optimizer"])
    except (KeyError, RuntimeError, ValueError) as error:
        detail = " ".join(str(error).split())[:300] or type(error).__name__  # torch's message spans lines
        raise UserError(f"cannot resume from {path} ({detail}); use another --out or delete it") from None
    return epoch, best_acc1


def _evaluate(model: nn.Module, loader: DataLoader, device: torch.device, ks: tuple[int, ...]) -> list[float]:
    model.eval()
    correct, seen = [0] * len(ks), 0
    with torch.no_grad():
        for images, target in batches(loader):
            logits = model(images.to(device, non_blocking=True))
            correct = [c + n for c, n in zip(correct, topk_correct(logits, target.to(device), ks))]
            seen += target.shape[0]
    return [100.0 * c / max(seen, 1) for c in correct]


def _train_one_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, device: torch.device,
                     what: str, lr: float, print_every: int) -> float:
    """One pass of SGD on cross-entropy over `loader`; the mean training loss (a progress line every
    `print_every` iterations, none at 0)."""
    model.train()
    criterion = nn.CrossEntropyLoss()
    loss_sum, seen = torch.zeros((), device=device), 0
    for i, (images, target) in enumerate(batches(loader)):
        images, target = images.to(device, non_blocking=True), target.to(device, non_blocking=True)
        loss = criterion(model(images), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * target.shape[0]  # stays on the device: no sync per iteration
        seen += target.shape[0]
        if print_every and i % print_every == 0:
            print(f"{what} [{i}/{len(loader)}] loss {loss.item():.4f} lr {lr:g}", flush=True)
    return loss_sum.item() / max(seen, 1)


def _append_log_row(log_path: Path, metrics: dict[str, float]) -> None:
    new_log = not log_path.exists()
    with open(log_path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(metrics))
        if new_log:
            writer.writeheader()
        writer.writerow(metrics)


def pretrain(settings: PretrainSettings) -> dict[str, float]:
    """Train (or continue training) and return the last epoch's metrics."""
    out = Path(settings.out)
    publish = Path(settings.publish) if settings.publish is not None else None
    check_out(out, publish)
    train_set, val_set = _image_folders(Path(settings.data))
    with removed_if_failed(out, keep_files=True):  # no empty --out after a failure in the first epoch
        return _train(settings, out, publish, train_set, val_set)


def _seed_epoch(seed: int, rank: int, epoch: int, loader_generator: torch.Generator) -> None:
    """An epoch's shuffle and augmentations (worker seeds, or the main process's RNG with no workers) depend on
    (seed, rank, epoch) only, so an epoch after a resume sees the data it would have seen without the interruption."""
    epoch_seed = int(np.random.SeedSequence([seed, rank, epoch]).generate_state(1)[0])
    torch.manual_seed(epoch_seed)
    loader_generator.manual_seed(epoch_seed)


def _train(settings: PretrainSettings, out: Path, publish: Path | None, train_set: datasets.ImageFolder,
           val_set: datasets.ImageFolder) -> dict[str, float]:
    rank, world_size, device = _setup_distributed()
    checkpoint_path, best_path = checkpoint_paths(out, settings.arch)
    num_classes = len(train_set.classes)
    ks = (1, min(5, num_classes))
    model = make_resnet84(settings.arch, num_classes=num_classes,
                          generator=torch.Generator().manual_seed(settings.seed)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), settings.lr, momentum=settings.momentum,
                                weight_decay=settings.weight_decay)
    start_epoch, best_acc1 = _resume(checkpoint_path, settings, train_set.classes, model, optimizer)
    trained = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                  else None) if world_size > 1 else model

    sampler = DistributedSampler(train_set, seed=settings.seed) if world_size > 1 else None
    loader_generator = torch.Generator()
    pin = device.type == "cuda"
    train_loader = DataLoader(train_set, batch_size=max(settings.batch_size // world_size, 1), shuffle=sampler is None,
                              sampler=sampler, num_workers=settings.workers, pin_memory=pin, drop_last=False,
                              generator=loader_generator, persistent_workers=False)
    val_loader = DataLoader(val_set, batch_size=max(settings.batch_size // world_size, 1), shuffle=False,
                            num_workers=settings.workers, pin_memory=pin)
    log_path = out / f"{settings.arch}_log.csv"
    metrics: dict[str, float] = {}

    if start_epoch >= settings.epochs and rank == 0:
        print(f"{checkpoint_path} already holds {start_epoch} epochs (>= --epochs {settings.epochs}); nothing to do")
    for epoch in range(start_epoch, settings.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        _seed_epoch(settings.seed, rank, epoch, loader_generator)
        lr = learning_rate(settings.lr, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        started = time.time()
        print_every = settings.print_every if rank == 0 else 0
        train_loss = _train_one_epoch(trained, train_loader, optimizer, device, f"epoch {epoch}", lr, print_every)
        acc1, acc5 = _evaluate(model, val_loader, device, ks)
        is_best = acc1 > best_acc1 or not best_path.exists()  # a tie keeps the earlier epoch's file
        best_acc1 = max(best_acc1, acc1)
        metrics = {"epoch": epoch + 1, "lr": lr, "train_loss": train_loss, "val_acc1": acc1,
                   "val_acc5": acc5, "seconds": time.time() - started}
        if rank == 0:
            print(f"epoch {epoch}: train loss {metrics['train_loss']:.4f}  val top-1 {acc1:.2f}  "
                  f"top-{ks[1]} {acc5:.2f}  ({metrics['seconds']:.0f} s)", flush=True)
            save_atomic({"epoch": epoch + 1, "arch": settings.arch, "state_dict": model.state_dict(),
                         "best_acc1": best_acc1, "optimizer": optimizer.state_dict(),
                         "classes": train_set.classes, "settings": recorded_settings(settings)}, checkpoint_path)
            if is_best:
                copy_atomic(checkpoint_path, best_path)
            _append_log_row(log_path, metrics)
    if rank == 0 and publish is not None:
        publish_checkpoint(checkpoint_path, settings.arch, publish)
        print(f"vrl3 pretrain: published {checkpoint_path} as {publish}", flush=True)
    if world_size > 1:
        dist.barrier()
        dist.destroy_process_group()
    return metrics
