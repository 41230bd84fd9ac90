"""Helpers of the SegVol inference tests: a tiny SegVol and small CT-like volumes (imported by name)."""

from __future__ import annotations

import numpy as np
import torch
from transformers import CLIPTextConfig, CLIPTextModel

from voxelprompt.models.segvol import (
    ImageEncoderViT3D,
    MaskDecoder,
    PromptEncoder,
    SegVol,
    SegVolTokenizer,
    TextEncoder,
    TwoWayTransformer,
)
from voxelprompt.types import Volume

TINY_WINDOW = (8, 32, 32)


def build_tiny_segvol(seed: int = 0, depth: int = 1) -> SegVol:
    """SegVol of the released design at toy sizes: (8, 32, 32) windows, feature grid (2, 2, 2)."""
    torch.manual_seed(seed)
    grid, dim = (2, 2, 2), 32
    text_config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=77,
        eos_token_id=49407,
        bos_token_id=49406,
    )
    return SegVol(
        image_encoder=ImageEncoderViT3D(
            TINY_WINDOW, (4, 16, 16), hidden_size=dim, mlp_dim=64, num_layers=depth, num_heads=4
        ),
        prompt_encoder=PromptEncoder(dim, grid, TINY_WINDOW, mask_in_chans=16),
        mask_decoder=MaskDecoder(
            transformer_dim=dim,
            transformer=TwoWayTransformer(depth=2, embedding_dim=dim, num_heads=4, mlp_dim=64),
            image_embedding_size=grid,
            text_dim=dim,
        ),
        text_encoder=TextEncoder(CLIPTextModel(text_config), embed_dim=dim),
        tokenizer=SegVolTokenizer(),
    ).eval()


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
