"""SegVol pre-processing: foreground normalization, (D, H, W) frame, foreground crop and the way back,
normalized once and cropped per prompt."""

from __future__ import annotations

import numpy as np

from shared_paths import shared_file
from voxelprompt.imageio import read_volume
from voxelprompt.families.segvol.inference.preprocess import foreground_normalize, min_max, normalize_volume, prepare_volume
from voxelprompt.types import Volume


def test_foreground_normalization_follows_the_reference_recipe():
    rng = np.random.default_rng(1)
    hu = np.concatenate([np.full(500, -1000.0), rng.normal(50, 30, 1499), [3000.0]]).reshape(10, 20, 10)
    out = foreground_normalize(hu)
    fg = hu[hu > hu.mean()]
    lower, upper = np.percentile(fg, 0.05), np.percentile(fg, 99.95)
    expected = (np.clip(hu, lower, upper) - fg.mean()) / fg.std()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert out.dtype == np.float32
    # air is clipped to the lower bound: every air voxel becomes the minimum, i.e. 0 after min-max
    scaled = min_max(out)
    assert scaled.min() == 0.0 and scaled.max() == 1.0 and (scaled[hu == -1000.0] == 0).all()


def test_constant_image_does_not_crash():
    out = min_max(foreground_normalize(np.full((3, 4, 5), 7.0)))
    assert np.isfinite(out).all() and (out == 0).all()
    prepared = prepare_volume(Volume(np.full((3, 4, 5), 7.0, dtype=np.float32), np.eye(4)))
    assert prepared.shape == (5, 4, 3)  # nothing to crop to: the whole image


def test_crop_to_body_and_back(ras_volume):
    prepared = prepare_volume(ras_volume)
    body = ras_volume.array > -500
    idx = np.argwhere(body)
    # (D, H, W) = (K, J, I): the crop is the body's box in reversed axis order
    assert prepared.crop == (tuple(idx.min(0)[::-1]), tuple(idx.max(0)[::-1]))
    assert 0.0 <= prepared.image.min() and prepared.image.max() <= 1.0
    mask = np.ones(prepared.shape, dtype=np.uint8)
    back = prepared.to_input(mask)
    assert back.shape == ras_volume.shape and back.sum() == mask.sum()
    np.testing.assert_array_equal(prepared.from_input(back), mask)


def test_crop_keeps_prompt_anchors(ras_volume):
    corner = np.array([[0.0, 0.0, 0.0]])  # an air voxel outside the body
    prepared = prepare_volume(ras_volume, keep=[corner])
    assert prepared.crop[0] == (0, 0, 0)
    np.testing.assert_allclose(prepared.voxel_map(corner), [[0, 0, 0]])


def test_real_ct_frame():
    volume = read_volume(shared_file("data", "totalseg", "example_ct_sm.nii.gz"))
    prepared = prepare_volume(volume, crop_foreground=False)
    assert volume.orientation == "RAS" and prepared.shape == volume.shape[::-1]  # (30, 101, 122)
    np.testing.assert_allclose(prepared.image, min_max(foreground_normalize(volume.array)).transpose(2, 1, 0))
    cropped = prepare_volume(volume)
    assert all(c <= f for c, f in zip(cropped.shape, prepared.shape))


def test_normalize_once_then_crop_per_prompt(ras_volume):
    normalized = normalize_volume(ras_volume)
    whole = normalize_volume(ras_volume, crop_foreground=False)
    assert normalized.shape == whole.shape == ras_volume.shape[::-1] and normalized.volume is ras_volume
    assert normalized.foreground == prepare_volume(ras_volume).crop
    assert whole.foreground == ((0, 0, 0), tuple(s - 1 for s in whole.shape))
    before = normalized.image.copy()
    anchors = [
        [],
        [np.zeros((0, 3))],
        [np.array([[0.0, 0.0, 0.0]])],  # air outside the body
        [np.array([[39.0, 35.0, 11.0], [20.0, 18.0, 6.0]]), np.array([[0.4, 2.6, 0.0]])],
        [],  # the first crop again, after wider ones
    ]
    for keep in anchors:
        cropped = normalized.crop(keep)
        fresh = prepare_volume(ras_volume, keep=keep)
        assert cropped.crop == fresh.crop and np.array_equal(cropped.image, fresh.image)
        np.testing.assert_array_equal(cropped.image, normalized.image[cropped.region])
        for coords in keep:  # every anchor lies on a voxel of the crop
            dhw = np.floor(cropped.voxel_map(coords) + 0.5)
            assert ((dhw >= 0) & (dhw < np.asarray(cropped.shape))).all()
    np.testing.assert_array_equal(normalized.image, before)
