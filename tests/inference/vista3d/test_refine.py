"""Algorithm 1 (click edits of an automatic mask) on hand-built masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voxelprompt.families.vista3d.inference.refine import merge_clicks

SHAPE = (40, 40, 40)


def box(lo, hi):
    m = np.zeros(SHAPE, dtype=bool)
    m[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
    return m


A = box((5, 5, 5), (15, 15, 15))  # automatic organ
B = box((25, 25, 25), (30, 30, 30))  # missed region near nothing
C = box((25, 5, 5), (30, 10, 10))  # another region the click result also found
D = box((5, 25, 5), (10, 30, 10))  # false positive of the automatic result
NONE = np.zeros((0, 3))


def test_positive_click_adds_only_its_component():
    out = merge_clicks(A, A | B | C, positive=np.array([[27, 27, 27]]), negative=NONE)
    assert np.array_equal(out, A | B)


def test_negative_click_removes_only_its_component():
    auto = A | D | C
    out = merge_clicks(auto, A, positive=NONE, negative=np.array([[7, 27, 7]]))
    assert np.array_equal(out, A | C)  # C was also "removed" by the click result but not clicked


def test_regions_without_clicks_stay_untouched():
    clicked = (A & ~box((5, 5, 5), (8, 15, 15))) | B  # the click result disagrees in two places
    out = merge_clicks(A, clicked, positive=NONE, negative=NONE)
    assert np.array_equal(out, A)


def test_positive_click_inside_the_automatic_mask_adds_connected_growth():
    grown = A | box((15, 5, 5), (20, 15, 15))  # the click result extends A
    out = merge_clicks(A, grown, positive=np.array([[10, 10, 10]]), negative=NONE)
    assert np.array_equal(out, grown)


def test_click_one_voxel_off_a_component_still_selects_it():
    out = merge_clicks(A, A | B, positive=np.array([[31, 27, 27]]), negative=NONE)
    assert np.array_equal(out, A | B)


def test_add_and_remove_together():
    out = merge_clicks(A | D, A | B, positive=np.array([[26, 26, 26]]), negative=np.array([[6, 26, 6]]))
    assert np.array_equal(out, A | B)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        merge_clicks(A, A[:-1], NONE, NONE)


@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_monai_connected_components_combine(seed):
    """Same merge as MONAI's in-network rule (``VISTA3D.connected_components_combine``)."""
    from monai.networks.nets.vista3d import VISTA3D

    rng = np.random.default_rng(seed)
    shape = (24, 24, 24)
    blobs = lambda: torch.nn.functional.avg_pool3d(  # noqa: E731 - smooth random masks
        torch.from_numpy(rng.standard_normal((1, 1, *shape))).float(), 5, 1, 2
    )[0, 0].numpy()
    auto_logit, click_logit = blobs(), blobs()
    auto, clicked = auto_logit > 0.1, click_logit > 0.1
    pts = rng.integers(0, 24, size=(4, 3))
    labels = np.array([1, 1, 0, 0])
    ours = merge_clicks(auto, clicked, pts[labels == 1], pts[labels == 0])

    combine = VISTA3D.connected_components_combine
    logits = torch.from_numpy(np.where(auto, 5.0, -5.0)).float()[None, None]
    point_logits = torch.from_numpy(np.where(clicked, 5.0, -5.0)).float()[None, None]
    theirs = combine(
        _Bare(),
        logits,
        point_logits,
        torch.from_numpy(pts).float()[None],
        torch.from_numpy(labels)[None],
        torch.tensor([True]),
    )
    assert np.array_equal(ours, theirs[0, 0].numpy() > 0)


class _Bare:
    """The attributes ``connected_components_combine`` reads from the network."""

    NINF_VALUE = -9999
