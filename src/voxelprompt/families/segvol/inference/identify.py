"""Name a mask's class with SegVol (paper, Fig. 5): text prompts scored on the mask's voxels.

Each category name is decoded as a text prompt over one window around the mask; a softmax over
the categories at every mask voxel, averaged over the mask, gives ranked probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from voxelprompt.catalog import vista3d_catalog
from voxelprompt.errors import PromptError
from voxelprompt.families.segvol.inference.preprocess import PreparedVolume
from voxelprompt.families.segvol.inference.zoom import roi_around
from voxelprompt.families.segvol.network import SegVol

__all__ = ["CategoryScore", "Identification", "default_categories", "identify_mask"]

#: Voxels of the mask used for scoring at most (an even subsample beyond that).
MAX_SCORED_VOXELS = 200_000


@dataclass(frozen=True)
class CategoryScore:
    """One category and its probability for the mask."""

    name: str
    probability: float


@dataclass(frozen=True)
class Identification:
    """Ranked categories for a mask.

    Args:
        scores: categories, most probable first; probabilities sum to 1 over all scored names.
        voxels: mask voxels in the scoring window.
    """

    scores: tuple[CategoryScore, ...]
    voxels: int

    @property
    def best(self) -> CategoryScore:
        return self.scores[0]


def default_categories() -> list[str]:
    """The VISTA3D catalog's class names (groups such as "kidney" included), in index order."""
    return list(dict.fromkeys(vista3d_catalog().names.values()))


def _check_categories(categories: Sequence[str]) -> list[str]:
    if isinstance(categories, str):
        raise PromptError(f"categories must be a list of names, got the string {categories!r}")
    names = [" ".join(str(c).split()) for c in categories]
    if len(names) < 2 or any(not n for n in names):
        raise PromptError(f"give at least two non-empty category names, got {list(categories)!r}")
    return list(dict.fromkeys(names))


@torch.no_grad()
def identify_mask(
    model: SegVol,
    prepared: PreparedVolume,
    mask: np.ndarray,
    categories: Sequence[str] | None = None,
    batch_size: int = 8,
) -> Identification:
    """Rank ``categories`` for ``mask`` on a prepared volume.

    The window is the mask's bounding box grown to at least one network window and resized to
    exactly one (``nearest-exact``), so large masks are seen whole and small ones at full detail.

    Args:
        model: SegVol network.
        prepared: the volume in SegVol's frame.
        mask: bool (D, H, W) on ``prepared.image``'s grid (:meth:`PreparedVolume.from_input`).
        categories: names to score; default :func:`default_categories`.
        batch_size: category names decoded per network call.

    Raises:
        PromptError: empty mask, or fewer than two categories.
    """
    names = _check_categories(default_categories() if categories is None else categories)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != prepared.shape:
        raise PromptError(f"mask shape {mask.shape} differs from the prepared image {prepared.shape}")
    window = tuple(int(s) for s in model.image_size)
    roi = roi_around(mask, window)
    if roi is None:
        raise PromptError("the mask is empty: nothing to identify")
    region = tuple(slice(a, b + 1) for a, b in zip(*roi))
    image = torch.from_numpy(prepared.image[region]).float()[None, None]
    image = F.interpolate(image, size=window, mode="nearest-exact")[0, 0]
    soft = torch.from_numpy(mask[region]).float()[None, None]
    soft = F.interpolate(soft, size=window, mode="trilinear", align_corners=False).flatten()
    index = torch.nonzero(soft > 0.5).flatten()
    if index.numel() == 0:  # a sliver thinner than a resized voxel: score its strongest voxel
        index = torch.argmax(soft)[None]
    if index.numel() > MAX_SCORED_VOXELS:
        index = index[torch.linspace(0, index.numel() - 1, MAX_SCORED_VOXELS).long()]
    device = model.device
    embedding = model.encode_image(image.to(device)[None, None])
    logits = []
    for start in range(0, len(names), batch_size):
        text = model.encode_text(names[start : start + batch_size])
        out = model.decode(embedding, text_embedding=text)  # (B, 1, D, H, W)
        logits.append(out.flatten(1)[:, index.to(out.device)].float().cpu())
    probabilities = torch.softmax(torch.cat(logits, 0), dim=0).mean(dim=1)
    order = torch.argsort(probabilities, descending=True).tolist()
    scores = tuple(CategoryScore(names[i], float(probabilities[i])) for i in order)
    return Identification(scores=scores, voxels=int(mask.sum()))
