"""SegVol's mask decoder: prompt tokens and image features -> low-resolution mask logits.

A 3D segment-anything decoder plus SegVol's text alignment: the text embedding is also compared
with every upscaled voxel feature and the similarity map is added to the mask logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from voxelprompt.families.segvol.network.common import MLP
from voxelprompt.families.segvol.network.transformer import TwoWayTransformer

__all__ = ["MaskDecoder"]


class MaskDecoder(nn.Module):
    """Predicts masks at 4x the feature grid with a two-way transformer and hypernetwork MLPs.

    Args:
        transformer_dim: token and feature width C.
        transformer: the :class:`TwoWayTransformer`.
        image_embedding_size: (D', H', W') feature grid of the image encoder. The reference's
            output LayerNorm normalizes over (C/4, 2D', 2H', 2W') jointly (weights of that shape),
            so the decoder is tied to one grid size.
        num_multimask_outputs: masks besides the single-mask output (SegVol only uses the latter).
        activation: activation class of the upscaling path.
        iou_head_depth: layers of the IoU prediction MLP.
        iou_head_hidden_dim: hidden width of the IoU prediction MLP.
        text_dim: width of the text embedding that is aligned with voxel features.
    """

    def __init__(
        self,
        *,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        image_embedding_size: Sequence[int],
        num_multimask_outputs: int = 3,
        activation: type[nn.Module] = nn.GELU,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
        text_dim: int = 768,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        upscaled_grid = tuple(2 * int(s) for s in image_embedding_size)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose3d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            nn.LayerNorm((transformer_dim // 4, *upscaled_grid)),
            activation(),
            nn.ConvTranspose3d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            activation(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth)
        self.txt_align_upscaled_embedding = nn.Linear(text_dim, transformer_dim // 8)

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        text_embedding: torch.Tensor | None = None,
        multimask_output: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict masks for B objects.

        Args:
            image_embeddings: (1, C, D', H', W') features shared by all objects, or (B, ...) one
                per object.
            image_pe: (1, C, D', H', W') positional encoding of the feature grid.
            sparse_prompt_embeddings: (B, N, C) prompt tokens.
            dense_prompt_embeddings: (B, C, D', H', W').
            text_embedding: (B, text_dim) or None; adds the text-voxel similarity to the logits.
            multimask_output: return the 3 multimask outputs instead of the single mask.

        Returns:
            Mask logits (B, M, 4D', 4H', 4W') with M = 1 (or 3), and IoU predictions (B, M).
        """
        masks, iou_pred = self._predict_masks(
            image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings, text_embedding
        )
        mask_slice = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, mask_slice], iou_pred[:, mask_slice]

    def _predict_masks(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        text_embedding: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n_obj = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(n_obj, -1, -1), sparse_prompt_embeddings], dim=1)

        if image_embeddings.shape[0] != n_obj:
            if image_embeddings.shape[0] != 1:
                raise ValueError(
                    f"image embeddings batch ({image_embeddings.shape[0]}) must be 1 or the number of objects ({n_obj})"
                )
            image_embeddings = image_embeddings.expand(n_obj, -1, -1, -1, -1)
        src = image_embeddings + dense_prompt_embeddings
        pos_src = image_pe.expand(n_obj, -1, -1, -1, -1)
        b, c, d, h, w = src.shape

        hs, src = self.transformer(src, pos_src, tokens)
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens, :]

        upscaled = self.output_upscaling(src.transpose(1, 2).reshape(b, c, d, h, w))
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )  # (B, M, C/8)
        b, c, d, h, w = upscaled.shape
        flat = upscaled.reshape(b, c, d * h * w)
        masks = (hyper_in @ flat).reshape(b, -1, d, h, w)

        if text_embedding is not None:
            text_down = self.txt_align_upscaled_embedding(text_embedding).unsqueeze(1)  # (B, 1, C/8)
            masks = masks + (text_down @ flat).reshape(b, 1, d, h, w)  # broadcast over the M masks
        return masks, self.iou_prediction_head(iou_token_out)
