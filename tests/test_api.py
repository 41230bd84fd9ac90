"""The public API (voxelprompt.api, re-exported by the package) for both model families: in-memory
volumes, segmenter reuse, capability errors, sessions, identify."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import voxelprompt
from voxelprompt import api
from voxelprompt.catalog import vista3d_catalog
from voxelprompt.errors import PromptError
from voxelprompt.imageio import read_labels, read_volume
from voxelprompt.types import Volume

CATALOG = vista3d_catalog()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tiny_checkpoint):
    from voxelprompt.families.segvol.network.builder import tiny_segvol

    segvol = tmp_path_factory.mktemp("segvol") / "segvol_tiny.pth"
    torch.save(tiny_segvol(seed=0).state_dict(), segvol)
    return {"vista3d": tiny_checkpoint, "segvol": segvol}


@pytest.fixture(scope="module")
def models(checkpoints):
    return {name: api.load_model(path, device="cpu") for name, path in checkpoints.items()}


@pytest.fixture(scope="module")
def volume(ct_crop_path) -> Volume:
    return read_volume(ct_crop_path)


def test_package_reexports_the_api_without_importing_torch():
    assert voxelprompt.segment is api.segment and voxelprompt.load_model is api.load_model
    code = "import sys, voxelprompt; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_in_memory_volume_and_segmenter_reuse(models, volume, monkeypatch, one_thread):
    monkeypatch.setattr(api, "load_model", lambda *a, **k: pytest.fail("a given segmenter must be reused"))
    liver = api.segment(volume, segmenter=models["vista3d"], classes=["liver"])
    assert liver.labels.shape == volume.shape and set(np.unique(liver.labels.array).tolist()) == {0, 1}
    np.testing.assert_array_equal(liver.labels.affine, volume.affine)
    # the bug this API fixed: family given with a loaded segmenter used to ask for a checkpoint
    kidney = api.segment(volume, segmenter=models["segvol"], family="segvol", text="left kidney")
    assert set(np.unique(kidney.labels.array).tolist()) == {0, 14}  # found, under the class its text names
    boxed = api.segment(volume, segmenter=models["segvol"], box=(5, 5, 3, 30, 30, 15), label_value=9)
    assert set(np.unique(boxed.labels.array).tolist()) == {0, 9}


def test_checkpoint_family_is_recognised(checkpoints, volume, tmp_path, one_thread):
    out = tmp_path / "seg.nii.gz"
    result = api.segment(volume, out, checkpoint=checkpoints["segvol"], text="spleen", device="cpu")
    assert result.labels.shape == volume.shape and set(np.unique(result.labels.array).tolist()) == {0, 3}
    np.testing.assert_array_equal(read_labels(out).array, result.labels.array)  # the file holds them


@pytest.mark.parametrize(
    ("family", "kwargs", "message"),
    [
        ("vista3d", {"box": (1, 1, 1, 9, 9, 9)}, "box prompts need a model family that has them (segvol)"),
        ("segvol", {"everything": True}, "everything prompts need a model family that has them (vista3d)"),
        ("segvol", {"classes": ["liver", "spleen"]}, "class prompts need a model family that has them (vista3d)"),
        ("segvol", {"points": [(20, 20, 10)], "new_structure": True}, "new_structure"),
    ],
)
def test_capability_errors_name_the_families_that_can(models, volume, family, kwargs, message):
    with pytest.raises(PromptError, match=message.replace("(", r"\(").replace(")", r"\)")):
        api.segment(volume, segmenter=models[family], **kwargs)


def test_sessions_and_identify(models, volume, one_thread):
    session = api.open_session(volume, segmenter=models["segvol"])
    first = session.segment(api.build_prompts(text="spleen", catalog=CATALOG))
    again = session.segment(api.build_prompts(text="spleen", catalog=CATALOG))
    np.testing.assert_array_equal(first.labels.array, again.labels.array)
    mask = np.zeros(volume.shape, bool)
    mask[10:30, 10:30, 5:15] = True
    ranking = api.identify(volume, volume.with_array(mask.astype(np.uint8)), segmenter=models["segvol"],
                           categories=["liver", "spleen", "aorta"])  # fmt: skip
    assert sorted(s.name for s in ranking.scores) == ["aorta", "liver", "spleen"]
    assert abs(sum(s.probability for s in ranking.scores) - 1.0) < 1e-4  # a softmax over the names
    with pytest.raises(PromptError, match="identify needs a model family that has it"):
        api.identify(volume, volume.with_array(mask.astype(np.uint8)), segmenter=models["vista3d"])
    with pytest.raises(PromptError, match="either a mask or spatial prompts"):
        api.identify(volume, segmenter=models["segvol"])


def test_threads_share_a_segmenter(checkpoints, volume, one_thread):
    """Calls from several threads take turns through the segmenter's lock and give the same labels."""
    from concurrent.futures import ThreadPoolExecutor

    # a fresh model: the first calls race for the lazily prepared engine network, built under the lock
    seg = api.load_model(checkpoints["vista3d"], device="cpu")
    prompts = api.build_prompts(["spleen"], [(20, 20, 10)], catalog=CATALOG)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: seg.segment(volume, prompts).labels.array, range(3)))
    alone = seg.segment(volume, prompts).labels.array
    for labels in results:
        np.testing.assert_array_equal(labels, alone)
    assert seg.lock.acquire(timeout=5)  # released after the calls
    seg.lock.release()


def test_options_and_arguments_are_checked_in_one_line_errors(checkpoints, models, volume):
    from voxelprompt.errors import VoxelPromptError
    from voxelprompt.families.vista3d.options import Vista3DOptions

    for options, message in (
        (Vista3DOptions(), "are not segvol options"),
        ({"engine": "fast"}, "segvol has no option 'engine'"),
        ({"overlap": "0.5"}, "overlap must be a number"),
    ):
        with pytest.raises(VoxelPromptError, match=message):
            api.load_model(checkpoints["segvol"], device="cpu", options=options)
    for value in ("x", 2.7, 0, True):
        with pytest.raises(PromptError, match="label value must be a whole number"):
            api.build_prompts(text="liver", label_value=value, catalog=CATALOG)
    with pytest.raises(VoxelPromptError, match="not both"):
        api.segment(volume, segmenter=models["vista3d"], checkpoint=checkpoints["vista3d"], classes=["liver"])
    with pytest.raises(VoxelPromptError, match="memory_budget_mb must be a positive number"):
        api.open_session(volume, segmenter=models["segvol"], memory_budget_mb=-1)
    with pytest.raises(PromptError, match="label_value names a single object"):
        api.segment(volume, segmenter=models["vista3d"], classes=["liver"], label_value=5)
    # a VISTA3D checkpoint asked to identify: the missing capability is named, not a wrong --model
    mask = volume.with_array(np.ones(volume.shape, np.uint8))
    with pytest.raises(PromptError, match="identify needs a model family that has it"):
        api.identify(volume, mask, checkpoint=checkpoints["vista3d"])
