"""Identifying a mask's class: ranked probabilities over category names (paper Fig. 5)."""

from __future__ import annotations

import numpy as np
import pytest

from voxelprompt.catalog import vista3d_catalog
from voxelprompt.errors import InputError, PromptError
from voxelprompt.families.segvol.inference import SegVolSegmenter, default_categories, identify_mask, prepare_volume
from voxelprompt.types import Box, Prompts, Volume

NAMES = ["liver", "spleen", "left kidney", "aorta"]


@pytest.fixture(scope="module")
def segmenter(tiny_segvol) -> SegVolSegmenter:
    return SegVolSegmenter(tiny_segvol)


def _organ_mask(volume: Volume) -> Volume:
    mask = np.zeros(volume.shape, dtype=np.uint8)
    mask[24:34, 14:22, 3:9] = 1
    return volume.with_array(mask)


def test_ranked_probabilities_sum_to_one(segmenter, ras_volume):
    result = segmenter.identify(ras_volume, _organ_mask(ras_volume), categories=NAMES)
    probabilities = [s.probability for s in result.scores]
    assert sorted(s.name for s in result.scores) == sorted(NAMES)
    assert probabilities == sorted(probabilities, reverse=True) and abs(sum(probabilities) - 1) < 1e-5
    assert result.best == result.scores[0] and result.voxels == 10 * 8 * 6


def test_a_mask_array_equals_the_mask_volume_and_the_low_level_path(segmenter, tiny_segvol, ras_volume):
    mask = _organ_mask(ras_volume)
    from_volume = segmenter.identify(ras_volume, mask, categories=NAMES)
    from_array = segmenter.identify(ras_volume, mask.array.astype(bool), categories=NAMES)
    where = np.argwhere(mask.array)
    prepared = prepare_volume(ras_volume, keep=[np.stack([where.min(0), where.max(0)]).astype(np.float64)])
    low_level = identify_mask(tiny_segvol, prepared, prepared.from_input(mask.array != 0), NAMES)
    assert from_volume == from_array == low_level


def test_identify_after_a_box_prompt(segmenter, ras_volume):
    labels = segmenter.segment(ras_volume, Prompts(box=Box((20, 10, 2), (35, 25, 9)))).labels
    result = segmenter.identify(ras_volume, labels, categories=NAMES)
    assert len(result.scores) == len(NAMES)


def test_default_categories_are_the_catalog_names(tiny_segvol, ras_volume):
    names = default_categories()
    assert "liver" in names and len(names) == len(set(vista3d_catalog().names.values()))
    prepared = prepare_volume(ras_volume)
    mask = np.zeros(prepared.shape, dtype=bool)
    mask[4:6, 10:12, 10:12] = True
    result = identify_mask(tiny_segvol, prepared, mask, batch_size=64)
    assert len(result.scores) == len(names)


def test_bad_identify_inputs(segmenter, ras_volume):
    with pytest.raises(PromptError, match="empty"):
        segmenter.identify(ras_volume, ras_volume.with_array(np.zeros(ras_volume.shape, np.uint8)))
    with pytest.raises(PromptError, match="at least two"):
        segmenter.identify(ras_volume, _organ_mask(ras_volume), categories=["liver"])
    other_grid = Volume(np.ones((4, 4, 4), np.uint8), np.eye(4))
    with pytest.raises(InputError, match="not on the grid"):
        segmenter.identify(ras_volume, other_grid)
    with pytest.raises(InputError, match="not on the grid"):
        segmenter.identify(ras_volume, np.ones((4, 4, 4), bool))
    other_spacing = Volume(_organ_mask(ras_volume).array, ras_volume.affine @ np.diag([1.0, 1.0, 2.0, 1.0]))
    with pytest.raises(InputError, match="not on the grid"):
        segmenter.identify(ras_volume, other_spacing)
