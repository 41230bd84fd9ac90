"""Fixtures of the VISTA3D session tests: the tiny model with 64^3 windows, and the CT crop."""

from __future__ import annotations

import pytest

from voxelprompt.imageio import read_volume
from voxelprompt.families.vista3d.inference.profiles import get_profile
from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter

SESSION_ROI = (64, 64, 64)


@pytest.fixture(scope="module")
def segmenter(tiny_net, tiny_spec):
    """The tiny VISTA3D with the bundle profile at 64^3 windows (modules may override it)."""
    return Vista3DSegmenter(tiny_net, tiny_spec, profile=get_profile("bundle").with_roi(SESSION_ROI))


@pytest.fixture(scope="module")
def volume(ct_crop_path):
    """The shared real CT's crop (modules may override it)."""
    return read_volume(ct_crop_path)
