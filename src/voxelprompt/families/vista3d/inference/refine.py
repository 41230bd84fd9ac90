"""Algorithm 1 of VISTA3D: edit an automatic mask with the interactive result of some clicks.

Only connected components that a click touches change: added components (in the click result,
not in the automatic one) that contain a positive click are added, removed components (in the
automatic result, not in the click result) that contain a negative click are removed. Everything
else keeps the automatic result. Components are 26-connected (``cc3d``).
"""

from __future__ import annotations

import cc3d
import numpy as np
import torch

__all__ = ["merge_clicks", "merge_in_windows", "component_at"]

#: A click that misses a component by a voxel or two still selects it, like MONAI's rule.
_SEARCH_RADII = (0, 1, 2)


def component_at(components: np.ndarray, point: np.ndarray) -> int:
    """Label of the component at ``point`` (I, J, K voxel), searching a small cube around it.

    Returns the largest label found in the first non-empty cube of radius 0, 1, 2, or 0.
    """
    x, y, z = (int(v) for v in np.round(point))
    for r in _SEARCH_RADII:
        cube = components[
            max(x - r, 0) : x + r + 1,
            max(y - r, 0) : y + r + 1,
            max(z - r, 0) : z + r + 1,
        ]
        if cube.size and cube.max() > 0:
            return int(cube.max())
    return 0


def _voxel(point: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int]:
    return tuple(int(np.clip(np.round(v), 0, n - 1)) for v, n in zip(point, shape))  # type: ignore[return-value]


def _components_hit(region: np.ndarray, points: np.ndarray) -> np.ndarray:
    if not region.any() or len(points) == 0:
        return np.zeros_like(region, dtype=bool)
    components = cc3d.connected_components(region.astype(np.uint8), connectivity=26)
    hit = {component_at(components, p) for p in points} - {0}
    return np.isin(components, sorted(hit)) if hit else np.zeros_like(region, dtype=bool)


def merge_clicks(
    auto: np.ndarray,
    clicked: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
) -> np.ndarray:
    """Algorithm 1: the automatic mask edited by the click result.

    Args:
        auto: (I, J, K) bool automatic mask :math:`M_a`.
        clicked: (I, J, K) bool interactive mask :math:`M_p` (same grid).
        positive: (P, 3) positive click voxels, (I, J, K) order.
        negative: (Q, 3) negative click voxels.

    Returns:
        (I, J, K) bool mask :math:`M_a + M_{add} - M_{rm}`.
    """
    auto = np.asarray(auto, dtype=bool)
    clicked = np.asarray(clicked, dtype=bool)
    if auto.shape != clicked.shape:
        raise ValueError(f"auto and clicked masks differ in shape: {auto.shape} vs {clicked.shape}")
    positive = np.asarray(positive, dtype=np.float64).reshape(-1, 3)
    negative = np.asarray(negative, dtype=np.float64).reshape(-1, 3)
    # A positive click inside the automatic mask makes the whole click result a candidate
    # (the paper's "M_add ∪ CC(M_p)"), not only its part outside the automatic mask.
    inside = any(auto[_voxel(p, auto.shape)] for p in positive)
    added = clicked if inside else clicked & ~auto
    removed = auto & ~clicked
    return (auto | _components_hit(added, positive)) & ~_components_hit(removed, negative)


def merge_in_windows(auto: torch.Tensor, clicked: torch.Tensor, xyz: np.ndarray, labels: np.ndarray) -> torch.Tensor:
    """Algorithm 1 inside the box of the clicked windows; the automatic mask elsewhere.

    Args:
        auto: (H, W, D) bool automatic mask (window-padded model space).
        clicked: (H, W, D) click logits, NaN where no clicked window reached.
        xyz: (N, 3) clicks in the same voxel frame; ``labels``: (N,) 1 positive, 0 negative.

    Returns:
        (H, W, D) bool mask: :func:`merge_clicks` on the clicked windows' box, ``auto`` elsewhere.
    """
    covered = ~torch.isnan(clicked)
    result = auto.clone()
    if not bool(covered.any()):
        return result
    idx = torch.nonzero(covered)
    lo, hi = idx.min(0).values.tolist(), (idx.max(0).values + 1).tolist()
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    offset = np.asarray(lo, dtype=np.float64)
    merged = merge_clicks(
        auto[box].numpy(),
        (torch.nan_to_num(clicked[box], nan=-1.0) > 0).numpy(),
        xyz[labels == 1] - offset,
        xyz[labels == 0] - offset,
    )
    result[box] = torch.from_numpy(merged)
    return result

