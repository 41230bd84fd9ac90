"""SegVol pseudo masks: cleaning (1 per mille, opening/closing, small components), GT merge, pipeline, cache."""

from __future__ import annotations

import numpy as np
import pytest

from voxelprompt.data import PhantomConfig, make_phantom
from voxelprompt.errors import VoxelPromptError
from voxelprompt.pseudolabels import (
    clean_pseudo_masks,
    merge_ground_truth,
    pseudo_masks,
)
from voxelprompt.pseudolabels.pseudomasks import working_shape
from voxelprompt.types import Volume


def test_cleaning_drops_tiny_masks_and_keeps_big_ones():
    labels = np.zeros((40, 40, 40), dtype=np.int32)  # 64,000 voxels: 1 per mille = 64
    labels[2:20, 2:20, 2:20] = 7  # big cube
    labels[25:28, 25:28, 25:28] = 3  # 27 voxels: below the threshold
    labels[22:38, 22:38, 2:10] = 9  # big slab ...
    labels[30:34, 30:34, 30:33] = 9  # ... plus a 48-voxel island of the same id: a small component
    labels[2:20, 10, 25] = 5  # a one-voxel-thin line: big enough by count? no, 18 voxels
    cleaned = clean_pseudo_masks(labels)
    assert cleaned.max() == 2  # ids 7 and 9 survive, renumbered 1 and 2 in id order
    assert (cleaned[3:19, 3:19, 3:19] == 1).all()  # opening with the cross rounds off the 12 edges
    assert (cleaned[labels == 3] == 0).all() and (cleaned[30:34, 30:34, 30:33] == 0).all()
    assert (cleaned[23:37, 23:37, 3:9] == 2).all() and (cleaned == 2).sum() > 0.8 * 16 * 16 * 8


def test_opening_removes_thin_protrusions():
    labels = np.zeros((30, 30, 30), dtype=np.int32)
    labels[5:25, 5:25, 5:25] = 1
    labels[15, 15, 25:29] = 1  # a spike one voxel wide
    cleaned = clean_pseudo_masks(labels)
    # The spike's first voxel survives: the face voxel under it keeps all six neighbours.
    assert (cleaned[15, 15, 26:29] == 0).all() and cleaned[15, 15, 15] == 1
    kept = clean_pseudo_masks(labels, opening=False, closing=False)
    assert (kept[15, 15, 25:29] == 1).all()


def test_cleaning_rejects_bad_input():
    with pytest.raises(VoxelPromptError, match="integer"):
        clean_pseudo_masks(np.zeros((4, 4, 4), dtype=np.float32))
    with pytest.raises(VoxelPromptError, match="min_fraction"):
        clean_pseudo_masks(np.zeros((4, 4, 4), dtype=np.int32), min_fraction=1.5)


def test_ground_truth_replaces_pseudo_masks():
    pseudo = np.ones((4, 4, 4), dtype=np.int32)
    pseudo[2:] = 2
    gt = np.zeros_like(pseudo)
    gt[0, 0, 0], gt[3, 3, 3] = 5, 1
    merged = merge_ground_truth(pseudo, gt)
    assert merged[3, 3, 3] == 3 and merged[0, 0, 0] == 4 and merged[1, 1, 1] == 1 and merged[2, 2, 2] == 2


def test_working_shape_caps_the_voxel_count():
    assert working_shape((64, 64, 64), 64**3) == (64, 64, 64)
    shape = working_shape((512, 512, 300), 128**3)
    assert np.prod(shape) <= 128**3 and shape[0] == shape[1] and shape[0] > 1.6 * shape[2]


@pytest.fixture(scope="module")
def phantom() -> tuple[Volume, Volume]:
    return make_phantom(PhantomConfig(shape=(40, 40, 40), seed=3))


def test_pseudo_masks_on_a_phantom_keep_the_grid_and_cache(phantom, tmp_path):
    image, labels = phantom
    masks = pseudo_masks(image, k=500, min_size=50, max_voxels=24**3, cache_dir=tmp_path)
    assert masks.shape == image.shape and np.array_equal(masks.affine, image.affine)
    ids, counts = np.unique(masks.array, return_counts=True)
    np.testing.assert_array_equal(ids, np.arange(ids.size))
    assert ids.size > 3 and counts[1:].min() >= 1e-3 * image.array.size
    (cached,) = tmp_path.glob("*.pseudomasks.*.npz")
    again = pseudo_masks(image, k=500, min_size=50, max_voxels=24**3, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.array, masks.array)
    with_gt = pseudo_masks(image, k=500, min_size=50, max_voxels=24**3, ground_truth=labels)
    liver = labels.array == 1
    assert np.unique(with_gt.array[liver]).size <= 3  # the liver is (almost) one mask now
    assert len(list(tmp_path.glob("*.npz"))) == 1 and cached.exists()


def test_pseudo_masks_reject_a_ground_truth_on_another_grid(phantom):
    image, _ = phantom
    with pytest.raises(VoxelPromptError, match="ground truth shape"):
        pseudo_masks(image, ground_truth=np.zeros((3, 3, 3), dtype=np.uint8))
