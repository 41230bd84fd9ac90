"""Simulated clicks and boxes on constructed masks."""

from __future__ import annotations

import cc3d
import numpy as np
import pytest

from voxelprompt.errors import PromptError
from voxelprompt.evaluation.clicks import (
    Box,
    Click,
    bounding_box,
    center_click,
    clicks_to_points,
    correction_click,
    patch_center_clicks,
    patch_correction_clicks,
    segvol_points,
)
from voxelprompt.types import PointSpace


def _c_shape() -> np.ndarray:
    """A thick 'C' extruded along k; its centroid lies in the opening, outside the object."""
    mask = np.zeros((30, 30, 12), dtype=bool)
    mask[5:25, 5:11, 2:10] = True  # back of the C
    mask[5:11, 5:25, 2:10] = True  # upper arm
    mask[19:25, 5:25, 2:10] = True  # lower arm
    return mask


def test_center_click_of_a_cube_is_its_center():
    mask = np.zeros((21, 21, 21), dtype=bool)
    mask[5:16, 4:15, 6:17] = True
    assert center_click(mask) == (10, 9, 11)


def test_center_click_of_c_shape_is_inside_although_centroid_is_not():
    mask = _c_shape()
    centroid = tuple(int(round(v)) for v in np.argwhere(mask).mean(axis=0))
    assert not mask[centroid]
    click = center_click(mask)
    assert mask[click]


def test_center_click_picks_the_largest_component():
    mask = np.zeros((40, 20, 20), dtype=bool)
    mask[2:8, 2:8, 2:8] = True
    mask[20:34, 3:17, 3:17] = True
    click = center_click(mask)
    assert 20 <= click[0] < 34 and mask[click]


def test_center_click_falls_back_when_erosion_empties_the_mask():
    mask = np.zeros((20, 20, 20), dtype=bool)
    mask[3:17, 3:17, 9] = True  # one voxel thick: erosion removes it
    click = center_click(mask)
    assert mask[click]


def test_center_click_of_empty_mask_raises():
    with pytest.raises(PromptError, match="empty"):
        center_click(np.zeros((4, 4, 4), dtype=bool))


def test_patch_center_clicks_one_per_patch_with_object_in_volume_indices():
    mask = np.zeros((64, 32, 32), dtype=bool)
    mask[20:44, 8:24, 8:24] = True
    patches = [
        (slice(0, 32), slice(0, 32), slice(0, 32)),
        (slice(32, 64), slice(0, 32), slice(0, 32)),
        (slice(0, 16), slice(0, 32), slice(0, 32)),  # no object
    ]
    clicks = patch_center_clicks(mask, patches)
    assert clicks[2] is None
    for click, patch in zip(clicks[:2], patches[:2]):
        assert click is not None and click.label == 1
        assert mask[click.coord]
        assert all(s.start <= c < s.stop for c, s in zip(click.coord, patch))


def test_patch_center_clicks_accept_monai_sliding_window_slices():
    from monai.data.utils import dense_patch_slices

    mask = np.zeros((64, 40, 40), dtype=bool)
    mask[30:50, 10:30, 10:30] = True
    patches = dense_patch_slices((64, 40, 40), (32, 32, 32), (16, 16, 16))
    clicks = patch_center_clicks(mask, patches)
    assert len(clicks) == len(patches)
    for click, patch in zip(clicks, patches):
        assert (click is None) == (not mask[patch].any())
        if click is not None:
            assert mask[click.coord] and all(s.start <= c < s.stop for c, s in zip(click.coord, patch))


def _cube_gt() -> np.ndarray:
    gt = np.zeros((40, 40, 40), dtype=bool)
    gt[8:32, 8:32, 8:32] = True
    return gt


def test_correction_click_is_positive_in_the_largest_false_negative_component():
    gt = _cube_gt()
    pred = gt.copy()
    pred[8:20, 8:32, 8:32] = False  # large miss
    pred[30:32, 30:32, 8:12] = False  # small miss
    pred[34:37, 34:37, 34:37] = True  # small false positive
    click = correction_click(pred, gt, rng=1)
    assert click is not None and click.label == 1
    assert gt[click.coord] and not pred[click.coord]
    assert 8 <= click.coord[0] < 20


def test_correction_click_is_negative_when_false_positive_is_larger():
    gt = _cube_gt()
    pred = gt.copy()
    pred[0:8, 0:40, 0:40] = True  # big slab of false positives
    pred[20:22, 20:22, 20:22] = False  # small miss
    coord, label = correction_click(pred, gt, rng=0)
    assert label == 0
    assert pred[coord] and not gt[coord]


def test_correction_click_targets_the_larger_of_two_false_negative_components():
    gt = _cube_gt()
    pred = gt.copy()
    pred[8:14, 8:32, 8:32] = False  # 6 x 24 x 24
    pred[26:32, 8:20, 8:20] = False  # 6 x 12 x 12
    for seed in range(5):
        click = correction_click(pred, gt, rng=seed)
        assert click.label == 1 and 8 <= click.coord[0] < 14


def test_correction_click_is_none_when_prediction_is_perfect():
    gt = _cube_gt()
    assert correction_click(gt.copy(), gt) is None


def test_correction_click_is_deterministic_for_a_seed():
    gt = _cube_gt()
    pred = gt.copy()
    pred[8:20, 8:32, 8:32] = False
    assert correction_click(pred, gt, rng=7) == correction_click(pred, gt, rng=7)
    clicks = {correction_click(pred, gt, rng=seed).coord for seed in range(6)}
    assert len(clicks) > 1


def test_correction_click_center_strategy_is_nearest_centroid_of_eroded_component():
    gt = _cube_gt()
    pred = gt.copy()
    pred[8:19, 8:32, 8:32] = False  # false negatives [8:19, 8:32, 8:32], eroded [9:18, 9:31, 9:31]
    # Centroid (13, 19.5, 19.5): four voxels tie, the first in C order wins.
    assert correction_click(pred, gt, strategy="center") == Click(coord=(13, 19, 19), label=1)


def test_correction_click_falls_back_to_thin_errors():
    gt = _cube_gt()
    pred = gt.copy()
    pred[20, 10:30, 10:30] = False  # one-voxel-thick miss vanishes on erosion
    click = correction_click(pred, gt)
    assert click.label == 1 and click.coord[0] == 20


def test_patch_correction_clicks_match_their_patch():
    gt = _cube_gt()
    pred = gt.copy()
    pred[8:16, 8:32, 8:32] = False
    patches = [(slice(0, 20), slice(0, 40), slice(0, 40)), (slice(20, 40), slice(0, 40), slice(0, 40))]
    first, second = patch_correction_clicks(pred, gt, patches, rng=3)
    assert second is None
    assert first.label == 1 and gt[first.coord] and not pred[first.coord]


def test_bounding_box_is_tight_and_inclusive():
    mask = np.zeros((20, 20, 20), dtype=bool)
    mask[3:9, 5:6, 10:19] = True
    box = bounding_box(mask)
    assert box == Box(lower=(3, 5, 10), upper=(8, 5, 18))
    assert mask[box.slices].all()


def test_bounding_box_jitter_is_bounded_clipped_and_seeded():
    mask = np.zeros((20, 20, 20), dtype=bool)
    mask[1:9, 5:12, 10:19] = True
    exact = bounding_box(mask)
    boxes = [bounding_box(mask, jitter=3, rng=seed) for seed in range(10)]
    assert boxes[0] == bounding_box(mask, jitter=3, rng=0)
    assert len(set(boxes)) > 1
    for box in boxes:
        assert all(0 <= lo <= hi <= 19 for lo, hi in zip(box.lower, box.upper))
        assert all(abs(a - b) <= 3 for a, b in zip(box.lower + box.upper, exact.lower + exact.upper))


def test_segvol_points_are_one_plus_three_pairs():
    mask = _cube_gt()
    clicks = segvol_points(mask, rng=0)
    assert [c.label for c in clicks] == [1, 1, 1, 1, 0, 0, 0]
    assert all(mask[c.coord] == bool(c.label) for c in clicks)
    assert len({c.coord for c in clicks}) == 7
    assert clicks == segvol_points(mask, rng=0)
    assert clicks != segvol_points(mask, rng=1)


def test_segvol_negative_margin_keeps_negatives_around_the_object():
    mask = np.zeros((60, 60, 60), dtype=bool)
    mask[25:35, 25:35, 25:35] = True
    for seed in range(5):
        negatives = [c.coord for c in segvol_points(mask, rng=seed, negative_margin=2) if c.label == 0]
        assert len(negatives) == 3
        assert all(23 <= v < 37 for coord in negatives for v in coord)
        assert not any(mask[c] for c in negatives)


def test_clicks_to_points_skips_missing_clicks():
    points = clicks_to_points([Click((1, 2, 3), 1), None, Click((4, 5, 6), 0)])
    assert points.space is PointSpace.VOXEL
    np.testing.assert_array_equal(points.coords, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(points.labels, [1, 0])


def test_c_shape_fixture_is_one_component():
    assert cc3d.connected_components(_c_shape(), connectivity=26).max() == 1
