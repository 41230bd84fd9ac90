"""SegVolSegmenter: labels on the input grid for any orientation, thin volumes, prompt combinations,
the family protocol (prepare once, the registry's loader, threads sharing one segmenter)."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from segvol_fixtures import as_lps, build_tiny_segvol
from shared_paths import shared_file
from voxelprompt.catalog import vista3d_catalog
from voxelprompt.errors import CheckpointError, PromptError, VoxelPromptError
from voxelprompt.families import get_family
from voxelprompt.families.segvol.options import SegVolOptions
from voxelprompt.imageio import read_volume
from voxelprompt.inference.protocol import Segmenter
from voxelprompt.families.segvol.inference import SegVolSegmenter, prepare_volume
from voxelprompt.families.segvol.inference import segmenter as segmenter_module
from voxelprompt.families.segvol.inference.prompts import check_prompts
from voxelprompt.families.segvol.inference.zoom import full_sliding_window, zoom_out_zoom_in
from voxelprompt.types import Box, Points, PointSpace, Prompts, Volume

BOX = Box((8, 6, 2), (30, 28, 9))
#: One object per prompt kind; the last click lies on air outside the body, so its crop grows.
PROMPTS = {
    "text": Prompts(text="liver"),
    "box": Prompts(box=BOX),
    "points": Prompts(points=Points.from_lists([(20, 18, 6)], [(12, 12, 4)])),
    "box+points": Prompts(box=BOX, points=Points.from_lists([(20, 18, 6), (24, 16, 5)])),
    "text+points": Prompts(text="spleen", points=Points.from_lists([(20, 18, 6)])),
    "air click": Prompts(points=Points.from_lists([(0, 0, 0)])),
}


@pytest.fixture(scope="module")
def segmenter(tiny_segvol) -> SegVolSegmenter:
    return SegVolSegmenter(tiny_segvol, mode="zoom")


def _world_prompts(volume: Volume) -> Prompts:
    """Text + box + clicks given in RAS mm, so the same prompts fit RAS and LPS copies of one image."""
    corners = volume.voxel_to_world(np.array([[8, 6, 2], [30, 28, 9]]))
    clicks = volume.voxel_to_world(np.array([[20, 18, 6], [5, 5, 5]]))
    return Prompts(
        text="liver",
        box=Box(tuple(corners.min(0)), tuple(corners.max(0)), PointSpace.WORLD),
        points=Points(clicks, np.array([1, 0]), PointSpace.WORLD),
    )


def test_ras_and_lps_copies_give_the_same_labels_on_their_own_grids(segmenter, ras_volume):
    lps_volume = as_lps(ras_volume)
    prompts = _world_prompts(ras_volume)
    ras = segmenter.segment(ras_volume, prompts)
    lps = segmenter.segment(lps_volume, prompts)
    for volume, result in ((ras_volume, ras), (lps_volume, lps)):
        assert result.labels.shape == volume.shape
        np.testing.assert_array_equal(result.labels.affine, volume.affine)
    assert lps.labels.orientation == "LPS"
    np.testing.assert_array_equal(lps.labels.array[::-1, ::-1], ras.labels.array)  # same physical labels
    assert ras.windows == lps.windows >= 1 and ras.classes == (vista3d_catalog().index("liver"),)


@pytest.mark.parametrize("slices", [1, 3])
def test_thin_volumes_are_padded_not_crashed(segmenter, slices):
    volume = Volume(np.random.default_rng(0).normal(0, 200, (20, 18, slices)).astype(np.float32), np.eye(4))
    result = segmenter.segment(volume, Prompts(text="spleen", points=Points.from_lists([(10, 9, 0)])))
    assert result.labels.shape == volume.shape


@pytest.mark.parametrize(
    "prompts",
    [
        Prompts(text="left kidney", box=Box((8, 6, 2), (30, 28, 9))),
        Prompts(text="aorta", points=Points.from_lists([(20, 18, 6)], [(5, 5, 5)])),
        Prompts(box=Box((8, 6, 2), (30, 28, 9)), points=Points.from_lists([(20, 18, 6)])),
        Prompts(points=Points.from_lists([(20, 18, 6)])),
        Prompts(classes=(3,)),
    ],
    ids=["text+box", "text+points", "box+points", "points", "class"],
)
def test_prompt_combinations(segmenter, ras_volume, prompts):
    result = segmenter.segment(ras_volume, replace(prompts, label_value=7))
    assert result.labels.shape == ras_volume.shape and set(np.unique(result.labels.array).tolist()) == {0, 7}
    assert result.windows >= 1 and result.classes == (7,)


def test_label_values(segmenter, ras_volume):
    big = segmenter.segment(ras_volume, Prompts(text="liver", label_value=300))
    assert big.labels.array.dtype == np.int16 and set(np.unique(big.labels.array)) == {0, 300}
    assert segmenter.segment(ras_volume, Prompts(text="my organ")).classes == (1,)  # not a catalog name
    for bad in (0, -3, 40000, 2.5):
        with pytest.raises(PromptError, match="label_value"):
            segmenter.segment(ras_volume, Prompts(text="liver", label_value=bad))


@pytest.mark.parametrize("mode", ["sliding", "zoom-out"])
def test_other_modes(tiny_segvol, ras_volume, mode):
    result = SegVolSegmenter(tiny_segvol, mode=mode).segment(ras_volume, Prompts(text="liver"))
    assert result.labels.shape == ras_volume.shape
    assert (result.windows == 1) == (mode == "zoom-out")


def test_bad_settings_and_prompts(tiny_segvol, segmenter, ras_volume):
    with pytest.raises(VoxelPromptError, match="unknown SegVol mode"):
        SegVolSegmenter(tiny_segvol, mode="resize")
    with pytest.raises(VoxelPromptError, match="overlap"):
        SegVolSegmenter(tiny_segvol, overlap=1.0)
    with pytest.raises(PromptError, match="outside the volume"):
        segmenter.segment(ras_volume, Prompts(box=Box((0, 0, 0), (10, 10, 12))))
    with pytest.raises(PromptError, match=r"everything prompts need a model family that has them \(vista3d\)"):
        segmenter.segment(ras_volume, Prompts(everything=True))
    with pytest.raises(PromptError, match=r"zero-shot clicks \(new_structure\) need"):
        segmenter.segment_prepared(segmenter.prepare(ras_volume), Prompts(text="liver", new_structure=True))


def test_real_ct_keeps_its_grid(segmenter):
    volume = read_volume(shared_file("data", "totalseg", "example_ct_sm.nii.gz"))
    zoom_out = SegVolSegmenter(segmenter.model, mode="zoom-out")  # one window: geometry is what is tested
    result = zoom_out.segment(volume, Prompts(text="liver", box=Box((40, 30, 5), (80, 70, 25))))
    assert result.labels.shape == volume.shape == (122, 101, 30)
    np.testing.assert_array_equal(result.labels.affine, volume.affine)


def _previous_pipeline(segmenter: SegVolSegmenter, volume: Volume, prompts: Prompts) -> np.ndarray:
    """Labels as the segmenter computed them before ``prepare`` was split: one-step pre-processing
    whose crop keeps the prompts, then the mode's pass."""
    user = check_prompts(prompts, volume)
    prepared = prepare_volume(volume, crop_foreground=segmenter.crop_foreground, keep=user.anchors())
    image = torch.from_numpy(prepared.image)
    if segmenter.mode.value == "sliding":
        result = full_sliding_window(segmenter.model, image, user, prepared.voxel_map, segmenter.overlap)
    else:
        result = zoom_out_zoom_in(
            segmenter.model, image, user, prepared.voxel_map, segmenter.overlap, zoom_in=segmenter.mode.value == "zoom"
        )
    return prepared.to_input((result.logits > 0).numpy().astype(np.uint8) * np.uint8(user.label_value))


@pytest.mark.parametrize("mode", ["zoom", "sliding", "zoom-out"])
def test_one_prepared_volume_answers_every_prompt_like_segment(tiny_segvol, ras_volume, mode):
    segmenter = SegVolSegmenter(tiny_segvol, mode=mode)
    prepared = segmenter.prepare(ras_volume)
    before = prepared.image.copy()
    for name, prompts in PROMPTS.items():  # the same record, prompt after prompt
        reused = segmenter.segment_prepared(prepared, prompts)
        one_shot = segmenter.segment(ras_volume, prompts)
        assert np.array_equal(reused.labels.array, one_shot.labels.array), name
        assert np.array_equal(one_shot.labels.array, _previous_pipeline(segmenter, ras_volume, prompts)), name
        assert reused.labels.array.dtype == one_shot.labels.array.dtype and reused.classes == one_shot.classes
        assert reused.windows == one_shot.windows and reused.extras == one_shot.extras
        np.testing.assert_array_equal(reused.labels.affine, ras_volume.affine)
    np.testing.assert_array_equal(prepared.image, before)  # crops never write into the shared record


def test_segmenter_implements_the_family_protocol(segmenter, ras_volume):
    assert isinstance(segmenter, Segmenter) and segmenter.family == "segvol"
    with segmenter.lock:  # re-entrant: a caller may hold it around several calls
        first = segmenter.segment(ras_volume, PROMPTS["box"])
        with segmenter.lock:
            second = segmenter.segment_prepared(segmenter.prepare(ras_volume), PROMPTS["box"])
    assert np.array_equal(first.labels.array, second.labels.array)


def test_registry_loader(tiny_segvol, ras_volume, tmp_path):
    with pytest.raises(CheckpointError, match="SegVol needs --checkpoint SegVol_v1.pth.*BAAI/SegVol on Hugging Face"):
        segmenter_module.load(None, "cpu", SegVolOptions(), False)
    with pytest.raises(CheckpointError, match="SegVol needs --checkpoint"):
        get_family("segvol").load(None)
    path = tmp_path / "SegVol_v1.pth"
    torch.save(tiny_segvol.state_dict(), path)
    loaded = get_family("segvol").load(path, "cpu", {"mode": "sliding", "overlap": 0.25})
    assert isinstance(loaded, SegVolSegmenter) and loaded.mode.value == "sliding" and loaded.overlap == 0.25
    ours, theirs = loaded.model.state_dict(), tiny_segvol.state_dict()
    assert list(ours) == list(theirs) and all(torch.equal(ours[k].cpu(), theirs[k]) for k in theirs)  # these weights
    # the options are applied: labels and windows of a sliding pass at overlap 0.25, not the default's
    prompts = PROMPTS["box+points"]
    got = loaded.segment(ras_volume, prompts)
    want = SegVolSegmenter(tiny_segvol, mode="sliding", overlap=0.25).segment(ras_volume, prompts)
    default = SegVolSegmenter(tiny_segvol).segment(ras_volume, prompts)
    np.testing.assert_array_equal(got.labels.array, want.labels.array)
    assert got.windows == want.windows
    assert (got.windows, got.labels.array.tobytes()) != (default.windows, default.labels.array.tobytes())


def test_threads_sharing_a_segmenter_take_turns_and_get_sequential_results(ras_volume):
    model = build_tiny_segvol()
    segmenter = SegVolSegmenter(model)
    jobs = [PROMPTS["text"], PROMPTS["box+points"], PROMPTS["points"], PROMPTS["text+points"]]
    expected = [segmenter.segment(ras_volume, p).labels.array for p in jobs]
    encode, active, most = model.encode_image, [0], [0]

    def counting_encode(image):  # how many threads are inside the network at once
        active[0] += 1
        most[0] = max(most[0], active[0])
        try:
            return encode(image)
        finally:
            active[0] -= 1

    model.encode_image = counting_encode
    results: list = [None] * len(jobs)
    errors: list = []
    start = threading.Barrier(2, timeout=60)

    def worker(indices):
        try:
            start.wait()
            for i in indices:
                results[i] = segmenter.segment(ras_volume, jobs[i]).labels.array
        except Exception as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(ids,)) for ids in ([0, 1], [2, 3])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and not errors
    assert most[0] == 1  # the lock lets one call at a time into the network
    for got, want in zip(results, expected):
        assert np.array_equal(got, want)
