"""Prompts of SegVol's supervised loop (SegVol Algorithm 1, BAAI-DCAI/SegVol ``network/model.py``).

Ground-truth objects are prompted six ways: text+points, text+box, text, box, points, box+points.
Pseudo masks carry no semantics: they get points (even rounds) or a box (odd rounds). A pseudo
box target also takes in every other pseudo mask that lies mostly inside the box (the reference
keeps a mask whose fraction inside the box exceeds 0.9; the paper calls it IoU).

Points follow the reference's ``select_points``: one positive, then 0-10 extra positives and 0-10
negatives drawn uniformly (4-10 extra positives for pseudo masks), padded with ignored points
(label -1) to a fixed length so prompts of a batch stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from voxelprompt.evaluation.clicks import bounding_box

__all__ = [
    "COMBINATIONS",
    "SpatialPrompt",
    "object_prompt",
    "pseudo_target",
    "PSEUDO_BOX_INSIDE",
]

#: The six prompt combinations of every ground-truth object, in the reference's order.
COMBINATIONS: tuple[tuple[str, ...], ...] = (
    ("text", "points"),
    ("text", "box"),
    ("text",),
    ("box",),
    ("points",),
    ("box", "points"),
)
#: A pseudo mask joins a box target when more than this fraction of it lies inside the box.
PSEUDO_BOX_INSIDE = 0.9
_MAX_EXTRA = 10


@dataclass
class SpatialPrompt:
    """Points and box of one object in window voxels (d, h, w).

    Args:
        points: (N, 3) float coordinates; labels: (N,) 1 positive, 0 negative, -1 ignored.
        box: (6,) ``[d0, h0, w0, d1, h1, w1]``.
    """

    points: torch.Tensor
    labels: torch.Tensor
    box: torch.Tensor

    def network_kwargs(self, kinds: tuple[str, ...]) -> dict[str, torch.Tensor | None]:
        """``points``/``point_labels``/``boxes`` arguments of :meth:`SegVol.decode` for one object."""
        use_points, use_box = "points" in kinds, "box" in kinds
        return {
            "points": self.points[None] if use_points else None,
            "point_labels": self.labels[None] if use_points else None,
            "boxes": self.box[None] if use_box else None,
        }


def _points(mask: np.ndarray, rng: np.random.Generator, min_extra_positive: int) -> tuple[np.ndarray, np.ndarray]:
    n_pos = int(rng.integers(min_extra_positive, _MAX_EXTRA + 1))
    n_neg = int(rng.integers(0, _MAX_EXTRA + 1))
    inside, outside = np.flatnonzero(mask), np.flatnonzero(~mask)
    first = rng.choice(inside, size=1)
    extra_pos = rng.choice(inside, size=n_pos, replace=True) if n_pos else np.empty(0, np.int64)
    neg = rng.choice(outside, size=min(n_neg, outside.size), replace=False) if outside.size else np.empty(0, np.int64)
    flat = np.concatenate([first, extra_pos, neg])
    coords = np.stack(np.unravel_index(flat, mask.shape), axis=1).astype(np.float32)
    labels = np.concatenate([np.ones(1 + n_pos), np.zeros(neg.size)]).astype(np.int64)
    total = 1 + 2 * _MAX_EXTRA
    pad = total - len(labels)
    coords = np.concatenate([coords, np.zeros((pad, 3), np.float32)])
    labels = np.concatenate([labels, -np.ones(pad, np.int64)])
    return coords, labels


def _box(mask: np.ndarray, rng: np.random.Generator, jitter: int) -> np.ndarray:
    box = bounding_box(mask, jitter=jitter, rng=rng)
    return np.array([*box.lower, *box.upper], dtype=np.float32)


def object_prompt(
    mask: np.ndarray, rng: np.random.Generator, *, pseudo: bool = False, jitter: int = 0
) -> SpatialPrompt:
    """Points and a (jittered) box drawn from one non-empty (D, H, W) object mask."""
    if not mask.any():
        raise ValueError("cannot prompt an empty mask")
    coords, labels = _points(mask, rng, 4 if pseudo else 0)
    return SpatialPrompt(
        points=torch.from_numpy(coords), labels=torch.from_numpy(labels), box=torch.from_numpy(_box(mask, rng, jitter))
    )


def pseudo_target(pseudo: np.ndarray, rng: np.random.Generator, use_box: bool, jitter: int = 0):
    """Draw one pseudo mask and its prompt.

    Args:
        pseudo: (D, H, W) pseudo-mask ids (0: none).
        use_box: box prompt (the target then includes other masks mostly inside the box) or points.

    Returns:
        ``(target mask, SpatialPrompt)``, or None when the window holds no pseudo mask.
    """
    ids = np.unique(pseudo)
    ids = ids[ids > 0]
    if ids.size == 0:
        return None
    target = pseudo == int(rng.choice(ids))
    prompt = object_prompt(target, rng, pseudo=True, jitter=jitter)
    if use_box:
        d0, h0, w0, d1, h1, w1 = (int(v) for v in prompt.box)
        inside = pseudo[d0 : d1 + 1, h0 : h1 + 1, w0 : w1 + 1]
        counts_inside = np.bincount(inside.ravel(), minlength=int(pseudo.max()) + 1)
        counts = np.bincount(pseudo.ravel(), minlength=int(pseudo.max()) + 1)
        for value in np.flatnonzero(counts_inside):
            if value and counts_inside[value] / counts[value] > PSEUDO_BOX_INSIDE:
                target |= pseudo == value
    return target, prompt
