"""Fixtures of the SegVol inference tests: a tiny SegVol (8x32x32 windows) and a small phantom CT."""

from __future__ import annotations

import numpy as np
import pytest

from segvol_fixtures import body_phantom, build_tiny_segvol
from voxelprompt.models.segvol import SegVol
from voxelprompt.types import Volume


@pytest.fixture(scope="session")
def tiny_segvol() -> SegVol:
    return build_tiny_segvol()


@pytest.fixture()
def ras_volume() -> Volume:
    return Volume(body_phantom(), np.diag([1.5, 1.5, 3.0, 1.0]), "phantom RAS")


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks gain nothing from threads, and on a busy 2-core machine threads slow them ~50x."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
