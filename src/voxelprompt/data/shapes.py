"""Implicit shapes and the voxel canvas the phantom is painted on.

Every shape reports a *depth* in millimetres (positive inside, roughly the distance to its surface)
over the axis-aligned box it occupies, so organs are rasterised in their bounding boxes only.
Coordinates here are the phantom's canonical body frame: RAS+ millimetres before the per-case
body scaling and shift (see :class:`Canvas`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Canvas", "Ellipsoid", "Tube", "Paint", "smooth_curve", "rotation"]

_EPS = 1e-6


def rotation(rx: float = 0.0, ry: float = 0.0, rz: float = 0.0) -> np.ndarray:
    """(3, 3) rotation matrix from angles in degrees about x, then y, then z (applied as Rz Ry Rx)."""
    ax, ay, az = np.deg2rad([rx, ry, rz])
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return mz @ my @ mx


def smooth_curve(points: np.ndarray, step: float = 6.0) -> np.ndarray:
    """Resample control points (N, 3) into a Catmull-Rom curve with about ``step`` mm between points."""
    p = np.asarray(points, dtype=np.float64)
    if len(p) < 3:
        n = max(2, int(np.ceil(np.linalg.norm(p[-1] - p[0]) / step)) + 1)
        return p[0] + np.linspace(0.0, 1.0, n)[:, None] * (p[-1] - p[0])
    ext = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    out = [p[:1]]
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        n = max(2, int(np.ceil(np.linalg.norm(p2 - p1) / step)))
        t = np.linspace(0.0, 1.0, n + 1)[1:, None]
        out.append(
            0.5
            * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)
        )
    return np.vstack(out)


@dataclass(frozen=True)
class Ellipsoid:
    """A superellipsoid, optionally rotated and warped by low-order sine harmonics.

    Args:
        center: (3,) mm.
        radii: (3,) semi-axes in mm along the shape's own axes.
        rot: (3, 3) rotation from the shape's axes to the body frame (columns are its axes).
        exponent: 2 for an ellipsoid, larger for boxier shapes.
        warp: (n, 7) rows ``(kx, ky, kz, phase, ax, ay, az)``: the normalised local coordinate u is
            displaced by ``a * sin(k . u + phase)`` before the implicit test.
    """

    center: np.ndarray
    radii: np.ndarray
    rot: np.ndarray | None = None
    exponent: float = 2.0
    warp: np.ndarray | None = None

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        rot = np.eye(3) if self.rot is None else self.rot
        grow = 1.0 + (0.0 if self.warp is None else float(np.abs(self.warp[:, 4:]).sum(0).max()))
        # The rotated box of the local cube [-r, r]^3 bounds every exponent.
        half = np.abs(rot) @ np.asarray(self.radii, dtype=np.float64) * grow
        return np.asarray(self.center) - half, np.asarray(self.center) + half

    def depth(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        c = np.asarray(self.center, dtype=np.float32)
        dx, dy, dz = x - c[0], y - c[1], z - c[2]
        r = np.asarray(self.radii, dtype=np.float32)
        if self.rot is None:
            u = [dx / r[0], dy / r[1], dz / r[2]]
        else:
            m = np.asarray(self.rot, dtype=np.float32)
            u = [(m[0, i] * dx + m[1, i] * dy + m[2, i] * dz) / r[i] for i in range(3)]
        if self.warp is not None:
            for kx, ky, kz, ph, ax, ay, az in np.asarray(self.warp, dtype=np.float32):
                s = np.sin(kx * u[0] + ky * u[1] + kz * u[2] + ph)
                u = [u[0] + ax * s, u[1] + ay * s, u[2] + az * s]
        p = self.exponent
        if p == 2.0:
            rho = np.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2)
        else:
            rho = (np.abs(u[0]) ** p + np.abs(u[1]) ** p + np.abs(u[2]) ** p) ** (1.0 / p)
        dist = np.sqrt(dx**2 + dy**2 + dz**2)
        # Distance to the surface along the ray from the centre: exact for spheres, close enough
        # for walls and cortices a few millimetres thick.
        return dist * (1.0 - rho) / np.maximum(rho, _EPS)


@dataclass(frozen=True)
class Tube:
    """A tube of varying radius around a polyline (vessels, airways, bowel, pancreas).

    Args:
        points: (N, 3) centreline in mm, densely sampled (see :func:`smooth_curve`).
        radii: (N,) radius in mm at each point.
    """

    points: np.ndarray
    radii: np.ndarray

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        r = np.asarray(self.radii)[:, None]
        return (self.points - r).min(0), (self.points + r).max(0)

    def segments(self) -> list[tuple[np.ndarray, np.ndarray, float, float]]:
        p, r = np.asarray(self.points, dtype=np.float64), np.asarray(self.radii, dtype=np.float64)
        return [(p[i], p[i + 1], float(r[i]), float(r[i + 1])) for i in range(len(p) - 1)]


def _segment_depth(x, y, z, a: np.ndarray, b: np.ndarray, ra: float, rb: float) -> np.ndarray:
    ab = (b - a).astype(np.float32)
    length2 = float(ab @ ab) + _EPS
    dx, dy, dz = x - np.float32(a[0]), y - np.float32(a[1]), z - np.float32(a[2])
    t = np.clip((dx * ab[0] + dy * ab[1] + dz * ab[2]) / length2, 0.0, 1.0)
    ex, ey, ez = dx - t * ab[0], dy - t * ab[1], dz - t * ab[2]
    return (ra + t * (rb - ra)) - np.sqrt(ex * ex + ey * ey + ez * ez)


HU = float | Callable[..., np.ndarray]


@dataclass(frozen=True)
class Paint:
    """One painting step: where ``shape`` has positive depth, write ``label`` and ``hu``.

    Args:
        shape: an :class:`Ellipsoid` or :class:`Tube`.
        label: VISTA3D class index, 0 for unlabelled tissue (fat, muscle, discs).
        hu: Hounsfield value, or ``f(depth, x, y, z) -> hu`` evaluated on the painted voxels only.
        only_in: paint only over voxels already holding one of these labels (lesions, vessels in
            an organ).
        where: ``f(x, y, z) -> bool`` extra constraint on broadcast coordinates (the diaphragm).
        wall: ``(thickness_mm, hu)`` for a shell of different density (bowel, bladder).
        keep_label: paint density only, leaving labels as they are (fat at a kidney's hilum).
    """

    shape: Ellipsoid | Tube
    label: int
    hu: HU
    only_in: tuple[int, ...] | None = None
    where: Callable[..., np.ndarray] | None = None
    wall: tuple[float, float] | None = None
    keep_label: bool = False

    def render(self, canvas: Canvas) -> None:
        canvas.paint(self)


class Canvas:
    """Image (float32 HU) and label (uint8) arrays with the canonical coordinate of every voxel.

    Args:
        shape: (I, J, K) voxels, RAS axis order (i to the Right, j Anterior, k Superior).
        axes: three increasing 1D arrays, the canonical body-frame mm coordinate of each index
            along i, j, k.
    """

    def __init__(self, shape: tuple[int, int, int], axes: tuple[np.ndarray, ...]):
        self.shape = shape
        self.axes = tuple(np.asarray(a, dtype=np.float32) for a in axes)
        self.image = np.full(shape, -1000.0, dtype=np.float32)
        self.labels = np.zeros(shape, dtype=np.uint8)

    def box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[tuple[slice, ...], tuple[np.ndarray, ...]] | None:
        """Index slices and broadcastable (x, y, z) coordinates of the voxels inside ``[lo, hi]`` mm."""
        slices, coords = [], []
        for d, a in enumerate(self.axes):
            i0 = int(np.searchsorted(a, lo[d], side="left"))
            i1 = int(np.searchsorted(a, hi[d], side="right"))
            if i1 <= i0:
                return None
            slices.append(slice(i0, i1))
            shape = [1, 1, 1]
            shape[d] = i1 - i0
            coords.append(a[i0:i1].reshape(shape))
        return tuple(slices), tuple(coords)

    def depth(self, shape: Ellipsoid | Tube) -> tuple[tuple[slice, ...], tuple[np.ndarray, ...], np.ndarray] | None:
        """Depth of ``shape`` over its bounding box: (slices, coords, depth mm); None if outside."""
        lo, hi = shape.bounds
        found = self.box(lo, hi)
        if found is None:
            return None
        slices, (x, y, z) = found
        if isinstance(shape, Ellipsoid):
            return slices, (x, y, z), shape.depth(x, y, z)
        out = np.full(tuple(s.stop - s.start for s in slices), -1e3, dtype=np.float32)
        for a, b, ra, rb in shape.segments():
            r = max(ra, rb)
            sub = self.box(np.maximum(np.minimum(a, b) - r, lo), np.minimum(np.maximum(a, b) + r, hi))
            if sub is None:
                continue
            (si, sj, sk), (sx, sy, sz) = sub
            local = (
                slice(si.start - slices[0].start, si.stop - slices[0].start),
                slice(sj.start - slices[1].start, sj.stop - slices[1].start),
                slice(sk.start - slices[2].start, sk.stop - slices[2].start),
            )
            np.maximum(out[local], _segment_depth(sx, sy, sz, a, b, ra, rb), out=out[local])
        return slices, (x, y, z), out

    def paint(self, op: Paint) -> np.ndarray | None:
        """Apply one :class:`Paint`; returns the painted mask over the shape's box (or None)."""
        found = self.depth(op.shape)
        if found is None:
            return None
        slices, (x, y, z), depth = found
        mask = depth > 0
        if op.where is not None:
            mask &= op.where(x, y, z)
        labels = self.labels[slices]
        if op.only_in is not None:
            mask &= np.isin(labels, op.only_in)
        if not mask.any():
            return mask
        image = self.image[slices]
        if callable(op.hu):
            full = mask.shape
            d = depth[mask]
            hu = op.hu(
                d, np.broadcast_to(x, full)[mask], np.broadcast_to(y, full)[mask], np.broadcast_to(z, full)[mask]
            )
            image[mask] = hu
        else:
            image[mask] = op.hu
        if op.wall is not None:
            thickness, wall_hu = op.wall
            # No wall where the step overlaps an earlier piece of the same organ (stomach tube + fundus).
            image[mask & (depth < thickness) & (labels != op.label)] = wall_hu
        if not op.keep_label:
            labels[mask] = op.label
        return mask
