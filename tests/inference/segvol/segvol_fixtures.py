"""Helpers of the SegVol inference tests: a tiny SegVol and small CT-like volumes (imported by name)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from voxelprompt.families.segvol.network import SEGVOL_TINY, SegVol, build_segvol_config
from voxelprompt.types import Volume

TINY_WINDOW = (8, 32, 32)


def build_tiny_segvol(seed: int = 0, depth: int = 1) -> SegVol:
    """SegVol of the released design at toy sizes: (8, 32, 32) windows, feature grid (2, 2, 2)."""
    torch.manual_seed(seed)
    return build_segvol_config(dataclasses.replace(SEGVOL_TINY, encoder_depth=depth))


def body_phantom(shape=(40, 36, 12), seed: int = 0) -> np.ndarray:
    """Air around an ellipsoidal "body" of soft tissue with a brighter "organ" inside (HU, float32)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    body = (grid[0] / 0.8) ** 2 + (grid[1] / 0.7) ** 2 < 1.0
    organ = ((grid[0] - 0.3) / 0.3) ** 2 + (grid[1] / 0.3) ** 2 + (grid[2] / 0.8) ** 2 < 1.0
    hu = np.where(body, 40.0, -1000.0) + np.where(organ, 80.0, 0.0) + rng.normal(0, 10, shape)
    return hu.astype(np.float32)


def as_lps(volume: Volume) -> Volume:
    """The same physical image stored LPS: i and j reversed, affine adjusted so world is unchanged."""
    shape = volume.shape
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1.0, shape[0] - 1
    flip[1, 1], flip[1, 3] = -1.0, shape[1] - 1
    return Volume(np.ascontiguousarray(volume.array[::-1, ::-1]), volume.affine @ flip, "phantom LPS")
