"""``voxelprompt train RECIPE [--resume]`` and ``voxelprompt finetune`` through the console entry point."""

from __future__ import annotations

import json

import pytest

from voxelprompt.cli import main


def test_train_recipe_file_then_resume(phantom_datalist, tmp_path, capsys):
    recipe = {
        "base": "stage3",
        "width": 8,
        "steps": 1,
        "val_every": -1,
        "output_dir": "run",
        "data": {"datalists": [str(phantom_datalist)], "max_cases": 1},
        "patch": {"roi": [32, 32, 32], "spacing": [10.0, 10.0, 10.0]},
    }
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    main(["train", str(path), "-q"])  # returns normally on success
    assert (tmp_path / "run" / "model.pt").is_file() and (tmp_path / "run" / "checkpoint.pt").is_file()
    main(["train", str(path), "--resume", "--steps", "2", "-q"])
    assert "steps: 2" in capsys.readouterr().out


def test_bad_input_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(tmp_path / "absent.json")])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["finetune", "a.pt", "d.json", "--class", "x"])
    assert exit_info.value.code == 2
    assert "LOCAL=GLOBAL" in capsys.readouterr().err
