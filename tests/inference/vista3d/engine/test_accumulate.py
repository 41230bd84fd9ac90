"""Window grid and cell stitching against MONAI's sliding-window inferer on synthetic logits."""

from __future__ import annotations

import pytest
import torch
from monai.data.utils import dense_patch_slices
from monai.inferers import sliding_window_inference
from monai.inferers.utils import _get_scan_interval

from voxelprompt.families.vista3d.inference.engine.accumulate import (
    CellStitcher,
    RunningArgmax,
    Window,
    labels_from_scores,
    slab_order,
    window_grid,
)


@pytest.mark.parametrize("shape", [(100, 70, 130), (64, 64, 64), (200, 64, 65), (65, 129, 64)])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.625])
def test_window_grid_is_monais(shape, overlap):
    roi = (64, 64, 64)
    interval = _get_scan_interval(shape, roi, 3, (overlap,) * 3)
    expected = [tuple((s.start, s.stop) for s in x) for x in dense_patch_slices(shape, roi, interval)]
    assert [tuple((s.start, s.stop) for s in w.slices) for w in window_grid(shape, roi, overlap)] == expected


def test_window_grid_rejects_bad_input():
    with pytest.raises(ValueError, match="overlap must be in"):
        window_grid((64, 64, 64), (32, 32, 32), 1.0)
    with pytest.raises(ValueError, match="smaller than the window"):
        window_grid((30, 64, 64), (32, 32, 32), 0.25)


def test_labels_from_scores_rule():
    scores = torch.tensor([[-1.0, -0.5, -2.0], [0.3, 0.9, 0.9], [0.0, 0.0, 0.0], [2.0, -1.0, 1.0]])
    classes = torch.tensor([4, 7, 9], dtype=torch.int16)
    assert labels_from_scores(scores, classes).tolist() == [0, 7, 0, 4]  # first maximum on ties


class _FakeNet(torch.nn.Module):
    """A 'network' whose logits depend on the window's content and position (like a real one)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.mix = torch.randn(k, generator=torch.Generator().manual_seed(1))

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:  # [1, 1, h, w, d] -> [1, K, h, w, d]
        ramp = torch.linspace(-1, 1, x.shape[-1])
        return torch.sin(x * 7.0 + self.mix[:, None, None, None] * 5.0) + ramp + x.mean() * 3.0


def _stitch(stitcher_cls, image, net, roi, overlap, classes, weight=None):
    grid = tuple(image.shape[-3:])
    windows = slab_order(window_grid(grid, roi, overlap), grid)
    stitcher = stitcher_cls(grid, windows, classes, weight=weight) if stitcher_cls is CellStitcher else stitcher_cls(grid, classes)
    for w in windows:
        logits = net(image[(0, 0, *w.slices)][None, None])[0].permute(1, 2, 3, 0)
        stitcher.add(w, logits)
    return stitcher


@pytest.mark.parametrize("blend", ["constant", "gaussian"])
def test_cell_stitching_equals_monai_average_then_argmax(blend):
    torch.manual_seed(0)
    image = torch.rand(1, 1, 70, 45, 90)
    roi, overlap, classes = (32, 32, 32), 0.5, [3, 5, 8, 11]
    net = _FakeNet(len(classes))
    averaged = sliding_window_inference(image, roi, 1, net, overlap=overlap, mode=blend)
    expected = labels_from_scores(averaged[0].permute(1, 2, 3, 0), torch.tensor(classes, dtype=torch.int16))
    weight = None
    if blend == "gaussian":
        from monai.data.utils import compute_importance_map

        weight = compute_importance_map(roi, mode="gaussian", sigma_scale=0.125)
    stitcher = _stitch(CellStitcher, image, net, roi, overlap, classes, weight)
    labels = stitcher.result()
    assert (labels != 0).any() and len(labels.unique()) > 2
    assert torch.equal(labels, expected)
    # Open cells never hold more than a window-deep slab (here far less than the full volume).
    full = image[0, 0].numel() * len(classes) * 4
    assert stitcher.peak_open_bytes < full


def test_cell_stitcher_checks_order_and_completeness():
    grid, roi = (64, 32, 32), (32, 32, 32)
    windows = window_grid(grid, roi, 0.5)
    stitcher = CellStitcher(grid, windows, [1])
    with pytest.raises(ValueError, match="out of the announced order"):
        stitcher.add(windows[1], torch.zeros(32, 32, 32, 1))
    stitcher.add(windows[0], torch.zeros(32, 32, 32, 1))
    with pytest.raises(RuntimeError, match="were not added"):
        stitcher.result()


def test_running_argmax_takes_the_highest_window():
    grid = (48, 16, 16)
    low = torch.full((32, 16, 16, 2), -1.0)
    low[..., 1] = 0.5
    high = torch.full((32, 16, 16, 2), -1.0)
    high[..., 0] = 2.0
    stitcher = RunningArgmax(grid, [6, 9])
    stitcher.add(Window((0, 0, 0), (32, 16, 16)), low)
    stitcher.add(Window((16, 0, 0), (32, 16, 16)), high)
    labels = stitcher.result()
    assert labels[:16].unique().tolist() == [9]
    assert labels[16:].unique().tolist() == [6]
