"""The phantom's skeleton: vertebrae L5..C3 with discs and spinal canal, ribs, sternum, pelvis.

Positions are in the canonical body frame of :mod:`voxelprompt.data.body`.
"""

from __future__ import annotations

import numpy as np

from voxelprompt.data.body import Jitter, Trunk
from voxelprompt.data.shapes import Ellipsoid, Paint, Tube, rotation, smooth_curve

__all__ = ["VERTEBRAE", "spine_y", "skeleton"]

# (name, VISTA3D id, body height mm, disc below mm, half-width, half-depth), from the bottom up.
VERTEBRAE = (
    [
        ("L5", 33, 27, 0, 25, 18),
        ("L4", 34, 27, 9, 25, 18),
        ("L3", 35, 27, 9, 24, 18),
        ("L2", 36, 27, 9, 23, 17),
        ("L1", 37, 26, 9, 22, 17),
    ]
    + [
        (f"T{n}", 38 + (12 - n), 16 + 7 * (n - 1) / 11, 4 + (n - 1) / 11, 15 + 6 * (n - 1) / 11, 12 + 4 * (n - 1) / 11)
        for n in range(12, 0, -1)
    ]
    + [(f"C{n}", 50 + (7 - n), 13, 4, 14, 10) for n in range(7, 2, -1)]
)
_L5_BOTTOM = -178.0


def spine_y(z):
    """Anterior-posterior position (mm) of the vertebral body centres at height z (lordosis, kyphosis)."""
    return np.interp(z, [-320, -178, -60, 60, 200, 300, 420], [-92, -32, -28, -42, -50, -40, -20])


def _cortical(hu: dict[str, float], shell: float = 1.8):
    return lambda d, x, y, z: np.where(d < shell, hu["cortical_bone"], hu["marrow"])


def skeleton(j: Jitter, hu: dict[str, float], trunk: Trunk) -> list[Paint]:
    """Paint steps for the spine, ribs, costal cartilage, sternum, sacrum, hips and femoral heads."""
    ops: list[Paint] = []
    bone = _cortical(hu)
    posterior_hu = 0.5 * (hu["cortical_bone"] + hu["marrow"])
    levels, z = [], _L5_BOTTOM
    for name, label, height, disc, rx, ry in VERTEBRAE:
        z += disc
        h = height * float(j.rng.uniform(0.96, 1.04))
        levels.append((name, label, z, z + h, rx, ry, disc))
        z += h

    zs = np.linspace(-200, 420, 32)
    canal_r = np.interp(zs, [-200, 0, 300, 420], [8, 8, 7, 7.5])
    canal_y = [
        spine_y(v) - np.interp(v, [-200, 0, 300], [18, 17, 13]) - r + 1 for v, r in zip(zs, canal_r, strict=True)
    ]
    canal_curve = smooth_curve(np.column_stack([np.zeros_like(zs), canal_y, zs]), 6.0)
    canal = Tube(canal_curve, np.interp(canal_curve[:, 2], zs, canal_r))
    cord = canal_curve[canal_curve[:, 2] > -25]
    ops += [Paint(canal, 0, hu["csf"]), Paint(Tube(cord, np.full(len(cord), 4.5)), 121, hu["cord"])]

    for (_, _, _, z1, rx, ry, _), (_, _, n0, _, nrx, nry, disc) in zip(levels[:-1], levels[1:], strict=True):
        yc = spine_y(0.5 * (z1 + n0))
        ops.append(
            Paint(
                Ellipsoid(
                    np.array([0.0, yc, 0.5 * (z1 + n0)]),
                    np.array([min(rx, nrx), min(ry, nry), 0.5 * disc + 1.0]),
                    None,
                    3.0,
                ),
                0,
                hu["disc"],
            )
        )

    for name, label, z0, z1, rx, ry, _ in levels:
        zc, h, yv = 0.5 * (z0 + z1), z1 - z0, float(spine_y(0.5 * (z0 + z1)))
        rc = float(np.interp(zc, [-200, 0, 300], [8, 8, 7]))
        yc = yv - ry - rc + 1.0
        kind = name[0]
        spin_len, spin_tilt, tp_len = {"L": (30, 12, 30), "T": (30, 45, 24), "C": (20, 20, 12)}[kind]
        parts = [
            Paint(Ellipsoid(np.array([0.0, yv, zc]), np.array([rx, ry, 0.5 * h]), None, 3.0), label, bone),
            *(
                Paint(
                    Ellipsoid(np.array([s * (rc + 2.5), yv - ry - 0.4 * rc, zc]), np.array([3.5, 0.8 * rc, 0.3 * h])),
                    label,
                    posterior_hu,
                )
                for s in (-1, 1)
            ),
        ]
        arc = np.linspace(np.pi * 1.1, np.pi * 1.9, 9)
        lamina = np.column_stack([(rc + 3.0) * np.cos(arc), yc + (rc + 3.0) * np.sin(arc), np.full(9, zc)])
        parts.append(Paint(Tube(lamina, np.full(9, 3.2)), label, posterior_hu))
        spine_c = np.array(
            [
                0.0,
                yc - rc - 0.5 * spin_len * np.cos(np.deg2rad(spin_tilt)),
                zc - 0.5 * spin_len * np.sin(np.deg2rad(spin_tilt)),
            ]
        )
        parts.append(
            Paint(
                Ellipsoid(spine_c, np.array([3.0, 0.5 * spin_len, 0.22 * h]), rotation(rx=-spin_tilt)),
                label,
                posterior_hu,
            )
        )
        for s in (-1, 1):
            c = np.array([s * (rc + 0.5 * tp_len), yc + 2.0, zc])
            parts.append(
                Paint(Ellipsoid(c, np.array([0.5 * tp_len, 4.5, 0.18 * h]), rotation(rz=s * 20)), label, posterior_hu)
            )
        ops += parts

    ops += _ribs(j, hu, trunk, {name: lvl for name, *lvl in levels})
    ops += _pelvis(j, hu)
    return ops


_RIB_END = (0.62, 0.72, 0.8, 0.83, 0.85, 0.85, 0.85, 0.8, 0.75, 0.7, 0.55, 0.42)


def _chest_point(trunk: Trunk, side: int, theta: float, z: float, inset: float) -> np.ndarray:
    """Point at angle theta (0 posterior, pi anterior) on the body wall, ``inset`` mm inside the skin."""
    a, ant, post, fat, muscle = (float(v) for v in trunk.profile(z))
    dx, dy = side * np.sin(theta), -np.cos(theta)
    b = ant if dy > 0 else post
    radius = 1.0 / np.sqrt((dx / a) ** 2 + (dy / b) ** 2)
    if dy < 0:
        radius = min(radius, 0.93 * post / -dy)
    wall = 2.0 + fat * (1.0 + 0.5 * np.clip(dy * radius / b, -1, 1)) + inset
    return np.array([dx * (radius - wall), dy * (radius - wall), z])


def _ribs(j: Jitter, hu: dict[str, float], trunk: Trunk, levels: dict) -> list[Paint]:
    ops = []
    rib_hu = _cortical(hu, 1.4)
    sternum_pts = []
    for k in range(1, 13):
        _, z0, z1, rx, ry, _ = levels[f"T{k}"]
        z_head = 0.5 * (z0 + z1) + 0.25 * (z1 - z0)
        tilt = float(np.interp(k, [1, 4, 8, 12], [0.15, 0.35, 0.42, 0.3])) * float(j.rng.uniform(0.9, 1.1))
        end = _RIB_END[k - 1] * np.pi * float(j.rng.uniform(0.97, 1.03))
        for side, label in ((-1, 62 + k), (1, 74 + k)):
            yv = float(spine_y(z_head))
            muscle = float(trunk.profile(z_head)[4])
            thetas = np.linspace(0.17 * np.pi, end, 14)
            pts = [_chest_point(trunk, side, t, z_head, muscle - 8.0) for t in thetas]
            y_start = pts[0][1]
            for p in pts:
                p[2] = z_head - tilt * (p[1] - y_start)
            head = np.array([side * (rx + 3.0), yv - 0.6 * ry, z_head])
            curve = smooth_curve(np.vstack([head, *pts]), 5.0)
            radius = float(np.interp(k, [1, 6, 12], [3.6, 4.6, 3.8]))
            ops.append(Paint(Tube(curve, np.full(len(curve), radius)), label, rib_hu))
            if k <= 7:
                cart = [_chest_point(trunk, side, t, z_head, muscle - 8.0) for t in np.linspace(end, 0.96 * np.pi, 6)]
                rise = 0.0 if k <= 2 else 4.0 * (k - 2)
                for n, p in enumerate(cart):
                    p[2] = z_head - tilt * (p[1] - y_start) + rise * n / 5
                cart = [p for p in cart if abs(p[0]) > 14.0]
                if len(cart) >= 2:
                    c = smooth_curve(np.vstack(cart), 5.0)
                    ops.append(Paint(Tube(c, np.full(len(c), radius * 0.9)), 114, hu["cartilage"]))
                    sternum_pts.append(cart[-1])
    if sternum_pts:
        pts = np.array(sternum_pts)
        top, bottom = pts[:, 2].max() + 15.0, pts[:, 2].min() - 25.0
        center = np.array([0.0, pts[:, 1].mean(), 0.5 * (top + bottom)])
        ops.append(
            Paint(Ellipsoid(center, np.array([17.0, 6.5, 0.5 * (top - bottom)]), None, 3.0), 122, _cortical(hu, 1.5))
        )
    return ops


def _pelvis(j: Jitter, hu: dict[str, float]) -> list[Paint]:
    bone = _cortical(hu, 2.0)
    sacrum = Ellipsoid(
        j.pos((0.0, float(spine_y(-232)) + 4.0, -232.0), 2.0), j.size((46, 17, 55), 0.05), rotation(rx=-25), 2.6
    )
    ops = [Paint(sacrum, 97, bone)]
    for side, hip, femur in ((-1, 95, 93), (1, 96, 94)):
        wing = Ellipsoid(
            j.pos((side * 80, -38, -205), 3.0),
            j.size((9, 50, 50), 0.05),
            rotation(rz=-side * 35, ry=side * 25),
            2.4,
            j.warp(2, 0.06),
        )
        socket = Ellipsoid(j.pos((side * 84, 2, -280), 2.0), j.size((22, 30, 34), 0.05), None, 2.4)
        head = Ellipsoid(j.pos((side * 88, 8, -296), 2.0), np.full(3, 23.0))
        ops += [Paint(wing, hip, bone), Paint(socket, hip, bone), Paint(head, femur, bone)]
    return ops
