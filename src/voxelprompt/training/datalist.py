"""Training datalists (MSD / VISTA style JSON) read into checked :class:`~voxelprompt.datasets.Case` records.

A datalist is ``{"training": [...], "validation": [...]}``, read by the one datalist reader
(:mod:`voxelprompt.datasets.datalist`, which describes the entries' keys). Each entry holds
``image`` and ``label``; ``label`` may be left out where the caller allows unlabeled images
(``require_label=False``; VISTA3D stage 1 trains on them, paper Sec. 3.3-3.4). Bad entries raise
:class:`~voxelprompt.errors.InputError` naming the entry, or are logged and skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxelprompt.datasets import DEFAULT_DATASET, Case, entry_case, read_datalist
from voxelprompt.errors import InputError

__all__ = ["Case", "Datalist", "load_datalist", "load_datalists", "check_case", "DEFAULT_DATASET"]

logger = logging.getLogger(__name__)

# Affines of an image and its label may differ by float noise of the writer, never by a voxel.
_AFFINE_ATOL_MM = 1e-3


@dataclass(frozen=True)
class Datalist:
    """Training and validation cases of one or more datalist files."""

    training: tuple[Case, ...]
    validation: tuple[Case, ...] = ()

    @property
    def datasets(self) -> tuple[str, ...]:
        """Dataset names of the training cases, in first-seen order."""
        return tuple(dict.fromkeys(c.dataset for c in self.training))

    def __add__(self, other: Datalist) -> Datalist:
        return Datalist(self.training + other.training, self.validation + other.validation)


def _header(path: Path, what: str, case: Case):
    import nibabel as nib

    if not path.is_file():
        raise InputError(f"{case.name}: {what} file not found: {path}")
    try:
        img = nib.load(str(path))
        shape = tuple(int(s) for s in img.shape)
        affine = np.asarray(img.affine, dtype=np.float64)
    except Exception as err:  # nibabel raises many types for corrupt or foreign files
        raise InputError(f"{case.name}: cannot read {what} {path} ({type(err).__name__}: {str(err)[:120]})") from err
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise InputError(f"{case.name}: {what} {path} must be a 3D volume, got shape {shape}")
    return shape, affine


def check_case(case: Case, read_data: bool = False) -> None:
    """Check that a case's files exist, are readable 3D volumes, and share one voxel grid.

    Args:
        case: the entry to check.
        read_data: also decompress the voxel data (catches truncated files; slower).

    Raises:
        InputError: naming the entry and the file.
    """
    img_shape, img_affine = _header(case.image, "image", case)
    others = case.maps()
    for what, path in others:
        shape, affine = _header(path, what, case)
        if shape != img_shape:
            raise InputError(f"{case.name}: {what} shape {shape} does not match image shape {img_shape} ({path})")
        if not np.allclose(affine, img_affine, atol=_AFFINE_ATOL_MM):
            raise InputError(
                f"{case.name}: {what} grid (affine) does not match the image's; resample it onto the image ({path})"
            )
    if read_data:
        import nibabel as nib

        for what, path in [("image", case.image)] + others:
            try:
                np.asanyarray(nib.load(str(path)).dataobj)
            except Exception as err:
                raise InputError(f"{case.name}: cannot read {what} data {path} ({type(err).__name__})") from err


def load_datalist(
    path: str | os.PathLike,
    *,
    dataset: str | None = None,
    fold: int | None = None,
    check: bool = True,
    read_data: bool = False,
    skip_bad: bool = False,
    require_label: bool = True,
) -> Datalist:
    """Read a datalist JSON and check its entries.

    Args:
        path: the JSON file; entry paths are relative to its folder.
        dataset: dataset name for entries that give none (default: the file's top-level
            ``dataset`` key, else ``"default"``).
        fold: if given, training entries with ``"fold": fold`` move to validation (VISTA's
            cross-validation layout); otherwise the ``validation`` list is used.
        check: check files, readability and grids (:func:`check_case`).
        read_data: with ``check``, decompress every file too.
        skip_bad: log and drop bad entries instead of raising.
        require_label: an entry without ``label`` is bad; False reads it as an unlabeled image
            (``Case.label`` None) for callers that can train on one.

    Raises:
        InputError: unreadable datalist, or (without ``skip_bad``) a bad entry, named.
    """
    datalist = read_datalist(path)
    path = datalist.path
    default = str(dataset or datalist.data.get("dataset") or DEFAULT_DATASET)
    splits: dict[str, list[Case]] = {"training": [], "validation": []}
    for split in splits:
        for i, entry in enumerate(datalist.entries(split)):
            name = datalist.entry_name(split, i)
            try:
                case = entry_case(entry, path.parent, name, default_dataset=default, require_label=require_label)
                if check:
                    check_case(case, read_data=read_data)
            except InputError as err:
                if not skip_bad:
                    raise
                logger.warning("skipping bad datalist entry: %s", err)
                continue
            if fold is not None and split == "training" and isinstance(entry, dict) and entry.get("fold") == fold:
                splits["validation"].append(case)
            else:
                splits[split].append(case)
    if not splits["training"]:
        raise InputError(f"{path}: no usable training entries")
    return Datalist(tuple(splits["training"]), tuple(splits["validation"]))


def load_datalists(paths: Sequence[str | os.PathLike], **kwargs) -> Datalist:
    """Several datalists (one per dataset, VISTA style) joined; see :func:`load_datalist`."""
    if not paths:
        raise InputError("no datalist given")
    out = Datalist(())
    for p in paths:
        out = out + load_datalist(p, **kwargs)
    return out
