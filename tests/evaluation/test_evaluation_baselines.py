"""The region-growing baseline on synthetic images."""

from __future__ import annotations

import numpy as np
import pytest

from voxelprompt.errors import PromptError
from voxelprompt.evaluation.baselines import region_grow
from voxelprompt.evaluation.metrics import dice


def _sphere(shape, center, radius):
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, center)) <= radius**2


def _noisy(mask, bright=200.0, sigma=20.0, seed=0):
    rng = np.random.default_rng(seed)
    return np.where(mask, bright, 0.0) + rng.normal(0.0, sigma, mask.shape)


def test_recovers_bright_sphere_in_noise():
    sphere = _sphere((48, 48, 48), (24, 24, 24), 10)
    image = _noisy(sphere)
    mask = region_grow(image, [(24, 24, 24)])
    assert dice(mask, sphere) > 0.95
    assert not mask[~sphere].any()


def test_fixed_half_width_recovers_sphere():
    sphere = _sphere((48, 48, 48), (24, 24, 24), 10)
    image = _noisy(sphere, seed=1)
    mask = region_grow(image, [(22, 25, 24)], half_width=80.0)
    assert dice(mask, sphere) > 0.95


def test_growth_stays_inside_the_window():
    image = np.zeros((100, 20, 20))
    image[:, 5:15, 5:15] = 100.0  # a bright bar along i
    mask = region_grow(image, [(50, 10, 10)], window=32, half_width=10.0)
    rows = np.flatnonzero(mask.any(axis=(1, 2)))
    assert rows.min() == 50 - 16 and rows.max() == 50 + 15
    assert mask.sum() == 32 * 10 * 10


def test_window_is_clipped_at_the_volume_border():
    image = np.full((20, 20, 20), 5.0)
    mask = region_grow(image, [(0, 0, 0)], window=8)
    assert mask.sum() == 4 * 4 * 4  # the half of the window that lies inside the volume


def test_negative_click_removes_its_component():
    shape = (40, 40, 60)
    a, b = _sphere(shape, (20, 20, 15), 7), _sphere(shape, (20, 20, 45), 7)
    image = _noisy(a | b, seed=2)
    both = region_grow(image, [(20, 20, 15), (20, 20, 45)])
    assert both[a].mean() > 0.9 and both[b].mean() > 0.9
    kept = region_grow(image, [(20, 20, 15), (20, 20, 45)], negative=[(20, 20, 45)])
    assert not kept[b].any() and kept[a].mean() > 0.9


def test_negative_click_on_a_connected_leak_keeps_the_object():
    shape = (40, 40, 70)
    organ = _sphere(shape, (20, 20, 18), 9)
    leak = _sphere(shape, (20, 20, 50), 8)
    bridge = np.zeros(shape, dtype=bool)
    bridge[18:23, 18:23, 18:50] = True  # same intensity: growing cannot tell the leak apart
    image = _noisy(organ | leak | bridge, seed=5)
    grown = region_grow(image, [(20, 20, 18)])
    assert grown[leak].mean() > 0.9  # the leak is there before the negative click
    edited = region_grow(image, [(20, 20, 18)], negative=[(20, 20, 50)])
    assert edited[organ].mean() > 0.9 and edited[leak].mean() < 0.1


def test_negative_click_in_background_changes_nothing():
    sphere = _sphere((32, 32, 32), (16, 16, 16), 6)
    image = _noisy(sphere, seed=3)
    plain = region_grow(image, [(16, 16, 16)])
    np.testing.assert_array_equal(region_grow(image, [(16, 16, 16)], negative=[(1, 1, 1)]), plain)


def test_needs_a_positive_click():
    with pytest.raises(PromptError, match="positive"):
        region_grow(np.zeros((8, 8, 8)), [])


def test_click_outside_the_volume_is_named():
    with pytest.raises(PromptError, match=r"\(8, 0, 0\)"):
        region_grow(np.zeros((8, 8, 8)), [(8, 0, 0)])


def test_iterative_correction_loop_with_the_baseline():
    from voxelprompt.evaluation.clicks import center_click, correction_click

    shape = (40, 40, 60)
    gt = _sphere(shape, (20, 20, 15), 8) | _sphere(shape, (20, 20, 45), 6)
    image = _noisy(gt, seed=4)
    rng = np.random.default_rng(0)
    positive, negative = [center_click(gt)], []
    scores = []
    for _ in range(3):
        pred = region_grow(image, positive, negative)
        scores.append(dice(pred, gt))
        click = correction_click(pred, gt, rng)
        if click is None:
            break
        (positive if click.label == 1 else negative).append(click.coord)
    assert scores[0] < 0.85 and scores[-1] > 0.95
