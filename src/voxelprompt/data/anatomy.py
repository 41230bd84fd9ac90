"""The phantom's organs as paint steps: muscles, heart, abdominal organs, vessels, airways, bowel.

Positions are in the canonical body frame of :mod:`voxelprompt.data.body`.
"""

from __future__ import annotations

import numpy as np

from voxelprompt.data.body import Diaphragm, Jitter
from voxelprompt.data.shapes import Ellipsoid, Paint, Tube, smooth_curve

__all__ = ["soft_tissue"]


def soft_tissue(j: Jitter, hu: dict[str, float], dia: Diaphragm, spine_y) -> dict[str, list[Paint]]:
    """Paint steps for muscles, heart, abdominal organs, vessels, airways and bowel, grouped by stage.

    Args:
        j: random perturbations.
        hu: tissue Hounsfield values for the case's contrast phase.
        dia: the diaphragm surface.
        spine_y: function z -> anterior-posterior position (mm) of the vertebral body centres.

    Returns:
        stage name -> steps, in the order :func:`voxelprompt.data.phantom.make_phantom` paints them
        around the skeleton ("organs" starts with the liver's right lobe, which lesions refer to).
    """
    return {
        "muscles": _muscles(j, hu, spine_y),
        "heart": _heart(j, hu, dia),
        "organs": _organs(j, hu, dia),
        "gut_upper": _upper_gut(j, hu, dia),
        "vessels": _vessels(j, hu, spine_y),
        "mediastinum": _mediastinum(j, hu, spine_y),
        "lung_vessels": _lung_vessels(j, hu),
        "gut_lower": _lower_gut(j, hu),
    }


def _tube(j: Jitter, points, radii, sd: float = 3.0, step: float = 6.0) -> Tube:
    curve, r = j.curve(points, sd, radii, step)
    return Tube(curve, r)


def _muscles(j: Jitter, hu: dict[str, float], spine_y) -> list[Paint]:
    """Autochthon (erector spinae) and psoas muscles, in free space only."""
    free = (0,)
    zs = np.linspace(-200, 300, 14)
    muscles = []
    for side, label in ((-1, 104), (1, 105)):  # autochthon
        pts = [(side * 33, spine_y(z) - 36, z) for z in zs]
        muscles.append(
            Paint(_tube(j, pts, np.interp(zs, [-200, -100, 100, 300], [14, 21, 18, 14])), label, hu["muscle"], free)
        )
    for side, label in ((-1, 106), (1, 107)):  # psoas
        pts = [
            (side * 28, spine_y(-10) + 5, -10),
            (side * 42, spine_y(-100) + 10, -100),
            (side * 58, spine_y(-180) + 35, -180),
            (side * 68, 20, -270),
        ]
        muscles.append(Paint(_tube(j, pts, [7, 17, 21, 18]), label, hu["muscle"], free))
    return muscles


def _heart(j: Jitter, hu: dict[str, float], dia: Diaphragm) -> list[Paint]:
    """Heart on the diaphragm: myocardium around a blood pool, displacing the lungs."""
    heart = j.organ((-18, 35, 140), (62, 46, 52), (0, 25, -30), amp=0.04)
    blood = lambda d, x, y, z: np.where(d > 9.0, hu["heart_blood"], hu["myocardium"])  # noqa: E731
    return [Paint(heart, 115, blood, (0, 28, 29, 30, 31, 32), where=dia.above(3.0))]


def _organs(j: Jitter, hu: dict[str, float], dia: Diaphragm) -> list[Paint]:
    """Liver (right lobe first), spleen, kidneys with renal sinus, adrenals, gallbladder."""
    below, free = dia.below(3.0), (0,)

    # The liver's lower edge rises medially, leaving room for the duodenum and pancreatic head.
    def liver_space(x, y, z):
        lower_edge = np.clip(-75.0 + 0.8 * (85.0 - x) - 0.006 * (y - 15.0) ** 2, -80.0, 5.0)
        return below(x, y, z) & (z > lower_edge)

    liver_right = j.organ((62, 8, 15), (68, 76, 80), (0, 0, 10), amp=0.05)
    liver_left = j.organ((-5, 42, 45), (68, 38, 32), (0, -15, 15), amp=0.06)
    kidney_hu = lambda d, x, y, z: np.where(d < 6.0, hu["kidney_cortex"], hu["kidney_medulla"])  # noqa: E731
    kidneys = []
    for side, label, zc in ((1, 5, -48), (-1, 14, -30)):
        k = j.organ((side * 58, -42, zc), (25, 21, 54), (0, -side * 12, side * 30), amp=0.03)
        hilum = Ellipsoid(
            k.center + k.rot @ np.array([-side * 0.8 * k.radii[0], 0, 0]), k.radii * [0.45, 0.35, 0.4], k.rot
        )
        kidneys += [Paint(k, label, kidney_hu, (0, 1)), Paint(hilum, 0, hu["visceral_fat"], only_in=(label,))]
    gallbladder = j.organ((50, 45, -22), (14, 16, 38), (-35, 10, 0), amp=0.04)
    return [
        Paint(liver_right, 1, hu["liver"], free, where=liver_space),
        Paint(liver_left, 1, hu["liver"], free, where=liver_space),
        Paint(j.organ((-88, -42, 45), (28, 58, 46), (0, 0, -40), amp=0.06), 3, hu["spleen"], free, where=below),
        *kidneys,
        Paint(j.organ((-32, -30, 18), (10, 4, 16), (0, 0, -20)), 9, hu["adrenal"], (0, 1), where=below),
        Paint(j.organ((34, -28, 30), (9, 4, 17), (0, 0, 20)), 8, hu["adrenal"], (0, 1), where=below),
        Paint(gallbladder, 10, hu["bile"], (0, 1), where=below, wall=(2.0, hu["bowel_wall"])),
    ]


def _upper_gut(j: Jitter, hu: dict[str, float], dia: Diaphragm) -> list[Paint]:
    """Stomach (fundus + body, air over fluid in the supine patient) and pancreas."""
    below, free = dia.below(3.0), (0,)
    air_level = float(j.rng.normal(35, 8))
    content = lambda d, x, y, z: np.where(y > air_level, hu["air"], hu["stomach_fluid"])  # noqa: E731
    fundus = j.organ((-58, 5, 62), (42, 42, 38), amp=0.05)
    stomach_tube = _tube(
        j, [(-60, 18, 48), (-55, 45, 12), (-28, 66, -18), (2, 62, -22), (20, 50, -16)], [38, 34, 26, 16, 10]
    )
    wall = (4.0, hu["bowel_wall"])
    pancreas = _tube(
        j, [(30, 20, -52), (10, 25, -36), (-22, 16, -22), (-62, -5, -2), (-82, -16, 12)], [22, 16, 15, 13, 10]
    )
    return [
        Paint(fundus, 12, content, (0, 1), where=below, wall=wall),
        Paint(stomach_tube, 12, content, (0, 1, 12), where=below, wall=wall),
        Paint(pancreas, 4, hu["pancreas"], free),
    ]


def _vessels(j: Jitter, hu: dict[str, float], sy) -> list[Paint]:
    """Aorta, IVC, iliac vessels, portal and splenic veins (labelled); SMA, SMV, renal vessels
    (unlabelled); hepatic veins inside the liver."""
    free = (0,)
    aorta = _tube(
        j,
        [
            (12, 25, 150),
            (12, 20, 205),
            (-5, 0, 228),
            (-20, sy(200) + 25, 200),
            (-18, sy(100) + 25, 100),
            (-14, sy(0) + 26, 0),
            (-10, sy(-110) + 24, -110),
        ],
        [14, 14, 13, 12, 12, 10, 9],
        sd=2.0,
    )
    ivc = _tube(
        j,
        [(24, 12, 110), (24, sy(40) + 30, 40), (22, sy(-60) + 27, -60), (16, sy(-140) + 25, -140)],
        [14, 12, 11, 10],
        sd=2.0,
    )
    vessels = [Paint(aorta, 6, hu["artery"]), Paint(ivc, 7, hu["vein"])]
    for side, art, vein in ((-1, 58, 60), (1, 59, 61)):
        a = _tube(
            j,
            [
                (-10 + side * 2, sy(-110) + 24, -110),
                (side * 40, sy(-170) + 28, -170),
                (side * 62, 10, -250),
                (side * 75, 25, -310),
            ],
            [8, 7, 6.5, 6],
            sd=2.0,
        )
        v = _tube(
            j,
            [
                (16 + side * 4, sy(-140) + 24, -140),
                (side * 40, sy(-190) + 18, -190),
                (side * 62, -2, -255),
                (side * 72, 12, -310),
            ],
            [9, 8.5, 8, 8],
            sd=2.0,
        )
        vessels += [Paint(a, art, hu["artery"]), Paint(v, vein, hu["vein"])]
    portal = _tube(j, [(8, 12, -36), (28, 12, -5), (48, 12, 25), (85, 5, 30)], [8, 8, 7, 4], sd=2.0)
    portal_left = _tube(j, [(48, 12, 25), (20, 30, 35), (-15, 45, 40)], [6, 4.5, 3], sd=2.0)
    splenic = _tube(j, [(8, 12, -36), (-30, 4, -24), (-60, -14, -6), (-78, -28, 20)], [6, 6, 5.5, 5], sd=2.0)
    vessels += [
        Paint(portal, 17, hu["portal"]),
        Paint(portal_left, 17, hu["portal"], (1, 17)),
        Paint(splenic, 17, hu["portal"]),
    ]
    vessels += [
        Paint(_tube(j, [(10, 14, -36), (12, 30, -85), (8, 40, -150)], [7, 6, 4]), 0, hu["portal"], free),  # SMV
        Paint(
            _tube(j, [(-10, sy(-25) + 34, -25), (-2, 35, -65), (0, 45, -140)], [4, 3.5, 2.5]), 0, hu["artery"], free
        ),  # SMA
    ]
    for side, zc in ((1, -48), (-1, -30)):  # renal veins and arteries
        vessels.append(
            Paint(
                _tube(
                    j,
                    [
                        (side * 40, -30, zc + 2),
                        (side * 22 if side > 0 else -12, sy(zc) + 30, zc + 8),
                        (22, sy(zc) + 30, zc + 10),
                    ],
                    [5, 5.5, 6],
                ),
                0,
                hu["vein"],
                free,
            )
        )
        vessels.append(
            Paint(_tube(j, [(-12, sy(zc) + 24, zc + 18), (side * 38, -36, zc + 8)], [3, 3]), 0, hu["artery"], free)
        )
    for end in ((105, -5, 45), (65, 55, 60), (-25, 45, 55)):  # hepatic veins
        vessels.append(Paint(_tube(j, [(22, 5, 85), end], [6, 2.5], step=4.0), 25, hu["hepatic_vein"], (1,)))
    return vessels


def _mediastinum(j: Jitter, hu: dict[str, float], sy) -> list[Paint]:
    """Oesophagus, and trachea with main bronchi (one label, 57: air lumen, cartilage wall)."""
    trachea = _tube(
        j, [(0, sy(330) + 40, 360), (0, sy(280) + 42, 280), (0, sy(215) + 42, 215)], [9.5, 9.5, 9.5], sd=1.0
    )
    bronchi = [
        _tube(
            j,
            [(0, sy(215) + 42, 215), (side * 28, sy(190) + 42, 195), (side * 50, sy(180) + 45, 175)],
            [7, 6, 4.5],
            sd=1.5,
        )
        for side in (-1, 1)
    ]
    esophagus = _tube(
        j,
        [(-2, sy(330) + 22, 360), (-4, sy(220) + 22, 220), (-10, sy(120) + 30, 120), (-22, 20, 60), (-42, 25, 45)],
        [8, 8, 8, 8, 9],
        sd=1.5,
    )
    airway = lambda d, x, y, z: np.where(d > 1.6, hu["air"], hu["cartilage"])  # noqa: E731
    return [
        Paint(esophagus, 11, hu["bowel_wall"]),
        Paint(trachea, 57, airway),
        *(Paint(b, 57, airway) for b in bronchi),
    ]


def _lower_gut(j: Jitter, hu: dict[str, float]) -> list[Paint]:
    """Duodenum, colon (stool with gas), small bowel and bladder, each in free space only."""
    free = (0,)

    def stool(d, x, y, z):
        # Incommensurate plane waves give a faint, lattice-free texture; gas comes from bubbles below.
        f = np.sin(0.37 * x + 0.21 * y + 1.3) + np.sin(0.29 * y - 0.33 * z) + np.sin(0.31 * z + 0.27 * x + 2.1)
        return hu["stool"] + 25.0 * f

    colon = _tube(
        j,
        [
            (0, -62, -330),
            (2, -50, -250),
            (-30, 10, -215),
            (-70, 20, -200),
            (-92, -15, -150),
            (-96, -20, -60),
            (-85, 5, 25),
            (-55, 55, 0),
            (0, 78, -45),
            (55, 60, -20),
            (85, 20, -5),
            (92, -5, -80),
            (80, 15, -155),
            (70, 35, -180),
        ],
        [18, 20, 20, 20, 20, 22, 22, 24, 24, 24, 24, 26, 28, 26],
        sd=4.0,
    )
    duodenum = _tube(
        j,
        [(20, 50, -16), (46, 40, -18), (58, 22, -36), (56, 18, -80), (30, 20, -96), (-5, 22, -96), (-28, 25, -72)],
        [10, 12, 12, 12, 11, 11, 11],
    )
    small_bowel = _small_bowel(j)
    return [
        Paint(duodenum, 13, hu["bowel_content"], free, wall=(3.0, hu["bowel_wall"])),
        Paint(colon, 62, stool, free, wall=(3.0, hu["bowel_wall"])),
        *_gas(j, colon, 62, 90, hu["air"], wall=3.0),
        Paint(small_bowel, 19, hu["bowel_content"], free, wall=(2.5, hu["bowel_wall"])),
        *_gas(j, small_bowel, 19, 12, hu["air"], wall=2.5),
        Paint(j.organ((0, 40, -262), (44, 36, 34), amp=0.04), 15, hu["urine"], free, wall=(3.0, hu["bowel_wall"])),
    ]


def _gas(j: Jitter, bowel: Tube, label: int, n: int, air: float, wall: float) -> list[Paint]:
    """Gas bubbles inside a bowel's lumen, risen towards the anterior (non-dependent) side."""
    ops = []
    for _ in range(n):
        i = int(j.rng.integers(len(bowel.points)))
        lumen = float(bowel.radii[i]) - wall - 0.5
        radius = float(j.rng.uniform(0.15, 0.55)) * lumen
        offset = j.rng.normal(0.0, 0.35, 3) * (lumen - radius) + np.array([0.0, 0.3 * (lumen - radius), 0.0])
        offset *= min(1.0, (lumen - radius) / max(float(np.linalg.norm(offset)), 1e-6))
        ops.append(
            Paint(Ellipsoid(bowel.points[i] + offset, np.full(3, radius)), label, air, (label,), keep_label=True)
        )
    return ops


def _small_bowel(j: Jitter, steps: int = 260, step: float = 11.0) -> Tube:
    """Small bowel as one persistent random walk from the duodenojejunal flexure to the caecum,
    confined to the lower abdomen (painting only into free space keeps it off the organs)."""
    center, half = np.array([0.0, 30.0, -115.0]), np.array([85.0, 55.0, 95.0])
    p, d = np.array([-28.0, 25.0, -72.0]), np.array([-1.0, 0.0, -0.3])
    points = [p]
    for _ in range(steps):
        d = d / np.linalg.norm(d) + j.rng.normal(0.0, 0.45, 3)
        outside = (p - center) / half
        if np.linalg.norm(outside) > 0.85:
            d -= 1.5 * outside
        d /= np.linalg.norm(d)
        p = p + step * d
        points.append(p)
    points.append(np.array([70.0, 35.0, -165.0]))
    curve = smooth_curve(np.array(points), step)
    return Tube(curve, np.full(len(curve), 12.5))


def _lung_vessels(j: Jitter, hu: dict[str, float]) -> list[Paint]:
    """Branching pulmonary vessels from each hilum, painted into the lungs without relabelling them."""
    ops, lungs = [], (28, 29, 30, 31, 32)
    vessel_hu = 0.5 * hu["heart_blood"] + 20.0
    for side in (-1, 1):
        hilum = np.array([side * 45.0, -5.0, 175.0])
        for _ in range(10):
            d = j.rng.normal(size=3) * [0.5, 1.0, 1.5] + [side * 0.7, 0.0, 0.0]
            d /= np.linalg.norm(d)
            mid = hilum + d * float(j.rng.uniform(35.0, 60.0))
            for _ in range(3):
                e = d + j.rng.normal(0.0, 0.5, 3)
                tip = mid + e / np.linalg.norm(e) * float(j.rng.uniform(40.0, 80.0))
                curve = smooth_curve(np.array([hilum, mid, tip]), 5.0)
                ops.append(Paint(Tube(curve, np.linspace(4.0, 1.0, len(curve))), 0, vessel_hu, lungs, keep_label=True))
    return ops
