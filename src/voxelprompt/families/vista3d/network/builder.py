"""Builders for VISTA3D networks: MONAI's ``vista3d132`` architecture at any encoder width."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from monai.networks.nets.vista3d import VISTA3D, vista3d132

from voxelprompt.catalog import CLASS_TABLE_SIZE, LAST_SUPPORTED

__all__ = ["Vista3DSpec", "build_vista3d", "VISTA3D_REGISTRY", "random_vista3d", "tiny_vista3d"]


@dataclass(frozen=True)
class Vista3DSpec:
    """Architecture hyperparameters that a checkpoint fixes.

    Args:
        width: encoder/decoder feature width (48 in the released 218 M-parameter model). Must be a
            multiple of 8 (the point head's attention splits ``width / 2`` over 4 heads).
        in_channels: image channels (1 for CT).
        n_classes: rows of the class embedding tables (512 in the release).
        last_supported: highest trained class index; larger ids use the zero-shot embedding.
    """

    width: int = 48
    in_channels: int = 1
    n_classes: int = CLASS_TABLE_SIZE
    last_supported: int = LAST_SUPPORTED

    def __post_init__(self) -> None:
        if self.width < 8 or self.width % 8:
            raise ValueError(f"width must be a positive multiple of 8, got {self.width}")


def build_vista3d(spec: Vista3DSpec = Vista3DSpec()) -> VISTA3D:
    """MONAI's ``vista3d132`` network with the given hyperparameters (weights uninitialised)."""
    net = vista3d132(encoder_embed_dim=spec.width, in_channels=spec.in_channels)
    if spec.n_classes != CLASS_TABLE_SIZE or spec.last_supported != LAST_SUPPORTED:
        # vista3d132 fixes these two; rebuild the heads' tables at the requested size.
        net.class_head.class_embeddings = torch.nn.Embedding(spec.n_classes, spec.width)
        net.point_head.class_embeddings = torch.nn.Embedding(spec.n_classes, spec.width)
        net.point_head.n_classes = spec.n_classes
        net.point_head.last_supported = spec.last_supported
    return net


def random_vista3d(spec: Vista3DSpec = Vista3DSpec(), seed: int = 0) -> VISTA3D:
    """A network with deterministic random weights (for timing, tests and pipeline checks).

    The class and point embeddings are scaled up so that different class prompts give visibly
    different logits, which makes pipeline comparisons meaningful even without training.
    """
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        net = build_vista3d(spec)
        with torch.no_grad():
            net.class_head.class_embeddings.weight.normal_(0.0, 1.0)
    finally:
        torch.random.set_rng_state(gen_state)
    return net.eval()


#: Named configurations, SAM-style: name -> spec.
VISTA3D_REGISTRY: dict[str, Vista3DSpec] = {
    "vista3d132": Vista3DSpec(width=48),
    "vista3d132-w16": Vista3DSpec(width=16),
    "vista3d132-w8": Vista3DSpec(width=8),
}


def tiny_vista3d(seed: int = 0) -> VISTA3D:
    """The official architecture at width 8 with deterministic random weights (tests, smoke runs)."""
    return random_vista3d(VISTA3D_REGISTRY["vista3d132-w8"], seed=seed)
