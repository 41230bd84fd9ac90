"""Outputs land on the input grid for NIfTI (RAS and LPS), NRRD and DICOM inputs.

A stub network thresholds the pre-processed image at 200 HU, so after inversion the label must
coincide with bone in the input: an axis flip, swap or shift anywhere in the chain ruins the overlap.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shared_paths import shared_file
from voxelprompt.imageio import read_volume, write_volume
from voxelprompt.families.vista3d.inference.profiles import HU_MAX, HU_MIN, get_profile
from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter
from voxelprompt.families.vista3d.network import Vista3DSpec
from voxelprompt.types import Prompts, Volume

BONE_HU = 200.0


class BoneStub(torch.nn.Module):
    """Answers class prompts with ``logit = image - threshold`` (scaled intensities)."""

    def forward(self, x, patch_coords=None, class_vector=None, transpose=False, **kwargs):
        level = (BONE_HU - HU_MIN) / (HU_MAX - HU_MIN)
        logits = ((x - level) * 50.0).repeat(len(class_vector), 1, 1, 1, 1)
        return logits.transpose(0, 1) if transpose else logits


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * (a & b).sum() / (a.sum() + b.sum())


def bone_overlap(volume: Volume) -> tuple[float, Volume]:
    # A stub in place of VISTA3D's forward runs on the reference engine; the exact engine's geometry
    # is the same code and is checked voxel for voxel in the golden tests.
    prof = get_profile("bundle").with_roi((64, 64, 64))
    seg = Vista3DSegmenter(BoneStub(), Vista3DSpec(width=8), profile=prof, engine="reference")
    out = seg.segment(volume, Prompts(classes=(122,))).labels
    return dice(out.array == 122, volume.array > BONE_HU), out


def to_lps(volume: Volume) -> Volume:
    """The same image stored with i and j reversed (an LPS-oriented file)."""
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    shift = np.eye(4)
    shift[:2, 3] = [volume.shape[0] - 1, volume.shape[1] - 1]
    return Volume(volume.array[::-1, ::-1].copy(), volume.affine @ shift @ flip, "lps")


@pytest.fixture(scope="module")
def ct(real_ct_path) -> Volume:
    return read_volume(real_ct_path)


@pytest.mark.parametrize("orientation", ["RAS", "LPS"])
@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_labels_align_with_the_input(ct, tmp_path, orientation, suffix):
    source = ct if orientation == "RAS" else to_lps(ct)
    path = write_volume(source, tmp_path / f"ct{suffix}")
    volume = read_volume(path)
    assert volume.orientation == orientation
    score, out = bone_overlap(volume)
    assert out.shape == volume.shape
    np.testing.assert_allclose(out.affine, volume.affine, atol=1e-5)
    assert score > 0.85, f"bone overlap {score:.3f}"


def test_labels_align_with_a_dicom_series():
    volume = read_volume(shared_file("data", "totalseg", "example_ct_dicom"))
    score, out = bone_overlap(volume)
    assert out.shape == volume.shape == (512, 512, 20)
    np.testing.assert_allclose(out.affine, volume.affine, atol=1e-6)
    assert score > 0.8, f"bone overlap {score:.3f}"


def test_a_flipped_output_would_be_caught(ct):
    """The overlap measure is sensitive: the same labels flipped along one axis score far lower."""
    score, out = bone_overlap(ct)
    flipped = dice(out.array[::-1] == 122, ct.array > BONE_HU)
    assert score > 0.85 and flipped < 0.6
