"""Training datalists (MSD / VISTA style JSON) read into checked :class:`Case` records.

A datalist is ``{"training": [...], "validation": [...]}``; each entry holds ``image`` and
``label`` paths relative to the datalist, an optional ``supervoxel`` (or VISTA's ``label_sv``)
path, an optional ``pseudo_label`` path (global class ids, VISTA's key; an entry with
``"pseudo_label_reliability": 0`` has its pseudo label ignored, as the official loop does) and an
optional ``dataset`` name that selects the label mapping. ``label`` may be left out where the
caller allows unlabeled images (``require_label=False``; VISTA3D stage 1 trains on them, paper
Sec. 3.3-3.4). Bad entries raise :class:`~voxelprompt.errors.InputError` naming the entry, or are
logged and skipped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxelprompt.errors import InputError

__all__ = ["Case", "Datalist", "load_datalist", "load_datalists", "check_case", "DEFAULT_DATASET"]

logger = logging.getLogger(__name__)

#: Dataset name of entries that name none (``label_mappings["default"]`` applies, if present).
DEFAULT_DATASET = "default"
_SUPERVOXEL_KEYS = ("supervoxel", "label_sv")
# Affines of an image and its label may differ by float noise of the writer, never by a voxel.
_AFFINE_ATOL_MM = 1e-3


@dataclass(frozen=True)
class Case:
    """One training or validation volume.

    Args:
        image: CT path (NIfTI or NRRD).
        label: label map path on the image's grid, in the dataset's local class ids; None for an
            unlabeled image (no class is annotated).
        dataset: dataset name; selects the local -> global label mapping and sampling weight.
        supervoxel: optional supervoxel map on the image's grid (ids are arbitrary).
        name: how messages refer to the entry (``datalist.json:training[3]``).
        pseudo_label: optional label map on the image's grid in global class ids, made by another
            model (TotalSegmentator in the paper, Sec. 3.3); merged under the manual labels.
    """

    image: Path
    label: Path | None
    dataset: str = DEFAULT_DATASET
    supervoxel: Path | None = None
    name: str = "<case>"
    pseudo_label: Path | None = None

    def maps(self) -> list[tuple[str, Path]]:
        """``(what, path)`` of the maps on the image's grid this case has (label, supervoxel, pseudo label)."""
        maps = [("label", self.label), ("supervoxel", self.supervoxel), ("pseudo label", self.pseudo_label)]
        return [(what, path) for what, path in maps if path is not None]

    def as_dict(self) -> dict[str, str]:
        """The MONAI dictionary of this case (keys ``image``, ``dataset_name``, ``case`` and, where
        the case has them, ``label``, ``supervoxel``, ``pseudo_label``)."""
        d = {"image": str(self.image), "dataset_name": self.dataset, "case": self.name}
        for key in ("label", "supervoxel", "pseudo_label"):
            if getattr(self, key) is not None:
                d[key] = str(getattr(self, key))
        return d


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


def _parse_entry(entry: object, base: Path, name: str, default_dataset: str, require_label: bool) -> Case:
    if isinstance(entry, str):
        raise InputError(f"{name}: entry must be an object with 'image' and 'label', got a string {entry!r}")
    if not isinstance(entry, dict):
        raise InputError(f"{name}: entry must be an object with 'image' and 'label', got {type(entry).__name__}")
    missing = [k for k in ("image", "label") if not entry.get(k) and (k == "image" or require_label)]
    if missing:
        raise InputError(f"{name}: entry has no {' or '.join(repr(k) for k in missing)}")
    sv = next((entry[k] for k in _SUPERVOXEL_KEYS if entry.get(k)), None)
    pseudo = entry.get("pseudo_label") or None
    reliability = entry.get("pseudo_label_reliability", 1)
    if not isinstance(reliability, (int, float)) or isinstance(reliability, bool):
        raise InputError(f"{name}: pseudo_label_reliability must be a number, got {reliability!r}")
    if reliability <= 0:  # the official loop skips pseudo labels of reliability 0
        pseudo = None
    dataset = str(entry.get("dataset") or entry.get("dataset_name") or default_dataset)
    resolve = lambda p: (base / str(p)).resolve() if p else None  # noqa: E731 - absolute paths pass through
    return Case(
        image=resolve(entry["image"]),
        label=resolve(entry.get("label")),
        dataset=dataset,
        supervoxel=resolve(sv),
        name=name,
        pseudo_label=resolve(pseudo),
    )


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


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"datalist not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read datalist ({err})") from err
    if not isinstance(data, dict) or not isinstance(data.get("training", []), list):
        raise InputError(f"{path}: a datalist is an object with a 'training' list")
    return data


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
    path = Path(path).resolve()
    data = _read_json(path)
    default = str(dataset or data.get("dataset") or DEFAULT_DATASET)
    splits: dict[str, list[Case]] = {"training": [], "validation": []}
    for split in splits:
        entries = data.get(split) or []
        if not isinstance(entries, list):
            raise InputError(f"{path}: '{split}' must be a list")
        for i, entry in enumerate(entries):
            name = f"{path.name}:{split}[{i}]"
            try:
                case = _parse_entry(entry, path.parent, name, default, require_label)
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
