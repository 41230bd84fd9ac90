"""Dice and NSD against cases whose answers follow from their construction."""

from __future__ import annotations

import numpy as np
import pytest

from voxelprompt.errors import InputError, VoxelPromptError
from voxelprompt.evaluation.metrics import ClassScore, dice, score_class, score_labels, surface_dice


def _cube(shape, lower, size):
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(lo, lo + size) for lo in lower)] = True
    return mask


@pytest.mark.parametrize("shift", [(3, 0, 0), (0, 2, 5), (1, 1, 1)])
def test_dice_of_shifted_cubes_matches_overlap_by_hand(shift):
    n = 10
    a = _cube((24, 24, 24), (4, 4, 4), n)
    b = _cube((24, 24, 24), tuple(4 + s for s in shift), n)
    overlap = np.prod([n - s for s in shift])
    expected = 2 * overlap / (n**3 + n**3)
    assert dice(b, a) == pytest.approx(expected)
    score = score_class(b.astype(np.uint8), a.astype(np.uint8), 1, (1.0, 1.0, 1.0))
    assert score.dice == pytest.approx(expected)


# Cube of n voxels shifted by one voxel along `axis`, whose spacing is 0.5 mm; the other axes
# have 4 mm voxels. Boundary voxels: E = n^3 - (n-2)^3 per mask. Per mask, the outer face that
# leaves the other cube (n^2 voxels) and the inner part of the opposite face ((n-2)^2 voxels) lie
# exactly 0.5 mm from the other boundary; every other boundary voxel lies on it (0 mm). Moving
# sideways costs at least 4 mm, so no shorter path exists.
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("tolerance, expected", [(0.4, "partial"), (0.5, 1.0), (0.75, 1.0), (3.9, 1.0)])
def test_nsd_of_shifted_cube_with_anisotropic_spacing(axis, tolerance, expected):
    n = 10
    shape = (20, 20, 20)
    shift = [0, 0, 0]
    shift[axis] = 1
    a = _cube(shape, (5, 5, 5), n)
    b = _cube(shape, tuple(5 + s for s in shift), n)
    spacing = [4.0, 4.0, 4.0]
    spacing[axis] = 0.5
    if expected == "partial":
        boundary = n**3 - (n - 2) ** 3
        expected = 1 - (n**2 + (n - 2) ** 2) / boundary
    assert surface_dice(b, a, spacing, tolerance_mm=tolerance) == pytest.approx(expected, abs=1e-6)


def test_nsd_uses_physical_spacing_per_axis():
    a = _cube((20, 20, 20), (5, 5, 5), 10)
    b = _cube((20, 20, 20), (6, 5, 5), 10)
    # 0.5 mm along the shifted axis is within 0.75 mm; the same shift on a 4 mm axis is not.
    assert surface_dice(b, a, (0.5, 4.0, 4.0), tolerance_mm=0.75) == pytest.approx(1.0)
    assert surface_dice(b, a, (4.0, 4.0, 0.5), tolerance_mm=0.75) < 0.7


def test_identical_masks_score_one():
    a = _cube((16, 16, 16), (3, 4, 5), 6)
    score = score_class(a, a, 1, (1.0, 2.0, 3.0))
    assert (score.dice, score.nsd) == (pytest.approx(1.0), pytest.approx(1.0))


def test_empty_versus_empty_is_one_and_flagged():
    empty = np.zeros((8, 8, 8), dtype=np.uint8)
    score = score_class(empty, empty, 3, (1.0, 1.0, 1.0))
    assert (score.dice, score.nsd) == (1.0, 1.0)
    assert score.reference_empty
    assert score.reference_voxels == 0 and score.predicted_voxels == 0


@pytest.mark.parametrize("empty_side", ["pred", "gt"])
def test_empty_versus_nonempty_is_zero(empty_side):
    full = _cube((12, 12, 12), (2, 2, 2), 5).astype(np.uint8)
    empty = np.zeros_like(full)
    pred, gt = (empty, full) if empty_side == "pred" else (full, empty)
    score = score_class(pred, gt, 1, (1.0, 1.0, 1.0))
    assert (score.dice, score.nsd) == (0.0, 0.0)
    assert score.reference_empty == (empty_side == "gt")


def test_score_labels_covers_classes_of_both_maps_in_order():
    gt = np.zeros((20, 20, 20), dtype=np.int16)
    pred = np.zeros_like(gt)
    gt[2:8, 2:8, 2:8] = 5
    pred[2:8, 2:8, 2:8] = 5
    gt[10:14, 10:14, 10:14] = 2  # missed entirely
    pred[15:18, 15:18, 15:18] = 9  # hallucinated
    scores = score_labels(pred, gt, (1.0, 1.0, 1.0), tolerance_mm=1.0)
    assert [s.label for s in scores] == [2, 5, 9]
    assert all(isinstance(s, ClassScore) for s in scores)
    by_label = {s.label: s for s in scores}
    assert by_label[5].dice == pytest.approx(1.0) and by_label[5].nsd == pytest.approx(1.0)
    assert by_label[2].dice == 0.0 and not by_label[2].reference_empty
    assert by_label[9].dice == 0.0 and by_label[9].reference_empty
    assert by_label[5].tolerance_mm == 1.0


def test_score_labels_with_explicit_labels_includes_absent_class():
    gt = np.zeros((6, 6, 6), dtype=np.uint8)
    scores = score_labels(gt, gt, (1.0, 1.0, 1.0), labels=[4])
    assert [(s.label, s.dice, s.nsd) for s in scores] == [(4, 1.0, 1.0)]


def test_object_touching_the_border_is_scored():
    a = np.zeros((10, 10, 10), dtype=bool)
    a[:4, :, :] = True
    assert surface_dice(a, a, (1.0, 1.0, 1.0), tolerance_mm=0.0) == pytest.approx(1.0)
    assert dice(a, a) == pytest.approx(1.0)


def test_shape_mismatch_is_an_input_error():
    with pytest.raises(InputError, match="differs"):
        score_labels(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)), (1.0, 1.0, 1.0))


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (1.0, 0.0, 1.0), (1.0, float("nan"), 1.0)])
def test_bad_spacing_is_an_input_error(spacing):
    a = np.ones((4, 4, 4), dtype=np.uint8)
    with pytest.raises(InputError, match="spacing"):
        score_class(a, a, 1, spacing)


def test_negative_tolerance_is_rejected():
    a = np.ones((4, 4, 4), dtype=np.uint8)
    with pytest.raises(VoxelPromptError, match="tolerance_mm"):
        score_class(a, a, 1, (1.0, 1.0, 1.0), tolerance_mm=-1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, bool])
def test_label_map_dtypes_give_the_same_scores(dtype):
    gt = np.zeros((16, 16, 16), dtype=np.uint8)
    pred = np.zeros_like(gt)
    gt[2:9, 2:9, 2:9] = 1
    pred[3:10, 2:9, 2:9] = 1
    expected = score_labels(pred, gt, (1.0, 1.5, 2.0))
    assert score_labels(pred.astype(dtype), gt.astype(dtype), (1.0, 1.5, 2.0)) == expected
