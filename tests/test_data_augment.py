"""He §4.2 augmentation: checked against a per-image reference loop (pad, crop, flip)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from resnet_viz.data.augment import pad_crop_flip


def reference(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    b, _, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    out = []
    for k in range(b):
        img = F.pad(x[k], (pad, pad, pad, pad))
        i, j = int(offsets[0, k]), int(offsets[1, k])
        crop = img[:, i:i + h, j:j + w]
        out.append(crop.flip(-1) if flip[k] else crop)
    return torch.stack(out)


def test_matches_a_per_image_loop_and_is_seeded():
    x = torch.randn(16, 3, 32, 32)
    got = pad_crop_flip(x, torch.Generator().manual_seed(3))
    assert torch.equal(got, reference(x, torch.Generator().manual_seed(3)))
    assert torch.equal(got, pad_crop_flip(x, torch.Generator().manual_seed(3)))
    assert not torch.equal(got, pad_crop_flip(x, torch.Generator().manual_seed(4)))


def test_shapes_values_and_input_untouched():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8) + 1
    before = x.clone()
    y = pad_crop_flip(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.equal(x, before)
    kept = set(x.flatten().tolist()) | {0.0}
    assert set(y.flatten().tolist()) <= kept           # only original pixels or zero padding
