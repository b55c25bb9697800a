"""He et al. 2016 §4.2's augmentation for CIFAR: "4 pixels are padded on each side, and a
32×32 crop is randomly sampled from the padded image or its horizontal flip".

Batched tensor operations on the device that trains (one gather for the whole batch, no
PIL per image), drawn from the trainer's own seeded generator: the same seed gives the
same crops and flips, so a plain net and its residual twin see the very same images.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

PAD = 4


def pad_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = PAD) -> torch.Tensor:
    """A random ``pad``-pixel-shifted crop of each image (zeros where it leaves the image,
    which is the dataset mean after normalisation), flipped left-right with probability 1/2.

    ``x`` (B, C, H, W) -> the same shape; ``x`` itself is not modified.
    """
    b, _, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=generator).to(x.device)
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))                                  # (B, C, H+2p, W+2p)
    rows = offsets[0][:, None] + torch.arange(h, device=x.device)            # (B, H)
    cols = offsets[1][:, None] + torch.arange(w, device=x.device)            # (B, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)                    # a flip reverses the columns
    batch = torch.arange(b, device=x.device)[:, None, None]
    crops = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]   # (B, H, W, C)
    return crops.permute(0, 3, 1, 2).contiguous()
