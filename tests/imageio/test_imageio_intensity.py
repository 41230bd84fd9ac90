"""Tests for voxelprompt.imageio.intensity: real CTs pass, rescaled CTs, MR-like and blank images warn."""

from __future__ import annotations

import numpy as np
import pytest

from shared_paths import shared_file
from voxelprompt.imageio import hounsfield_warning, read_volume
from voxelprompt.types import Volume


@pytest.fixture(scope="module")
def ct() -> Volume:
    return read_volume(shared_file("data", "totalseg", "example_ct_sm.nii.gz"))


def _mr_like(ct: Volume) -> np.ndarray:
    """A T1-like image of the same anatomy: no negatives, air dark, fat brightest, bone dark."""
    hu = ct.array
    rng = np.random.default_rng(0)
    mr = np.interp(hu, [-1024, -900, -150, -60, 0, 60, 300, 1500], [5, 20, 1800, 1600, 700, 900, 300, 100])
    return np.abs(mr + rng.normal(0, 20, hu.shape)).astype(np.float32)


@pytest.mark.parametrize(
    "case", ["ct", "crop", "dicom", "gantry"], ids=["real CT", "soft-tissue crop", "DICOM CT", "gantry-tilted CT"]
)
def test_real_ct_gives_no_warning(case, ct):
    volume = {
        "ct": lambda: ct,
        # 40x40x20 inside the abdomen (liver, kidney, some fat): no air at all.
        "crop": lambda: ct.with_array(ct.array[40:80, 30:70, 5:25].copy()),
        "dicom": lambda: read_volume(shared_file("data", "totalseg", "example_ct_dicom")),
        "gantry": lambda: read_volume(shared_file("cases", "gantry_tilt", "series")),
    }[case]()
    assert hounsfield_warning(volume) is None
    assert hounsfield_warning(volume.array) is None


def test_padding_below_air_is_not_a_reason(ct):
    padded = np.pad(ct.array, 20, constant_values=-3024.0)  # scanners pad outside the field of view
    assert hounsfield_warning(padded) is None


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("rescaled 0..1", "values span only"),
        ("rescaled 0..255", "almost no values below -100"),
        ("CT without rescale intercept", "almost no values below -100"),
        ("MR-like", "almost no values below -100"),
        ("MR noise", "almost no values below -100"),
        ("z-scored", "values span only"),
        ("tenth HU", "beyond air (-1000) and dense bone"),
        ("constant", "every voxel is 7"),
        ("all air", "every voxel is -1000"),
    ],
)
def test_non_hu_intensities_warn(case, words, ct):
    hu = ct.array
    array = {
        "rescaled 0..1": lambda: (hu - hu.min()) / (hu.max() - hu.min()),
        "rescaled 0..255": lambda: np.round(255 * (hu - hu.min()) / (hu.max() - hu.min())),
        "CT without rescale intercept": lambda: hu + 1024,
        "MR-like": lambda: _mr_like(ct),
        "MR noise": lambda: np.random.default_rng(1).gamma(2.0, 300.0, hu.shape).clip(0, 2000),
        "z-scored": lambda: (hu - hu.mean()) / hu.std(),
        "tenth HU": lambda: hu * 10,
        "constant": lambda: np.full((10, 10, 10), 7.0),
        "all air": lambda: np.full((10, 10, 10), -1000.0),
    }[case]().astype(np.float32)
    message = hounsfield_warning(ct.with_array(array, source="in.nii.gz"))
    assert message is not None
    assert message.startswith("in.nii.gz: intensities do not look like CT Hounsfield units: ")
    assert words in message
    assert message.endswith("CT models expect HU (air -1000, water 0)")
    assert "\n" not in message
    assert hounsfield_warning(array).startswith("intensities do not look like CT")  # a bare array: no source


def test_large_volume_is_subsampled_quickly():
    import time

    array = np.random.default_rng(2).normal(0, 400, (400, 400, 100)).astype(np.float32)
    start = time.perf_counter()
    assert hounsfield_warning(array) is None
    assert time.perf_counter() - start < 1.0
