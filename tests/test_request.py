"""The request layer (:mod:`voxelprompt.request`): one ``segment`` call checks its request once and
reads the checkpoint's tensor names once; segmenters trust checked prompts and check the rest."""

from __future__ import annotations

import builtins
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run

from voxelprompt.errors import PromptError
from voxelprompt.families import ModelFamily, get_family
from voxelprompt.request import check_request, ensure_checked, is_checked
from voxelprompt.types import Points, Prompts, Volume


def _volume(shape=(12, 12, 12)) -> Volume:
    return Volume(np.zeros(shape, np.float32), np.eye(4))


def test_a_checked_request_is_marked_for_its_family_and_grid_only():
    volume = _volume()
    prompts = Prompts(classes=(1,), points=Points.from_lists([(3, 3, 3)]))
    checked = check_request("vista3d", prompts, volume)
    assert checked == prompts and is_checked(checked, "vista3d", volume)
    assert not is_checked(prompts, "vista3d", volume)  # the caller's object is left unmarked
    assert not is_checked(checked, "segvol", volume)
    assert not is_checked(checked, "vista3d", _volume((12, 12, 13)))
    assert not is_checked(checked, "vista3d", Volume(volume.array, np.diag([2.0, 1, 1, 1])))
    # A copy with other prompts is unchecked again: the mark cannot outlive what it vouches for.
    moved = dataclasses.replace(checked, points=Points.from_lists([(30, 3, 3)]))
    assert not is_checked(moved, "vista3d", volume)
    with pytest.raises(PromptError, match="outside the volume"):
        ensure_checked(moved, "vista3d", volume)


def test_check_request_refuses_what_the_family_cannot_answer():
    volume = _volume()
    from voxelprompt.types import Box

    with pytest.raises(PromptError, match="box prompts need a model family that has them"):
        check_request("vista3d", Prompts(box=Box((1, 1, 1), (4, 4, 4))), volume)
    with pytest.raises(PromptError, match="never learnt"):
        check_request("vista3d", Prompts(classes=(1,)), volume, learnt=get_family("vista3d").learnt(None).__class__("m", frozenset({3}), "test"))


def test_one_segment_call_checks_once_and_reads_the_checkpoint_keys_once(ct_crop_path, tiny_checkpoint, tmp_path, capsys, monkeypatch):
    """The whole ``voxelprompt segment`` path, in-process, counting the family's prompt checks,
    the reads of the checkpoint's tensor names, model loads and every open() of the checkpoint
    file: tensor names once, weights once."""
    counts = {"check": 0, "keys": 0, "load": 0, "opens": 0}
    check, load = ModelFamily.check_prompts, ModelFamily.load

    def counted_check(self, prompts, volume):
        counts["check"] += 1
        return check(self, prompts, volume)

    def counted_load(self, *args, **kwargs):
        counts["load"] += 1
        return load(self, *args, **kwargs)

    import voxelprompt.models.checkpoint_io as checkpoint_io

    keys = checkpoint_io.checkpoint_keys

    def counted_keys(path, *args, **kwargs):
        counts["keys"] += 1
        return keys(path, *args, **kwargs)

    real_open = builtins.open
    target = Path(tiny_checkpoint).resolve()

    def counted_open(file, *args, **kwargs):
        if isinstance(file, str | Path) and Path(file).resolve() == target:
            counts["opens"] += 1
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(ModelFamily, "check_prompts", counted_check)
    monkeypatch.setattr(ModelFamily, "load", counted_load)
    monkeypatch.setattr(checkpoint_io, "checkpoint_keys", counted_keys)
    monkeypatch.setattr(builtins, "open", counted_open)
    checkpoint_io._keys.cache_clear()  # tensor names are remembered per file: count a real read
    out = tmp_path / "seg.nii.gz"
    argv = ["segment", str(ct_crop_path), "-o", str(out), "-c", str(tiny_checkpoint), "--classes", "liver",
            "--point", "20,20,10", "-q"]  # fmt: skip
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert counts == {"check": 1, "keys": 1, "load": 1, "opens": 2}, counts


def test_the_api_checks_once_too(ct_crop_path, tiny_checkpoint, monkeypatch):
    from voxelprompt import api

    calls = []
    check = ModelFamily.check_prompts
    monkeypatch.setattr(ModelFamily, "check_prompts", lambda self, p, v: calls.append(self.name) or check(self, p, v))
    segmenter = api.load_model(tiny_checkpoint, device="cpu")
    result = api.segment(ct_crop_path, segmenter=segmenter, classes=["liver"], points=[(20, 20, 10)])
    assert calls == ["vista3d"] and result.classes == (1,)
    # Direct use of the segmenter with unchecked prompts is still checked, by the segmenter itself.
    calls.clear()
    volume = api.read_ct(ct_crop_path)
    with pytest.raises(PromptError, match="outside the volume"):
        segmenter.segment(volume, Prompts(classes=(1,), points=Points.from_lists([(999, 0, 0)])))
    assert calls == ["vista3d"]
