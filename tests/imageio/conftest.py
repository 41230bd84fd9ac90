"""Fixtures for the image IO tests: paths to the shared TotalSegmentator examples and derived files."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import pytest

from shared_paths import shared_file


def _shared(name: str) -> Path:
    return shared_file("data", "totalseg", name)


@pytest.fixture
def ct_path() -> Path:
    """Small abdominal CT, 122x101x30, RAS, int16 HU."""
    return _shared("example_ct_sm.nii.gz")


@pytest.fixture
def dicom_dir() -> Path:
    """A 20-slice CT DICOM series (512x512, LPS in ITK index order)."""
    return _shared("example_ct_dicom")


@pytest.fixture
def dicom_seg_path() -> Path:
    """TotalSegmentator labels for the DICOM series (LAS NIfTI: the rows are stored flipped)."""
    return _shared("example_ct_dicom_seg.nii.gz")


@pytest.fixture
def lps_ct_path(ct_path: Path, tmp_path: Path) -> Path:
    """The small CT reoriented to LPS (voxels flipped along i and j, affine adjusted)."""
    image = nib.load(ct_path)
    lps = image.as_reoriented(nib.orientations.ornt_transform(nib.io_orientation(image.affine),
                                                              nib.orientations.axcodes2ornt("LPS")))
    assert nib.aff2axcodes(lps.affine) == ("L", "P", "S")
    path = tmp_path / "ct_lps.nii.gz"
    nib.save(lps, path)
    return path

