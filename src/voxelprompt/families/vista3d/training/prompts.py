"""Prompt sampling for VISTA3D training: class prompts, clicks, zero-shot objects, iterative clicks.

Regular objects come from MONAI's :func:`monai.apps.vista3d.sampler.sample_prompt_pairs` (ambiguous
"special" classes get point labels 2/3 there); zero-shot objects (supervoxels, novel masks) come
from a pluggable source and carry ids above 512; :func:`next_clicks` adds SAM-style corrections.
All coordinates are voxel indices ``(x, y, z)`` of the patch, in the patch's axis order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.apps.vista3d.sampler import MERGE_LIST, sample_prompt_pairs

from voxelprompt.catalog import CLASS_TABLE_SIZE, LAST_SUPPORTED, click_label_shift

__all__ = [
    "BRANCHES",
    "GT_MERGES",
    "ZERO_SHOT_BASE",
    "PromptConfig",
    "PromptBatch",
    "object_mask",
    "sample_prompts",
    "next_clicks",
    "supervoxel_objects",
    "ZERO_SHOT_SOURCES",
]

BRANCHES = ("point", "auto")
#: Ground-truth merges of the official training: a class's target includes these classes
#: (liver: hepatic vessel and tumour; pancreas: its tumour; airway: trachea).
GT_MERGES: dict[int, tuple[int, ...]] = {k: tuple(v) for k, v in MERGE_LIST.items()}
#: Zero-shot objects get ids ``ZERO_SHOT_BASE + k``, past the class table (any id above
#: LAST_SUPPORTED selects the zero-shot embedding).
ZERO_SHOT_BASE = CLASS_TABLE_SIZE
_MIN_OBJECT_VOXELS = 8


@dataclass(frozen=True)
class PromptConfig:
    """How prompts are drawn per patch.

    Args:
        branch: ``"point"`` (stages 1-2: label prompts dropped, clicks only) or ``"auto"``
            (stages 3-4: class prompts only, no clicks).
        max_foreground: objects present in the patch prompted per step (4 point, 32 auto).
        max_background: absent classes of the dataset's label set prompted per step, with an
            empty target (0 point, 4 auto).
        max_clicks: most initial positive (and negative) clicks per object (3).
        iterations: SAM-style rounds per step; each round after the first adds one click in the
            false negative and one in the false positive region of the previous prediction (5).
        zero_shot_source: name in :data:`ZERO_SHOT_SOURCES` that adds novel objects (stage 1),
            or None.
        max_zero_shot: most zero-shot objects per step.
    """

    branch: str = "point"
    max_foreground: int = 4
    max_background: int = 0
    max_clicks: int = 3
    iterations: int = 5
    zero_shot_source: str | None = None
    max_zero_shot: int = 2

    def __post_init__(self) -> None:
        if self.branch not in BRANCHES:
            raise ValueError(f"branch must be one of {BRANCHES}, got {self.branch!r}")
        for name in ("max_foreground", "max_clicks", "iterations"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_background < 0 or self.max_zero_shot < 0:
            raise ValueError("max_background and max_zero_shot must be >= 0")
        if self.zero_shot_source is not None and self.zero_shot_source not in ZERO_SHOT_SOURCES:
            raise ValueError(
                f"zero_shot_source must be one of {sorted(ZERO_SHOT_SOURCES)}, got {self.zero_shot_source!r}"
            )


@dataclass
class PromptBatch:
    """The prompts of one patch: B objects, N clicks each.

    Args:
        prompt_class: [B, 1] global class id per object (> 132: zero-shot embedding).
        targets: [B, 1, X, Y, Z] float binary ground truth per object (merges applied).
        class_vector: [B, 1] class prompts of the automatic branch, or None (clicks only).
        point_coords: [B, N, 3] click voxel indices in the patch, or None.
        point_labels: [B, N] 1/0 positive/negative, 3/2 for special classes, -1 padding.
    """

    prompt_class: torch.Tensor
    targets: torch.Tensor
    class_vector: torch.Tensor | None = None
    point_coords: torch.Tensor | None = None
    point_labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.prompt_class.shape[0])

    def network_kwargs(self) -> dict[str, torch.Tensor | None]:
        """Keyword arguments of MONAI's ``VISTA3D.forward`` for these prompts."""
        return {
            "class_vector": self.class_vector,
            "point_coords": self.point_coords,
            "point_labels": self.point_labels,
            "prompt_class": self.prompt_class,
        }


def object_mask(labels: torch.Tensor, class_id: int) -> torch.Tensor:
    """Binary target of a global class with :data:`GT_MERGES` applied; same shape as ``labels``."""
    mask = labels == int(class_id)
    for extra in GT_MERGES.get(int(class_id), ()):
        mask = mask | (labels == extra)
    return mask


def _click_counts(max_clicks: int) -> tuple[int, int]:
    # Same draw as sample_prompt_pairs: 1..max positives, 0..max negatives, half-normal.
    n_pos = min(max_clicks, int(abs(random.gauss(0, max_clicks // 2))) + 1)
    n_neg = min(max_clicks, int(abs(random.gauss(0, max_clicks // 2))))
    return n_pos, n_neg


def _clicks_in(mask: torch.Tensor, n_pos: int, n_neg: int) -> tuple[torch.Tensor, torch.Tensor]:
    pos, neg = torch.nonzero(mask), torch.nonzero(~mask)
    picks = [pos[random.randrange(len(pos))] for _ in range(min(n_pos, len(pos)))]
    picks += [neg[random.randrange(len(neg))] for _ in range(min(n_neg, len(neg)))]
    labels = [1] * min(n_pos, len(pos)) + [0] * min(n_neg, len(neg))
    pad = n_pos + n_neg - len(picks)
    coords = torch.stack(picks + [torch.zeros(3, dtype=torch.long, device=mask.device)] * pad)
    return coords.float(), torch.tensor(labels + [-1] * pad, dtype=torch.float, device=mask.device)


def _pad_points(coords: torch.Tensor, labels: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    extra = n - coords.shape[1]
    if extra <= 0:
        return coords, labels
    return F.pad(coords, (0, 0, 0, extra)), F.pad(labels, (0, extra), value=-1)


def sample_prompts(
    labels: torch.Tensor,
    label_set: Sequence[int],
    config: PromptConfig,
    supervoxels: torch.Tensor | None = None,
    image: torch.Tensor | None = None,
) -> PromptBatch | None:
    """Draw the prompts of one training patch (python's ``random`` module supplies all randomness).

    Args:
        labels: [1, 1, X, Y, Z] global class ids of the patch.
        label_set: global ids the patch's dataset annotates (absent ones become background prompts).
        config: sampling settings.
        supervoxels: [1, 1, X, Y, Z] supervoxel ids, or None.
        image: [1, 1, X, Y, Z] the patch (for sources that compute masks on the fly).

    Returns:
        The prompts, or None when the patch offers nothing to learn (skip the step).
    """
    point = config.branch == "point"
    label_prompt, coords, point_labels, prompt_class = sample_prompt_pairs(
        labels,
        [int(c) for c in label_set if 0 < int(c) < ZERO_SHOT_BASE],
        max_foreprompt=config.max_foreground,
        max_backprompt=0 if point else config.max_background,
        max_point=config.max_clicks,
        drop_label_prob=1.0 if point else 0.0,
        drop_point_prob=0.0 if point else 1.0,
    )
    lab = labels[0, 0]
    classes = [] if prompt_class is None else [int(c) for c in prompt_class[:, 0]]
    masks = [object_mask(lab, c) for c in classes]
    if point:
        if not any(m.any() for m in masks):
            classes, masks, coords, point_labels = [], [], None, None
        novel = _zero_shot_masks(config, lab, supervoxels, image)
        if novel:
            n_pos, n_neg = _click_counts(config.max_clicks)
            pairs = [_clicks_in(m, n_pos, n_neg) for m in novel]
            new_coords, new_labels = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
            if coords is None:
                coords, point_labels = new_coords, new_labels
            else:
                n = max(coords.shape[1], new_coords.shape[1])
                coords, point_labels = _pad_points(coords.float(), point_labels.float(), n)
                new_coords, new_labels = _pad_points(new_coords, new_labels, n)
                coords, point_labels = torch.cat([coords, new_coords]), torch.cat([point_labels, new_labels])
            classes += [ZERO_SHOT_BASE + 1 + i for i in range(len(novel))]
            masks += novel
        if not classes:
            return None
        return PromptBatch(
            prompt_class=torch.tensor(classes, device=labels.device).unsqueeze(-1),
            targets=torch.stack(masks).unsqueeze(1).float(),
            point_coords=coords.float(),
            point_labels=point_labels.float(),
        )
    if not classes:
        return None
    class_vector = torch.tensor(classes, device=labels.device).unsqueeze(-1)
    return PromptBatch(
        prompt_class=class_vector.clone(), targets=torch.stack(masks).unsqueeze(1).float(), class_vector=class_vector
    )


def _zero_shot_masks(config: PromptConfig, labels, supervoxels, image) -> list[torch.Tensor]:
    if config.zero_shot_source is None or config.max_zero_shot == 0:
        return []
    count = random.randint(0, config.max_zero_shot)
    if count == 0:
        return []
    sv = None if supervoxels is None else supervoxels[0, 0]
    img = None if image is None else image[0, 0]
    masks = ZERO_SHOT_SOURCES[config.zero_shot_source](labels, sv, img, count)
    return [m.bool() for m in masks if int(m.sum()) >= _MIN_OBJECT_VOXELS][:count]


def supervoxel_objects(
    labels: torch.Tensor, supervoxels: torch.Tensor | None, image: torch.Tensor | None, count: int
) -> list[torch.Tensor]:
    """Novel-object masks mixing labels and supervoxels (the official point sampler's idea).

    Each object is one of: a supervoxel alone ("unseen" structure), an organ minus an overlapping
    supervoxel, an organ plus an overlapping supervoxel, or an organ treated as a novel class.

    Args:
        labels: [X, Y, Z] global ids; supervoxels: [X, Y, Z] ids (0 = none) or None.

    Returns:
        Up to ``count`` [X, Y, Z] bool masks (none without supervoxels).
    """
    if supervoxels is None:
        return []
    sv_ids = [int(v) for v in torch.unique(supervoxels) if int(v) != 0]
    organs = [int(v) for v in torch.unique(labels) if 0 < int(v) <= LAST_SUPPORTED]
    out: list[torch.Tensor] = []
    for _ in range(4 * count):
        if len(out) == count or not sv_ids:
            break
        mode = random.choice(("supervoxel", "minus", "plus", "organ") if organs else ("supervoxel",))
        if mode == "supervoxel":
            mask = supervoxels == random.choice(sv_ids)
        else:
            organ = object_mask(labels, random.choice(organs))
            if mode == "organ":
                mask = organ
            else:
                touching = [int(v) for v in torch.unique(supervoxels[organ]) if int(v) != 0]
                if not touching:
                    continue
                sv = supervoxels == random.choice(touching)
                mask = organ & ~sv if mode == "minus" else organ | sv
        if int(mask.sum()) >= _MIN_OBJECT_VOXELS:
            out.append(mask)
    return out


#: Name -> callable ``(labels [X,Y,Z], supervoxels [X,Y,Z] | None, image [X,Y,Z] | None, count)
#: -> list of [X,Y,Z] bool masks``. Register on-the-fly mask generators here.
ZERO_SHOT_SOURCES: dict[str, Callable[..., list[torch.Tensor]]] = {"supervoxel": supervoxel_objects}


def _erode(mask: torch.Tensor) -> torch.Tensor:
    """3x3x3 binary erosion of an [X, Y, Z] mask (borders count as outside)."""
    m = mask[None, None].float()
    return (-F.max_pool3d(-F.pad(m, (1,) * 6, value=0.0), 3, stride=1))[0, 0] > 0.5


def _pick(region: torch.Tensor) -> torch.Tensor | None:
    """A random voxel of the eroded region (of the region itself if erosion empties it)."""
    for candidate in (_erode(region), region):
        idx = torch.nonzero(candidate)
        if len(idx):
            return idx[random.randrange(len(idx))]
    return None


def next_clicks(
    probs: torch.Tensor,
    targets: torch.Tensor,
    point_coords: torch.Tensor,
    point_labels: torch.Tensor,
    prompt_class: torch.Tensor,
    threshold: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM-style correction clicks: per object one positive click in its false negative region and
    one negative click in its false positive region of the previous prediction (padding -1 where
    a region is empty).

    Args:
        probs: [B, 1, X, Y, Z] previous prediction probabilities.
        targets: [B, 1, X, Y, Z] binary ground truth.
        point_coords: [B, N, 3] clicks so far; point_labels: [B, N].
        prompt_class: [B, 1] ids; special classes get labels 3/2, zero-shot ids plain 1/0.

    Returns:
        ``(coords, labels)`` of shape [B, N + 2, 3] and [B, N + 2].
    """
    new_coords, new_labels = [], []
    for b in range(probs.shape[0]):
        gt = targets[b, 0] > 0.5
        pred = probs[b, 0] > threshold
        shift = click_label_shift(int(prompt_class[b, 0]))
        coords, labels = [], []
        for region, value in ((gt & ~pred, 1 + shift), (pred & ~gt, 0 + shift)):
            voxel = _pick(region)
            coords.append(torch.zeros(3, device=probs.device) if voxel is None else voxel.float())
            labels.append(-1.0 if voxel is None else float(value))
        new_coords.append(torch.stack(coords))
        new_labels.append(torch.tensor(labels, device=probs.device))
    coords = torch.cat([point_coords.float(), torch.stack(new_coords)], dim=1)
    labels = torch.cat([point_labels.float(), torch.stack(new_labels)], dim=1)
    return coords, labels
