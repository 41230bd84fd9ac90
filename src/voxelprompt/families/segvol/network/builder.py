"""Builders for SegVol networks: sizes in a config dataclass, named configs and a registry.

``build_segvol()`` is the released SegVol v1 (ViT-B image encoder on 32x256x256 windows,
CLIP ViT-B/32 text tower; 180.9 M parameters).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import CLIPTextConfig, CLIPTextModel

from voxelprompt.errors import InputError
from voxelprompt.families.segvol.network.checkpoint import load_state_dict_strict, read_state_dict
from voxelprompt.families.segvol.network.image_encoder import ImageEncoderViT3D
from voxelprompt.families.segvol.network.mask_decoder import MaskDecoder
from voxelprompt.families.segvol.network.prompt_encoder import PromptEncoder
from voxelprompt.families.segvol.network.segvol import SegVol
from voxelprompt.families.segvol.network.text_encoder import TextEncoder, clip_vit_b32_text_config
from voxelprompt.families.segvol.network.tokenizer import SegVolTokenizer
from voxelprompt.families.segvol.network.transformer import TwoWayTransformer

__all__ = [
    "SEGVOL_CONFIGS",
    "SEGVOL_REGISTRY",
    "SegVolConfig",
    "build_segvol",
    "build_segvol_config",
    "config_for_state_dict",
    "tiny_segvol",
    "SEGVOL_V1",
    "SEGVOL_TINY",
]


@dataclass(frozen=True)
class SegVolConfig:
    """Sizes of a SegVol network of the released design.

    Args:
        img_size: (D, H, W) window; patch_size: ViT patch (must divide ``img_size``).
        embed_dim, encoder_depth, encoder_num_heads, encoder_mlp_dim: the ViT image encoder.
        decoder_num_heads, decoder_mlp_dim: the two-way transformer of the mask decoder.
        text: the CLIP text tower's ``CLIPTextConfig`` keyword arguments (None: CLIP ViT-B/32).
    """

    img_size: tuple[int, int, int] = (32, 256, 256)
    patch_size: tuple[int, int, int] = (4, 16, 16)
    embed_dim: int = 768
    encoder_depth: int = 12
    encoder_num_heads: int = 12
    encoder_mlp_dim: int = 3072
    decoder_num_heads: int = 8
    decoder_mlp_dim: int = 2048
    text: dict | None = None

    @classmethod
    def from_dict(cls, data: dict) -> SegVolConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"SegVol config: unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
        values = {k: tuple(v) if k in ("img_size", "patch_size") else v for k, v in data.items()}
        return cls(**values)


#: The released SegVol v1 (180.9 M parameters).
SEGVOL_V1 = SegVolConfig()
#: A toy network of the same design for tests and CPU smoke runs: (8, 32, 32) windows.
SEGVOL_TINY = SegVolConfig(
    img_size=(8, 32, 32),
    embed_dim=32,
    encoder_depth=1,
    encoder_num_heads=4,
    encoder_mlp_dim=64,
    decoder_num_heads=4,
    decoder_mlp_dim=64,
    text={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2},
)


def build_segvol(checkpoint: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> SegVol:
    """SegVol in eval mode: v1 with random weights, or the network a checkpoint holds.

    Args:
        checkpoint: a SegVol checkpoint file (``SegVol_v1.pth``, the HF ``pytorch_model.bin``, or
            one of a smaller :data:`SEGVOL_CONFIGS` size), loaded strictly; its size is read off
            its tensors (:func:`config_for_state_dict`).
        device: where to put the network.

    Raises:
        CheckpointError: the checkpoint is unreadable or matches no known SegVol size.
    """
    if checkpoint is None:
        return build_segvol_config(SEGVOL_V1, device=device)
    state = read_state_dict(checkpoint)
    model = build_segvol_config(config_for_state_dict(state, str(checkpoint)))
    load_state_dict_strict(model, state, source=str(checkpoint))
    return model.to(device).eval()


def config_for_state_dict(state: dict[str, torch.Tensor], source: str = "checkpoint") -> SegVolConfig:
    """The named size (:data:`SEGVOL_CONFIGS`) whose encoder width, depth and patch grid these
    tensors have (head counts are not visible in shapes, so sizes come from the named list).

    Raises:
        CheckpointError: no named size fits (the message gives what the tensors show).
    """
    from voxelprompt.errors import CheckpointError

    key = "image_encoder.patch_embedding.position_embeddings"
    if key not in state:
        raise CheckpointError(f"{source}: not a SegVol checkpoint (no {key!r})")
    if state[key].ndim != 3:
        raise CheckpointError(f"{source}: not a SegVol checkpoint ({key} has shape {tuple(state[key].shape)})")
    patches, width = int(state[key].shape[1]), int(state[key].shape[2])
    depth = len({k.split(".")[2] for k in state if k.startswith("image_encoder.blocks.")})
    for name, config in SEGVOL_CONFIGS.items():
        grid = [i // p for i, p in zip(config.img_size, config.patch_size)]
        if (config.embed_dim, config.encoder_depth, grid[0] * grid[1] * grid[2]) == (width, depth, patches):
            return config
    raise CheckpointError(
        f"{source}: a SegVol of width {width}, depth {depth} and {patches} patches matches no known size "
        f"({', '.join(SEGVOL_CONFIGS)})"
    )


def build_segvol_config(
    config: SegVolConfig,
    checkpoint: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> SegVol:
    """A SegVol network of any :class:`SegVolConfig`, in eval mode (see :func:`build_segvol`)."""
    image_encoder = ImageEncoderViT3D(
        img_size=config.img_size,
        patch_size=config.patch_size,
        hidden_size=config.embed_dim,
        mlp_dim=config.encoder_mlp_dim,
        num_layers=config.encoder_depth,
        num_heads=config.encoder_num_heads,
    )
    feature_size = image_encoder.feature_size
    if config.text is None:
        text_config = clip_vit_b32_text_config()
    else:
        text_config = CLIPTextConfig(
            **{"vocab_size": 49408, "max_position_embeddings": 77, "bos_token_id": 49406, "eos_token_id": 49407}
            | dict(config.text)
        )
    embed_dim = config.embed_dim
    model = SegVol(
        image_encoder=image_encoder,
        prompt_encoder=PromptEncoder(
            embed_dim=embed_dim,
            image_embedding_size=feature_size,
            input_image_size=config.img_size,
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            transformer_dim=embed_dim,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=embed_dim, num_heads=config.decoder_num_heads, mlp_dim=config.decoder_mlp_dim
            ),
            image_embedding_size=feature_size,
            num_multimask_outputs=3,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
            text_dim=embed_dim,
        ),
        text_encoder=TextEncoder(CLIPTextModel(text_config), embed_dim=embed_dim),
        tokenizer=SegVolTokenizer(),
    )
    if checkpoint is not None:
        load_state_dict_strict(model, read_state_dict(checkpoint), source=str(checkpoint))
    return model.to(device).eval()


#: Named configurations: name -> :class:`SegVolConfig`.
SEGVOL_CONFIGS: dict[str, SegVolConfig] = {"segvol_v1": SEGVOL_V1, "segvol_tiny": SEGVOL_TINY}


def _tiny(checkpoint: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> SegVol:
    return build_segvol_config(SEGVOL_TINY, checkpoint=checkpoint, device=device)


#: Named builders, SAM style: name -> ``builder(checkpoint=None, device="cpu")``.
SEGVOL_REGISTRY: dict[str, Callable[..., SegVol]] = {"segvol_v1": build_segvol, "segvol_tiny": _tiny}


def tiny_segvol(seed: int = 0) -> SegVol:
    """:data:`SEGVOL_TINY` with deterministic random weights (tests, smoke runs)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build_segvol_config(SEGVOL_TINY)
