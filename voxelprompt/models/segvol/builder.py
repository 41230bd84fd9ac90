"""Builders for SegVol networks: hyperparameters in named functions, plus a registry.

``build_segvol()`` is the released SegVol v1 (ViT-B image encoder on 32x256x256 windows,
CLIP ViT-B/32 text tower; 180.9 M parameters).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch
from transformers import CLIPTextModel

from voxelprompt.models.segvol.checkpoint import load_state_dict_strict, read_state_dict
from voxelprompt.models.segvol.image_encoder import ImageEncoderViT3D
from voxelprompt.models.segvol.mask_decoder import MaskDecoder
from voxelprompt.models.segvol.prompt_encoder import PromptEncoder
from voxelprompt.models.segvol.segvol import SegVol
from voxelprompt.models.segvol.text_encoder import TextEncoder, clip_vit_b32_text_config
from voxelprompt.models.segvol.tokenizer import SegVolTokenizer
from voxelprompt.models.segvol.transformer import TwoWayTransformer

__all__ = ["SEGVOL_REGISTRY", "build_segvol"]


def build_segvol(checkpoint: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> SegVol:
    """SegVol v1, in eval mode; random weights unless ``checkpoint`` is given.

    Args:
        checkpoint: a SegVol checkpoint file (``SegVol_v1.pth`` or the HF ``pytorch_model.bin``),
            loaded strictly.
        device: where to put the network.

    Raises:
        CheckpointError: the checkpoint is unreadable or does not match the architecture.
    """
    return _build_segvol(
        img_size=(32, 256, 256),
        patch_size=(4, 16, 16),
        embed_dim=768,
        encoder_depth=12,
        encoder_num_heads=12,
        encoder_mlp_dim=3072,
        checkpoint=checkpoint,
        device=device,
    )


def _build_segvol(
    *,
    img_size: Sequence[int],
    patch_size: Sequence[int],
    embed_dim: int,
    encoder_depth: int,
    encoder_num_heads: int,
    encoder_mlp_dim: int,
    checkpoint: str | os.PathLike | None,
    device: str | torch.device,
) -> SegVol:
    image_encoder = ImageEncoderViT3D(
        img_size=img_size,
        patch_size=patch_size,
        hidden_size=embed_dim,
        mlp_dim=encoder_mlp_dim,
        num_layers=encoder_depth,
        num_heads=encoder_num_heads,
    )
    feature_size = image_encoder.feature_size
    model = SegVol(
        image_encoder=image_encoder,
        prompt_encoder=PromptEncoder(
            embed_dim=embed_dim,
            image_embedding_size=feature_size,
            input_image_size=img_size,
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            transformer_dim=embed_dim,
            transformer=TwoWayTransformer(depth=2, embedding_dim=embed_dim, num_heads=8, mlp_dim=2048),
            image_embedding_size=feature_size,
            num_multimask_outputs=3,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
            text_dim=embed_dim,
        ),
        text_encoder=TextEncoder(CLIPTextModel(clip_vit_b32_text_config()), embed_dim=embed_dim),
        tokenizer=SegVolTokenizer(),
    )
    if checkpoint is not None:
        load_state_dict_strict(model, read_state_dict(checkpoint), source=str(checkpoint))
    return model.to(device).eval()


#: Named configurations, SAM style: name -> builder.
SEGVOL_REGISTRY: dict[str, Callable[..., SegVol]] = {
    "segvol_v1": build_segvol,
}
