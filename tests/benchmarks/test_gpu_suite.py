"""benchmarks/gpu_suite.py on the CPU at --quick sizes: every part runs and lands in the JSON with
numbers; a part over its time budget is recorded as failed while the others still run."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from shared_paths import shared_file

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_suite.py"
PARTS = ("environment", "everything", "clicks", "segvol", "amp", "agreement")


def run_suite(tmp_path: Path, *args: str) -> dict:
    data = shared_file("data", "totalseg", "example_ct_sm.nii.gz").parent
    out = tmp_path / "suite.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OUT", None)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--data", str(data), "--json", str(out), *args],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| measurement | result | setting |" in done.stdout
    return json.loads(out.read_text())


def numbers(tree) -> list[float]:
    if isinstance(tree, dict):
        return [v for x in tree.values() for v in numbers(x)]
    if isinstance(tree, list):
        return [v for x in tree for v in numbers(x)]
    return [float(tree)] if isinstance(tree, (int, float)) and not isinstance(tree, bool) else []


@pytest.mark.slow
def test_quick_cpu_run_fills_every_part(tmp_path):
    results = run_suite(tmp_path)
    parts = results["parts"]
    assert tuple(parts) == PARTS
    for name, part in parts.items():
        assert part["status"] == "ok", f"{name}: {part.get('error')}"
        assert any(math.isfinite(v) for v in numbers(part)), name
    assert results["settings"]["quick"] and results["settings"]["device"] == "cpu"
    everything = parts["everything"]
    assert everything["seconds"] > 0 and everything["windows"] >= 8
    assert everything["model_grid"] == everything["input_grid"] == [48, 48, 40]  # the corner voxels defeat the crop
    session = parts["clicks"]["session"]
    assert len(session["all"]) == 1 + results["settings"]["later_clicks"]
    assert parts["segvol"]["zoom"]["windows"] >= 1 and parts["segvol"]["sliding"]["windows"] >= 1
    for part in ("agreement", "amp"):
        rows = [r for prompts in parts[part]["demo"].values() for r in prompts.values() if "identical" in r]
        assert rows and all(0.0 <= r["identical"] <= 1.0 and r["voxels"] > 0 for r in rows)
    assert set(parts["agreement"]) >= {"demo", "full-size"}

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_table import rows as table_rows

    text = "\n".join(table_rows(results))
    for needle in ("everything mode", "click latency", "SegVol zoom-out-zoom-in", "AMP agreement", "CPU vs device agreement"):
        assert needle in text


def test_a_part_over_its_budget_is_recorded_and_the_rest_still_runs(tmp_path):
    results = run_suite(tmp_path, "--parts", "everything,environment", "--part-budget", "1")
    everything, environment = results["parts"]["everything"], results["parts"]["environment"]
    assert everything["status"] == "failed" and "timed out" in everything["error"]
    assert environment["status"] == "ok" and environment["cpus"] >= 1
