"""SimMIM masked image modelling for SegVol's 3D ViT encoder (SegVol Sec. 2.2; Xie et al., 2022).

Random mask units (groups of ViT patches) are replaced by a learned mask token before the position
embedding, the encoder runs as usual, a one-layer linear head predicts every voxel of every patch,
and the loss is the mean absolute error over the masked voxels only:
``L = ||b_M - a_M||_1 / Omega(a_M)`` (SegVol Eq. 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from voxelprompt.families.segvol.network.image_encoder import ImageEncoderViT3D

__all__ = ["SimMIM", "random_patch_mask"]


def random_patch_mask(
    grid: Sequence[int], ratio: float, unit: Sequence[int], generator: np.random.Generator
) -> torch.Tensor:
    """A (D', H', W') bool mask over the patch grid with ``ratio`` of its mask units set.

    Args:
        grid: the encoder's patch grid.
        ratio: fraction of mask units masked, in (0, 1); at least one unit is masked.
        unit: mask-unit size in patches along each axis (must divide ``grid``).
        generator: numpy random generator (the trainer seeds it per step).
    """
    grid, unit = tuple(int(g) for g in grid), tuple(int(u) for u in unit)
    if any(u < 1 or g % u for g, u in zip(grid, unit, strict=True)):
        raise ValueError(f"mask unit {unit} must divide the patch grid {grid}")
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"mask ratio must be in (0, 1), got {ratio}")
    coarse = tuple(g // u for g, u in zip(grid, unit, strict=True))
    n = int(np.prod(coarse))
    chosen = generator.choice(n, size=max(1, int(round(ratio * n))), replace=False)
    flat = np.zeros(n, dtype=bool)
    flat[chosen] = True
    mask = flat.reshape(coarse)
    for axis, u in enumerate(unit):
        mask = np.repeat(mask, u, axis=axis)
    return torch.from_numpy(mask)


class SimMIM(nn.Module):
    """An :class:`ImageEncoderViT3D` with SimMIM's mask token and linear voxel head.

    Args:
        encoder: the ViT to pre-train (its parameter names are kept, so the trained encoder loads
            into SegVol's ``image_encoder``).
    """

    def __init__(self, encoder: ImageEncoderViT3D) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.patch_embedding.position_embeddings.shape[-1]
        self.patch_size = tuple(i // g for i, g in zip(encoder.img_size, encoder.feature_size, strict=True))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, hidden))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.head = nn.Conv3d(hidden, int(np.prod(self.patch_size)), kernel_size=1)

    def encode(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, 1, D, H, W) image, (B, D', H', W') bool mask -> (B, C, D', H', W') features."""
        enc = self.encoder
        tokens = enc.patch_embedding.patch_embeddings(image)  # (B, N, C), before positions
        weight = mask.flatten(1).unsqueeze(-1).to(tokens.dtype)
        tokens = tokens * (1.0 - weight) + self.mask_token.to(tokens.dtype) * weight
        tokens = enc.patch_embedding.dropout(tokens + enc.patch_embedding.position_embeddings)
        for block in enc.blocks:
            tokens = block(tokens)
        tokens = enc.norm(tokens)
        return tokens.transpose(1, 2).reshape(image.shape[0], -1, *enc.feature_size)

    def reconstruct(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predicted voxels (B, 1, D, H, W) from the masked image."""
        features = self.head(self.encode(image, mask))  # (B, pD*pH*pW, D', H', W')
        b, (pd, ph, pw), (gd, gh, gw) = image.shape[0], self.patch_size, self.encoder.feature_size
        out = features.reshape(b, pd, ph, pw, gd, gh, gw).permute(0, 4, 1, 5, 2, 6, 3)
        return out.reshape(b, 1, gd * pd, gh * ph, gw * pw)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The SimMIM loss: mean absolute error over the voxels of masked patches."""
        if mask.ndim == 3:
            mask = mask.unsqueeze(0).expand(image.shape[0], -1, -1, -1)
        mask = mask.to(image.device)
        prediction = self.reconstruct(image, mask)
        voxel_mask = mask.to(image.dtype)
        for axis, p in enumerate(self.patch_size):
            voxel_mask = voxel_mask.repeat_interleave(p, dim=axis + 1)
        voxel_mask = voxel_mask.unsqueeze(1)
        error = F.l1_loss(prediction, image, reduction="none")
        return (error * voxel_mask).sum() / voxel_mask.sum().clamp_min(1.0)
