"""Window grid, zoom-out-zoom-in and full sliding window on a tiny SegVol (8x32x32 windows)."""

from __future__ import annotations

import pytest
import torch
from monai.data.utils import dense_patch_slices

from segvol_fixtures import TINY_WINDOW
from voxelprompt.families.segvol.inference import zoom
from voxelprompt.families.segvol.inference.preprocess import prepare_volume
from voxelprompt.families.segvol.inference.prompts import check_prompts
from voxelprompt.families.segvol.inference.windows import decode_window, window_grid, window_starts
from voxelprompt.types import Box, Points, Prompts


@pytest.mark.parametrize("size", [8, 9, 16, 31, 32, 33, 100])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
def test_window_starts_match_monai(size, overlap):
    window = 8
    interval = window if size == window else max(int(window * (1 - overlap)), 1)
    expected = sorted({s[0].start for s in dense_patch_slices((size,), (window,), (interval,))})
    assert window_starts(size, window, overlap) == expected


def test_window_grid_covers_small_axes_with_one_padded_window():
    assert window_grid((5, 40, 32), TINY_WINDOW, 0.5) == [(0, 0, 0), (0, 8, 0)]


def _setup(volume, prompts, crop_foreground=True):
    user = check_prompts(prompts, volume)
    prepared = prepare_volume(volume, crop_foreground=crop_foreground, keep=user.anchors())
    return user, prepared, torch.from_numpy(prepared.image)


def _fake_coarse(monkeypatch, block):
    """Replace the zoom-out pass by logits that are positive exactly on ``block`` (slices or None = all)."""

    def coarse(model, image, prompts, text_embedding):
        logits = torch.full(tuple(image.shape), -5.0)
        logits[block] = 5.0
        return logits

    monkeypatch.setattr(zoom, "zoom_out", coarse)


def test_zoom_in_runs_windows_only_inside_the_roi(tiny_segvol, ras_volume, monkeypatch):
    user, prepared, image = _setup(ras_volume, Prompts(text="liver"))
    block = (slice(2, 4), slice(3, 6), slice(4, 8))
    _fake_coarse(monkeypatch, block)
    result = zoom.zoom_out_zoom_in(tiny_segvol, image, user, prepared.voxel_map)
    lo, hi = result.roi
    roi_shape = tuple(b - a + 1 for a, b in zip(lo, hi))
    # the ROI holds the coarse mask, spans at least a window where the image allows, lies inside the image
    assert all(a <= s.start and s.stop - 1 <= b for a, b, s in zip(lo, hi, block))
    assert all(n >= min(w, s) for n, w, s in zip(roi_shape, TINY_WINDOW, image.shape))
    assert all(0 <= a and b < s for a, b, s in zip(lo, hi, image.shape))
    # window count: one coarse pass plus the ROI's own grid, every window inside the ROI
    assert result.windows == 1 + len(window_grid(roi_shape, TINY_WINDOW, 0.5))
    full = zoom.full_sliding_window(tiny_segvol, image, user, prepared.voxel_map)
    assert len(result.window_starts) < full.windows == len(window_grid(image.shape, TINY_WINDOW, 0.5))
    for start in result.window_starts:  # the part of each window on the image lies inside the ROI
        assert all(
            a <= max(s, 0) and min(s + w, n) - 1 <= b for a, b, s, w, n in zip(lo, hi, start, TINY_WINDOW, image.shape)
        )
    # back-fill: outside the ROI the coarse logits stay
    outside = torch.ones(image.shape, dtype=torch.bool)
    outside[tuple(slice(a, b + 1) for a, b in zip(lo, hi))] = False
    assert bool((result.logits[outside] == -5.0).all())


def test_zoom_in_equals_full_sliding_window_when_the_roi_is_the_whole_image(tiny_segvol, ras_volume, monkeypatch):
    """Inside a smaller ROI the window grid is anchored differently, so only this case is exact."""
    prompts = Prompts(text="liver", box=Box((8, 6, 2), (30, 28, 9)), points=Points.from_lists([(20, 18, 6)]))
    user, prepared, image = _setup(ras_volume, prompts)
    _fake_coarse(monkeypatch, (slice(None),) * 3)
    zoomed = zoom.zoom_out_zoom_in(tiny_segvol, image, user, prepared.voxel_map)
    full = zoom.full_sliding_window(tiny_segvol, image, user, prepared.voxel_map)
    assert zoomed.roi == ((0, 0, 0), tuple(s - 1 for s in image.shape))
    assert zoomed.window_starts == full.window_starts and zoomed.windows == full.windows + 1
    torch.testing.assert_close(zoomed.logits, full.logits)


def test_empty_coarse_mask_falls_back_to_the_coarse_result(tiny_segvol, ras_volume, monkeypatch):
    user, prepared, image = _setup(ras_volume, Prompts(text="liver"))
    _fake_coarse(monkeypatch, (slice(0, 0),) * 3)
    result = zoom.zoom_out_zoom_in(tiny_segvol, image, user, prepared.voxel_map)
    assert result.windows == 1 and result.roi is None and bool((result.logits == -5.0).all())


def test_sliding_window_stitches_single_window_outputs(tiny_segvol, ras_volume):
    """Where one window alone covers a voxel, the stitched logits are that window's own output."""
    user, prepared, image = _setup(ras_volume, Prompts(text="liver"), crop_foreground=False)
    assert all(s >= w for s, w in zip(image.shape, TINY_WINDOW))
    full = zoom.full_sliding_window(tiny_segvol, image, user, prepared.voxel_map)
    frame = zoom.to_frame(user, prepared.voxel_map, prepared.shape)
    first = decode_window(tiny_segvol, image[:8, :32, :32], frame, tiny_segvol.encode_text(["liver"])).cpu()
    torch.testing.assert_close(full.logits[:4, :4, :8], first[:4, :4, :8])  # grid (12, 36, 40): starts 0,4 / 0,4 / 0,8


def test_box_only_sliding_window_skips_windows_the_box_misses(tiny_segvol, ras_volume):
    user, prepared, image = _setup(ras_volume, Prompts(box=Box((2, 2, 0), (8, 8, 2))))
    full = zoom.full_sliding_window(tiny_segvol, image, user, prepared.voxel_map)
    assert 0 < full.windows < len(window_grid(image.shape, TINY_WINDOW, 0.5))
