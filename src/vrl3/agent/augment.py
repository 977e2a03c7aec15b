"""DrQ-v2 random-shift augmentation (reference §2.6)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class RandomShiftsAug(nn.Module):
    """Replicate-pad by `pad`, then shift every image by its own random integer (dx, dy) in [0, 2·pad].

    Done with grid_sample (bilinear, zero padding, align_corners=False) as in DrQ-v2; with integer shifts this
    equals an 84x84 crop of the padded image. Input float (B, C, H, W) with H == W.
    """

    def __init__(self, pad: int = 4):
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                shift: torch.Tensor | None = None) -> torch.Tensor:
        n, _, h, w = x.shape
        if h != w:
            raise ValueError(f"RandomShiftsAug needs square images, got {h}x{w}")
        padded_size = h + 2 * self.pad
        x = F.pad(x, (self.pad,) * 4, mode="replicate")
        eps = 1.0 / padded_size
        arange = torch.linspace(-1.0 + eps, 1.0 - eps, padded_size, device=x.device, dtype=x.dtype)[:h]
        arange = arange.unsqueeze(0).expand(h, h).unsqueeze(2)
        base_grid = torch.cat([arange, arange.transpose(1, 0)], dim=2).unsqueeze(0)
        if shift is None:  # (n, 2) integer shifts: [:, 0] along x (width), [:, 1] along y (height)
            shift = torch.randint(0, 2 * self.pad + 1, (n, 2), generator=generator, device=x.device)
        grid = base_grid + shift.to(x.dtype).view(n, 1, 1, 2) * (2.0 / padded_size)
        return F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
