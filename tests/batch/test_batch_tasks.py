"""Tasks: ``--task`` strings and tasks files, their checks, and the merge rule (earlier task wins)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from voxelprompt.batch.tasks import load_tasks, merge_labels, parse_task, resolve_task
from voxelprompt.errors import PromptError, VoxelPromptError


def test_a_task_string_holds_prompts_model_and_options():
    task = parse_task("classes=liver, spleen;engine=fast;roi=64,64,64;name=organs", 1)
    assert task.classes == ("liver", "spleen") and task.name == "organs"
    assert dict(task.options) == {"--engine": "fast", "--roi": (64, 64, 64)}
    clicks = parse_task("point=1,2,3|4,5,6;negative_point=7,8,9;new_structure;label_value=7", 2)
    assert clicks.points == ((1, 2, 3), (4, 5, 6)) and clicks.negative_points == ((7, 8, 9),)
    assert clicks.new_structure and clicks.label_value == 7 and clicks.name == "task 2"
    segvol = parse_task("text=left kidney;model=segvol;checkpoint=w.pth;mode=sliding;overlap=0.25")
    assert (segvol.text, segvol.family, segvol.checkpoint) == ("left kidney", "segvol", "w.pth")
    assert dict(segvol.options) == {"--segvol-mode": "sliding", "--overlap": 0.25}


@pytest.mark.parametrize(
    ("text", "message"),
    [("colour=red", "unknown key 'colour'"), ("classes", "key=value"), ("point=1,2", "3 comma-separated"), ("label_value=x", "whole number")],
)
def test_bad_task_strings_are_named(text, message):
    with pytest.raises(PromptError, match=message):
        parse_task(text)


def test_a_tasks_file_takes_lists_too(tmp_path):
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([{"classes": ["liver"]}, {"everything": True, "engine": "fast"}]))
    first, second = load_tasks(path)
    assert first.classes == ("liver",) and second.everything and dict(second.options) == {"--engine": "fast"}
    path.write_text("{}")
    with pytest.raises(VoxelPromptError, match="non-empty JSON list"):
        load_tasks(path)


def test_resolving_checks_prompts_capabilities_and_options_naming_the_task(tmp_path):
    with pytest.raises(VoxelPromptError, match="task 1: .*livr"):
        resolve_task(parse_task("classes=livr"), "cpu")
    with pytest.raises(VoxelPromptError, match="organs: .*box"):
        resolve_task(parse_task("box=0,0,0,4,4,4;name=organs"), "cpu")  # VISTA3D takes no box
    with pytest.raises(VoxelPromptError, match="task 1: .*mode"):
        resolve_task(parse_task("classes=liver;mode=zoom"), "cpu")  # a SegVol option
    with pytest.raises(VoxelPromptError, match="checkpoint file not found"):
        resolve_task(parse_task(f"classes=liver;checkpoint={tmp_path / 'none.pt'}"), "cpu")
    resolved = resolve_task(parse_task("classes=liver"), "cpu")
    settings = resolved.settings()
    assert settings["family"] == "vista3d" and len(settings["checkpoint_sha256"]) == 64 and "checkpoint" not in settings


def test_merge_lets_earlier_tasks_win_and_keeps_names_of_present_values():
    first = np.array([[[0, 1, 1, 0]]], dtype=np.uint8)
    second = np.array([[[3, 3, 0, 0]]], dtype=np.uint8)
    third = np.array([[[0, 0, 0, 300]]], dtype=np.int16)
    merged, names = merge_labels([first, second, third], [{1: "liver"}, {3: "spleen", 5: "gone"}, {300: "object"}])
    np.testing.assert_array_equal(merged, [[[3, 1, 1, 300]]])
    assert merged.dtype == np.int16
    assert names == {1: "liver", 3: "spleen", 300: "object"}


def test_merge_refuses_one_value_with_two_names():
    a = np.ones((1, 1, 2), dtype=np.uint8)
    with pytest.raises(PromptError, match="task 1 and clicks both write label 1"):
        merge_labels([a, a], [{1: "liver"}, {1: "object"}], ["task 1", "clicks"])
