"""Fixtures of the SegVol inference tests: a tiny SegVol (8x32x32 windows) and a small phantom CT."""

from __future__ import annotations

import numpy as np
import pytest

from segvol_fixtures import body_phantom, build_tiny_segvol
from voxelprompt.families.segvol.network import SegVol
from voxelprompt.types import Volume


@pytest.fixture(scope="session")
def tiny_segvol() -> SegVol:
    return build_tiny_segvol()


@pytest.fixture()
def ras_volume() -> Volume:
    return Volume(body_phantom(), np.diag([1.5, 1.5, 3.0, 1.0]), "phantom RAS")


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every SegVol inference test runs on one torch thread (``one_thread`` in tests/conftest.py)."""
