"""The phantom's soft-tissue anatomy: body wall, lungs, organs, vessels and bowel as paint steps.

Positions are in the canonical body frame (RAS+ mm, origin mid-abdomen, z = 0 near the L1/T12
disc); :mod:`voxelprompt.data.phantom` scales and shifts that frame per case.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voxelprompt.data.shapes import Canvas, Ellipsoid, Paint, Tube, rotation, smooth_curve

__all__ = ["OUTSIDE", "PHASES", "tissue_hu", "Jitter", "Diaphragm", "Trunk", "soft_tissue"]

#: Label of the air around the body while painting (so "free space" steps stay inside); 0 at the end.
OUTSIDE = 255
PHASES = ("non-contrast", "arterial", "portal-venous")

# Hounsfield units per tissue for (non-contrast, arterial, portal-venous).
_HU = {
    "skin": (20, 25, 30),
    "fat": (-100, -100, -100),
    "visceral_fat": (-92, -92, -92),
    "muscle": (45, 55, 60),
    "lung": (-850, -850, -850),
    "air": (-1000, -1000, -1000),
    "artery": (40, 320, 170),
    "vein": (38, 70, 140),
    "portal": (40, 130, 180),
    "hepatic_vein": (40, 60, 160),
    "heart_blood": (40, 260, 150),
    "myocardium": (45, 110, 110),
    "liver": (58, 75, 112),
    "spleen": (48, 118, 122),
    "pancreas": (42, 115, 98),
    "kidney_cortex": (32, 190, 168),
    "kidney_medulla": (32, 85, 158),
    "adrenal": (30, 60, 62),
    "bile": (8, 8, 8),
    "urine": (8, 8, 10),
    "bowel_wall": (40, 90, 100),
    "bowel_content": (20, 20, 22),
    "stomach_fluid": (15, 15, 15),
    "stool": (-120, -120, -120),
    "cortical_bone": (800, 800, 800),
    "marrow": (240, 245, 250),
    "cartilage": (120, 120, 125),
    "disc": (85, 85, 90),
    "csf": (15, 15, 15),
    "cord": (35, 38, 40),
    "liver_tumor": (35, 55, 60),
    "kidney_cyst": (8, 8, 8),
}


def tissue_hu(phase: str) -> dict[str, float]:
    """Hounsfield value of every tissue in one contrast phase (one of :data:`PHASES`)."""
    if phase not in PHASES:
        raise ValueError(f"contrast phase must be one of {PHASES}, got {phase!r}")
    col = PHASES.index(phase)
    return {name: float(values[col]) for name, values in _HU.items()}


class Jitter:
    """Random perturbations of positions, sizes, rotations and shape, all from one generator."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def pos(self, center, sd: float = 4.0) -> np.ndarray:
        return np.asarray(center, dtype=np.float64) + self.rng.normal(0.0, sd, 3)

    def size(self, radii, spread: float = 0.08) -> np.ndarray:
        return np.asarray(radii, dtype=np.float64) * self.rng.uniform(1 - spread, 1 + spread, 3)

    def rot(self, rx: float = 0.0, ry: float = 0.0, rz: float = 0.0, sd: float = 5.0) -> np.ndarray:
        return rotation(*(np.array([rx, ry, rz]) + self.rng.normal(0.0, sd, 3)))

    def warp(self, n: int = 3, amp: float = 0.05) -> np.ndarray:
        direction = self.rng.normal(size=(n, 3))
        k = direction / np.linalg.norm(direction, axis=1, keepdims=True) * self.rng.uniform(1.5, 3.2, (n, 1))
        return np.hstack([k, self.rng.uniform(0, 2 * np.pi, (n, 1)), self.rng.normal(0.0, amp, (n, 3))])

    def curve(self, points, sd: float = 3.0, radii=None, step: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
        """A smooth centreline through jittered control points, with radii interpolated along it."""
        p = np.asarray(points, dtype=np.float64) + self.rng.normal(0.0, sd, (len(points), 3))
        curve = smooth_curve(p, step)
        r = np.asarray(radii, dtype=np.float64)
        t_ctrl = np.linspace(0.0, 1.0, len(r))
        return curve, np.interp(np.linspace(0.0, 1.0, len(curve)), t_ctrl, r)

    def organ(self, center, radii, rot=(0.0, 0.0, 0.0), exponent: float = 2.0, amp: float = 0.05) -> Ellipsoid:
        return Ellipsoid(self.pos(center), self.size(radii), self.rot(*rot), exponent, self.warp(3, amp))


@dataclass(frozen=True)
class Diaphragm:
    """Height z(x, y) in mm of the diaphragm: two domes, lowest in the posterior recesses."""

    right_top: float
    left_top: float

    def __call__(self, x, y):
        back = np.minimum(y + 10.0, 0.0) ** 2
        right = self.right_top - 0.0035 * (x - 50.0) ** 2 - 0.003 * y**2 - 0.011 * back
        left = self.left_top - 0.0035 * (x + 50.0) ** 2 - 0.003 * y**2 - 0.011 * back
        return np.maximum(right, left)

    def below(self, margin: float = 3.0):
        return lambda x, y, z: z < self(x, y) - margin

    def above(self, margin: float = 3.0):
        return lambda x, y, z: z > self(x, y) + margin


_PROFILE_Z = np.array([-330, -250, -180, -100, 0, 80, 160, 240, 300, 335, 380], dtype=np.float64)
_HALF_WIDTH = np.array([150, 168, 165, 160, 160, 158, 155, 150, 140, 95, 60], dtype=np.float64)
_ANTERIOR = np.array([95, 100, 100, 105, 105, 110, 112, 105, 95, 65, 50], dtype=np.float64)
_POSTERIOR = np.array([100, 105, 105, 110, 110, 115, 118, 115, 110, 70, 55], dtype=np.float64)


class Trunk:
    """Body outline, skin, subcutaneous fat, muscle wall, and inside it fat, diaphragm and lungs.

    Rendered slab by slab over the whole canvas (the one step that touches every voxel).
    """

    def __init__(self, rng: np.random.Generator, hu: dict[str, float], diaphragm: Diaphragm):
        wobble = lambda: 1.0 + rng.normal(0.0, 0.03, len(_PROFILE_Z))  # noqa: E731
        self.half_width, self.anterior, self.posterior = _HALF_WIDTH * wobble(), _ANTERIOR * wobble(), _POSTERIOR * wobble()
        self.fat = float(rng.uniform(6.0, 28.0))
        self.oblique = (float(rng.normal(215, 8)), float(rng.normal(0.85, 0.08)))  # fissure height, slope
        self.oblique_left = (float(rng.normal(220, 8)), float(rng.normal(0.9, 0.08)))
        self.horizontal = float(rng.normal(150, 6))
        self.hu, self.diaphragm = hu, diaphragm

    def profile(self, z) -> tuple[np.ndarray, ...]:
        """Half-width, anterior and posterior half-depth, fat and muscle thickness at heights z."""
        z = np.asarray(z, dtype=np.float64)
        fat = self.fat * np.interp(z, [-330, -180, 0, 80, 200, 335], [1.1, 1.2, 1.0, 0.7, 0.6, 0.5])
        muscle = np.interp(z, [-330, -180, -60, 40, 100, 335], [18, 15, 11, 13, 24, 24])
        return (
            np.interp(z, _PROFILE_Z, self.half_width),
            np.interp(z, _PROFILE_Z, self.anterior),
            np.interp(z, _PROFILE_Z, self.posterior),
            fat,
            muscle,
        )

    def inner_wall(self, z: float, inset: float = 0.0) -> tuple[float, float, float]:
        """Half-width, anterior and posterior half-depth of the cavity (inside the muscle) at z."""
        a, ant, post, fat, muscle = (float(v) for v in self.profile(z))
        wall = 2.0 + fat + muscle + inset
        return a - wall, ant - wall * (1 + 0.5), post - wall * 0.5

    def render(self, canvas: Canvas, slab: int = 24) -> None:
        hu = self.hu
        x, y, z_all = canvas.axes
        x3, y3 = x[:, None, None], y[None, :, None]
        r_xy = np.sqrt(x3**2 + y3**2)
        zd = self.diaphragm(x3, y3).astype(np.float32)
        lowest_dome = float(zd.min())
        for k0 in range(0, len(z_all), slab):
            k1 = min(k0 + slab, len(z_all))
            z = z_all[k0:k1]
            a, ant, post, fat, muscle = (v.astype(np.float32)[None, None, :] for v in self.profile(z))
            b = np.where(y3 > 0, ant, post)
            rho = np.sqrt((x3 / a) ** 2 + (y3 / b) ** 2)
            depth = r_xy * (1.0 - rho) / np.maximum(rho, 1e-6)
            depth = np.minimum(depth, y3 + 0.93 * post)  # flat back on the table
            fat_here = fat * (1.0 + 0.5 * np.clip(y3 / b, -1.0, 1.0))
            skin_in, fat_in = np.float32(2.0), 2.0 + fat_here
            layer = (depth >= 0).astype(np.uint8) + (depth >= skin_in) + (depth >= fat_in) + (depth >= fat_in + muscle)
            lut = np.array([hu["air"], hu["skin"], hu["fat"], hu["muscle"], hu["visceral_fat"]], dtype=np.float32)
            image = lut[layer]
            labels = np.where(layer == 0, np.uint8(OUTSIDE), np.uint8(0))
            if float(z[-1]) > lowest_dome - 3:
                self._thorax(image, labels, layer == 4, x3, y3, z[None, None, :], zd)
            canvas.image[:, :, k0:k1] = image
            canvas.labels[:, :, k0:k1] = labels

    def _thorax(self, image, labels, cavity, x, y, z, zd) -> None:
        hu = self.hu
        rel = z - zd
        diaphragm = cavity & (np.abs(rel) <= 3.0)
        image[diaphragm] = hu["muscle"]
        apex = 330.0 - 0.004 * (np.abs(x) - 60.0) ** 2
        thorax = cavity & (rel > 3.0) & (z < apex)
        image[cavity & (z >= apex)] = hu["muscle"]
        if not thorax.any():
            return
        lung = thorax & (np.abs(x) > 20.0)
        image[thorax & ~lung] = hu["fat"] + 20.0
        right, left = lung & (x > 0), lung & (x < 0)
        h_r, s_r = self.oblique
        h_l, s_l = self.oblique_left
        lower_r = z < h_r - s_r * (y + 80.0)
        lower_l = z < h_l - s_l * (y + 80.0)
        labels[right & lower_r] = 32
        labels[right & ~lower_r & (z < self.horizontal)] = 31
        labels[right & ~lower_r & (z >= self.horizontal)] = 30
        labels[left & lower_l] = 29
        labels[left & ~lower_l] = 28
        # Dependent (posterior) lung is denser; the rest of the texture comes from vessels.
        gradient = (hu["lung"] - 30.0 * y / 110.0).astype(np.float32)
        image[lung] = np.broadcast_to(gradient, lung.shape)[lung]


def soft_tissue(j: Jitter, hu: dict[str, float], dia: Diaphragm, spine_y) -> dict[str, list[Paint]]:
    """Paint steps for muscles, heart, abdominal organs, vessels, airways and bowel, grouped by stage.

    Args:
        j: random perturbations.
        hu: tissue Hounsfield values for the case's contrast phase.
        dia: the diaphragm surface.
        spine_y: function z -> anterior-posterior position (mm) of the vertebral body centres.
    """
    below, above = dia.below(3.0), dia.above(3.0)
    free = (0,)
    st: dict[str, list[Paint]] = {}

    def tube(points, radii, sd=3.0, step=6.0):
        curve, r = j.curve(points, sd, radii, step)
        return Tube(curve, r)

    zs = np.linspace(-260, 300, 15)
    muscles = []
    for side, label in ((-1, 104), (1, 105)):  # autochthon
        pts = [(side * 33, spine_y(z) - 38 - 0.02 * abs(z), z) for z in zs]
        muscles.append(Paint(tube(pts, np.interp(zs, [-260, -100, 100, 300], [14, 21, 18, 14])), label, hu["muscle"], free))
    for side, label in ((-1, 106), (1, 107)):  # psoas
        pts = [(side * 28, spine_y(-10) + 5, -10), (side * 42, spine_y(-100) + 10, -100), (side * 58, spine_y(-180) + 35, -180), (side * 68, 20, -270)]
        muscles.append(Paint(tube(pts, [7, 17, 21, 18]), label, hu["muscle"], free))
    st["muscles"] = muscles

    heart = j.organ((-18, 35, 140), (62, 46, 52), (0, 25, -30), amp=0.04)
    blood = lambda d, x, y, z: np.where(d > 9.0, hu["heart_blood"], hu["myocardium"])  # noqa: E731
    st["heart"] = [Paint(heart, 115, blood, where=above)]

    liver_right = j.organ((62, 8, 15), (68, 76, 80), (0, 0, 10), amp=0.05)
    liver_left = j.organ((-5, 42, 45), (68, 38, 32), (0, -15, 15), amp=0.06)
    kidney_hu = lambda d, x, y, z: np.where(d < 6.0, hu["kidney_cortex"], hu["kidney_medulla"])  # noqa: E731
    kidneys = []
    for side, label, zc in ((1, 5, -48), (-1, 14, -30)):
        k = j.organ((side * 58, -42, zc), (25, 21, 54), (0, -side * 12, side * 30), amp=0.03)
        hilum = Ellipsoid(k.center + k.rot @ np.array([-side * 0.8 * k.radii[0], 0, 0]), k.radii * [0.45, 0.35, 0.4], k.rot)
        kidneys += [Paint(k, label, kidney_hu), Paint(hilum, 0, hu["visceral_fat"], only_in=(label,))]
    st["organs"] = [
        Paint(liver_right, 1, hu["liver"], free, where=below),
        Paint(liver_left, 1, hu["liver"], free, where=below),
        Paint(j.organ((-88, -42, 45), (28, 58, 46), (0, 0, -40), amp=0.06), 3, hu["spleen"], where=below),
        *kidneys,
        Paint(j.organ((-32, -30, 18), (10, 4, 16), (0, 0, -20)), 9, hu["adrenal"], where=below),
        Paint(j.organ((34, -28, 30), (9, 4, 17), (0, 0, 20)), 8, hu["adrenal"], where=below),
        Paint(j.organ((50, 45, -22), (14, 16, 38), (-35, 10, 0), amp=0.04), 10, hu["bile"], (0, 1), below, (2.0, hu["bowel_wall"])),
    ]

    air_level = float(j.rng.normal(35, 8))
    content = lambda d, x, y, z: np.where(y > air_level, hu["air"], hu["stomach_fluid"])  # noqa: E731
    fundus = j.organ((-58, 5, 62), (42, 42, 38), amp=0.05)
    stomach_tube = tube([(-60, 18, 48), (-55, 45, 12), (-28, 66, -14), (2, 62, -6), (20, 50, 0)], [38, 34, 26, 16, 10])
    wall = (4.0, hu["bowel_wall"])
    pancreas = tube([(32, 22, -28), (12, 28, -14), (-22, 18, -4), (-62, -5, 12), (-82, -18, 22)], [21, 16, 14, 13, 10])
    st["gut_upper"] = [
        Paint(fundus, 12, content, where=below, wall=wall),
        Paint(stomach_tube, 12, content, where=below, wall=wall),
        Paint(pancreas, 4, hu["pancreas"], free),
    ]

    sy = spine_y
    aorta = tube(
        [(12, 25, 150), (12, 20, 205), (-5, 0, 228), (-20, sy(200) + 25, 200), (-18, sy(100) + 25, 100),
         (-14, sy(0) + 26, 0), (-10, sy(-110) + 24, -110)],
        [14, 14, 13, 12, 12, 10, 9], sd=2.0)
    ivc = tube([(24, 12, 110), (24, sy(40) + 30, 40), (22, sy(-60) + 27, -60), (16, sy(-140) + 25, -140)], [14, 12, 11, 10], sd=2.0)
    vessels = [Paint(aorta, 6, hu["artery"]), Paint(ivc, 7, hu["vein"])]
    for side, art, vein in ((-1, 58, 60), (1, 59, 61)):
        a = tube([(-10 + side * 2, sy(-110) + 24, -110), (side * 40, sy(-170) + 28, -170), (side * 62, 10, -250), (side * 75, 25, -310)], [8, 7, 6.5, 6], sd=2.0)
        v = tube([(16 + side * 4, sy(-140) + 24, -140), (side * 40, sy(-190) + 18, -190), (side * 62, -2, -255), (side * 72, 12, -310)], [9, 8.5, 8, 8], sd=2.0)
        vessels += [Paint(a, art, hu["artery"]), Paint(v, vein, hu["vein"])]
    portal = tube([(8, 20, -12), (30, 14, 10), (48, 12, 25), (85, 5, 30)], [8, 8, 7, 4], sd=2.0)
    portal_left = tube([(48, 12, 25), (20, 30, 35), (-15, 45, 40)], [6, 4.5, 3], sd=2.0)
    splenic = tube([(8, 20, -12), (-30, 8, 0), (-60, -12, 14), (-78, -25, 30)], [6, 6, 5.5, 5], sd=2.0)
    vessels += [Paint(portal, 17, hu["portal"]), Paint(portal_left, 17, hu["portal"], (1, 17)), Paint(splenic, 17, hu["portal"])]
    vessels += [
        Paint(tube([(10, 22, -12), (12, 30, -60), (8, 40, -130)], [7, 6, 4]), 0, hu["portal"], free),  # SMV
        Paint(tube([(-10, sy(0) + 34, -5), (-2, 35, -40), (0, 45, -120)], [4, 3.5, 2.5]), 0, hu["artery"], free),  # SMA
    ]
    for side, zc in ((1, -48), (-1, -30)):  # renal veins and arteries
        vessels.append(Paint(tube([(side * 40, -30, zc + 2), (side * 22 if side > 0 else -12, sy(zc) + 30, zc + 8), (22, sy(zc) + 30, zc + 10)], [5, 5.5, 6]), 0, hu["vein"], free))
        vessels.append(Paint(tube([(-12, sy(zc) + 24, zc + 18), (side * 38, -36, zc + 8)], [3, 3]), 0, hu["artery"], free))
    for end in ((105, -5, 45), (65, 55, 60), (-25, 45, 55)):  # hepatic veins
        vessels.append(Paint(tube([(22, 5, 85), end], [6, 2.5], step=4.0), 25, hu["hepatic_vein"], (1,)))
    st["vessels"] = vessels

    trachea = tube([(0, sy(330) + 40, 360), (0, sy(280) + 42, 280), (0, sy(215) + 42, 215)], [9.5, 9.5, 9.5], sd=1.0)
    bronchi = [tube([(0, sy(215) + 42, 215), (side * 28, sy(190) + 42, 195), (side * 50, sy(180) + 45, 175)], [7, 6, 4.5], sd=1.5) for side in (-1, 1)]
    esophagus = tube([(-2, sy(330) + 22, 360), (-4, sy(220) + 22, 220), (-10, sy(120) + 30, 120), (-22, 20, 60), (-42, 25, 45)], [8, 8, 8, 8, 9], sd=1.5)
    airway = lambda d, x, y, z: np.where(d > 1.6, hu["air"], hu["cartilage"])  # noqa: E731
    st["mediastinum"] = [Paint(esophagus, 11, hu["bowel_wall"]), Paint(trachea, 57, airway), *(Paint(b, 57, airway) for b in bronchi)]
    st["lung_vessels"] = _lung_vessels(j, hu)

    def mottled(d, x, y, z):
        # Quasi-random gas bubbles in stool: incommensurate plane waves, no visible lattice.
        f = np.sin(0.37 * x + 0.21 * y + 1.3) + np.sin(0.29 * y - 0.33 * z) + np.sin(0.31 * z + 0.27 * x + 2.1)
        f += np.sin(0.43 * x - 0.17 * y + 0.22 * z)
        return np.where(f > 1.2, hu["air"], hu["stool"] + 40.0 * f)
    colon = tube(
        [(0, -62, -330), (2, -50, -250), (-30, 10, -215), (-70, 20, -200), (-92, -15, -150), (-96, -20, -60),
         (-85, 5, 25), (-55, 55, 0), (0, 78, -45), (55, 60, -20), (85, 20, -5), (92, -5, -80), (80, 15, -155), (70, 35, -180)],
        [18, 20, 20, 20, 20, 22, 22, 24, 24, 24, 24, 26, 28, 26], sd=4.0)
    duodenum = tube([(20, 50, 0), (48, 40, 5), (58, 22, -15), (55, 18, -60), (30, 20, -78), (-5, 22, -80), (-28, 25, -55)], [10, 12, 12, 12, 11, 11, 11])
    st["gut_lower"] = [
        Paint(duodenum, 13, hu["bowel_content"], free, wall=(3.0, hu["bowel_wall"])),
        Paint(colon, 62, mottled, free, wall=(3.0, hu["bowel_wall"])),
        Paint(_small_bowel(j), 19, hu["bowel_content"], free, wall=(2.5, hu["bowel_wall"])),
        Paint(j.organ((0, 40, -262), (44, 36, 34), amp=0.04), 15, hu["urine"], wall=(3.0, hu["bowel_wall"])),
    ]
    return st


def _small_bowel(j: Jitter, steps: int = 260, step: float = 11.0) -> Tube:
    """Small bowel as one persistent random walk from the duodenojejunal flexure to the caecum,
    confined to the lower abdomen (painting only into free space keeps it off the organs)."""
    center, half = np.array([0.0, 30.0, -115.0]), np.array([85.0, 55.0, 95.0])
    p, d = np.array([-28.0, 25.0, -55.0]), np.array([-1.0, 0.0, -0.3])
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
        for _ in range(7):
            d = j.rng.normal(size=3) * [0.5, 1.0, 1.4] + [side * 0.8, 0.0, 0.0]
            mid = hilum + d / np.linalg.norm(d) * 55.0
            for _ in range(2):
                e = d / np.linalg.norm(d) + j.rng.normal(0.0, 0.45, 3)
                curve = smooth_curve(np.array([hilum, mid, mid + e / np.linalg.norm(e) * 60.0]), 5.0)
                ops.append(Paint(Tube(curve, np.linspace(4.5, 1.2, len(curve))), 0, vessel_hu, lungs, keep_label=True))
    return ops
