"""How a VISTA3D model runs: its options record, whose fields carry their command-line flags."""

from __future__ import annotations

from dataclasses import dataclass

from voxelprompt.errors import VoxelPromptError
from voxelprompt.families.options import option

__all__ = ["Vista3DOptions", "PROFILES", "ENGINES"]

PROFILES = ("bundle", "research")
ENGINES = ("exact", "reference", "fast")


@dataclass(frozen=True)
class Vista3DOptions:
    """How a VISTA3D model runs.

    Args:
        profile: official pipeline, ``bundle`` (MONAI model zoo) or ``research`` (VISTA repository).
        engine: ``exact``, ``reference`` or ``fast`` (:mod:`voxelprompt.families.vista3d.inference.engine`).
        amp: float16 autocast (CUDA only).
        roi_size: sliding-window size in model voxels (H, W, D); None: the profile's.
    """

    profile: str = option(
        "bundle", "--profile", "VISTA3D: official pipeline, bundle (MONAI model zoo) or research (VISTA repository); omitted: bundle.",
        choices=PROFILES,
    )  # fmt: skip
    engine: str = option(
        "exact", "--engine", "VISTA3D class prompts: exact (official labels, faster), reference (MONAI's inferer) or fast (approximate); omitted: exact.",
        choices=ENGINES,
    )  # fmt: skip
    amp: bool = option(False, "--amp", "VISTA3D: float16 autocast (CUDA only).")
    roi_size: tuple[int, int, int] | None = option(
        None, "--roi", "VISTA3D: sliding-window size in model voxels; omitted: the profile's (128 128 128).", metavar="H W D", nargs=3,
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise VoxelPromptError(f"unknown profile {self.profile!r}; choose bundle or research")
        if self.engine not in ENGINES:
            raise VoxelPromptError(f"unknown engine {self.engine!r}; choose exact, reference or fast")
