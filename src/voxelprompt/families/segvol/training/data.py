"""SegVol training samples: a case in SegVol's (D, H, W) frame with its ground truth and pseudo
masks, then the reference's random window transforms.

Deterministic part (cached per case): read the CT and its label map, SegVol's pre-processing
(:func:`~voxelprompt.families.segvol.inference.preprocess.prepare_volume`: foreground normalization,
(D, H, W) axes, min-max, body crop), the label remapped to global class ids, and Felzenszwalb
pseudo masks with the ground truth merged in (:func:`~voxelprompt.pseudolabels.pseudo_masks`).

Random part (as BAAI-DCAI/SegVol ``data_utils.get_loader``): pad to the window, then either resize
the whole volume to the window (a zoomed-out view) or crop a window centred on the foreground
(2:1 positive:negative centres), random flips along the three axes, intensity scale and shift of
0.1. Unlike the reference, label maps are resized by nearest neighbour, not area interpolation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from monai.transforms import (
    Compose,
    OneOf,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandScaleIntensityd,
    RandShiftIntensityd,
    Resized,
    SpatialPadd,
)

from voxelprompt.errors import InputError
from voxelprompt.imageio import align_to_grid, read_labels, read_volume
from voxelprompt.families.segvol.inference.preprocess import prepare_volume
from voxelprompt.pseudolabels import pseudo_masks
from voxelprompt.training.datalist import Case

__all__ = ["SegVolSample", "prepare_case", "window_transforms", "remap_labels"]

_KEYS = ["image", "label", "pseudo"]


@dataclass(frozen=True)
class SegVolSample:
    """One case in SegVol's frame: ``image`` (D, H, W) float32 in [0, 1], ``label`` (D, H, W)
    global class ids, ``pseudo`` (D, H, W) pseudo-mask ids (0: none)."""

    image: np.ndarray
    label: np.ndarray
    pseudo: np.ndarray
    name: str

    def as_dict(self) -> dict:
        """Channel-first arrays for MONAI dictionary transforms."""
        return {k: getattr(self, k)[None] for k in _KEYS}


def remap_labels(label: np.ndarray, pairs: Sequence[tuple[int, int]] | None) -> np.ndarray:
    """Local -> global class ids (``[[local, global], ...]``, VISTA's ``label_mappings.json``);
    unmapped ids become background. ``None`` or empty keeps the ids as they are."""
    if not pairs:
        return label.astype(np.int32)
    lut = np.zeros(max(int(label.max()), max(a for a, _ in pairs)) + 1, dtype=np.int32)
    for local, glob in pairs:
        lut[int(local)] = int(glob)
    return lut[np.clip(label, 0, None).astype(np.int64)]


def prepare_case(
    case: Case,
    mappings: Mapping[str, Sequence[tuple[int, int]]] | None = None,
    pseudo: Mapping | None = None,
    cache_dir: str | None = None,
) -> SegVolSample:
    """Read and pre-process one datalist case (the deterministic, cacheable part).

    Args:
        case: a datalist entry (image and label on the same grid).
        mappings: dataset name -> label mapping pairs.
        pseudo: keyword arguments of :func:`~voxelprompt.pseudolabels.pseudo_masks` (``k``,
            ``min_size``, ``max_voxels`` ...); None for the defaults.
        cache_dir: where pseudo masks are cached between runs.

    Raises:
        InputError: unreadable files or an image/label grid mismatch (naming the entry).
    """
    try:
        volume = read_volume(case.image)
        labels = read_labels(case.label)
    except Exception as err:  # readers raise several types; name the entry
        raise InputError(f"{case.name}: cannot load ({type(err).__name__}: {str(err)[:160]})") from err
    try:
        labels = align_to_grid(labels, volume)
    except InputError as err:
        raise InputError(f"{case.name}: {err}") from None
    label = remap_labels(np.asarray(labels.array), (mappings or {}).get(case.dataset))
    masks = pseudo_masks(volume, ground_truth=label, cache_dir=cache_dir, **dict(pseudo or {}))
    prepared = prepare_volume(volume)
    return SegVolSample(
        image=prepared.image,
        label=prepared.from_input(label).astype(np.int32),
        pseudo=prepared.from_input(np.asarray(masks.array)).astype(np.int32),
        name=case.name,
    )


def window_transforms(window: Sequence[int], flip_prob: float = 0.2, intensity_prob: float = 0.2) -> Compose:
    """The reference's random training transforms on :meth:`SegVolSample.as_dict` (channel first),
    returning a window of exactly ``window`` voxels."""
    window = tuple(int(w) for w in window)
    modes = ["area", "nearest", "nearest"]
    return Compose(
        [
            SpatialPadd(keys=_KEYS, spatial_size=window, mode="constant"),
            OneOf(
                transforms=[
                    Resized(keys=_KEYS, spatial_size=window, mode=modes),
                    RandCropByPosNegLabeld(
                        keys=_KEYS,
                        label_key="label",
                        spatial_size=window,
                        pos=2,
                        neg=1,
                        num_samples=1,
                        image_key="image",
                        image_threshold=0,
                    ),
                ],
                weights=[1, 1],
            ),
            RandFlipd(keys=_KEYS, prob=flip_prob, spatial_axis=0),
            RandFlipd(keys=_KEYS, prob=flip_prob, spatial_axis=1),
            RandFlipd(keys=_KEYS, prob=flip_prob, spatial_axis=2),
            RandScaleIntensityd(keys="image", factors=0.1, prob=intensity_prob),
            RandShiftIntensityd(keys="image", offsets=0.1, prob=intensity_prob),
            Resized(keys=_KEYS, spatial_size=window, mode=modes),
        ]
    )
