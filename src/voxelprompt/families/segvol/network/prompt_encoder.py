"""SegVol's prompt encoder: points, boxes and a text embedding -> sparse and dense tokens.

Keeps the reference's coordinate quirks bit for bit, because the released weights were trained
with them (see :class:`PositionEmbeddingRandom3D`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from voxelprompt.errors import PromptError
from voxelprompt.families.segvol.network.common import LayerNorm2d

__all__ = ["PositionEmbeddingRandom3D", "PromptEncoder"]


class PositionEmbeddingRandom3D(nn.Module):
    """Random Fourier features of 3D positions (a fixed Gaussian projection, then sin and cos).

    Two quirks of the reference are kept on purpose:

    * the dense grid (:meth:`grid`) stacks its normalized coordinates in axis order (1, 0, 2),
      i.e. (H', D', W') for a (D', H', W') grid;
    * :meth:`encode_points` divides coordinate 0 by ``image_size[1]`` and coordinate 1 by
      ``image_size[0]`` (for a 32x256x256 input: d / 256, h / 32, w / 256).

    Args:
        num_pos_feats: F; the encoding has 2F channels.
        scale: standard deviation of the projection at initialization.
    """

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None) -> None:
        super().__init__()
        scale = 1.0 if scale is None or scale <= 0.0 else scale
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn((3, num_pos_feats)))

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        """(..., 3) coordinates in [0, 1] -> (..., 2F) features."""
        coords = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def grid(self, size: Sequence[int]) -> torch.Tensor:
        """Encoding of every cell centre of a (D', H', W') grid; returns (2F, D', H', W')."""
        d, h, w = (int(s) for s in size)
        device = self.positional_encoding_gaussian_matrix.device
        ones = torch.ones((d, h, w), device=device, dtype=torch.float32)
        along_0 = (ones.cumsum(dim=0) - 0.5) / d
        along_1 = (ones.cumsum(dim=1) - 0.5) / h
        along_2 = (ones.cumsum(dim=2) - 0.5) / w
        pe = self._encode(torch.stack([along_1, along_0, along_2], dim=-1))  # reference's axis order
        return pe.permute(3, 0, 1, 2)

    def encode_points(self, coords: torch.Tensor, image_size: Sequence[int]) -> torch.Tensor:
        """Encode (B, N, 3) voxel coordinates (d, h, w) of an ``image_size`` (D, H, W) input.

        Returns:
            (B, N, 2F) features.
        """
        scale = torch.tensor(
            [image_size[1], image_size[0], image_size[2]], dtype=torch.float32, device=coords.device
        )  # the reference's normalization, swapped on purpose (see class docstring)
        return self._encode(coords.to(torch.float32) / scale)


class PromptEncoder(nn.Module):
    """Embeds point, box and text prompts for :class:`~voxelprompt.families.segvol.network.mask_decoder.MaskDecoder`.

    Coordinates are voxel indices (d, h, w) of the (D, H, W) network input.

    Args:
        embed_dim: token width C.
        image_embedding_size: (D', H', W') grid of the image encoder's features.
        input_image_size: (D, H, W) network input size.
        mask_in_chans: channels of the mask-prompt branch. SegVol never feeds masks; the branch
            exists so that its checkpoint loads strictly.
        activation: activation class of the mask branch.
    """

    num_point_embeddings = 4  # negative point, positive point, box corner 0, box corner 1

    def __init__(
        self,
        embed_dim: int,
        image_embedding_size: Sequence[int],
        input_image_size: Sequence[int],
        mask_in_chans: int = 16,
        activation: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = tuple(int(s) for s in image_embedding_size)
        self.input_image_size = tuple(int(s) for s in input_image_size)
        self.pe_layer = PositionEmbeddingRandom3D(embed_dim // 2)
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(self.num_point_embeddings))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            activation(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            activation(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of the image feature grid, (1, C, D', H', W')."""
        return self.pe_layer.grid(self.image_embedding_size).unsqueeze(0)

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        points = points.to(torch.float32) + 0.5  # voxel centres
        labels = labels.to(points.device)
        if pad:  # without a box, a "not a point" token stands in for the box corners
            points = torch.cat([points, points.new_zeros((points.shape[0], 1, 3))], dim=1)
            labels = torch.cat([labels, -labels.new_ones((labels.shape[0], 1))], dim=1)
        embedding = self.pe_layer.encode_points(points, self.input_image_size)
        embedding = torch.where((labels == -1)[..., None], self.not_a_point_embed.weight, embedding)
        embedding = embedding + (labels == 0)[..., None] * self.point_embeddings[0].weight
        embedding = embedding + (labels == 1)[..., None] * self.point_embeddings[1].weight
        return embedding

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        corners = boxes.to(torch.float32).reshape(-1, 2, 3) + 0.5
        embedding = self.pe_layer.encode_points(corners, self.input_image_size)
        corner_tokens = torch.cat([self.point_embeddings[2].weight, self.point_embeddings[3].weight], dim=0)
        return embedding + corner_tokens

    def forward(
        self,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        text_embedding: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed the prompts of B objects; every given prompt needs the same B.

        Args:
            points: (B, N, 3) voxel coordinates (d, h, w) of the (D, H, W) input.
            point_labels: (B, N) 1 positive, 0 negative, -1 ignored.
            boxes: (B, 6) or (B, 1, 6) as ``[d0, h0, w0, d1, h1, w1]`` voxel coordinates.
            text_embedding: (B, C) from the text encoder.

        Returns:
            Sparse tokens (B, N', C), ordered points, box corners, text; and dense embeddings
            (B, C, D', H', W').
        """
        if (points is None) != (point_labels is None):
            raise PromptError("points and point_labels must be given together")
        sizes = {
            name: int(t.shape[0])
            for name, t in (("points", points), ("boxes", boxes), ("text", text_embedding))
            if t is not None
        }
        if len(set(sizes.values())) > 1:
            raise PromptError(f"prompts disagree on the number of objects: {sizes}")
        bs = next(iter(sizes.values()), 1)
        device = self.no_mask_embed.weight.device

        sparse = [torch.empty((bs, 0, self.embed_dim), device=device)]
        if points is not None:
            if points.ndim != 3 or points.shape[-1] != 3 or point_labels.shape != points.shape[:2]:
                raise PromptError(
                    f"points must be (B, N, 3) with labels (B, N), got {tuple(points.shape)}"
                    f" and {tuple(point_labels.shape)}"
                )
            sparse.append(self._embed_points(points, point_labels, pad=boxes is None))
        if boxes is not None:
            if boxes.shape[-1] != 6 or boxes.numel() != bs * 6:
                raise PromptError(f"boxes must be (B, 6) or (B, 1, 6), got {tuple(boxes.shape)}")
            sparse.append(self._embed_boxes(boxes))
        if text_embedding is not None:
            sparse.append(text_embedding[:, None, :])
        dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1, 1).expand(bs, -1, *self.image_embedding_size)
        return torch.cat(sparse, dim=1), dense
