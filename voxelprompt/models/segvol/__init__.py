"""SegVol (BAAI-DCAI): the network in parts, its builder and strict checkpoint loading."""

from __future__ import annotations

from voxelprompt.models.segvol.builder import (
    SEGVOL_CONFIGS,
    SEGVOL_REGISTRY,
    SEGVOL_TINY,
    SEGVOL_V1,
    SegVolConfig,
    build_segvol,
    build_segvol_config,
)
from voxelprompt.models.segvol.checkpoint import load_state_dict_strict, normalize_state_dict, read_state_dict
from voxelprompt.models.segvol.image_encoder import ImageEncoderViT3D
from voxelprompt.models.segvol.mask_decoder import MaskDecoder
from voxelprompt.models.segvol.prompt_encoder import PromptEncoder
from voxelprompt.models.segvol.segvol import SegVol
from voxelprompt.models.segvol.text_encoder import TextEncoder
from voxelprompt.models.segvol.tokenizer import SEGVOL_TEMPLATE, SegVolTokenizer
from voxelprompt.models.segvol.transformer import TwoWayTransformer

__all__ = [
    "SEGVOL_CONFIGS",
    "SEGVOL_REGISTRY",
    "SEGVOL_TINY",
    "SEGVOL_V1",
    "SegVolConfig",
    "build_segvol_config",
    "SEGVOL_TEMPLATE",
    "ImageEncoderViT3D",
    "MaskDecoder",
    "PromptEncoder",
    "SegVol",
    "SegVolTokenizer",
    "TextEncoder",
    "TwoWayTransformer",
    "build_segvol",
    "load_state_dict_strict",
    "normalize_state_dict",
    "read_state_dict",
]
