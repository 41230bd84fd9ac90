"""The one record of an input case, shared by batch, evaluation and training.

A case is an image (a CT file or a DICOM series folder) plus what a door knows about it: the maps
on its grid (manual label, supervoxels, pseudo label), the dataset it belongs to, and for batch
the files whose bytes make it, the DICOM series to read and why it cannot run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Case", "DEFAULT_DATASET", "IMAGE_SUFFIXES", "image_stem"]

#: Dataset name of entries that name none (``label_mappings["default"]`` applies, if present).
DEFAULT_DATASET = "default"

#: Endings of image files (case-insensitive); a folder is searched for these.
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr")


def image_stem(name: str) -> str:
    """``name`` without its image ending (:data:`IMAGE_SUFFIXES`, any case); other names unchanged."""
    lower = name.lower()
    for suffix in IMAGE_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True, kw_only=True)
class Case:
    """One input case (fields are given by keyword).

    Args:
        image: CT file (NIfTI, NRRD) or DICOM series folder.
        name: unique name of the case within its cohort or dataset: batch's case id (letters,
            digits, ``._-``; the output folder ``OUT_DIR/<name>``), evaluation's file stem, or where
            a datalist entry came from (``datalist.json:training[3]``) in training messages.
        label: label map on the image's grid (possibly another axis orientation for evaluation), in
            the dataset's own values; None for an unlabeled image.
        dataset: dataset name: selects the label mapping (and training's sampling weight), groups
            evaluation tables.
        supervoxel: optional supervoxel map on the image's grid (ids are arbitrary).
        pseudo_label: optional label map on the image's grid in global class ids, made by another
            model (TotalSegmentator in VISTA3D's paper, Sec. 3.3); merged under the manual labels.
        files: the files whose bytes make the case, in a fixed order (batch hashes them): the image
            file (a detached ``.nhdr`` header alone), or the DICOM series' files.
        series_uid: the DICOM series to read (None: the file, or the folder's only series).
        error: why the case cannot run, found while listing (several DICOM series and no rule
            that picks one); batch records such a case as failed without running it.
    """

    image: Path
    name: str = "<case>"
    label: Path | None = None
    dataset: str = DEFAULT_DATASET
    supervoxel: Path | None = None
    pseudo_label: Path | None = None
    files: tuple[Path, ...] = ()
    series_uid: str | None = None
    error: str | None = None

    @property
    def case_id(self) -> str:
        """Batch's word for :attr:`name` (the case's output folder name)."""
        return self.name

    @property
    def path(self) -> Path:
        """Batch's word for :attr:`image` (the input file or DICOM folder)."""
        return self.image

    @property
    def is_dicom(self) -> bool:
        """Whether the image is a DICOM series folder."""
        return self.image.is_dir()

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
