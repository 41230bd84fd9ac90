"""SegVol's text encoder: the CLIP ViT-B/32 text tower and a projection to the prompt width.

Built from a config only (no hub download); the weights come from the SegVol checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel

__all__ = ["TextEncoder", "clip_vit_b32_text_config"]


def clip_vit_b32_text_config() -> CLIPTextConfig:
    """The text tower of OpenAI's CLIP ViT-B/32 (12 layers, width 512, 77 positions)."""
    return CLIPTextConfig(
        vocab_size=49408,
        hidden_size=512,
        intermediate_size=2048,
        projection_dim=512,
        num_hidden_layers=12,
        num_attention_heads=8,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=1,
    )


class TextEncoder(nn.Module):
    """Token ids -> one prompt embedding per text (CLIP's pooled end-of-text state, projected).

    Args:
        clip_text_model: transformers' ``CLIPTextModel``.
        embed_dim: output width (the prompt encoder's C).
    """

    def __init__(self, clip_text_model: CLIPTextModel, embed_dim: int = 768) -> None:
        super().__init__()
        self.clip_text_model = clip_text_model
        self.dim_align = nn.Linear(clip_text_model.config.hidden_size, embed_dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Embed B tokenized texts.

        Args:
            input_ids: (B, L) CLIP token ids, start and end of text included, L <= 77.
            attention_mask: (B, L) 1 for tokens, 0 for padding.

        Returns:
            (B, embed_dim) embeddings.
        """
        pooled = self.clip_text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        return self.dim_align(pooled)
