"""An easy interactive task: ellipsoids and tubes of varied contrast in noise.

A diagnostic for the interactive (point) branch's training path: every object is a compact blob or
tube that differs from its surroundings only by contrast, so "the region around this click" is all a
model must learn. Half of the objects carry a VISTA3D class id in the label map (prompted with the
supported embedding); the others appear only in a separate object map that doubles as the
``supervoxel`` file of a datalist entry, so stage 1 trains them as zero-shot objects
(:func:`voxelprompt.families.vista3d.training.prompts.supervoxel_objects`).

Shapes come from :mod:`voxelprompt.data.shapes` (the phantom's own), drawn on a :class:`Canvas`
whose canonical frame is the voxel grid in mm (RAS axes, origin at voxel 0).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxelprompt.data.shapes import Canvas, Ellipsoid, Tube, smooth_curve
from voxelprompt.errors import VoxelPromptError

__all__ = ["BlobConfig", "make_blob_case", "write_blob_dataset"]


@dataclass(frozen=True)
class BlobConfig:
    """Settings of one easy-task case.

    Args:
        shape: (X, Y, Z) voxels, RAS axis order.
        spacing: isotropic voxel size in mm.
        objects: (min, max) objects per case (inclusive).
        background_hu: (min, max) of the case's background level in HU.
        noise_hu: standard deviation of the Gaussian noise in HU.
        contrast_hu: (min, max) absolute contrast of an object against the background, in HU;
            the sign is random.
        classes: VISTA3D class ids given to labelled objects.
        seed: random seed of the case.
    """

    shape: tuple[int, int, int] = (64, 64, 64)
    spacing: float = 3.0
    objects: tuple[int, int] = (3, 6)
    background_hu: tuple[float, float] = (-50.0, 50.0)
    noise_hu: float = 25.0
    contrast_hu: tuple[float, float] = (80.0, 400.0)
    classes: tuple[int, ...] = (1, 3, 4, 5, 6)
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.shape) != 3 or min(self.shape) < 16:
            raise ValueError(f"shape must be three sizes >= 16, got {self.shape}")
        if not 1 <= self.objects[0] <= self.objects[1]:
            raise ValueError(f"objects must be (min, max) with 1 <= min <= max, got {self.objects}")


def _shape(rng: np.random.Generator, extent: np.ndarray) -> Ellipsoid | Tube:
    centre = rng.uniform(0.2, 0.8, 3) * extent
    size = float(extent.min())
    if rng.random() < 0.6:
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        return Ellipsoid(center=centre, radii=rng.uniform(0.06, 0.17, 3) * size, rot=q)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    half = rng.uniform(0.12, 0.27) * size
    bend = rng.normal(scale=0.05 * size, size=3)
    points = np.stack([centre - half * direction, centre + bend, centre + half * direction])
    line = smooth_curve(points, step=max(1.0, 0.03 * size))
    return Tube(points=line, radii=np.full(len(line), rng.uniform(0.03, 0.06) * size))


def make_blob_case(config: BlobConfig = BlobConfig()) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One case of the easy task.

    Returns:
        ``(image, labels, objects, affine)``: image [X, Y, Z] float32 HU; labels [X, Y, Z] int16
        VISTA3D class ids of the labelled objects (0 elsewhere); objects [X, Y, Z] int16 ids 1..n of
        the unlabelled (zero-shot) objects; affine (4, 4) voxel -> RAS mm. Later objects overwrite
        earlier ones where they overlap.
    """
    rng = np.random.default_rng(config.seed)
    extent = np.asarray(config.shape, dtype=np.float64) * config.spacing
    canvas = Canvas(config.shape, tuple(np.arange(n) * config.spacing for n in config.shape))
    canvas.image[:] = rng.uniform(*config.background_hu)
    n = int(rng.integers(config.objects[0], config.objects[1] + 1))
    kinds = []
    for k in range(n):
        contrast = float(rng.choice([-1.0, 1.0]) * rng.uniform(*config.contrast_hu))
        shape = _shape(rng, extent)
        found = canvas.depth(shape)
        if found is None:
            continue
        slices, _, depth = found
        canvas.image[slices][depth > 0] += contrast
        canvas.labels[slices][depth > 0] = k + 1  # instance ids first; split below
        kinds.append(int(rng.choice(config.classes)) if k % 2 == 0 else 0)
    instances = canvas.labels.astype(np.int16)
    labels = np.zeros(config.shape, np.int16)
    objects = np.zeros(config.shape, np.int16)
    novel = 0
    for k, cls in enumerate(kinds, start=1):
        mask = instances == k
        if cls:
            labels[mask] = cls
        elif mask.any():
            novel += 1
            objects[mask] = novel
    image = canvas.image + rng.normal(0.0, config.noise_hu, config.shape).astype(np.float32)
    affine = np.diag([config.spacing] * 3 + [1.0])
    return image.astype(np.float32), labels, objects, affine


def write_blob_dataset(out_dir: str | Path, n: int, config: BlobConfig = BlobConfig(), seed0: int = 0) -> Path:
    """Write ``n`` easy-task cases as NIfTI (``image``, ``label`` and the zero-shot object map as
    ``supervoxel``) and a MONAI-style datalist; returns the datalist's path (``out_dir/datalist.json``,
    every entry in ``training``, dataset name ``blobs``). Case ``i`` uses seed ``seed0 + i``.
    """
    import nibabel as nib

    if n < 1:
        raise VoxelPromptError(f"number of cases must be >= 1, got {n}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for i in range(n):
        image, labels, objects, affine = make_blob_case(dataclasses.replace(config, seed=seed0 + i))
        entry = {"dataset": "blobs"}
        for key, array in (("image", image), ("label", labels), ("supervoxel", objects)):
            name = f"{key}_{seed0 + i:04d}.nii.gz"
            nifti = nib.Nifti1Image(array, affine)
            nifti.set_qform(affine, code=1)
            nib.save(nifti, str(out / name))
            entry[key] = name
        entries.append(entry)
    path = out / "datalist.json"
    path.write_text(json.dumps({"training": entries, "validation": []}, indent=1) + "\n")
    return path
