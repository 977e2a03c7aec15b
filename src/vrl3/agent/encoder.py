"""Stage-1 ResNet84 encoders and the RL image encoder built on them (reference §1.1, §1.3, §2.1)."""

from pathlib import Path

import torch
import torch.nn as nn

from vrl3.errors import ANSI_STYLE, UserError, first_line

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

BLOCKS_PER_STAGE = {"resnet6": 0, "resnet10": 1, "resnet18": 2}
START_CHANNELS = {"32channel": 32, "64channel": 64}
RESNET84_NAMES = tuple(f"{depth}_{width}" for depth in BLOCKS_PER_STAGE for width in START_CHANNELS)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


class OneLayerBlock(nn.Module):
    """conv3x3 -> BN -> ReLU without a shortcut: the single block of every resnet6 stage."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn1(self.conv1(x)))


class BasicBlock(nn.Module):
    """torchvision-style residual block; a 1x1 conv + BN shortcut where the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def make_stage(in_channels: int, out_channels: int, n_blocks: int, stride: int) -> nn.Sequential:
    if n_blocks == 0:
        return nn.Sequential(OneLayerBlock(in_channels, out_channels, stride))
    blocks = [BasicBlock(in_channels, out_channels, stride)]
    blocks += [BasicBlock(out_channels, out_channels, 1) for _ in range(n_blocks - 1)]
    return nn.Sequential(*blocks)


class ResNet84(nn.Module):
    """ResNet for 84x84 inputs: 3x3/2 stem without max-pool, 4 stages (C, 2C, 4C, 8C), avg-pool, optional fc."""

    def __init__(self, arch: str, n_blocks: int, start_channels: int, num_classes: int | None = 1000):
        super().__init__()
        self.arch = arch
        c = start_channels
        self.conv1 = nn.Conv2d(3, c, kernel_size=3, stride=2, padding=0, bias=True)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_stage(c, c, n_blocks, 1)
        self.layer2 = make_stage(c, 2 * c, n_blocks, 2)
        self.layer3 = make_stage(2 * c, 4 * c, n_blocks, 2)
        self.layer4 = make_stage(4 * c, 8 * c, n_blocks, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.feature_size = 8 * c
        self.fc = nn.Linear(8 * c, num_classes) if num_classes else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fc is None:
            raise RuntimeError("this ResNet84 has no classification head; call features()")
        return self.fc(self.features(x))


def init_resnet84(model: ResNet84, generator: torch.Generator | None = None) -> None:
    """Kaiming-normal (fan_out, relu) convs, BN 1/0; biases and fc keep PyTorch's default uniform ranges."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            if module.bias is not None:
                bound = 1 / (module.weight[0].numel() ** 0.5)
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    if model.fc is not None:
        nn.init.kaiming_uniform_(model.fc.weight, a=5 ** 0.5, generator=generator)
        bound = 1 / (model.fc.in_features ** 0.5)
        nn.init.uniform_(model.fc.bias, -bound, bound, generator=generator)


def make_resnet84(name: str, num_classes: int | None = 1000, generator: torch.Generator | None = None) -> ResNet84:
    """`resnet{6,10,18}_{32,64}channel`; num_classes None builds the feature extractor without fc."""
    depth, _, width = name.partition("_")
    if depth not in BLOCKS_PER_STAGE or width not in START_CHANNELS:
        raise UserError(f"unknown stage-1 model {name!r}: choose one of {', '.join(RESNET84_NAMES)}")
    model = ResNet84(name, BLOCKS_PER_STAGE[depth], START_CHANNELS[width], num_classes)
    init_resnet84(model, generator)
    return model


def _read_checkpoint(path: Path, trusted: bool) -> object:
    if not path.is_file():
        raise UserError(f"stage-1 checkpoint {path} not found: get it with `vrl3 encoder` (or `vrl3 pretrain "
                        f"--publish`), pass stage1_checkpoint=FILE, or set stage1.source=none for a random encoder")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted)
    except Exception as error:  # noqa: BLE001 - torch raises several types for unreadable files
        if trusted or "Unsupported global" not in ANSI_STYLE.sub("", str(error)):
            raise UserError(f"stage-1 checkpoint {path} is damaged or not a torch checkpoint ({first_line(error)}): "
                            f"get it again with `vrl3 encoder` or `vrl3 pretrain --publish`") from None
        raise UserError(
            f"stage-1 checkpoint {path} holds Python objects besides tensors, which are not loaded (no code runs "
            f"while loading); if you trust the file, re-save just its weights with "
            f"torch.save({{'state_dict': torch.load(path, weights_only=False)['state_dict']}}, path)") from None


def _checkpoint_state_dict(raw: object, path: Path) -> dict[str, torch.Tensor]:
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"stage-1 checkpoint {path} holds no state_dict of tensors: "
                        f"expected a dict with key 'state_dict' (as written by `vrl3 pretrain`)")
    # DataParallel / DDP wrap the model in `.module`
    return {k.removeprefix("module."): v for k, v in state.items()}


def _short_list(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:6]) + (f", ... ({len(keys)} in all)" if len(keys) > 6 else "")


def load_stage1_checkpoint(model: ResNet84, path: str | Path, trusted: bool = False) -> None:
    """Strictly load a stage-1 checkpoint (authors' `<arch>_checkpoint.pth.tar` or ours) into `model`.

    Only the fc keys may be left over, and only when `model` has no fc. Any other missing or unexpected key,
    a shape mismatch or a different recorded architecture raises UserError.
    """
    path = Path(path)
    raw = _read_checkpoint(path, trusted)
    state = _checkpoint_state_dict(raw, path)
    arch = raw.get("arch") if isinstance(raw, dict) else None
    if isinstance(arch, str) and arch != model.arch:
        raise UserError(f"stage-1 checkpoint {path} is for arch {arch!r}, the encoder is {model.arch!r}: "
                        f"set stage1_model_name to {arch!r} or use a {model.arch} checkpoint")
    if model.fc is None:
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    expected = model.state_dict()
    missing = expected.keys() - state.keys()
    unexpected = state.keys() - expected.keys()
    if missing or unexpected:
        raise UserError(f"stage-1 checkpoint {path} does not match {model.arch}: "
                        f"missing keys [{_short_list(missing)}], "
                        f"unexpected keys [{_short_list(unexpected)}]; check stage1_model_name and the file")
    wrong_shapes = [f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}"
                    for k, v in state.items() if v.shape != expected[k].shape]
    if wrong_shapes:
        raise UserError(f"stage-1 checkpoint {path} does not match {model.arch}: shapes differ for "
                        f"{'; '.join(wrong_shapes[:4])}; check stage1_model_name and the file")
    model.load_state_dict(state, strict=True)


def expand_stem_channels(model: ResNet84, n_images: int) -> None:
    """Channel expansion (§1.3): tile the stem weight n times along input channels and divide by n."""
    weight = model.conv1.weight.detach()
    if weight.shape[1] != 3:
        raise ValueError(f"stem already takes {weight.shape[1]} channels")
    model.conv1.weight = nn.Parameter(weight.repeat(1, n_images, 1, 1) / n_images)
    model.conv1.in_channels = 3 * n_images


class RLEncoder(nn.Module):
    """uint8 (B, 3n, 84, 84) in [0, 255] -> /255 -> ImageNet normalisation per image -> ResNet84 features (B, 8C)."""

    def __init__(self, model: ResNet84):
        super().__init__()
        if model.fc is not None:
            raise ValueError("RLEncoder needs a ResNet84 built with num_classes=None")
        self.model = model
        self.repr_dim = model.feature_size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.channels_last = False

    def use_channels_last(self) -> None:
        """NHWC layout for the convolutions and BatchNorm (faster with cuDNN on GPUs; same computation)."""
        self.model.to(memory_format=torch.channels_last)
        self.channels_last = True

    @property
    def in_channels(self) -> int:
        return self.model.conv1.in_channels

    def expand_channels(self, in_channels: int) -> None:
        if in_channels % 3:
            raise ValueError(f"observation channels must be a multiple of 3, got {in_channels}")
        n_images = in_channels // 3
        expand_stem_channels(self.model, n_images)
        self.mean = self.mean.repeat(1, n_images, 1, 1)
        self.std = self.std.repeat(1, n_images, 1, 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = (obs.float() / 255.0 - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model.features(x)
