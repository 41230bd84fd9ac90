"""MONAI dictionary transforms that turn datalist cases into training patches and validation volumes.

Load -> channel-first -> RAS -> resample (1.5 mm) -> HU window of inference -> crop to the body ->
(empty label of an unlabeled image) -> local -> global class ids (``Relabeld``) -> (pseudo labels
merged, :mod:`~voxelprompt.families.vista3d.training.labels`) -> pad to the patch -> random patch. The
deterministic part ends before the first random transform, so ``CacheDataset`` caches it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from monai.apps.vista3d.transforms import Relabeld
from monai.transforms import (
    CastToTyped,
    ClassesToIndicesd,
    Compose,
    CropForegroundd,
    DeleteItemsd,
    EnsureTyped,
    LoadImaged,
    MapTransform,
    Orientationd,
    RandCropByLabelClassesd,
    RandSpatialCropd,
    ScaleIntensityRanged,
    Spacingd,
    SpatialPadd,
)

from voxelprompt.catalog import LAST_SUPPORTED
from voxelprompt.errors import InputError
from voxelprompt.families.vista3d.inference.profiles import HU_MAX, HU_MIN
from voxelprompt.families.vista3d.training.labels import EmptyLabeld, MergePseudoLabeld

__all__ = [
    "PatchConfig",
    "CROP_MODES",
    "LoadCased",
    "read_label_mappings",
    "label_set_of",
    "train_transforms",
    "val_transforms",
    "as_batch",
]

#: ``classes``: patch centres drawn per class (MONAI ``RandCropByLabelClassesd``, small organs
#: oversampled); ``random``: uniform patch position (``RandSpatialCropd``).
CROP_MODES = ("classes", "random")
_RAS = (("L", "R"), ("P", "A"), ("I", "S"))  # MONAI 1.6's default, given to silence its warning


@dataclass(frozen=True)
class PatchConfig:
    """Geometry and intensity of training patches.

    Args:
        spacing: target voxel size in mm (1.5 in the paper).
        roi: patch size in voxels, multiples of 16 (128^3 in the paper).
        crop: one of :data:`CROP_MODES`.
        crop_num_classes: highest class id + 1 that ``classes`` crops consider.
        crop_class_ratios: class id -> relative weight of patch centres in that class (``classes``
            mode); ids not given weigh 1, background included. ``None``: all equal.
        align_corners: ``Spacingd`` flag (the research training configs use True).
        crop_margin: voxels kept around the body (``CropForegroundd`` on the scaled image).
    """

    spacing: tuple[float, float, float] = (1.5, 1.5, 1.5)
    roi: tuple[int, int, int] = (128, 128, 128)
    crop: str = "classes"
    crop_num_classes: int = LAST_SUPPORTED + 1
    crop_class_ratios: Mapping[int, float] | None = None
    align_corners: bool = True
    crop_margin: int = 10

    def __post_init__(self) -> None:
        roi = tuple(int(r) for r in self.roi)
        if len(roi) != 3 or any(r < 16 or r % 16 for r in roi):
            raise ValueError(f"roi must be three positive multiples of 16, got {self.roi}")
        object.__setattr__(self, "roi", roi)
        spacing = tuple(float(s) for s in self.spacing)
        if len(spacing) != 3 or min(spacing) <= 0:
            raise ValueError(f"spacing must be three positive mm values, got {self.spacing}")
        object.__setattr__(self, "spacing", spacing)
        if self.crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {CROP_MODES}, got {self.crop!r}")

    def ratios(self) -> list[float] | None:
        if self.crop_class_ratios is None:
            return None
        out = [1.0] * self.crop_num_classes
        for cls, weight in self.crop_class_ratios.items():
            if not 0 <= int(cls) < self.crop_num_classes or float(weight) < 0:
                raise ValueError(f"crop_class_ratios: bad entry {cls}: {weight}")
            out[int(cls)] = float(weight)
        return out


class LoadCased(MapTransform):
    """``LoadImaged`` (channel first) whose errors name the datalist entry (``data["case"]``)."""

    def __init__(self, keys: Sequence[str]) -> None:
        super().__init__(keys, allow_missing_keys=True)
        self.loader = LoadImaged(keys=keys, ensure_channel_first=True, image_only=True, allow_missing_keys=True)

    def __call__(self, data):
        try:
            return self.loader(data)
        except Exception as err:  # nibabel/ITK raise many types for corrupt or foreign files
            name = data.get("case", data.get("image", "<case>"))
            raise InputError(f"{name}: cannot load ({type(err).__name__}: {str(err)[:160]})") from err


def read_label_mappings(source: str | os.PathLike | Mapping | None) -> dict[str, list[tuple[int, int]]]:
    """Label mappings (dataset -> ``[[local, global], ...]``, VISTA's ``label_mappings.json``).

    Args:
        source: a JSON path, an already-parsed mapping, or None (no remapping).
    """
    if source is None:
        return {}
    if isinstance(source, Mapping):
        raw = dict(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"label mappings not found: {path}")
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise InputError(f"{path}: cannot read label mappings ({err})") from err
    out: dict[str, list[tuple[int, int]]] = {}
    for name, pairs in raw.items():
        try:
            out[str(name)] = [(int(a), int(b)) for a, b in pairs]
        except (TypeError, ValueError):
            raise InputError(f"label mappings: dataset {name!r} must map to [[local, global], ...] pairs") from None
    return out


def label_set_of(dataset: str, mappings: Mapping[str, Sequence[tuple[int, int]]], default: Sequence[int]) -> list[int]:
    """Global class ids a dataset annotates: its mapping's targets, else ``default`` (like
    ``Relabeld``, a dataset without its own mapping is not remapped)."""
    pairs = mappings.get(dataset)
    if not pairs:
        return sorted(int(c) for c in default)
    return sorted({int(g) for _, g in pairs if int(g) > 0})


def _deterministic(
    config: PatchConfig, keys: list[str], mappings: dict, pseudo: MergePseudoLabeld | None = None
) -> list:
    modes = ["bilinear"] + ["nearest"] * (len(keys) - 1)
    steps: list = [
        LoadCased(keys),
        Orientationd(keys=keys, axcodes="RAS", labels=_RAS, allow_missing_keys=True),
        Spacingd(
            keys=keys, pixdim=config.spacing, mode=modes, align_corners=config.align_corners, allow_missing_keys=True
        ),
        ScaleIntensityRanged(keys="image", a_min=HU_MIN, a_max=HU_MAX, b_min=0.0, b_max=1.0, clip=True),
        # After scaling, air (< HU_MIN) is 0: crop to the body like the official configs.
        CropForegroundd(
            keys=keys, source_key="image", margin=config.crop_margin, allow_smaller=True, allow_missing_keys=True
        ),
        EmptyLabeld(),
    ]
    if mappings:
        steps.append(Relabeld(keys="label", label_mappings=mappings, dtype=np.int16, dataset_key="dataset_name"))
    if pseudo is not None:
        steps.append(pseudo)
    steps += [
        CastToTyped(keys=keys, dtype=[torch.float32] + [torch.int32] * (len(keys) - 1), allow_missing_keys=True),
        EnsureTyped(keys=keys, track_meta=False, allow_missing_keys=True),
    ]
    return steps


def train_transforms(
    config: PatchConfig,
    label_mappings: Mapping | None = None,
    supervoxels: bool = False,
    pseudo_labels: MergePseudoLabeld | None = None,
) -> Compose:
    """Case dict (:meth:`Case.as_dict`) -> ``{"image": [1, X, Y, Z] float, "label": [1, X, Y, Z]
    int32 global ids, "supervoxel": ..., "dataset_name": str}`` patch of ``config.roi``; an
    unlabeled case also carries ``"labeled": False``, a case with a merged pseudo label
    ``"pseudo_classes"`` (:mod:`~voxelprompt.families.vista3d.training.labels`).

    Args:
        config: patch geometry.
        label_mappings: see :func:`read_label_mappings`.
        supervoxels: load each case's ``supervoxel`` map (else it is dropped).
        pseudo_labels: the merge of each case's ``pseudo_label`` into its label (else pseudo
            labels are dropped).

    Axis order of the patch: RAS voxels (X towards Right, Y Anterior, Z Superior).
    """
    keys = ["image", "label"] + (["supervoxel"] if supervoxels else []) + (["pseudo_label"] if pseudo_labels else [])
    mappings = read_label_mappings(label_mappings)
    steps = _deterministic(config, keys, mappings, pseudo_labels)
    dropped = ([] if supervoxels else ["supervoxel"]) + ([] if pseudo_labels else ["pseudo_label"])
    if dropped:
        steps.insert(0, DeleteItemsd(keys=dropped))
    keys = [k for k in keys if k != "pseudo_label"]  # merged into the label by now
    steps.append(SpatialPadd(keys=keys, spatial_size=config.roi, mode="constant", allow_missing_keys=True))
    if config.crop == "classes":
        steps.append(ClassesToIndicesd(keys="label", num_classes=config.crop_num_classes, indices_postfix="_idx"))
        crop = RandCropByLabelClassesd(
            keys=keys,
            label_key="label",
            spatial_size=config.roi,
            ratios=config.ratios(),
            num_classes=config.crop_num_classes,
            indices_key="label_idx",
            num_samples=1,
            warn=False,
            allow_missing_keys=True,
        )
        steps += [crop, DeleteItemsd(keys="label_idx")]
    else:
        steps.append(RandSpatialCropd(keys=keys, roi_size=config.roi, random_size=False, allow_missing_keys=True))
    return Compose(steps)


def val_transforms(config: PatchConfig, label_mappings: Mapping | None = None) -> Compose:
    """Case dict -> whole preprocessed ``image`` and global-id manual ``label`` (no crop, no
    padding, no pseudo labels: validation scores against manual labels only)."""
    mappings = read_label_mappings(label_mappings)
    dropped = DeleteItemsd(keys=["supervoxel", "pseudo_label"])
    return Compose([dropped] + _deterministic(config, ["image", "label"], mappings))


def first_sample(out):
    """``RandCropByLabelClassesd`` returns a list of samples; training uses one per step."""
    if isinstance(out, list):
        return out[0]
    return out


def as_batch(x, device: torch.device) -> torch.Tensor | None:
    """A transform's [C, X, Y, Z] (Meta)Tensor as a plain [1, C, X, Y, Z] tensor on ``device``
    (MetaTensor ops are slow); None stays None."""
    if x is None:
        return None
    return torch.as_tensor(x).as_subclass(torch.Tensor).unsqueeze(0).to(device)
