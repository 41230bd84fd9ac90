"""Procedural, seeded CT phantoms of the trunk: Hounsfield image + VISTA3D label map.

Anatomy is fixed in millimetres, so any grid shape and spacing shows the same body; every random
choice comes from ``np.random.default_rng`` streams spawned from the seed.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxelprompt.data.anatomy import soft_tissue
from voxelprompt.data.body import SUBCUTANEOUS, Diaphragm, Jitter, Trunk, tissue_hu
from voxelprompt.data.shapes import Canvas, Ellipsoid, Paint
from voxelprompt.data.skeleton import skeleton, spine_y
from voxelprompt.errors import VoxelPromptError
from voxelprompt.types import Volume

__all__ = ["ContrastPhase", "PhantomConfig", "make_phantom", "resolve_phase", "write_phantom_dataset", "LESION_CLASSES"]

logger = logging.getLogger(__name__)

#: Lesion class -> host classes it is painted inside: hepatic tumour, lung nodule (VISTA3D's "lung
#: tumor"), left and right kidney cyst. 23 and 26 are outside VISTA3D's automatic "everything" set.
LESION_CLASSES = {26: (1, 25), 23: (28, 29, 30, 31, 32), 116: (14,), 117: (5,)}
DEFAULT_FOV_MM = (400.0, 400.0, 640.0)


class ContrastPhase(str, enum.Enum):
    """Contrast phase; ``RANDOM`` draws one of the other three from the seed."""

    NON_CONTRAST = "non-contrast"
    ARTERIAL = "arterial"
    PORTAL_VENOUS = "portal-venous"
    RANDOM = "random"


@dataclass(frozen=True)
class PhantomConfig:
    """What to generate.

    Args:
        shape: (I, J, K) voxels.
        spacing: (3,) mm per voxel along i, j, k; ``None`` fits :data:`DEFAULT_FOV_MM` (trunk
            from the pelvis to the lung apices).
        center: RAS+ mm point of the anatomy frame at the volume centre; (0, 0, 0) is mid-abdomen
            near the T12/L1 disc, z = -260 the bladder, z = +200 the carina, z = +330 the lung apex.
        seed: seeds the anatomy, lesions, phase draw and noise streams.
        phase: contrast phase (a :class:`ContrastPhase` or its value).
        lesions: add one or two hepatic tumours (26), a lung nodule (23) and a kidney cyst (116 left /
            117 right); they change no other voxel, so a case with and without lesions match elsewhere.
        noise_hu: standard deviation of the (spatially correlated) image noise in HU.
        blur_mm: Gaussian sigma of the scanner blur in mm; 0 keeps edges sharp.
        orientation: axis codes of the output arrays, such as ``"RAS"`` or ``"LPS"``.
    """

    shape: tuple[int, int, int] = (128, 128, 128)
    spacing: tuple[float, float, float] | None = None
    center: tuple[float, float, float] = (0.0, 0.0, 10.0)
    seed: int = 0
    phase: ContrastPhase | str = ContrastPhase.PORTAL_VENOUS
    lesions: bool = True
    noise_hu: float = 12.0
    blur_mm: float = 0.6
    orientation: str = "RAS"

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != 3 or min(shape) < 1:
            raise VoxelPromptError(f"phantom shape must be three positive integers, got {self.shape}")
        object.__setattr__(self, "shape", shape)
        if self.spacing is not None:
            spacing = tuple(float(s) for s in self.spacing)
            if len(spacing) != 3 or not all(np.isfinite(spacing)) or min(spacing) <= 0:
                raise VoxelPromptError(f"phantom spacing must be three positive mm values, got {self.spacing}")
            object.__setattr__(self, "spacing", spacing)
        center = tuple(float(c) for c in self.center)
        if len(center) != 3 or not all(np.isfinite(center)):
            raise VoxelPromptError(f"phantom center must be three finite mm values, got {self.center}")
        object.__setattr__(self, "center", center)
        if int(self.seed) != self.seed or self.seed < 0:
            raise VoxelPromptError(f"seed must be a non-negative integer, got {self.seed}")
        try:
            object.__setattr__(self, "phase", ContrastPhase(self.phase))
        except ValueError:
            raise VoxelPromptError(
                f"phase must be one of {[p.value for p in ContrastPhase]}, got {self.phase!r}"
            ) from None
        if not (np.isfinite(self.noise_hu) and self.noise_hu >= 0):
            raise VoxelPromptError(f"noise_hu must be >= 0, got {self.noise_hu}")
        if not (np.isfinite(self.blur_mm) and self.blur_mm >= 0):
            raise VoxelPromptError(f"blur_mm must be >= 0, got {self.blur_mm}")
        codes = str(self.orientation).upper()
        if len(codes) != 3 or sorted(codes.translate(str.maketrans("LPI", "RAS"))) != ["A", "R", "S"]:
            raise VoxelPromptError(
                f"orientation must be three axis codes such as 'RAS' or 'LPS', got {self.orientation!r}"
            )
        object.__setattr__(self, "orientation", codes)

    @property
    def voxel_mm(self) -> tuple[float, float, float]:
        """The spacing in use (``spacing`` or the default field of view divided by ``shape``)."""
        if self.spacing is not None:
            return self.spacing  # type: ignore[return-value]
        return tuple(f / s for f, s in zip(DEFAULT_FOV_MM, self.shape, strict=True))  # type: ignore[return-value]


def make_phantom(config: PhantomConfig) -> tuple[Volume, Volume]:
    """Generate one case.

    Returns:
        ``(image, labels)``: int16 Hounsfield units and uint8 VISTA3D class indices, (I, J, K)
        arrays on the same grid, affine voxel -> RAS+ mm (see :mod:`voxelprompt.types`).
    """
    anatomy_ss, lesion_ss, _, noise_ss = np.random.SeedSequence(config.seed).spawn(4)
    phase = resolve_phase(config)
    hu = tissue_hu(phase.value)

    rng = np.random.default_rng(anatomy_ss)
    scale = rng.uniform([0.92, 0.92, 0.95], [1.08, 1.08, 1.05])
    shift = rng.normal(0.0, [5.0, 5.0, 8.0])
    jitter = Jitter(rng)
    dia = Diaphragm(float(rng.normal(95, 6)), float(rng.normal(86, 6)))
    trunk = Trunk(rng, hu, dia)
    soft = soft_tissue(jitter, hu, dia, spine_y)
    bones = skeleton(jitter, hu, trunk)
    lesions = _lesions(np.random.default_rng(lesion_ss), hu, dia, trunk, soft["organs"])

    spacing = np.array(config.voxel_mm)
    shape = config.shape
    world_axes = [config.center[d] + (np.arange(shape[d]) - 0.5 * (shape[d] - 1)) * spacing[d] for d in range(3)]
    # The canvas holds canonical coordinates: the per-case body scale and shift move the anatomy,
    # never the grid, so any shape and spacing sample the same body.
    canvas = Canvas(shape, tuple((world_axes[d] - shift[d]) / scale[d] for d in range(3)))
    # Later steps overwrite earlier ones: body, muscles, organs, vessels, bowel, bones, lesions.
    steps = [trunk, *soft["muscles"], *soft["heart"], *soft["organs"], *soft["gut_upper"], *soft["vessels"]]
    steps += [*soft["mediastinum"], *soft["lung_vessels"], *soft["gut_lower"], *bones]
    steps += lesions if config.lesions else []
    for step in steps:
        step.render(canvas)

    image = _finish(canvas.image, spacing, config, np.random.default_rng(noise_ss))
    labels = canvas.labels
    labels[labels >= SUBCUTANEOUS] = 0
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = [w[0] for w in world_axes]
    if config.orientation != "RAS":
        image, labels, affine = _reorient(image, labels, affine, config.orientation)
    source = f"phantom(seed={config.seed}, phase={phase.value})"
    return Volume(image, affine, source), Volume(labels, affine, source + " labels")


def resolve_phase(config: PhantomConfig) -> ContrastPhase:
    """The contrast phase a case is generated in (``RANDOM`` drawn from the config's seed)."""
    if config.phase is not ContrastPhase.RANDOM:
        return config.phase  # type: ignore[return-value]
    phase_ss = np.random.SeedSequence(config.seed).spawn(4)[2]
    choices = [ContrastPhase.NON_CONTRAST, ContrastPhase.ARTERIAL, ContrastPhase.PORTAL_VENOUS]
    return choices[int(np.random.default_rng(phase_ss).integers(3))]


def _lesions(
    rng: np.random.Generator, hu: dict[str, float], dia: Diaphragm, trunk: Trunk, organs: list[Paint]
) -> list[Paint]:
    """One or two hepatic tumours, a lung nodule and a kidney cyst, each centred well inside its
    (analytic) host organ and painted only over the host's voxels (see :data:`LESION_CLASSES`)."""
    liver = organs[0].shape
    kidneys = {op.label: op.shape for op in organs if op.label in (5, 14)}
    return [*_liver_tumors(rng, hu, dia, liver), *_lung_nodule(rng, hu, dia, trunk), _kidney_cyst(rng, hu, kidneys)]


def _warp(rng: np.random.Generator, n: int, k: float, amp: float) -> np.ndarray:
    return np.hstack([rng.normal(size=(n, 3)) * k, rng.uniform(0, 2 * np.pi, (n, 1)), rng.normal(0, amp, (n, 3))])


def _at(p: np.ndarray) -> tuple[np.ndarray, ...]:
    """A point as three 1-element coordinate arrays, for the shapes' vectorised depth functions."""
    return tuple(np.array([v], dtype=np.float32) for v in p)


def _liver_tumors(rng: np.random.Generator, hu: dict[str, float], dia: Diaphragm, liver: Ellipsoid) -> list[Paint]:
    ops, wanted = [], int(rng.integers(1, 3))
    for _ in range(200):
        if len(ops) == wanted:
            break
        radius = float(rng.uniform(8.0, 20.0))
        p = liver.center + liver.rot @ (rng.uniform(-0.65, 0.65, 3) * liver.radii)
        if liver.depth(*_at(p))[0] < radius + 4.0 or p[2] > dia(p[0], p[1]) - radius - 6.0:
            continue
        rot = np.linalg.qr(rng.normal(size=(3, 3)))[0]
        shape = Ellipsoid(p, radius * rng.uniform(0.8, 1.15, 3), rot, 2.0, _warp(rng, 3, 2.0, 0.08))
        ops.append(Paint(shape, 26, hu["liver_tumor"], only_in=LESION_CLASSES[26]))
    return ops


def _lung_nodule(rng: np.random.Generator, hu: dict[str, float], dia: Diaphragm, trunk: Trunk) -> list[Paint]:
    for _ in range(200):
        radius = float(rng.uniform(5.0, 12.0))
        p = rng.uniform([-110.0, -60.0, 60.0], [110.0, 50.0, 270.0])
        depth, _, wall = trunk.layers(*_at(p))
        clear_of_mediastinum = abs(p[0]) > 30.0 + radius and (abs(p[0]) > 70.0 or p[2] > 210.0)
        inside_chest = depth[0] - wall[0] > radius + 8.0
        if clear_of_mediastinum and inside_chest and dia(p[0], p[1]) + radius + 8.0 < p[2] < trunk.apex(p[0]) - 20.0:
            nodule = Ellipsoid(p, radius * rng.uniform(0.85, 1.15, 3), None, 2.0, _warp(rng, 2, 3.0, 0.1))
            return [Paint(nodule, 23, hu["lung_nodule"], only_in=LESION_CLASSES[23])]
    return []


def _kidney_cyst(rng: np.random.Generator, hu: dict[str, float], kidneys: dict[int, Ellipsoid]) -> Paint:
    host = 5 if rng.integers(2) else 14
    kidney = kidneys[host]
    direction = rng.normal(size=3)
    p = kidney.center + kidney.rot @ (direction / np.linalg.norm(direction) * rng.uniform(0.2, 0.5) * kidney.radii)
    cyst = Ellipsoid(p, np.full(3, float(rng.uniform(6.0, 12.0))))
    return Paint(cyst, 117 if host == 5 else 116, hu["kidney_cyst"], only_in=(host,))


def _finish(image: np.ndarray, spacing: np.ndarray, config: PhantomConfig, rng: np.random.Generator) -> np.ndarray:
    """Add correlated noise and scanner blur, then round to int16 HU in [-1024, 3071]."""
    from scipy import ndimage

    sigma = config.blur_mm / spacing if config.blur_mm > 0 else np.zeros(3)
    # Noise is added before the blur; scale it so its standard deviation after the blur is noise_hu.
    gain = 1.0
    for s in sigma:
        if s > 0:
            delta = np.zeros(64)
            delta[32] = 1.0
            gain *= float(np.sqrt((ndimage.gaussian_filter1d(delta, s) ** 2).sum()))
    std = np.float32(config.noise_hu / gain)
    slab = max(1, int(2**24 // (image.shape[0] * image.shape[1])))
    if config.noise_hu > 0:
        for k0 in range(0, image.shape[2], slab):
            block = image[:, :, k0 : k0 + slab]
            block += rng.standard_normal(block.shape, dtype=np.float32) * std
    if sigma.any():
        image = ndimage.gaussian_filter(image, sigma, output=np.float32, truncate=3.0)
    out = np.empty(image.shape, dtype=np.int16)
    for k0 in range(0, image.shape[2], slab):
        out[:, :, k0 : k0 + slab] = np.clip(np.rint(image[:, :, k0 : k0 + slab]), -1024, 3071)
    return out


def _reorient(image, labels, affine, codes: str):
    import nibabel as nib

    transform = nib.orientations.ornt_transform(
        nib.orientations.axcodes2ornt("RAS"), nib.orientations.axcodes2ornt(tuple(codes))
    )
    new_affine = affine @ nib.orientations.inv_ornt_aff(transform, image.shape)
    reorder = lambda a: np.ascontiguousarray(nib.orientations.apply_orientation(a, transform))  # noqa: E731
    return reorder(image), reorder(labels), new_affine


def write_phantom_dataset(
    out_dir: str | Path, n: int, config: PhantomConfig | None = None, seed0: int = 0, n_validation: int = 0
) -> Path:
    """Write ``n`` cases as NIfTI files and a MONAI-style datalist; returns the datalist's path.

    Layout: ``out_dir/images/phantom_0000.nii.gz``, ``out_dir/labels/phantom_0000.nii.gz`` and
    ``out_dir/datalist.json`` with ``{"training": [...], "validation": [...]}`` entries holding
    ``image``/``label`` paths relative to ``out_dir``. Case ``i`` uses seed ``seed0 + i``; the last
    ``n_validation`` cases go to ``"validation"``.
    """
    import nibabel as nib

    if n < 1:
        raise VoxelPromptError(f"number of phantom cases must be >= 1, got {n}")
    if not 0 <= n_validation <= n:
        raise VoxelPromptError(f"n_validation must be in [0, {n}], got {n_validation}")
    config = config or PhantomConfig()
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    entries = []
    for i in range(n):
        case = dataclasses.replace(config, seed=seed0 + i)
        image, labels = make_phantom(case)
        name = f"phantom_{seed0 + i:04d}.nii.gz"
        for folder, volume in (("images", image), ("labels", labels)):
            nifti = nib.Nifti1Image(volume.array, volume.affine)
            nifti.set_qform(volume.affine, code=1)
            nifti.set_sform(volume.affine, code=1)
            nifti.header.set_xyzt_units("mm", "sec")
            _atomic(out / folder / name, lambda tmp, img=nifti: nib.save(img, tmp))
        entries.append(
            {
                "image": f"images/{name}",
                "label": f"labels/{name}",
                "dataset": "phantom",
                "seed": case.seed,
                "phase": resolve_phase(case).value,
            }
        )
        logger.info("phantom %d/%d written: %s", i + 1, n, out / "images" / name)
    split = n - n_validation
    datalist = {"training": entries[:split], "validation": entries[split:]}
    path = out / "datalist.json"
    _atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(datalist, indent=2) + "\n"))
    return path


def _atomic(path: Path, write) -> None:
    """Write through a temporary sibling (same suffixes, so nibabel picks the format) and rename."""
    tmp = path.with_name(f".{path.name.split('.')[0]}.{os.getpid()}.tmp{''.join(path.suffixes)}")
    try:
        write(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
