"""The label map a VISTA3D training case trains on: an empty map for an unlabeled image, and pseudo
labels merged under the manual labels (paper Sec. 3.3-3.4: manual, pseudo and no labels mixed).

Both transforms run on whole preprocessed volumes after ``Relabeld`` (global class ids), before
any crop, so ``CacheDataset`` caches their output.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence

import torch
from monai.transforms import MapTransform

__all__ = [
    "LABELED_KEY",
    "PSEUDO_CLASSES_KEY",
    "ALL_DATASETS",
    "EmptyLabeld",
    "merge_pseudo_labels",
    "MergePseudoLabeld",
    "pseudo_exclusions",
]

#: Sample key set to False by :class:`EmptyLabeld` (the image came without a manual label).
LABELED_KEY = "labeled"
#: Sample key holding the global ids left in the merged pseudo label (sorted tuple).
PSEUDO_CLASSES_KEY = "pseudo_classes"
#: Key of ``pseudo_label_exclude`` that applies to every dataset.
ALL_DATASETS = "*"


class EmptyLabeld(MapTransform):
    """Give a case without ``label`` an all-zero label map on the image's grid and mark it
    ``data["labeled"] = False``: an unlabeled image annotates no class, so only zero-shot objects
    (supervoxels) and pseudo labels can come from it. Cases with a label pass unchanged.

    Args:
        label_key: the label entry; image_key: the [C, X, Y, Z] image whose grid the map takes.
    """

    def __init__(self, label_key: str = "label", image_key: str = "image") -> None:
        super().__init__([label_key], allow_missing_keys=True)
        self.label_key, self.image_key = label_key, image_key

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        if d.get(self.label_key) is None:
            image = d[self.image_key]
            d[self.label_key] = torch.zeros_like(torch.as_tensor(image), dtype=torch.int16)
            d[LABELED_KEY] = False
        return d


def merge_pseudo_labels(
    manual: torch.Tensor, pseudo: torch.Tensor, manual_classes: Sequence[int], exclude: Sequence[int] = ()
) -> torch.Tensor:
    """Manual labels with pseudo labels filling their background.

    A pseudo voxel counts only where the manual map is 0, and only for a class the dataset does not
    annotate (``manual_classes``: there the manual map alone is the truth, including its
    background) nor one marked unreliable (``exclude``).

    Args:
        manual: [C, X, Y, Z] global class ids (0 = background).
        pseudo: same shape, global class ids of the pseudo labeller.
        manual_classes: global ids the case's dataset annotates.
        exclude: global ids dropped from the pseudo label.

    Returns:
        [C, X, Y, Z] merged ids, ``manual``'s dtype.

    Raises:
        ValueError: the two maps differ in shape.
    """
    if tuple(manual.shape) != tuple(pseudo.shape):
        raise ValueError(f"pseudo label shape {tuple(pseudo.shape)} differs from the label's {tuple(manual.shape)}")
    pseudo = torch.as_tensor(pseudo).to(manual.dtype)
    dropped = sorted({int(c) for c in manual_classes} | {int(c) for c in exclude})
    keep = pseudo > 0
    if dropped:
        keep &= ~torch.isin(pseudo, torch.tensor(dropped, dtype=pseudo.dtype, device=pseudo.device))
    return torch.where((manual == 0) & keep, pseudo, manual)


def pseudo_exclusions(exclude: Mapping[str, Sequence[int]], dataset: str) -> set[int]:
    """Pseudo-label classes dropped for ``dataset``: its entry of ``exclude`` plus the ``"*"`` entry."""
    return {int(c) for c in exclude.get(dataset, ())} | {int(c) for c in exclude.get(ALL_DATASETS, ())}


class MergePseudoLabeld(MapTransform):
    """Merge ``pseudo_label`` into ``label`` (:func:`merge_pseudo_labels`), then drop it; records
    the pseudo classes left in the volume under ``data["pseudo_classes"]`` so prompt sampling adds
    them to the case's label set. Cases without a pseudo label pass unchanged.

    Args:
        manual_classes: ``(dataset name, labeled) -> global ids the manual label annotates`` (an
            unlabeled case annotates none).
        exclude: dataset name (or ``"*"``: all) -> pseudo classes to drop for it.
        label_key, pseudo_key: entries of the manual and the pseudo label ([C, X, Y, Z], same grid).
    """

    def __init__(
        self,
        manual_classes: Callable[[str, bool], Sequence[int]],
        exclude: Mapping[str, Sequence[int]] | None = None,
        label_key: str = "label",
        pseudo_key: str = "pseudo_label",
    ) -> None:
        super().__init__([pseudo_key], allow_missing_keys=True)
        self.manual_classes = manual_classes
        self.exclude = dict(exclude or {})
        self.label_key, self.pseudo_key = label_key, pseudo_key

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        pseudo = d.pop(self.pseudo_key, None)
        if pseudo is None:
            return d
        dataset = str(d.get("dataset_name", ""))
        manual_classes = self.manual_classes(dataset, bool(d.get(LABELED_KEY, True)))
        exclude = pseudo_exclusions(self.exclude, dataset)
        label = d[self.label_key]
        try:
            merged = merge_pseudo_labels(torch.as_tensor(label), torch.as_tensor(pseudo), manual_classes, exclude)
        except ValueError as err:
            raise ValueError(f"{d.get('case', '<case>')}: {err}") from None
        kept = torch.unique(merged[(torch.as_tensor(label) == 0) & (merged > 0)])
        d[self.label_key] = merged
        d[PSEUDO_CLASSES_KEY] = tuple(int(c) for c in kept)
        return d
