"""The shared window maths: MONAI's window grid, the families' previous formulas, pad/unpad, averaging."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from monai.data.utils import dense_patch_slices
from monai.inferers.utils import _get_scan_interval

from voxelprompt.inference.sliding import (
    OverlapAverage,
    axis_starts,
    grid_starts,
    pad_to_window,
    pad_widths,
    scan_interval,
    unpad,
)

SIZES = [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 200, 257, 511]
WINDOWS = [1, 2, 3, 5, 8, 16, 32, 64, 96, 128]
OVERLAPS = [0.0, 0.1, 0.25, 1 / 3, 0.5, 0.625, 0.75, 0.9, 0.99]


def _previous_segvol_starts(size: int, window: int, overlap: float) -> list[int]:
    """SegVol's ``window_starts`` before the shared module, kept verbatim as the reference."""
    if size <= window:
        return [0]
    interval = max(int(window * (1.0 - overlap)), 1)
    count = int(np.ceil((size - window) / interval)) + 1
    return sorted({min(i * interval, size - window) for i in range(count)})


def _monai_starts(shape, window, overlap) -> list[tuple[int, ...]]:
    """MONAI's ``sliding_window_inference`` grid of a shape at least ``window`` large, in its order."""
    interval = _get_scan_interval(shape, window, len(shape), (overlap,) * len(shape))
    return [tuple(s.start for s in w) for w in dense_patch_slices(shape, window, interval)]


@pytest.mark.parametrize("overlap", OVERLAPS)
def test_axis_starts_match_monai_and_the_previous_segvol_formula(overlap):
    for size, window in itertools.product(SIZES, WINDOWS):
        starts = axis_starts(size, window, overlap)
        padded = max(size, window)  # both families pad a short axis up to the window first
        assert starts == [s[0] for s in _monai_starts((padded,), (window,), overlap)], (size, window)
        assert starts == _previous_segvol_starts(size, window, overlap), (size, window)
        assert starts[0] == 0 and starts[-1] + window == padded and starts == sorted(set(starts))


@pytest.mark.parametrize(
    ("shape", "window"),
    [((100, 70, 130), (64, 64, 64)), ((12, 36, 40), (8, 32, 32)), ((5, 40, 32), (8, 32, 32)), ((3, 300), (4, 96))],
)
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.625])
def test_grid_starts_are_monais_grid_in_monais_order(shape, window, overlap):
    padded = tuple(max(s, w) for s, w in zip(shape, window))
    assert grid_starts(shape, window, overlap) == _monai_starts(padded, window, overlap)


def test_scan_interval_and_bad_arguments():
    assert scan_interval(128, 0.25) == 96 and scan_interval(8, 0.99) == 1 and scan_interval(64, 0.625) == 24
    with pytest.raises(ValueError, match=r"overlap must be in \[0, 1\), got 1.0"):
        axis_starts(10, 4, 1.0)
    with pytest.raises(ValueError, match="overlap must be in"):
        grid_starts((10, 10), (4, 4), -0.1)
    with pytest.raises(ValueError, match="at least one voxel"):
        axis_starts(10, 0, 0.5)
    with pytest.raises(ValueError, match="numbers of axes"):
        grid_starts((10, 10, 10), (4, 4), 0.5)


@pytest.mark.parametrize("shape", [(5, 40, 32), (8, 31, 33), (1, 1, 1), (9, 32, 32), (2, 3, 40)])
def test_pad_splits_like_monai_and_unpad_restores_the_tensor(shape):
    window = (8, 32, 32)
    image = torch.arange(int(np.prod(shape)), dtype=torch.float32).reshape(1, 1, *shape) + 1
    padded, before = pad_to_window(image, window)
    widths = pad_widths(shape, window)
    assert before == tuple(b for b, _ in widths)
    assert tuple(padded.shape[-3:]) == tuple(max(s, w) for s, w in zip(shape, window))
    for axis, (b, a) in enumerate(widths):
        diff = max(window[axis] - shape[axis], 0)
        assert (b, a) == (diff // 2, diff - diff // 2)  # MONAI's split: the smaller half before
    torch.testing.assert_close(unpad(padded, before, shape), image, rtol=0, atol=0)
    assert float(padded.sum()) == float(image.sum())  # the padding is zeros
    # numpy pads the same way (SegVol pads its coarse mask with these widths)
    np.testing.assert_array_equal(np.pad(image[0, 0].numpy(), widths), padded[0, 0].numpy())


def test_pad_returns_the_input_when_nothing_is_short_and_unpad_is_a_view():
    image = torch.rand(2, 9, 33, 40)
    padded, before = pad_to_window(image, (8, 32, 32))
    assert padded is image and before == (0, 0, 0)
    small = torch.rand(3, 4)
    padded, before = pad_to_window(small, (8,), value=-1.0)  # only the last axis
    assert padded.shape == (3, 8) and before == (2,) and float(padded[0, 0]) == -1.0
    view = unpad(padded, before, (4,))
    assert view.data_ptr() == padded[:, 2:].data_ptr()


def test_overlap_average_is_the_constant_weight_mean_and_nan_where_nothing_was_added():
    average = OverlapAverage((1, 10))
    average.add((slice(None), slice(0, 6)), torch.full((1, 6), 2.0))
    average.add((slice(None), slice(4, 8)), torch.full((1, 4), 4.0))
    result = average.result()
    assert result[0, :4].tolist() == [2.0] * 4 and result[0, 4:6].tolist() == [3.0] * 2
    assert result[0, 6:8].tolist() == [4.0] * 2 and bool(torch.isnan(result[0, 8:]).all())
