"""``align_to_grid``: a label map on its image's grid is kept, the same grid stored in another axis
order is reoriented (no resampling), another grid is refused naming both."""

from __future__ import annotations

import numpy as np
import pytest
from nibabel.orientations import apply_orientation, inv_ornt_aff

from shared_paths import shared_file
from voxelprompt.errors import InputError
from voxelprompt.imageio import align_to_grid, read_labels, read_volume
from voxelprompt.types import Volume

_AFFINE = np.array([[-0.8, 0, 0, 100.0], [0, -0.8, 0, 50.0], [0, 0, 2.5, -300.0], [0, 0, 0, 1]])


def _image() -> Volume:
    rng = np.random.default_rng(0)
    return Volume(rng.integers(0, 5, (12, 9, 6)).astype(np.uint8), _AFFINE, "image")


@pytest.mark.parametrize(
    "ornt",
    [
        [[0, -1], [1, 1], [2, 1]],  # i flipped
        [[1, 1], [0, 1], [2, -1]],  # i and j swapped, k flipped
        [[2, 1], [0, -1], [1, 1]],  # axes rolled, one flipped
    ],
)
def test_the_same_grid_in_another_axis_order_is_reoriented_voxel_for_voxel(ornt):
    image = _image()
    ornt = np.array(ornt, dtype=float)
    stored = Volume(apply_orientation(image.array, ornt), image.affine @ inv_ornt_aff(ornt, image.shape), "labels")
    assert stored.shape != image.shape or stored.orientation != image.orientation
    aligned = align_to_grid(stored, image)
    np.testing.assert_array_equal(aligned.array, image.array)
    np.testing.assert_array_equal(aligned.affine, image.affine)


def test_a_label_map_on_the_grid_is_kept_and_another_grid_is_refused():
    image = _image()
    assert align_to_grid(image, image).array is image.array
    shifted = image.affine.copy()
    shifted[0, 3] += 0.8  # one voxel along i
    with pytest.raises(InputError, match=r"not on the grid of image .*0\.8 mm away"):
        align_to_grid(Volume(image.array, shifted, "labels"), image)
    with pytest.raises(InputError, match=r"spacing 0\.8x0\.8x5 vs 0\.8x0\.8x2\.5 mm"):
        align_to_grid(Volume(image.array, image.affine @ np.diag([1, 1, 2.0, 1]), "labels"), image)
    with pytest.raises(InputError, match=r"shape \(12, 9, 5\) vs \(12, 9, 6\)"):
        align_to_grid(Volume(image.array[:, :, :5], image.affine, "labels"), image)


def test_the_shared_dicom_series_and_its_las_labels_are_one_grid():
    """dcm2niix wrote TotalSegmentator's labels LAS; the series reads LPS: j is flipped."""
    image = read_volume(shared_file("data", "totalseg", "example_ct_dicom"))
    labels = read_labels(shared_file("data", "totalseg", "example_ct_dicom_seg.nii.gz"))
    assert (labels.orientation, image.orientation) == ("LAS", "LPS")
    aligned = align_to_grid(labels, image)
    np.testing.assert_array_equal(aligned.array, np.asarray(labels.array)[:, ::-1, :])
