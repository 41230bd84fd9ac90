"""Records shared by every layer of voxelprompt, and the one place its conventions are stated.

Conventions (every API that takes coordinates refers here):

* **Array axis order.** A :class:`Volume` array is indexed ``array[i, j, k]`` in the order the file
  stores its voxels: NIfTI's (i, j, k); for DICOM and NRRD the ITK index order (column, row,
  slice). This is what nibabel returns and what MONAI's ``LoadImage`` produces, *not* SimpleITK's
  ``GetArrayFromImage`` order (k, j, i).
* **World frame.** ``Volume.affine`` maps homogeneous voxel indices ``(i, j, k, 1)`` to world
  coordinates ``(x, y, z, 1)`` in millimetres in nibabel's **RAS+** frame: +x towards the
  patient's Right, +y Anterior, +z Superior (the frame 3D Slicer displays). DICOM's LPS+ is
  converted on reading.
* **Points.** A user point is ``(i, j, k)`` in voxel indices of the input volume as stored on disk
  (``PointSpace.VOXEL``), or ``(x, y, z)`` in RAS+ millimetres (``PointSpace.WORLD``). Labels: 1
  positive, 0 negative.
* **Labels.** Output label maps hold only 0 (background, and voxels no window predicted) and the
  prompted ids: VISTA3D global class indices (see :mod:`voxelprompt.catalog`), or
  :data:`OBJECT_ID` for an object segmented from clicks alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

__all__ = ["OBJECT_ID", "PointSpace", "Volume", "Points", "Box", "Prompts", "Segmentation"]

#: Value of an object segmented from clicks without a class (MONAI's point-only post-processing).
OBJECT_ID = 1


class PointSpace(str, enum.Enum):
    """Coordinate frame of user points (see the module docstring)."""

    VOXEL = "voxel"
    WORLD = "world"


@dataclass(frozen=True)
class Volume:
    """A 3D image or label map on a physical grid.

    Args:
        array: (I, J, K) voxel values, axis order as stored on disk.
        affine: (4, 4) voxel index -> RAS+ millimetre matrix.
        source: where the volume came from (a path or a short description), for messages.
    """

    array: np.ndarray
    affine: np.ndarray
    source: str = "<array>"

    def __post_init__(self) -> None:
        # Imported here to keep this module free of a dependency cycle with validation helpers.
        from voxelprompt.imageio.validate import validate_volume

        validate_volume(self.array, self.affine, self.source)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along i, j, k (norms of the affine's columns)."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def orientation(self) -> str:
        """Axis codes such as ``"RAS"`` or ``"LPS"`` (where each voxel axis points, nibabel style)."""
        import nibabel as nib

        return "".join(nib.aff2axcodes(self.affine))

    def voxel_to_world(self, ijk: np.ndarray) -> np.ndarray:
        """Map (N, 3) voxel indices to (N, 3) RAS+ millimetres."""
        ijk = np.asarray(ijk, dtype=np.float64).reshape(-1, 3)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_voxel(self, xyz: np.ndarray) -> np.ndarray:
        """Map (N, 3) RAS+ millimetres to (N, 3) fractional voxel indices."""
        xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        inv = np.linalg.inv(self.affine)
        return xyz @ inv[:3, :3].T + inv[:3, 3]

    def with_array(self, array: np.ndarray, source: str | None = None) -> Volume:
        """A volume on the same grid holding ``array`` (for example a label map)."""
        return Volume(array=array, affine=self.affine, source=self.source if source is None else source)


@dataclass(frozen=True)
class Points:
    """Point clicks for one object.

    Args:
        coords: (N, 3) coordinates in ``space`` (see the module docstring).
        labels: (N,) 1 for positive, 0 for negative clicks.
        space: the frame of ``coords``.
    """

    coords: np.ndarray
    labels: np.ndarray
    space: PointSpace = PointSpace.VOXEL

    @classmethod
    def from_lists(
        cls,
        positive: list[tuple[float, float, float]] | None = None,
        negative: list[tuple[float, float, float]] | None = None,
        space: PointSpace | str = PointSpace.VOXEL,
    ) -> Points:
        positive, negative = list(positive or []), list(negative or [])
        coords = np.array(positive + negative, dtype=np.float64).reshape(-1, 3)
        labels = np.array([1] * len(positive) + [0] * len(negative), dtype=np.int64)
        return cls(coords=coords, labels=labels, space=PointSpace(space))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def has_positive(self) -> bool:
        return bool((self.labels == 1).any())

    def to_voxel(self, volume: Volume) -> np.ndarray:
        """(N, 3) coordinates as voxel indices of ``volume``."""
        if self.space is PointSpace.WORLD:
            return volume.world_to_voxel(self.coords)
        return np.asarray(self.coords, dtype=np.float64).reshape(-1, 3)


@dataclass(frozen=True)
class Box:
    """An axis-aligned box, both corners inclusive (SegVol's box prompt).

    Args:
        lower: (i, j, k) smallest corner, in ``space`` (voxel indices or RAS+ mm).
        upper: (i, j, k) largest corner, same frame.
        space: the frame of the corners.
    """

    lower: tuple[float, float, float]
    upper: tuple[float, float, float]
    space: PointSpace = PointSpace.VOXEL

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        """Slices that cut a voxel-space box out of an (I, J, K) array."""
        return tuple(slice(int(lo), int(hi) + 1) for lo, hi in zip(self.lower, self.upper))  # type: ignore[return-value]


@dataclass(frozen=True)
class Prompts:
    """What to segment in one call.

    Args:
        classes: global class indices to segment automatically (VISTA3D ids); empty for none.
        points: clicks; with one class they edit that class's automatic result (Algorithm 1),
            without classes they segment one object interactively (written with value
            :data:`OBJECT_ID`).
        new_structure: clicks without a class mark a structure outside the model's classes:
            VISTA3D then adds its zero-shot embedding to the point head (paper Sec. 3.2, the
            "zero-shot" interactive setting); False uses the embedding of supported classes, as
            the official pipeline does for a point-only prompt.
        box: a box around the object (SegVol).
        text: a free-text class name (SegVol encodes it with CLIP; VISTA3D resolves it through
            the label catalog).
        everything: the model's official "everything" class set (VISTA3D; no other prompt).
        label_value: the value written for a single object (SegVol's object, VISTA3D's object
            from clicks alone); None: the class index the prompts name, else :data:`OBJECT_ID`.
        previous_mask: (I, J, K) bool mask on the volume's grid that the clicks edit (VISTA3D's
            Algorithm 1 with this mask in place of the automatic result: the clicked windows'
            result replaces it around the clicks, it stays elsewhere); None: clicks edit the
            class's automatic result, or segment a new object. Families with the
            ``previous_mask`` capability.
        allow_unlearnt: let class prompts through that the loaded model never learnt (its
            :class:`~voxelprompt.catalog.LearntClasses`); the result then says so in its notes.
            False: such a prompt is a :class:`~voxelprompt.errors.PromptError`.
    """

    classes: tuple[int, ...] = ()
    points: Points | None = None
    new_structure: bool = False
    box: Box | None = None
    text: str | None = None
    everything: bool = False
    label_value: int | None = None
    previous_mask: np.ndarray | None = None
    allow_unlearnt: bool = False
    #: Set by :func:`voxelprompt.request.check_request` only (a copy made by ``dataclasses.replace``
    #: is unchecked again): the family and image grid these
    #: prompts were checked against (segmenters then trust them); not part of equality.
    checked: str | None = field(default=None, init=False, compare=False, repr=False)


@dataclass(frozen=True)
class Segmentation:
    """A label map on the input grid and what produced it.

    Args:
        labels: label volume with the input's shape and affine (uint8 or int16 class indices).
        classes: the class indices that were prompted.
        windows: number of network windows evaluated.
        seconds: wall time of the whole call.
        extras: measurements of the call (e.g. ``click_changed_voxels``: voxels an Algorithm 1
            edit changed in the automatic result).
        notes: sentences for the user about how the prompts were answered (which point
            embedding clicks used, an empty object, ...).
    """

    labels: Volume
    classes: tuple[int, ...]
    windows: int = 0
    seconds: float = 0.0
    extras: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
