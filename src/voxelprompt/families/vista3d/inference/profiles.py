"""The two official VISTA3D inference profiles, as data.

* ``bundle``: MONAI model-zoo ``models/vista3d`` (``configs/inference.json`` + ``scripts/inferer.py``),
  what MONAI Label and most users run.
* ``research``: Project-MONAI/VISTA ``vista3d/configs/infer.yaml`` + ``scripts/infer.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from voxelprompt.catalog import LAST_SUPPORTED
from voxelprompt.errors import VoxelPromptError

__all__ = ["InferenceProfile", "PROFILES", "get_profile", "HU_MIN", "HU_MAX"]

#: ScaleIntensityRange window of both profiles (HU -> [0, 1], clipped).
HU_MIN = -963.8247715525971
HU_MAX = 1053.678477684517


@dataclass(frozen=True)
class InferenceProfile:
    """Pre-processing and windowing of one official pipeline.

    Args:
        name: profile name.
        spacing: target voxel size in mm.
        spacing_before_scale: bundle order (Spacing, CropForeground, Scale, Orientation) if True,
            research order (Scale, Orientation, Spacing) if False.
        crop_foreground: crop to voxels > 0 HU with ``crop_margin`` (bundle only).
        align_corners: ``Spacing`` resampling flag.
        roi_size: sliding-window size in model voxels.
        class_overlap: sliding-window overlap for class prompts.
        class_blend: sliding-window blending for class prompts (``constant`` or ``gaussian``).
        everything_last_id: "everything" covers ids ``1..everything_last_id`` minus the excluded set.
        drop_zero_shot_classes: like the bundle's inferer, run class prompts without a class vector
            when any id is above the model's last trained id (they then come out as background);
            the research code passes such ids (its everything set has 133) to the class head.
        unpredicted_value: label written where no window produced a prediction (NaN logits).
        everything: the "everything" class set of a model trained on fewer classes (the shipped
            demo model); None: ``1..everything_last_id`` minus the excluded set.
    """

    name: str
    spacing: tuple[float, float, float] = (1.5, 1.5, 1.5)
    spacing_before_scale: bool = True
    crop_foreground: bool = True
    crop_margin: int = 10
    align_corners: bool = False
    roi_size: tuple[int, int, int] = (128, 128, 128)
    class_overlap: float = 0.25
    class_blend: str = "constant"
    everything_last_id: int = LAST_SUPPORTED
    drop_zero_shot_classes: bool = True
    unpredicted_value: int = 255
    everything: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.class_overlap < 1.0:
            raise VoxelPromptError(f"overlap must be in [0, 1), got {self.class_overlap}")
        if any(int(r) < 16 or int(r) % 16 for r in self.roi_size):
            raise VoxelPromptError(f"roi_size must be positive multiples of 16, got {self.roi_size}")
        if any(s <= 0 for s in self.spacing):
            raise VoxelPromptError(f"spacing must be positive, got {self.spacing}")

    def with_roi(self, roi_size: tuple[int, int, int]) -> InferenceProfile:
        """The same profile with another window size (small models and tests)."""
        return replace(self, roi_size=tuple(int(r) for r in roi_size))  # type: ignore[arg-type]


PROFILES: dict[str, InferenceProfile] = {
    "bundle": InferenceProfile(name="bundle"),
    "research": InferenceProfile(
        name="research",
        spacing_before_scale=False,
        crop_foreground=False,
        align_corners=True,
        class_overlap=0.625,
        class_blend="gaussian",
        everything_last_id=LAST_SUPPORTED + 1,  # the research code's everything set includes 133
        drop_zero_shot_classes=False,
    ),
}


def get_profile(name: str | InferenceProfile) -> InferenceProfile:
    """Look up a profile by name (``bundle`` or ``research``)."""
    if isinstance(name, InferenceProfile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise VoxelPromptError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None
