"""ResNet84 encoders, strict stage-1 loading and channel expansion (reference §1.1, §1.3, §2.1)."""

import collections
import math

import pytest
import torch
import torch.nn.functional as F

from vrl3.agent.encoder import (IMAGENET_MEAN, IMAGENET_STD, RESNET84_NAMES, RLEncoder, expand_stem_channels,
                                load_stage1_checkpoint, make_resnet84)
from vrl3.errors import UserError


def conv_part_parameters(model) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if not name.startswith("fc."))


@pytest.mark.parametrize("name, expected", [("resnet6_32channel", 0.40e6), ("resnet6_64channel", 1.59e6),
                                            ("resnet10_32channel", 1.23e6), ("resnet10_64channel", 4.90e6)])
def test_conv_parameter_counts_match_reference(name, expected):
    assert conv_part_parameters(make_resnet84(name)) == pytest.approx(expected, rel=0.01)


def test_resnet6_32_parameter_count_by_hand():
    c = 32
    stem = 3 * c * 9 + c + 2 * c
    stages = sum(cin * cout * 9 + 2 * cout for cin, cout in [(c, c), (c, 2 * c), (2 * c, 4 * c), (4 * c, 8 * c)])
    assert conv_part_parameters(make_resnet84("resnet6_32channel")) == stem + stages


@pytest.mark.parametrize("name", RESNET84_NAMES)
def test_spatial_sizes_and_feature_size(name):
    model = make_resnet84(name).eval()
    sizes = collections.OrderedDict()
    for layer in ("bn1", "layer1", "layer2", "layer3", "layer4"):
        getattr(model, layer).register_forward_hook(lambda m, i, o, layer=layer: sizes.__setitem__(layer, o.shape))
    with torch.no_grad():
        features = model.features(torch.zeros(2, 3, 84, 84))
        logits = model(torch.zeros(2, 3, 84, 84))
    width = 32 if name.endswith("32channel") else 64
    assert [s[-1] for s in sizes.values()] == [41, 41, 21, 11, 6]
    assert [s[1] for s in sizes.values()] == [width, width, 2 * width, 4 * width, 8 * width]
    assert features.shape == (2, 8 * width) and logits.shape == (2, 1000)
    assert model.fc.in_features == 8 * width


def test_stem_has_bias_and_no_padding():
    model = make_resnet84("resnet6_32channel")
    assert model.conv1.bias is not None and model.conv1.padding == (0, 0) and model.conv1.stride == (2, 2)


def test_resnet6_blocks_are_plain_conv_bn_relu():
    model = make_resnet84("resnet6_32channel").eval()
    assert not any("downsample" in k for k in model.state_dict())
    block = model.layer2[0]
    x = torch.randn(2, 32, 41, 41)
    expected = F.relu(F.batch_norm(F.conv2d(x, block.conv1.weight, stride=2, padding=1), block.bn1.running_mean,
                                   block.bn1.running_var, block.bn1.weight, block.bn1.bias, eps=block.bn1.eps))
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected)


def test_resnet10_has_residual_blocks_with_downsample_shortcuts():
    keys = make_resnet84("resnet10_32channel").state_dict().keys()
    assert "layer1.0.conv2.weight" in keys and "layer1.0.downsample.0.weight" not in keys
    for stage in (2, 3, 4):
        assert f"layer{stage}.0.downsample.0.weight" in keys and f"layer{stage}.0.downsample.1.running_mean" in keys


def test_kaiming_fan_out_init():
    model = make_resnet84("resnet6_64channel", generator=torch.Generator().manual_seed(0))
    weight = model.layer4[0].conv1.weight  # (512, 256, 3, 3): fan_out = 512 * 9
    assert weight.std().item() == pytest.approx(math.sqrt(2 / (512 * 9)), rel=0.02)
    assert abs(weight.mean().item()) < 1e-3
    assert torch.all(model.bn1.weight == 1) and torch.all(model.bn1.bias == 0)


def test_init_is_reproducible_from_generator():
    a = make_resnet84("resnet6_32channel", generator=torch.Generator().manual_seed(3))
    b = make_resnet84("resnet6_32channel", generator=torch.Generator().manual_seed(3))
    c = make_resnet84("resnet6_32channel", generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.layer3[0].conv1.weight, b.layer3[0].conv1.weight)
    assert not torch.equal(a.layer3[0].conv1.weight, c.layer3[0].conv1.weight)


def test_unknown_model_name_is_user_error():
    with pytest.raises(UserError, match="resnet6_32channel"):
        make_resnet84("resnet7_32channel")


# ---------------------------------------------------------------- strict loading

def authors_checkpoint(model, path, prefix="module."):
    """The layout train_stage1.py writes under nn.DataParallel (plus optimizer state)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    model(torch.randn(2, 3, 84, 84)).sum().backward()
    optimizer.step()
    torch.save({"epoch": 90, "arch": model.arch, "state_dict": {prefix + k: v for k, v in model.state_dict().items()},
                "best_acc1": torch.tensor(41.5), "optimizer": optimizer.state_dict()}, path)


def test_loads_authors_format_with_module_prefix_and_ignores_fc(tmp_path):
    source = make_resnet84("resnet6_32channel", generator=torch.Generator().manual_seed(1))
    path = tmp_path / "resnet6_32channel_checkpoint.pth.tar"
    authors_checkpoint(source, path)
    target = make_resnet84("resnet6_32channel", num_classes=None, generator=torch.Generator().manual_seed(2))
    load_stage1_checkpoint(target, path)
    expected = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    assert target.state_dict().keys() == expected.keys()
    for key, value in target.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_loads_into_model_with_fc_and_requires_fc_keys(tmp_path):
    source = make_resnet84("resnet6_32channel", generator=torch.Generator().manual_seed(1))
    path = tmp_path / "ckpt.pth.tar"
    authors_checkpoint(source, path, prefix="")
    target = make_resnet84("resnet6_32channel")
    load_stage1_checkpoint(target, path)
    assert torch.equal(target.fc.weight, source.fc.weight)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    torch.save({"state_dict": state}, path)
    with pytest.raises(UserError, match="fc.weight"):
        load_stage1_checkpoint(make_resnet84("resnet6_32channel"), path)


def test_missing_key_is_user_error_naming_file_and_key(tmp_path):
    state = make_resnet84("resnet6_32channel").state_dict()
    del state["layer3.0.bn1.running_var"]
    path = tmp_path / "broken.pth.tar"
    torch.save({"state_dict": state}, path)
    with pytest.raises(UserError, match=r"broken\.pth\.tar.*layer3\.0\.bn1\.running_var"):
        load_stage1_checkpoint(make_resnet84("resnet6_32channel", num_classes=None), path)


def test_unexpected_key_is_user_error(tmp_path):
    state = make_resnet84("resnet6_32channel").state_dict()
    state["layer5.0.conv1.weight"] = torch.zeros(1)
    path = tmp_path / "extra.pth.tar"
    torch.save({"state_dict": state}, path)
    with pytest.raises(UserError, match=r"extra\.pth\.tar.*layer5\.0\.conv1\.weight"):
        load_stage1_checkpoint(make_resnet84("resnet6_32channel", num_classes=None), path)


def test_wrong_width_is_user_error(tmp_path):
    path = tmp_path / "wide.pth.tar"
    torch.save({"state_dict": make_resnet84("resnet6_64channel").state_dict()}, path)  # no arch key: shapes decide
    with pytest.raises(UserError, match=r"wide\.pth\.tar.*shapes differ"):
        load_stage1_checkpoint(make_resnet84("resnet6_32channel", num_classes=None), path)


def test_wrong_depth_and_recorded_arch_are_user_errors(tmp_path):
    path = tmp_path / "deep.pth.tar"
    torch.save({"state_dict": make_resnet84("resnet10_32channel").state_dict()}, path)
    with pytest.raises(UserError, match=r"deep\.pth\.tar.*unexpected keys \[.*conv2"):
        load_stage1_checkpoint(make_resnet84("resnet6_32channel", num_classes=None), path)
    torch.save({"arch": "resnet10_32channel", "state_dict": make_resnet84("resnet10_32channel").state_dict()}, path)
    with pytest.raises(UserError, match="resnet10_32channel"):
        load_stage1_checkpoint(make_resnet84("resnet6_32channel", num_classes=None), path)


def test_missing_file_and_non_checkpoint_are_user_errors(tmp_path):
    model = make_resnet84("resnet6_32channel", num_classes=None)
    with pytest.raises(UserError, match="nope.pth.tar"):
        load_stage1_checkpoint(model, tmp_path / "nope.pth.tar")
    torch.save({"state_dict": [1, 2, 3]}, tmp_path / "odd.pth.tar")
    with pytest.raises(UserError, match="odd.pth.tar"):
        load_stage1_checkpoint(model, tmp_path / "odd.pth.tar")


class NotAllowedInWeightsOnly:
    pass


def test_unsafe_pickle_needs_trusted_flag(tmp_path):
    source = make_resnet84("resnet6_32channel")
    path = tmp_path / "pickled.pth.tar"
    torch.save({"state_dict": source.state_dict(), "extra": NotAllowedInWeightsOnly()}, path)
    target = make_resnet84("resnet6_32channel", num_classes=None)
    with pytest.raises(UserError, match="holds Python objects besides tensors") as refused:
        load_stage1_checkpoint(target, path)
    assert "\x1b" not in str(refused.value) and len(str(refused.value).splitlines()) == 1
    load_stage1_checkpoint(target, path, trusted=True)
    assert torch.equal(target.conv1.weight, source.conv1.weight)


@pytest.mark.parametrize("damage", ["truncated", "not a checkpoint"])
def test_a_damaged_checkpoint_is_named_damaged(tmp_path, damage):
    path = tmp_path / "resnet6_32channel_checkpoint.pth.tar"
    torch.save({"state_dict": make_resnet84("resnet6_32channel").state_dict()}, path)
    path.write_bytes(path.read_bytes()[:5000] if damage == "truncated" else b"<html>quota exceeded</html>")
    with pytest.raises(UserError, match="is damaged or not a torch checkpoint .*: get it again with `vrl3 encoder`"):
        load_stage1_checkpoint(make_resnet84("resnet6_32channel", num_classes=None), path)


def test_own_format_round_trip(tmp_path):
    from vrl3.stage1.pretrain import save_atomic

    source = make_resnet84("resnet10_32channel", num_classes=3, generator=torch.Generator().manual_seed(5))
    optimizer = torch.optim.SGD(source.parameters(), lr=0.1, momentum=0.9)
    path = tmp_path / "resnet10_32channel_checkpoint.pth.tar"
    save_atomic({"epoch": 1, "arch": "resnet10_32channel", "state_dict": source.state_dict(), "best_acc1": 12.5,
                 "optimizer": optimizer.state_dict()}, path)
    target = make_resnet84("resnet10_32channel", num_classes=3)
    load_stage1_checkpoint(target, path)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value)


# ---------------------------------------------------------------- RL encoder

def test_rl_encoder_normalises_uint8_with_imagenet_stats():
    model = make_resnet84("resnet6_32channel", num_classes=None, generator=torch.Generator().manual_seed(0)).eval()
    encoder = RLEncoder(model).eval()
    obs = torch.randint(0, 256, (2, 3, 84, 84), dtype=torch.uint8)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(encoder(obs), model.features((obs.float() / 255 - mean) / std))
    assert encoder(obs).shape == (2, 256) and encoder.repr_dim == 256


@pytest.mark.parametrize("train_mode", [False, True])
def test_channel_expansion_on_tiled_image_gives_same_features(train_mode):
    generator = torch.Generator().manual_seed(0)
    original = RLEncoder(make_resnet84("resnet6_32channel", num_classes=None, generator=generator))
    expanded = RLEncoder(make_resnet84("resnet6_32channel", num_classes=None))
    expanded.load_state_dict(original.state_dict())
    expanded.expand_channels(9)
    assert expanded.model.conv1.weight.shape == (32, 9, 3, 3) and expanded.in_channels == 9
    torch.testing.assert_close(expanded.model.conv1.weight[:, 3:6], original.model.conv1.weight / 3)
    torch.testing.assert_close(expanded.mean.flatten(), torch.tensor(IMAGENET_MEAN * 3))
    torch.testing.assert_close(expanded.std.flatten(), torch.tensor(IMAGENET_STD * 3))
    obs = torch.randint(0, 256, (4, 3, 84, 84), dtype=torch.uint8)
    original.train(train_mode)
    expanded.train(train_mode)
    with torch.no_grad():
        torch.testing.assert_close(expanded(obs.repeat(1, 3, 1, 1)), original(obs), rtol=1e-4, atol=1e-5)


def test_expanding_twice_is_refused():
    model = make_resnet84("resnet6_32channel", num_classes=None)
    expand_stem_channels(model, 2)
    with pytest.raises(ValueError):
        expand_stem_channels(model, 2)
