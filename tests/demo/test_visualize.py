"""PNG overlays: one row per label map, three views, labels coloured where they are."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest

from voxelprompt.types import Volume
from voxelprompt.visualize import overlay_png


def _volume(array: np.ndarray, axcodes_flip: bool = False) -> Volume:
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    if axcodes_flip:  # LPS-like: first two axes reversed
        affine[0, 0] = affine[1, 1] = -2.0
    return Volume(array=array, affine=affine)


@pytest.mark.parametrize("flip", [False, True])
def test_overlay_png_colours_the_labelled_region(tmp_path, flip) -> None:
    ct = np.full((40, 30, 20), -1000.0, dtype=np.float32)
    ct[5:35, 5:25, :] = 40.0
    lab = np.zeros(ct.shape, dtype=np.uint8)
    lab[10:20, 10:20, 5:15] = 1
    image, labels = _volume(ct, flip), _volume(lab, flip)
    path = overlay_png(image, [("a", labels), ("b", labels.with_array(np.zeros_like(lab)))], tmp_path / "o.png",
                       point=(15, 15, 10))  # fmt: skip
    png = mpimg.imread(path)
    assert png.ndim == 3 and png.shape[0] > png.shape[1] / 3  # two rows of three views
    top, bottom = png[: png.shape[0] // 2], png[png.shape[0] // 2 :]
    colour = lambda half: int((np.ptp(half[..., :3], axis=-1) > 0.1).sum())  # noqa: E731  non-grey pixels
    assert colour(top) > 10 * max(colour(bottom), 1)
    assert not list(tmp_path.glob(".*"))  # no temporary file left
    with_click = overlay_png(image, [("b", labels.with_array(np.zeros_like(lab)))], tmp_path / "c.png",
                             point=(15, 15, 10), clicks=[(15, 15, 10)])  # fmt: skip
    assert colour(mpimg.imread(with_click)) > 0  # the click is drawn
