"""SegVolSegmenter: labels on the input grid for any orientation, thin volumes, prompt combinations."""

from __future__ import annotations

import numpy as np
import pytest

from segvol_fixtures import as_lps
from shared_paths import shared_file
from voxelprompt.catalog import vista3d_catalog
from voxelprompt.errors import PromptError, VoxelPromptError
from voxelprompt.imageio import read_volume
from voxelprompt.inference.segvol import SegVolSegmenter
from voxelprompt.types import Box, Points, PointSpace, Prompts, Volume


@pytest.fixture(scope="module")
def segmenter(tiny_segvol) -> SegVolSegmenter:
    return SegVolSegmenter(tiny_segvol, mode="zoom")


def _world_prompts(volume: Volume) -> Prompts:
    """Text + box + clicks given in RAS mm, so the same prompts fit RAS and LPS copies of one image."""
    corners = volume.voxel_to_world(np.array([[8, 6, 2], [30, 28, 9]]))
    clicks = volume.voxel_to_world(np.array([[20, 18, 6], [5, 5, 5]]))
    return Prompts(
        text="liver",
        box=Box(tuple(corners.min(0)), tuple(corners.max(0)), PointSpace.WORLD),
        points=Points(clicks, np.array([1, 0]), PointSpace.WORLD),
    )


def test_ras_and_lps_copies_give_the_same_labels_on_their_own_grids(segmenter, ras_volume):
    lps_volume = as_lps(ras_volume)
    prompts = _world_prompts(ras_volume)
    ras = segmenter.segment(ras_volume, prompts)
    lps = segmenter.segment(lps_volume, prompts)
    for volume, result in ((ras_volume, ras), (lps_volume, lps)):
        assert result.labels.shape == volume.shape
        np.testing.assert_array_equal(result.labels.affine, volume.affine)
    assert lps.labels.orientation == "LPS"
    np.testing.assert_array_equal(lps.labels.array[::-1, ::-1], ras.labels.array)  # same physical labels
    assert ras.windows == lps.windows >= 1 and ras.classes == (vista3d_catalog().index("liver"),)


@pytest.mark.parametrize("slices", [1, 3])
def test_thin_volumes_are_padded_not_crashed(segmenter, slices):
    volume = Volume(np.random.default_rng(0).normal(0, 200, (20, 18, slices)).astype(np.float32), np.eye(4))
    result = segmenter.segment(volume, Prompts(text="spleen", points=Points.from_lists([(10, 9, 0)])))
    assert result.labels.shape == volume.shape


@pytest.mark.parametrize(
    "prompts",
    [
        Prompts(text="left kidney", box=Box((8, 6, 2), (30, 28, 9))),
        Prompts(text="aorta", points=Points.from_lists([(20, 18, 6)], [(5, 5, 5)])),
        Prompts(box=Box((8, 6, 2), (30, 28, 9)), points=Points.from_lists([(20, 18, 6)])),
        Prompts(points=Points.from_lists([(20, 18, 6)])),
        Prompts(classes=(3,)),
    ],
    ids=["text+box", "text+points", "box+points", "points", "class"],
)
def test_prompt_combinations(segmenter, ras_volume, prompts):
    result = segmenter.segment(ras_volume, prompts, label_value=7)
    assert result.labels.shape == ras_volume.shape and set(np.unique(result.labels.array)) <= {0, 7}
    assert result.windows >= 1 and result.classes == (7,)


@pytest.mark.parametrize("mode", ["sliding", "zoom-out"])
def test_other_modes(tiny_segvol, ras_volume, mode):
    result = SegVolSegmenter(tiny_segvol, mode=mode).segment(ras_volume, Prompts(text="liver"))
    assert result.labels.shape == ras_volume.shape
    assert (result.windows == 1) == (mode == "zoom-out")


def test_bad_settings_and_prompts(tiny_segvol, segmenter, ras_volume):
    with pytest.raises(VoxelPromptError, match="unknown SegVol mode"):
        SegVolSegmenter(tiny_segvol, mode="resize")
    with pytest.raises(VoxelPromptError, match="overlap"):
        SegVolSegmenter(tiny_segvol, overlap=1.0)
    with pytest.raises(PromptError, match="outside the volume"):
        segmenter.segment(ras_volume, Prompts(box=Box((0, 0, 0), (10, 10, 12))))


def test_real_ct_keeps_its_grid(segmenter):
    volume = read_volume(shared_file("data", "totalseg", "example_ct_sm.nii.gz"))
    zoom_out = SegVolSegmenter(segmenter.model, mode="zoom-out")  # one window: geometry is what is tested
    result = zoom_out.segment(volume, Prompts(text="liver", box=Box((40, 30, 5), (80, 70, 25))))
    assert result.labels.shape == volume.shape == (122, 101, 30)
    np.testing.assert_array_equal(result.labels.affine, volume.affine)
