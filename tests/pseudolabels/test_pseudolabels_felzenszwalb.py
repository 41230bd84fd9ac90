"""3D Felzenszwalb-Huttenlocher: recovers constant blocks, k and min_size act as in the paper."""

from __future__ import annotations

import numpy as np
import pytest

from voxelprompt.errors import VoxelPromptError
from voxelprompt.pseudolabels import felzenszwalb_3d
from voxelprompt.pseudolabels.felzenszwalb import grid_edges, neighbour_offsets


def adjusted_rand_index(a: np.ndarray, b: np.ndarray) -> float:
    a = np.unique(a, return_inverse=True)[1].reshape(-1)
    b = np.unique(b, return_inverse=True)[1].reshape(-1)
    table = np.zeros((a.max() + 1, b.max() + 1), dtype=np.float64)
    np.add.at(table, (a, b), 1)

    def pairs(x):
        return (x * (x - 1) / 2).sum()

    index, rows, cols, total = pairs(table), pairs(table.sum(1)), pairs(table.sum(0)), pairs(np.array([a.size]))
    expected = rows * cols / total
    return float((index - expected) / (0.5 * (rows + cols) - expected))


def blocks(noise: float = 8.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 24 x 28 x 32 volume of eight constant octants plus Gaussian noise."""
    truth = np.zeros((24, 28, 32), dtype=np.int32)
    truth[12:] += 1
    truth[:, 14:] += 2
    truth[:, :, 16:] += 4
    levels = np.array([0, 60, 120, 180, 240, 300, 360, 420], dtype=np.float32)
    image = levels[truth] + np.random.default_rng(seed).normal(0, noise, truth.shape).astype(np.float32)
    return image, truth


def test_neighbourhoods():
    assert [len(neighbour_offsets(c)) for c in (6, 18, 26)] == [3, 9, 13]
    image = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    src, dst, weight = grid_edges(image, 6)
    assert src.size == 1 * 3 * 4 + 2 * 2 * 4 + 2 * 3 * 3
    np.testing.assert_array_equal(weight, np.abs(image.ravel()[src] - image.ravel()[dst]))
    with pytest.raises(VoxelPromptError, match="connectivity"):
        neighbour_offsets(8)


@pytest.mark.parametrize("connectivity", [6, 26])
def test_recovers_noisy_constant_blocks(connectivity):
    image, truth = blocks()
    # sigma 0.5: FH's usual 0.8 blurs each step into a two-voxel ramp that becomes its own sheet.
    labels = felzenszwalb_3d(image, k=500, min_size=200, sigma=0.5, connectivity=connectivity)
    assert labels.shape == truth.shape and labels.dtype == np.int32
    assert adjusted_rand_index(labels, truth) > 0.95
    np.testing.assert_array_equal(np.unique(labels), np.arange(1, labels.max() + 1))


def test_larger_k_gives_fewer_segments():
    image, _ = blocks(noise=25.0, seed=1)
    counts = [int(felzenszwalb_3d(image, k=k, min_size=0).max()) for k in (50, 500, 5000, 50000)]
    assert counts == sorted(counts, reverse=True) and counts[0] > 4 * counts[-1], counts


def test_min_size_is_respected():
    image, _ = blocks(noise=25.0, seed=2)
    for min_size in (20, 300):
        labels = felzenszwalb_3d(image, k=50, min_size=min_size)
        assert np.bincount(labels.ravel())[1:].min() >= min_size
    assert felzenszwalb_3d(image, k=50, min_size=0).max() > felzenszwalb_3d(image, k=50, min_size=300).max()


def test_a_single_constant_volume_is_one_segment():
    assert felzenszwalb_3d(np.full((5, 6, 7), 3.0), k=1, min_size=0).max() == 1


def test_bad_input_is_rejected():
    with pytest.raises(VoxelPromptError, match="3D"):
        felzenszwalb_3d(np.zeros((4, 4)), k=1)
    with pytest.raises(VoxelPromptError, match="NaN"):
        felzenszwalb_3d(np.full((3, 3, 3), np.nan), k=1)
    with pytest.raises(VoxelPromptError, match=">= 0"):
        felzenszwalb_3d(np.zeros((3, 3, 3)), k=-1)
