"""The phantom's body: tissue densities per contrast phase, random perturbations, the diaphragm and
the trunk (outline, skin, fat, muscle wall, lungs), in the canonical body frame.

Canonical frame: RAS+ mm, origin mid-abdomen, z = 0 near the T12/L1 disc; :mod:`voxelprompt.data.phantom`
scales and shifts it per case.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voxelprompt.data.shapes import Canvas, Ellipsoid, rotation, smooth_curve

__all__ = ["OUTSIDE", "SUBCUTANEOUS", "PHASES", "tissue_hu", "Jitter", "Diaphragm", "Trunk"]

#: Labels of the air around the body and of skin + subcutaneous fat while painting, so steps that
#: fill free space (label 0) stay inside the muscle wall; both become 0 at the end.
OUTSIDE, SUBCUTANEOUS = 255, 254
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
    "lung_nodule": (30, 45, 50),
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
        right = self.right_top - 0.0035 * (x - 50.0) ** 2 - 0.003 * y**2 - 0.008 * back
        left = self.left_top - 0.0035 * (x + 50.0) ** 2 - 0.003 * y**2 - 0.008 * back
        return np.maximum(right, left)

    def below(self, margin: float = 3.0):
        return lambda x, y, z: z < self(x, y) - margin

    def above(self, margin: float = 3.0):
        return lambda x, y, z: z > self(x, y) + margin


_PROFILE_Z = np.array([-330, -250, -180, -100, 0, 80, 160, 240, 300, 335, 380], dtype=np.float64)
_HALF_WIDTH = np.array([150, 168, 165, 160, 160, 158, 155, 145, 128, 95, 60], dtype=np.float64)
_ANTERIOR = np.array([95, 100, 100, 105, 105, 110, 112, 105, 95, 65, 50], dtype=np.float64)
_POSTERIOR = np.array([100, 105, 105, 110, 110, 115, 118, 115, 110, 70, 55], dtype=np.float64)


class Trunk:
    """Body outline, skin, subcutaneous fat, muscle wall, and inside it fat, diaphragm and lungs.

    Rendered slab by slab over the whole canvas (the one step that touches every voxel).
    """

    def __init__(self, rng: np.random.Generator, hu: dict[str, float], diaphragm: Diaphragm):
        wobble = lambda: 1.0 + rng.normal(0.0, 0.03, len(_PROFILE_Z))  # noqa: E731
        self.half_width, self.anterior, self.posterior = (
            _HALF_WIDTH * wobble(),
            _ANTERIOR * wobble(),
            _POSTERIOR * wobble(),
        )
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

    def layers(self, x, y, z) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Depth below the skin (mm, along rays from the body axis), and the depths at which the fat
        and the muscle wall end, for broadcastable coordinate arrays (z varying along the last axis)."""
        a, ant, post, fat, muscle = (np.asarray(v, dtype=np.float32) for v in self.profile(z))
        b = np.where(y > 0, ant, post)
        rho = np.sqrt((x / a) ** 2 + (y / b) ** 2)
        depth = np.sqrt(x**2 + y**2) * (1.0 - rho) / np.maximum(rho, 1e-6)
        depth = np.minimum(depth, y + 0.93 * post)  # flat back on the table
        fat_end = 2.0 + fat * (1.0 + 0.5 * np.clip(y / b, -1.0, 1.0))
        return depth, fat_end, fat_end + muscle

    def apex(self, x):
        """Height (mm) of the lung apices' domes."""
        return 325.0 - 0.012 * np.maximum(np.abs(x) - 45.0, 0.0) ** 2

    def render(self, canvas: Canvas, slab: int = 24) -> None:
        hu = self.hu
        x, y, z_all = canvas.axes
        x3, y3 = x[:, None, None], y[None, :, None]
        zd = self.diaphragm(x3, y3).astype(np.float32)
        lowest_dome = float(zd.min())
        lut = np.array([hu["air"], hu["skin"], hu["fat"], hu["muscle"], hu["visceral_fat"]], dtype=np.float32)
        label_lut = np.array([OUTSIDE, SUBCUTANEOUS, SUBCUTANEOUS, 0, 0], dtype=np.uint8)
        for k0 in range(0, len(z_all), slab):
            z = z_all[k0 : k0 + slab][None, None, :]
            depth, fat_end, muscle_end = self.layers(x3, y3, z)
            layer = (depth >= 0).astype(np.uint8) + (depth >= 2.0) + (depth >= fat_end) + (depth >= muscle_end)
            image, labels = lut[layer], label_lut[layer]
            if float(z.max()) > lowest_dome - 3:
                self._thorax(image, labels, layer == 4, x3, y3, z, zd)
            canvas.image[:, :, k0 : k0 + z.shape[2]] = image
            canvas.labels[:, :, k0 : k0 + z.shape[2]] = labels

    def _thorax(self, image, labels, cavity, x, y, z, zd) -> None:
        hu = self.hu
        rel = z - zd
        diaphragm = cavity & (np.abs(rel) <= 3.0)
        image[diaphragm] = hu["muscle"]
        apex = self.apex(x)
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
