"""Voxel maps: arrays and coordinates move together between the input grid and SegVol's frames."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from voxelprompt.families.segvol.inference.geometry import Reorientation, box_voxels, resize_map, shift_map


def _affine(codes: str) -> np.ndarray:
    """A 1.5 x 2 x 3 mm affine whose voxel axes point along ``codes`` (e.g. "LPS", "SAR")."""
    ornt = nib.orientations.axcodes2ornt(tuple(codes))
    affine = nib.orientations.inv_ornt_aff(ornt, (5, 6, 7))
    return np.linalg.inv(affine) @ np.diag([1.5, 2.0, 3.0, 1.0])


@pytest.mark.parametrize("codes", ["RAS", "LPS", "LAS", "SAR", "PIL"])
def test_array_and_point_maps_agree(codes):
    affine = _affine(codes)
    assert "".join(nib.aff2axcodes(affine)) == codes
    shape = (5, 6, 7)
    reo = Reorientation(affine, shape)
    array = np.zeros(shape, dtype=np.int16)
    marker = (1, 4, 2)
    array[marker] = 7
    dhw = reo.to_dhw(array)
    assert dhw.shape == reo.out_shape
    mapped = reo.voxel_map(np.array([marker]))[0]
    assert dhw[tuple(mapped.astype(int))] == 7
    np.testing.assert_array_equal(reo.from_dhw(dhw), array)
    np.testing.assert_allclose(reo.voxel_map.inverse()(mapped[None])[0], marker)


@pytest.mark.parametrize("codes", ["RAS", "LPS", "PIL"])
def test_dhw_axes_run_superior_anterior_right(codes):
    """(D, H, W) = (K, J, I) of the RAS array: moving along d goes up, h forwards, w to the right."""
    affine = _affine(codes)
    reo = Reorientation(affine, (5, 6, 7))
    to_input = reo.voxel_map.inverse()
    origin = to_input(np.zeros((1, 3)))
    for axis, world_axis in zip(range(3), (2, 1, 0)):
        step = np.zeros((1, 3))
        step[0, axis] = 1
        world = (np.c_[to_input(step), [1]] @ affine.T)[0, :3] - (np.c_[origin, [1]] @ affine.T)[0, :3]
        assert world[world_axis] > 0 and np.count_nonzero(np.round(world, 6)) == 1


def test_ras_is_reversed_axes():
    reo = Reorientation(np.diag([1.0, 1.0, 1.0, 1.0]), (4, 5, 6))
    assert reo.out_shape == (6, 5, 4)
    np.testing.assert_allclose(reo.voxel_map(np.array([[1, 2, 3]])), [[3, 2, 1]])


def test_resize_map_round_trips_and_matches_nearest_exact():
    src, dst = (12, 36, 40), (8, 32, 32)
    to_dst = resize_map(src, dst)
    points = np.array([[0, 0, 0], [11, 35, 39], [5, 17, 20]], dtype=float)
    np.testing.assert_allclose(to_dst.inverse()(to_dst(points)), points, atol=1e-12)
    # A box maps onto exactly the voxels a nearest-exact resize of the box mask covers.
    mask = torch.zeros(src)
    lower, upper = (3, 10, 5), (9, 30, 21)
    mask[3:10, 10:31, 5:22] = 1
    resized = F.interpolate(mask[None, None], size=dst, mode="nearest-exact")[0, 0]
    idx = torch.nonzero(resized)
    lo, hi = box_voxels(*to_dst.map_box(lower, upper))
    np.testing.assert_array_equal(lo, idx.min(0).values.numpy())
    np.testing.assert_array_equal(hi, idx.max(0).values.numpy())


def test_upsampling_maps_voxel_centres_onto_voxel_centres_back():
    to_big = resize_map((4, 5, 6), (8, 32, 32))
    voxel = np.array([[2.0, 3.0, 1.0]])
    back = to_big.inverse()(np.round(to_big(voxel)))
    np.testing.assert_array_equal(np.floor(back + 0.5), voxel)


def test_thin_box_keeps_one_voxel():
    lo, hi = box_voxels(np.array([0.2, 0.0, 0.0]), np.array([0.4, 3.0, 3.0]))
    assert lo[0] == hi[0] == 0 and (lo[1:] == 0).all() and (hi[1:] == 2).all()


def test_shift_and_compose():
    m = shift_map((2, 3, 4)).then(resize_map((10, 10, 10), (20, 20, 20)))
    np.testing.assert_allclose(m.inverse()(m(np.array([[5.0, 6.0, 7.0]]))), [[5.0, 6.0, 7.0]])
