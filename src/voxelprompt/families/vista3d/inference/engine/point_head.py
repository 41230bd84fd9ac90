"""VISTA3D's interactive (point) head split into a per-window encoding and a cheap per-click step.

The result equals ``PointMappingSAM.forward`` up to float rounding; see :func:`predict_points`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.networks.nets.vista3d import PointMappingSAM

from voxelprompt.families.vista3d.inference.engine.point_transformer import two_way_transformer

__all__ = ["PointWindowFeatures", "encode_window", "predict_points", "FastPointHead"]


@dataclass(frozen=True)
class PointWindowFeatures:
    """What the point head computes from one window's image alone, reusable for every click.

    Never modified after :func:`encode_window` returns it: :func:`predict_points` only reads it.

    Args:
        low: [1, C, h, w, d] ``feat_downsample`` of the encoder's point-branch output (h = H / 2);
            :func:`encode_window` stores it channels-last 3D, but any memory format works.
        pos: [1, C, h, w, d] positional encoding of the low-resolution grid (``pe_layer``).
        shape: (H, W, D) full-resolution window size, which normalises click coordinates.
    """

    low: torch.Tensor
    pos: torch.Tensor
    shape: tuple[int, int, int]

    @property
    def nbytes(self) -> int:
        """Bytes held by the two cached tensors."""
        return sum(t.numel() * t.element_size() for t in (self.low, self.pos))


def encode_window(point_head: PointMappingSAM, out: torch.Tensor) -> PointWindowFeatures:
    """Encode one window for later clicks (the click-independent part of the point head).

    Args:
        point_head: VISTA3D's ``point_head``.
        out: [1, C, H, W, D] the point-branch output of the image encoder, i.e. the first element
            that ``image_encoder(x, with_point=True, ...)`` returns, the tensor ``VISTA3D.forward``
            passes to ``point_head``.

    Returns:
        The cached features of this window.
    """
    if out.ndim != 5 or out.shape[0] != 1:
        raise ValueError(f"out must have shape [1, C, H, W, D], got {tuple(out.shape)}")
    if isinstance(out, MetaTensor):  # plain tensors: no metadata tracking in every later op
        out = out.as_tensor()
    with torch.no_grad():
        # Channels-last makes the transformer's [N, C] image tokens a dense view instead of a
        # transposed one: same values, ~25 % less transformer time on CPU.
        low = point_head.feat_downsample(out).contiguous(memory_format=torch.channels_last_3d)
        # The same call the forward makes, so the grid encoding is bitwise identical.
        pos = point_head.pe_layer(tuple(low.shape[-3:])).unsqueeze(0)
    return PointWindowFeatures(low=low, pos=pos, shape=tuple(int(s) for s in out.shape[-3:]))


def predict_points(
    point_head: PointMappingSAM,
    features: PointWindowFeatures,
    point_coords: torch.Tensor,
    point_labels: torch.Tensor,
    class_vector: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits of the point head for B objects, equal to ``point_head(out, ...)`` up to rounding.

    Objects are decoded one at a time (peak memory of one object). The last convolution of
    ``output_upscaling`` is folded with each object's hypernetwork vector into a convolution with
    one output channel: ``h @ conv(x) == conv(x; sum_o h_o W_o, h . b)`` by linearity, which
    removes ~256 of that convolution's ~261 GFLOP at width 48 and 128^3.

    Args:
        point_head: VISTA3D's ``point_head``, the one that produced ``features``.
        features: the window's cached features from :func:`encode_window` (read only).
        point_coords: [B, N, 3] click voxel coordinates inside the window, (H, W, D) axis order.
        point_labels: [B, N] -1 padding, 0/1 negative/positive, 2/3 negative/positive for the
            special classes (tumours, lesions).
        class_vector: [B] or [B, 1] class id of each object, or None; only whether an id is
            above ``point_head.last_supported`` (zero-shot) matters, as in MONAI.

    Returns:
        [B, 1, H, W, D] logits (computed without autograd).
    """
    if point_coords.ndim != 3 or point_coords.shape[-1] != 3:
        raise ValueError(f"point_coords must have shape [B, N, 3], got {tuple(point_coords.shape)}")
    if tuple(point_labels.shape) != tuple(point_coords.shape[:2]):
        raise ValueError(
            f"point_labels must have shape {tuple(point_coords.shape[:2])}, got {tuple(point_labels.shape)}"
        )
    n_objects = point_coords.shape[0]
    if class_vector is not None and class_vector.numel() != n_objects:
        raise ValueError(f"class_vector must hold one id per object ({n_objects}), got {tuple(class_vector.shape)}")
    if n_objects == 0:
        return features.low.new_empty((0, 1, *features.shape))
    with torch.no_grad():
        tokens = _prompt_tokens(point_head, features.shape, point_coords, point_labels, class_vector)
        return torch.cat([_object_logits(point_head, features, tokens[b : b + 1]) for b in range(n_objects)])


class FastPointHead(torch.nn.Module):
    """Drop-in for ``PointMappingSAM`` in a VISTA3D network: :func:`encode_window` + :func:`predict_points`.

    Splitting the two halves is what lets an interactive session cache ``encode`` per window;
    alone it already skips the full-width last convolution.

    Args:
        head: the network's ``PointMappingSAM`` (its weights are shared, not copied).
    """

    def __init__(self, head: PointMappingSAM) -> None:
        super().__init__()
        self.head = head
        self.last_supported = head.last_supported  # read by MONAI's inferers
        self.n_classes = head.n_classes

    def encode(self, out: torch.Tensor) -> PointWindowFeatures:
        return encode_window(self.head, out)

    def predict(self, features: PointWindowFeatures, point_coords, point_labels, class_vector=None) -> torch.Tensor:
        return predict_points(self.head, features, point_coords, point_labels, class_vector)

    def forward(self, out, point_coords, point_labels, class_vector=None) -> torch.Tensor:
        """Same call and result as ``PointMappingSAM.forward``: [B, 1, H, W, D] logits."""
        return self.predict(self.encode(out), point_coords, point_labels, class_vector)


def _prompt_tokens(
    head: PointMappingSAM,
    shape: tuple[int, int, int],
    point_coords: torch.Tensor,
    point_labels: torch.Tensor,
    class_vector: torch.Tensor | None,
) -> torch.Tensor:
    """[B, N + 2, C] mask token, point tokens and class token, built as MONAI's forward does.

    MONAI writes into its point embedding in place; that tensor is fresh per call there, and here
    every step makes a new tensor, so neither the module's weights nor any cache can change.
    """
    points = head.pe_layer.forward_with_coords(point_coords + 0.5, shape)  # +0.5: voxel centres
    labels = point_labels[..., None]
    padding = labels == -1
    # Padding drops its coordinates and becomes the learned "not a point" token.
    points = torch.where(padding, torch.zeros_like(points), points)
    negative, positive = head.point_embeddings[0].weight, head.point_embeddings[1].weight
    special = head.special_class_embed.weight
    # The sums for labels 2 and 3 are formed before adding, in MONAI's order, for equal rounding.
    offsets = {
        -1: head.not_a_point_embed.weight,
        0: negative,
        1: positive,
        2: negative + special,
        3: positive + special,
    }
    for value, offset in offsets.items():
        points = torch.where(labels == value, points + offset, points)

    n_objects = points.shape[0]
    mask_token = head.mask_tokens.weight.unsqueeze(0).expand(n_objects, -1, -1)
    if class_vector is None:
        class_token = head.supported_embed.weight.unsqueeze(0).expand(n_objects, -1, -1)
    else:
        zero_shot = (class_vector.reshape(n_objects) > head.last_supported).reshape(n_objects, 1, 1)
        class_token = torch.where(zero_shot, head.zeroshot_embed.weight, head.supported_embed.weight)
    return torch.cat((mask_token, points.to(mask_token.dtype), class_token), dim=1)


def _object_logits(head: PointMappingSAM, features: PointWindowFeatures, tokens: torch.Tensor) -> torch.Tensor:
    """[1, 1, H, W, D] logits of one object from its [1, N + 2, C] prompt tokens."""
    hs, keys = two_way_transformer(head.transformer, features.low, features.pos, tokens)
    hyper = head.output_hypernetworks_mlps(hs[:, 0])  # [1, C]
    _, c, h, w, d = features.low.shape
    # keys is [1, h*w*d, C], so this is a channels-last view; reshape, unlike view, takes any layout.
    x = keys.transpose(1, 2).reshape(1, c, h, w, d)
    up = head.output_upscaling
    x = up[2](up[1](up[0](x)))
    return _folded_conv(up[3], hyper[0], x)


def _folded_conv(conv: torch.nn.Conv3d, hyper: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``hyper @ conv(x)`` over channels as one convolution with a single output channel.

    Args:
        conv: the C -> C convolution.
        hyper: [C] weights of the output channels.
        x: [1, C, H, W, D] input of ``conv``, any memory format.

    Returns:
        [1, 1, H', W', D'] as ``conv`` would give.
    """
    if conv.padding_mode != "zeros" or conv.groups != 1 or isinstance(conv.padding, str):
        raise ValueError(f"only a plain zero-padded convolution can be folded, got {conv}")
    weight = torch.einsum("o,oi...->i...", hyper, conv.weight)  # [C, k, k, k]
    bias = None if conv.bias is None else hyper @ conv.bias
    if conv.stride == (1, 1, 1) and conv.dilation == (1, 1, 1):
        return _one_channel_conv(x, weight, bias, conv.padding)
    return F.conv3d(x, weight.unsqueeze(0), bias, stride=conv.stride, padding=conv.padding, dilation=conv.dilation)


def _one_channel_conv(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: tuple[int, ...]
) -> torch.Tensor:
    """Stride-1 convolution to one channel as a GEMM over channels plus shifted sums.

    oneDNN handles one output channel poorly (and converts layouts); contracting the channels
    first is one large GEMM that reads ``x`` in place in either memory format, and the k^3 taps
    are then added at their offsets.

    Args:
        x: [1, C, H, W, D].
        weight: [C, kH, kW, kD].
        bias: scalar tensor or None.
        padding: zero padding per spatial axis.

    Returns:
        [1, 1, H', W', D'], H' = H + 2 * padding - kH + 1.
    """
    c, *kernel = weight.shape
    size_in = x.shape[2:]
    size_out = [n + 2 * p - k + 1 for n, p, k in zip(size_in, padding, kernel)]
    taps = (weight.reshape(c, -1).t() @ x[0].reshape(c, -1)).reshape(*kernel, *size_in)
    out = x.new_zeros(size_out)
    if bias is not None:
        out += bias
    for offset in itertools.product(*(range(k) for k in kernel)):
        # Output voxel p reads input voxel p + offset - padding; only the overlap contributes.
        dst, src = [], []
        for o, p, n_in, n_out in zip(offset, padding, size_in, size_out):
            shift = o - p
            lo, hi = max(0, -shift), min(n_out, n_in - shift)
            dst.append(slice(lo, max(lo, hi)))
            src.append(slice(lo + shift, max(lo, hi) + shift))
        out[tuple(dst)] += taps[offset][tuple(src)]
    return out.reshape(1, 1, *size_out)
