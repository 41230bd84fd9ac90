"""The SegVol network: image, text and spatial prompts -> mask logits for one 3D window.

Inputs are (D, H, W) windows of the network's fixed size (32x256x256 for SegVol v1); prompt
coordinates are voxel indices (d, h, w) of that window.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from voxelprompt.families.segvol.network.image_encoder import ImageEncoderViT3D
from voxelprompt.families.segvol.network.mask_decoder import MaskDecoder
from voxelprompt.families.segvol.network.prompt_encoder import PromptEncoder
from voxelprompt.families.segvol.network.text_encoder import TextEncoder
from voxelprompt.families.segvol.network.tokenizer import SegVolTokenizer

__all__ = ["SegVol"]


class SegVol(nn.Module):
    """SegVol (Du et al., 2024) composed from its parts.

    Args:
        image_encoder: 3D ViT producing (B, C, D', H', W') features.
        prompt_encoder: embeds points, boxes and text embeddings.
        mask_decoder: predicts (B, 1, 4D', 4H', 4W') logits (4x the feature grid).
        text_encoder: CLIP text tower producing (B, C) text embeddings.
        tokenizer: turns class names into CLIP token ids.
    """

    def __init__(
        self,
        image_encoder: ImageEncoderViT3D,
        prompt_encoder: PromptEncoder,
        mask_decoder: MaskDecoder,
        text_encoder: TextEncoder,
        tokenizer: SegVolTokenizer,
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer

    @property
    def image_size(self) -> tuple[int, int, int]:
        """(D, H, W) window size the network takes."""
        return self.prompt_encoder.input_image_size  # type: ignore[return-value]

    @property
    def device(self) -> torch.device:
        return self.prompt_encoder.no_mask_embed.weight.device

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Encode (B, 1, D, H, W) windows (intensities already normalized) into (B, C, D', H', W')."""
        return self.image_encoder(image)

    def encode_text(self, names: Sequence[str]) -> torch.Tensor:
        """Embed B class names (e.g. ``["liver"]``) with the SegVol template; returns (B, C)."""
        input_ids, attention_mask = self.tokenizer(names)
        return self.text_encoder(input_ids.to(self.device), attention_mask.to(self.device))

    def decode(
        self,
        image_embedding: torch.Tensor,
        *,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        text_embedding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mask logits of B objects in one encoded window.

        Args:
            image_embedding: (1, C, D', H', W') from :meth:`encode_image`, shared by the objects,
                or (B, C, D', H', W').
            points: (B, N, 3) voxel coordinates (d, h, w) in the window (prompts may be on any device).
            point_labels: (B, N) 1 positive, 0 negative.
            boxes: (B, 6) as ``[d0, h0, w0, d1, h1, w1]`` voxel coordinates in the window.
            text_embedding: (B, C) from :meth:`encode_text`.

        Returns:
            (B, 1, D, H, W) logits on the window grid (trilinear upsampling of the decoder output).
        """
        points, point_labels, boxes = (None if t is None else t.to(self.device) for t in (points, point_labels, boxes))
        sparse, dense = self.prompt_encoder(
            points=points, point_labels=point_labels, boxes=boxes, text_embedding=text_embedding
        )
        low_res, _ = self.mask_decoder(
            image_embeddings=image_embedding,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            text_embedding=text_embedding,
            multimask_output=False,
        )
        return F.interpolate(low_res, size=self.image_size, mode="trilinear", align_corners=False)

    def forward(
        self,
        image: torch.Tensor,
        *,
        text: Sequence[str] | None = None,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Segment B objects in one window, each described by any mix of text, points and a box.

        Args:
            image: (1, 1, D, H, W) window (or (B, 1, D, H, W), one per object) on the model's device.
            text: B class names, or None.
            points, point_labels, boxes: see :meth:`decode`.

        Returns:
            (B, 1, D, H, W) logits.
        """
        text_embedding = None if text is None else self.encode_text(text)
        return self.decode(
            self.encode_image(image),
            points=points,
            point_labels=point_labels,
            boxes=boxes,
            text_embedding=text_embedding,
        )
