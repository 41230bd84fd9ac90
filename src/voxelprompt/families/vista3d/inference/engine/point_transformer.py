"""VISTA3D's point-head transformer (MONAI ``TwoWayTransformer``) with fused attention kernels.

Same weights, same operations as MONAI's forward, with each attention computed by
``F.scaled_dot_product_attention`` instead of materialising the [heads, 262144, tokens] score
matrix of a 128^3 window (plus its softmax and two batched matrix products): equal up to float
rounding, about half the attention time on CPU. Used by
:func:`~voxelprompt.families.vista3d.inference.engine.point_head.predict_points`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.nets.vista3d import (
    Attention,
    TwoWayAttentionBlock,
    TwoWayTransformer,
)

__all__ = ["two_way_transformer"]


def two_way_transformer(
    transformer: TwoWayTransformer, image: torch.Tensor, image_pe: torch.Tensor, tokens: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``transformer(image, image_pe, tokens)`` (MONAI's ``TwoWayTransformer.forward``), fused attention.

    Args:
        transformer: the point head's ``transformer``.
        image: [1, C, h, w, d] image embedding (any memory format; channels-last 3D is read as
            [1, h*w*d, C] tokens without a copy).
        image_pe: [1, C, h, w, d] its positional encoding.
        tokens: [1, T, C] prompt tokens (queries, and their positional encoding, as in MONAI).

    Returns:
        ([1, T, C] processed tokens, [1, h*w*d, C] processed image tokens), as MONAI returns.
    """
    keys = image.flatten(2).transpose(1, 2)
    key_pe = image_pe.flatten(2).transpose(1, 2)
    queries = tokens
    for layer in transformer.layers:
        queries, keys = _block(layer, queries, keys, tokens, key_pe)
    attn = _attention(transformer.final_attn_token_to_image, queries + tokens, keys + key_pe, keys)
    return transformer.norm_final_attn(queries + attn), keys


def _block(
    layer: TwoWayAttentionBlock, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor, key_pe: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One ``TwoWayAttentionBlock.forward``: token self-attention, token->image, MLP, image->token."""
    if layer.skip_first_layer_pe:
        queries = _attention(layer.self_attn, queries, queries, queries)
    else:
        q = queries + query_pe
        queries = queries + _attention(layer.self_attn, q, q, queries)
    queries = layer.norm1(queries)
    k = keys + key_pe  # MONAI forms it twice; keys do not change in between
    queries = layer.norm2(queries + _attention(layer.cross_attn_token_to_image, queries + query_pe, k, keys))
    queries = layer.norm3(queries + layer.mlp(queries))
    keys = layer.norm4(keys + _attention(layer.cross_attn_image_to_token, k, queries + query_pe, queries))
    return queries, keys


def _attention(attention: Attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``Attention.forward`` (projections, heads, softmax(q k^T / sqrt(c)) v, output projection).

    Args:
        q: [1, Nq, C] queries; k, v: [1, Nk, C] keys and values.

    Returns:
        [1, Nq, C].
    """
    heads = attention.num_heads

    def split(x: torch.Tensor) -> torch.Tensor:  # [1, N, c] -> [1, heads, N, c / heads]
        return x.unflatten(-1, (heads, -1)).transpose(1, 2)

    out = F.scaled_dot_product_attention(
        split(attention.q_proj(q)), split(attention.k_proj(k)), split(attention.v_proj(v))
    )
    return attention.out_proj(out.transpose(1, 2).flatten(2))
