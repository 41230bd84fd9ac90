"""VISTA3D (MONAI's network): builders and official checkpoint loading."""

from __future__ import annotations

from voxelprompt.families.vista3d.network.builder import VISTA3D_REGISTRY, Vista3DSpec, build_vista3d, random_vista3d
from voxelprompt.families.vista3d.network.checkpoint import load_vista3d, read_state_dict, save_vista3d, spec_from_state_dict

__all__ = [
    "VISTA3D_REGISTRY",
    "Vista3DSpec",
    "build_vista3d",
    "random_vista3d",
    "load_vista3d",
    "read_state_dict",
    "save_vista3d",
    "spec_from_state_dict",
]
