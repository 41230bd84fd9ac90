"""SegVol (BAAI-DCAI): the network in parts, its builder and strict checkpoint loading."""

from __future__ import annotations

from voxelprompt.families.segvol.network.builder import (
    SEGVOL_CONFIGS,
    SEGVOL_REGISTRY,
    SEGVOL_TINY,
    SEGVOL_V1,
    SegVolConfig,
    build_segvol,
    build_segvol_config,
)
from voxelprompt.families.segvol.network.checkpoint import load_state_dict_strict, normalize_state_dict, read_state_dict
from voxelprompt.families.segvol.network.image_encoder import ImageEncoderViT3D
from voxelprompt.families.segvol.network.mask_decoder import MaskDecoder
from voxelprompt.families.segvol.network.prompt_encoder import PromptEncoder
from voxelprompt.families.segvol.network.segvol import SegVol
from voxelprompt.families.segvol.network.text_encoder import TextEncoder
from voxelprompt.families.segvol.network.tokenizer import SEGVOL_TEMPLATE, SegVolTokenizer
from voxelprompt.families.segvol.network.transformer import TwoWayTransformer

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
