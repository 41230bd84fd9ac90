"""SegVol prompts: validation with clear errors, mapping into frames and windows."""

from __future__ import annotations

import numpy as np
import pytest

from voxelprompt.catalog import vista3d_catalog
from voxelprompt.errors import PromptError
from voxelprompt.families.segvol.inference.preprocess import prepare_volume
from voxelprompt.families.segvol.inference.prompts import FramePrompts, check_prompts, to_frame, window_prompts
from voxelprompt.types import Box, Points, PointSpace, Prompts


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        (Prompts(text=""), "non-empty"),
        (Prompts(text="   "), "non-empty"),
        (Prompts(box=Box((10, 5, 2), (5, 20, 8))), "exceeds the upper corner .* on axis 0"),
        (Prompts(box=Box((0, 0, 0), (40, 10, 5))), "outside the volume"),
        (Prompts(box=Box((-3, 0, 0), (10, 10, 5))), "outside the volume"),
        (Prompts(points=Points.from_lists([(50, 1, 1)])), "outside the volume"),
        (Prompts(points=Points.from_lists(negative=[(5, 5, 5)])), "nothing to segment"),
        (Prompts(), "nothing to segment"),
        (Prompts(classes=(1, 3)), r"class prompts need a model family that has them \(vista3d\)"),
        (Prompts(classes=(1,), text="liver"), r"class prompts need a model family that has them \(vista3d\)"),
        (Prompts(text="liver", new_structure=True), r"zero-shot clicks \(new_structure\) need"),
        (Prompts(everything=True), r"everything prompts need a model family that has them \(vista3d\)"),
        (Prompts(text="liver", label_value=0), r"label_value must be in 1\.\.32767"),
        (Prompts(text="liver", label_value="7"), "whole number"),
    ],
)
def test_bad_prompts_raise_prompt_errors(ras_volume, prompts, message):
    with pytest.raises(PromptError, match=message):
        check_prompts(prompts, ras_volume)


def test_any_text_is_accepted_and_catalog_names_give_class_labels(ras_volume):
    assert check_prompts(Prompts(text="left  kidney"), ras_volume).label_value == vista3d_catalog().index("left kidney")
    free = check_prompts(Prompts(text="hepatic cyst of unusual shape"), ras_volume)
    assert free.text == "hepatic cyst of unusual shape" and free.label_value == 1
    from_class = check_prompts(Prompts(classes=(3,)), ras_volume)
    assert from_class.text == vista3d_catalog().name(3) and from_class.label_value == 3
    assert check_prompts(Prompts(text="liver", label_value=np.int64(9)), ras_volume).label_value == 9


def test_world_box_becomes_voxel_box(ras_volume):
    lower = ras_volume.voxel_to_world(np.array([[2, 3, 1]]))[0]
    upper = ras_volume.voxel_to_world(np.array([[20, 30, 9]]))[0]
    user = check_prompts(Prompts(box=Box(tuple(lower), tuple(upper), PointSpace.WORLD)), ras_volume)
    np.testing.assert_allclose(user.box[0], [2, 3, 1])
    np.testing.assert_allclose(user.box[1], [20, 30, 9])


@pytest.mark.parametrize("lps", [False, True])
def test_point_on_a_voxel_maps_back_to_that_voxel(ras_volume, lps):
    from segvol_fixtures import as_lps

    volume = as_lps(ras_volume) if lps else ras_volume
    voxel = (12.0, 20.0, 5.0)
    user = check_prompts(Prompts(points=Points.from_lists([voxel])), volume)
    prepared = prepare_volume(volume, keep=user.anchors())
    frame = to_frame(user, prepared.voxel_map, prepared.shape)
    np.testing.assert_allclose(prepared.voxel_map.inverse()(frame.points), [voxel])
    # and the frame voxel holds the input voxel's value
    marker = np.zeros(volume.shape, dtype=np.uint8)
    marker[tuple(int(v) for v in voxel)] = 1
    d, h, w = frame.points[0].astype(int)
    assert prepared.from_input(marker)[d, h, w] == 1


def test_box_maps_to_the_same_region_in_the_frame(ras_volume):
    user = check_prompts(Prompts(box=Box((10, 8, 2), (25, 30, 9))), ras_volume)
    prepared = prepare_volume(ras_volume, keep=user.anchors())
    frame = to_frame(user, prepared.voxel_map, prepared.shape)
    inside = np.zeros(ras_volume.shape, dtype=bool)
    inside[10:26, 8:31, 2:10] = True
    idx = np.argwhere(prepared.from_input(inside))
    np.testing.assert_array_equal(frame.box, np.concatenate([idx.min(0), idx.max(0)]))


def _frame(points, labels, box=None, text=None):
    return FramePrompts((20, 60, 60), np.array(points, dtype=float), np.array(labels), box, text)


def test_window_keeps_negative_points_and_drops_outside_ones():
    frame = _frame([[2, 5, 5], [3, 6, 6], [15, 50, 50]], [1, 0, 1])
    local = window_prompts(frame, (0, 0, 0), (8, 32, 32))
    np.testing.assert_array_equal(local.labels, [1, 0])
    np.testing.assert_allclose(local.points, [[2, 5, 5], [3, 6, 6]])
    far = window_prompts(frame, (12, 28, 28), (8, 32, 32))
    np.testing.assert_allclose(far.points, [[3, 22, 22]])  # shifted into the window


def test_window_box_is_clipped_or_dropped():
    frame = _frame(np.zeros((0, 3)), np.zeros(0, dtype=int), box=np.array([2.0, 10, 10, 10, 40, 40]))
    inside = window_prompts(frame, (0, 0, 0), (8, 32, 32))
    np.testing.assert_array_equal(inside.box, [2, 10, 10, 7, 31, 31])
    assert window_prompts(frame, (12, 0, 0), (8, 32, 32)) is None  # no box from a window it misses
    with_text = window_prompts(
        _frame(np.zeros((0, 3)), np.zeros(0, dtype=int), box=frame.box, text="liver"), (12, 0, 0), (8, 32, 32)
    )
    assert with_text.box is None and with_text.text == "liver"


def test_window_without_user_box_takes_the_coarse_mask_box():
    frame = _frame([[15, 50, 50]], [1])
    coarse = np.zeros((8, 32, 32), dtype=bool)
    coarse[2:4, 5:9, 10:12] = True
    local = window_prompts(frame, (0, 0, 0), (8, 32, 32), coarse)
    np.testing.assert_array_equal(local.box, [2, 5, 10, 3, 8, 11])
    assert window_prompts(frame, (0, 0, 0), (8, 32, 32), np.zeros_like(coarse)) is None


def test_unknown_text_is_accepted_and_the_user_is_told(ras_volume, caplog):
    with caplog.at_level("INFO", logger="voxelprompt.families.segvol.inference.prompts"):
        check_prompts(Prompts(text="pancreatic duct stent"), ras_volume)
    assert "encodes any text with CLIP" in caplog.text
