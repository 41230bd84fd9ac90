"""Feature averaging (the class head is linear), window order and the lean class branch."""

from __future__ import annotations

import copy

import pytest
import torch
from monai.data.utils import compute_importance_map
from monai.inferers import sliding_window_inference

from voxelprompt.families.vista3d.inference.engine import prepare_network, stitched_class_labels
from voxelprompt.families.vista3d.inference.engine.accumulate import (
    CellStitcher,
    label_dtype,
    labels_from_scores,
    open_voxels,
    slab_order,
    window_grid,
)
from voxelprompt.families.vista3d.inference.engine.class_windows import (
    _has_lean_label_branch,
    class_embedding_matrix,
    window_class_features,
)
from voxelprompt.families.vista3d.inference.postprocess import logits_to_labels
from voxelprompt.families.vista3d.inference.profiles import get_profile
from voxelprompt.families.vista3d.inference.windows import class_logits

ROI = (32, 32, 32)


class _FeatureNet(torch.nn.Module):
    """C 'features' per voxel that depend on the window's content and position, like a real encoder."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.mix = torch.randn(channels, generator=torch.Generator().manual_seed(1))

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:  # [1, 1, h, w, d] -> [1, C, h, w, d]
        ramp = torch.linspace(-1, 1, x.shape[-1])
        return torch.sin(x * 7.0 + self.mix[:, None, None, None] * 5.0) + ramp + x.mean() * 3.0


def _assert_equal_but_near_ties(labels: torch.Tensor, expected: torch.Tensor, logits: torch.Tensor) -> None:
    """Labels equal, except where the reference's top logit is within 1e-4 of the runner-up or of 0
    (float summation order; seen: 1 voxel of 283,500 with gaussian weights, margin 9.5e-7)."""
    differ = labels.long() != expected.long()
    top2 = logits[differ].topk(2, dim=-1).values
    margin = torch.minimum(top2[:, 0] - top2[:, 1], top2[:, 0].abs())
    assert int(differ.sum()) <= labels.numel() * 1e-4
    assert bool((margin < 1e-4).all()), f"non-tie voxels differ: margins {margin.tolist()}"


@pytest.mark.parametrize("blend", ["constant", "gaussian"])
def test_feature_averaging_equals_monais_logit_averaging(blend):
    image = torch.rand(1, 1, 70, 45, 90, generator=torch.Generator().manual_seed(0))
    classes, channels, overlap = list(range(2, 22)), 6, 0.5  # K = 20 classes from C = 6 features
    head = torch.randn(len(classes), channels, generator=torch.Generator().manual_seed(2))
    net = _FeatureNet(channels)

    def logit_net(x):
        return torch.einsum("kc,bchwd->bkhwd", head, net(x))

    # MONAI averages the K logits; averaging the C features and applying the head must agree.
    logits = sliding_window_inference(image, ROI, 1, logit_net, overlap=overlap, mode=blend)[0].permute(1, 2, 3, 0)
    features = sliding_window_inference(image, ROI, 1, net, overlap=overlap, mode=blend)[0].permute(1, 2, 3, 0)
    torch.testing.assert_close(features @ head.T, logits, rtol=1e-5, atol=1e-5)
    expected = labels_from_scores(logits, torch.tensor(classes, dtype=torch.int16))

    grid = tuple(image.shape[-3:])
    windows = slab_order(window_grid(grid, ROI, overlap), grid)
    weight = compute_importance_map(ROI, mode="gaussian", sigma_scale=0.125) if blend == "gaussian" else None
    stitcher = CellStitcher(grid, windows, classes, weight=weight, head=head)
    for w in windows:
        stitcher.add(w, net(image[(0, 0, *w.slices)][None, None])[0].permute(1, 2, 3, 0))
    labels = stitcher.result()
    assert len(labels.unique()) > 3
    _assert_equal_but_near_ties(labels, expected, logits)
    # Open cells hold C (+ weights) floats per voxel, and nothing is left open at the end.
    per_voxel = (channels + (1 if blend == "gaussian" else 0)) * 4
    assert stitcher.peak_open_bytes <= max(open_voxels(windows, grid)) * per_voxel + 4 * len(stitcher.edges[0]) ** 3
    assert not stitcher._open


def test_head_must_match_the_classes():
    with pytest.raises(ValueError, match=r"head must be \[K=2, C\]"):
        CellStitcher((32, 32, 32), window_grid((32, 32, 32), ROI, 0.0), [1, 2], head=torch.zeros(3, 4))


def test_labels_are_compact():
    assert label_dtype(range(1, 133)) == torch.uint8
    assert label_dtype([1, 300]) == torch.int16
    stitcher = CellStitcher((32, 32, 32), window_grid((32, 32, 32), ROI, 0.0), [1, 2])
    assert stitcher.labels.dtype == torch.uint8


@pytest.mark.parametrize("shape", [(512, 512, 768), (333, 333, 603), (224, 224, 256), (90, 70, 200)])
def test_slab_order_keeps_the_open_region_to_an_overlap_slice(shape):
    roi = (128, 128, 128) if min(shape) >= 128 else ROI
    windows = window_grid(shape, roi, 0.25)
    order = slab_order(windows, shape)
    assert sorted(order, key=lambda w: w.start) == sorted(windows, key=lambda w: w.start)
    peak = max(open_voxels(order, shape))
    # MONAI's raster order and a plain slab-by-slab order (main's) keep at least as much open.
    axis = max(range(3), key=lambda a: shape[a])
    plain = sorted(windows, key=lambda w: (w.start[axis], w.start))
    assert peak <= max(open_voxels(plain, shape)) and peak <= max(open_voxels(windows, shape))
    # Bound: one overlap-deep slice across the two short axes plus one row of windows of a slab.
    # (main's plain order broke it on 512x512x768, where the clamped last slabs share 64 voxels.)
    overlap = roi[axis] - sorted({w.start[axis] for w in windows})[1]
    short = [shape[a] for a in range(3) if a != axis]
    assert peak <= short[0] * short[1] * overlap + roi[0] * short[1] * roi[axis]


def test_open_voxels_is_what_the_stitcher_holds():
    grid = (70, 45, 90)
    windows = slab_order(window_grid(grid, ROI, 0.5), grid)
    stitcher = CellStitcher(grid, windows, [1, 2, 3], head=torch.eye(3, 2))
    for w in windows:
        stitcher.add(w, torch.rand(*w.size, 2))
    cell_counts = 4 * len(stitcher._last)  # one float count per cell with constant blending
    assert max(open_voxels(windows, grid)) * 2 * 4 >= stitcher.peak_open_bytes - cell_counts
    assert stitcher.peak_open_bytes > 0


def test_lean_label_branch_equals_monais(tiny_net, one_thread):
    assert _has_lean_label_branch(tiny_net.image_encoder)
    x = torch.rand(1, 1, 32, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _, expected = tiny_net.image_encoder(x, with_point=False, with_label=True)
        expected = tiny_net.class_head.image_post_mapping(expected)[0].permute(1, 2, 3, 0)
        ours = window_class_features(tiny_net, x)
    assert torch.equal(ours, expected)  # the same operations: bit for bit


@pytest.mark.parametrize("profile", ["bundle", "research"])
def test_everything_sized_prompts_average_features_and_match_monai(tiny_net, tiny_spec, profile, one_thread, monkeypatch):
    """More classes than the tiny model's 8 feature channels: the engine stitches features."""
    from voxelprompt.families.vista3d.inference.engine import class_windows

    classes = tuple(range(1, 21))
    assert len(classes) > class_embedding_matrix(tiny_net.class_head, classes).shape[1]
    image = torch.rand(1, 1, 50, 40, 70, generator=torch.Generator().manual_seed(0))
    prof = get_profile(profile).with_roi(ROI)
    expected = logits_to_labels(class_logits(image, tiny_net, classes, prof, 132), classes)

    def no_logits(*args, **kwargs):
        raise AssertionError("per-window logits were computed; features should have been stitched")

    monkeypatch.setattr(class_windows, "window_class_logits", no_logits)
    prepared = prepare_network(copy.deepcopy(tiny_net), channels_last=True)
    labels, _ = stitched_class_labels(image, prepared, classes, prof, 132, channels_last=True)
    assert len(expected.unique()) > 3
    assert torch.equal(labels, expected.as_subclass(torch.Tensor))
