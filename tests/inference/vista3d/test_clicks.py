"""Point prompts: locality, equivalence with MONAI's previous-mask path, frames, special classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.apps.vista3d.inferer import point_based_window_inferer
from monai.inferers import sliding_window_inference
from monai.transforms import Invertd

from test_golden_pipeline import ROI, bundle_reference_transforms
from voxelprompt.errors import PromptError
from voxelprompt.imageio import read_volume
from voxelprompt.families.vista3d.inference.profiles import get_profile
from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter
from voxelprompt.types import OBJECT_ID, Points, PointSpace, Prompts

CLICK = (60.0, 30.0, 10.0)  # input voxel where the tiny model's click result edits "liver"


@pytest.fixture(scope="module")
def volume(real_ct_path):
    """The whole real CT (overrides conftest's crop; ``segmenter`` is conftest's 64^3 one)."""
    return read_volume(real_ct_path)


@pytest.fixture(scope="module")
def liver_auto(segmenter, volume):
    return segmenter.segment(volume, Prompts(classes=(1,))).labels.array


@pytest.fixture(scope="module")
def liver_clicked(segmenter, volume):
    return segmenter.segment(volume, Prompts(classes=(1,), points=Points.from_lists([CLICK])))


@pytest.mark.slow
def test_click_edits_the_automatic_result_only_in_its_window(liver_auto, liver_clicked, volume):
    changed = np.argwhere(liver_auto != liver_clicked.labels.array)
    assert len(changed) > 0, "the click should change something for the test to mean anything"
    # A 64^3 window at 1.5 mm spans 96 mm centred on the click: nothing may change farther away
    # along i and j (the CT is only 90 mm thick, so the window covers all of k).
    offsets_mm = np.abs(volume.voxel_to_world(changed) - volume.voxel_to_world(np.array([CLICK])))
    assert offsets_mm[:, :2].max() <= 48 + 3.0
    assert set(np.unique(liver_clicked.labels.array)) <= {0, 1}


@pytest.mark.slow
def test_click_edit_equals_monais_previous_mask_path(liver_clicked, real_ct_path, tiny_net):
    """One click: identical to MONAI's point window inferer given the automatic logits as prev_mask."""
    transforms = bundle_reference_transforms()
    data = transforms({"image": str(real_ct_path)})
    image = data["image"][None]
    cv = torch.tensor([[1]])
    mapping = np.linalg.inv(np.asarray(data["image"].affine)) @ np.asarray(data["image"].meta["original_affine"])
    model_click = (mapping @ np.array([*CLICK, 1.0]))[:3]
    with torch.no_grad():
        auto = sliding_window_inference(
            image, ROI, 1, tiny_net, overlap=0.25, mode="constant", with_coord=True, transpose=True,
            class_vector=cv, prompt_class=cv,
        )
        edited = point_based_window_inferer(
            image, ROI, tiny_net, torch.tensor([[model_click]], dtype=torch.float32), torch.tensor([[1]]),
            class_vector=None, prompt_class=cv, prev_mask=auto, transpose=True, with_coord=True,
        )
    data["pred"] = (edited[0] > 0).float()
    data = Invertd("pred", transform=transforms, orig_keys="image", nearest_interp=True)(data)
    ref = data["pred"][0].numpy().round().astype(np.uint8)
    np.testing.assert_array_equal(liver_clicked.labels.array, ref)


def _far_and_near(volume, shape):
    offset_mm = np.abs(volume.voxel_to_world(np.indices(shape).reshape(3, -1).T) - volume.voxel_to_world(np.array([CLICK])))
    far = (offset_mm > 48 + 3.0).any(axis=1).reshape(shape)
    near = (offset_mm < 40.0).all(axis=1).reshape(shape)
    return far, near


def test_point_only_result_is_confined_to_the_clicked_window(segmenter, volume):
    result = segmenter.segment(volume, Prompts(points=Points.from_lists([CLICK])))
    labels = result.labels.array
    assert result.windows == 1
    assert result.classes == (OBJECT_ID,)
    assert set(np.unique(labels)) <= {0, OBJECT_ID}  # never the pipeline's "not predicted" marker
    far, _ = _far_and_near(volume, labels.shape)
    assert far.any() and not (labels[far] != 0).any()  # outside the clicked window: background
    assert any("supported point embedding" in note for note in result.notes)


def test_official_unpredicted_marker_is_kept_for_parity(tiny_net, tiny_spec, volume):
    official = Vista3DSegmenter(
        tiny_net, tiny_spec, profile=get_profile("bundle").with_roi(ROI), official_unpredicted=True
    )
    labels = official.segment(volume, Prompts(points=Points.from_lists([CLICK]))).labels.array
    assert set(np.unique(labels)) <= {0, 1, 255}
    far, near = _far_and_near(volume, labels.shape)
    assert not (labels[near] == 255).any()  # everything inside the window was predicted
    assert (labels[far] == 255).any()  # the official pipeline marks unpredicted voxels 255


def test_world_points_equal_voxel_points(segmenter, volume):
    world = volume.voxel_to_world(np.array([CLICK]))[0]
    a = segmenter.segment(volume, Prompts(points=Points.from_lists([CLICK])))
    b = segmenter.segment(volume, Prompts(points=Points.from_lists([tuple(world)], space=PointSpace.WORLD)))
    np.testing.assert_array_equal(a.labels.array, b.labels.array)


@pytest.mark.parametrize("bad", [(-3.0, 10.0, 10.0), (60.0, 50.0, 40.0)])
def test_point_outside_the_volume_is_rejected(segmenter, volume, bad):
    with pytest.raises(PromptError, match="outside the volume"):
        segmenter.segment(volume, Prompts(points=Points.from_lists([bad])))


class _Spy(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, []

    def forward(self, *args, **kwargs):
        self.calls.append({k: kwargs.get(k) for k in ("point_labels", "prompt_class", "class_vector")})
        return self.net(*args, **kwargs)


@pytest.mark.parametrize(
    "classes, new_structure, expect_labels, expect_prompt",
    [
        ((), False, {1, 0}, None),  # point-only, supported embedding
        ((26,), False, {3, 2}, 26),  # hepatic tumour: ambiguity ("special") embedding
        ((), True, {1, 0}, 133),  # a new structure: zero-shot embedding (any id above 132)
    ],
)
def test_click_labels_and_prompt_class_reach_the_network(
    tiny_net, tiny_spec, ct_crop_path, classes, new_structure, expect_labels, expect_prompt
):
    spy = _Spy(tiny_net)
    # The spy stands in for the network's forward, so it runs on the reference engine (the exact one
    # prepares a copy of a real VISTA3D).
    seg = Vista3DSegmenter(spy, tiny_spec, profile=get_profile("bundle").with_roi(ROI), engine="reference")
    prompts = Prompts(classes=classes, points=Points.from_lists([(20, 20, 10)], [(5, 5, 5)]), new_structure=new_structure)
    seg.segment(read_volume(ct_crop_path), prompts)
    point_calls = [c for c in spy.calls if c["point_labels"] is not None]
    assert len(point_calls) == 2  # MONAI's point inferer opens one window per click
    for call in point_calls:
        assert set(call["point_labels"].flatten().tolist()) == expect_labels
        prompt = call["prompt_class"]
        assert (prompt is None) if expect_prompt is None else int(prompt.flatten()[0]) == expect_prompt


def test_prompt_errors(segmenter, volume):
    with pytest.raises(PromptError, match="one class at a time"):
        segmenter.segment(volume, Prompts(classes=(1, 3), points=Points.from_lists([CLICK])))
    with pytest.raises(PromptError, match="zero-shot"):
        segmenter.segment(volume, Prompts(classes=(133,)))
    with pytest.raises(PromptError, match="nothing to segment"):
        segmenter.segment(volume, Prompts())
