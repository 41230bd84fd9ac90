"""Engines and click windows are objects chosen once by their builders, from the option strings."""

from __future__ import annotations

import numpy as np
import pytest

from voxelprompt.errors import VoxelPromptError
from voxelprompt.families.vista3d.inference.class_engines import (
    ENGINES,
    ExactEngine,
    FastEngine,
    ReferenceEngine,
    build_engine,
)
from voxelprompt.families.vista3d.inference.click_windows import (
    CLICK_WINDOWS,
    CentredClickWindows,
    GridClickWindows,
    build_click_windows,
)
from voxelprompt.families.vista3d.inference.engine import FastSettings
from voxelprompt.families.vista3d.inference.profiles import get_profile
from voxelprompt.families.vista3d.options import ENGINES as OPTION_ENGINES
from voxelprompt.families.vista3d.options import Vista3DOptions


def test_every_engine_name_of_the_options_builds_its_engine():
    assert set(ENGINES) == set(OPTION_ENGINES)
    kinds = {"reference": ReferenceEngine, "exact": ExactEngine, "fast": FastEngine}
    for name in OPTION_ENGINES:
        engine = build_engine(Vista3DOptions(engine=name).engine)
        assert type(engine) is kinds[name] and engine.name == name
    assert not ReferenceEngine.prepared and ExactEngine.prepared and FastEngine.prepared


def test_the_fast_engine_carries_its_settings_and_objects_pass_through():
    settings = FastSettings(coarse=False)
    fast = build_engine("fast", settings)
    assert fast.settings() is settings and build_engine("fast").settings() == FastSettings()
    assert build_engine("exact", settings).settings() is None  # the official windows and averaging
    assert build_engine(fast) is fast
    with pytest.raises(VoxelPromptError, match="unknown engine 'quick'; choose one of reference, exact, fast"):
        build_engine("quick")


def test_click_windows_builder_validates_once_and_grid_windows_are_known_ahead():
    assert set(CLICK_WINDOWS) == {"centred", "grid"}
    centred, grid = build_click_windows("centred"), build_click_windows("grid")
    assert isinstance(centred, CentredClickWindows) and isinstance(grid, GridClickWindows)
    assert build_click_windows(grid) is grid
    assert grid.known_ahead and not centred.known_ahead
    with pytest.raises(VoxelPromptError, match="click_windows must be grid or centred, got 'nearest'"):
        build_click_windows("nearest")
    profile = get_profile("bundle").with_roi((32, 32, 32))
    points = np.array([[10.0, 10.0, 10.0], [50.0, 50.0, 20.0]])
    assert centred.windows((64, 64, 32), points, profile) == []
    chosen = grid.windows((64, 64, 32), points, profile)
    assert 1 <= len(chosen) <= 2
    for window, xyz in zip(chosen, points):
        assert all(s.start <= p < s.stop for s, p in zip(window.slices, xyz))


def test_a_segmenter_switches_engine_through_the_builder(tiny_net, tiny_spec):
    from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter

    seg = Vista3DSegmenter(tiny_net, tiny_spec, engine="exact")
    assert seg.engine == "exact" and isinstance(seg.class_engine, ExactEngine)
    seg.engine = "fast"
    assert isinstance(seg.class_engine, FastEngine) and seg.class_engine.settings() is seg.fast
    seg.fast = FastSettings(coarse=False)
    assert seg.class_engine.settings() == FastSettings(coarse=False)
    seg.engine = "reference"
    assert seg.click_net() is seg.monai_net() is tiny_net
    with pytest.raises(VoxelPromptError, match="unknown engine"):
        seg.engine = "quick"
