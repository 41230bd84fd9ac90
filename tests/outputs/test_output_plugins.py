"""A writer registered in a test appears in ``segment``, ``batch`` and the server.

The output format ``volumes-csv`` (``tests/plugins/volumes_csv``: one CSV row per label value with
its name, voxel count and ml) is installed with pip into a temporary folder, as a third party's
package, and found through the ``voxelprompt.outputs`` entry-point group: the installed console
script lists and writes it (``segment --output-format``, ``batch --output-format``) and a real
``voxelprompt serve`` answers ``/infer/...?output=volumes-csv``. voxelprompt itself is not edited.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import requests
from cli_runner import SCRIPT, die_with_parent, script
from plugin_family import plugin_env

from voxelprompt.outputs import OUTPUT_FORMATS, OutputContext, write_output
from voxelprompt.types import Volume

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "volumes_csv"
NAME = "volumes-csv"


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    """``pip install --target`` of the plugin (offline, no build isolation), built from a copy so
    the source tree gets no build folder; the folder that holds it."""
    work = tmp_path_factory.mktemp("volumes_csv")
    source = shutil.copytree(PLUGIN, work / "src")
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return target


@pytest.fixture
def registered(plugin, monkeypatch):
    """The plugin's format registered in this process for one test (entry points found again)."""
    monkeypatch.syspath_prepend(str(plugin))
    OUTPUT_FORMATS.reload()
    yield OUTPUT_FORMATS[NAME]
    monkeypatch.undo()
    OUTPUT_FORMATS.reload()


def _rows(path: Path) -> dict[int, tuple[str, int, float]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["value", "name", "voxels", "ml"]
        return {int(r["value"]): (r["name"], int(r["voxels"]), float(r["ml"])) for r in reader}


def _counts(array: np.ndarray) -> dict[int, int]:
    values, counts = np.unique(array[array != 0], return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


def test_the_plugin_is_registered_beside_the_builtins_and_writes_atomically(registered, tmp_path):
    assert list(OUTPUT_FORMATS)[:7] == ["nifti", "nrrd", "seg-nrrd", "dicom-seg", "rtstruct", "stats", "preview"]
    assert registered.name == NAME and list(OUTPUT_FORMATS)[-1] == NAME
    array = np.zeros((4, 5, 6), np.uint8)
    array[0, :2, :3], array[3, 4, 5] = 2, 7
    labels = Volume(array, np.diag([2.0, 2.0, 2.5, 1.0]))
    written = write_output(OutputContext(labels=labels, label_names={2: "spleen", 7: "tumour"}), tmp_path / "v.csv", NAME)
    assert written == [tmp_path / "v.csv"] and sorted(p.name for p in tmp_path.iterdir()) == ["v.csv"]  # no staging left
    assert _rows(written[0]) == {2: ("spleen", 6, 0.06), 7: ("tumour", 1, 0.01)}


def test_a_broken_plugin_is_skipped_with_a_warning(tmp_path, monkeypatch, caplog):
    dist = tmp_path / "broken_output-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-output\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[voxelprompt.outputs]\nbroken = no_such_module_here:FORMAT\nnifti = os:sep\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    OUTPUT_FORMATS.reload()
    try:
        with caplog.at_level(logging.WARNING, logger="voxelprompt"):
            names = list(OUTPUT_FORMATS)
        assert "broken" not in names and names[:7] == ["nifti", "nrrd", "seg-nrrd", "dicom-seg", "rtstruct", "stats", "preview"]
        assert OUTPUT_FORMATS["nifti"].writer.startswith("voxelprompt.outputs")  # the built-in keeps its name
        assert "broken" in caplog.text and "failed to load" in caplog.text and "nifti (os:sep) skipped" in caplog.text
    finally:
        monkeypatch.undo()
        OUTPUT_FORMATS.reload()


def test_segment_lists_and_writes_it(plugin, ct_crop_path, tmp_path):
    env = plugin_env(plugin)
    help_text = script("segment", "--help", env={**env, "COLUMNS": "400"})
    assert help_text.returncode == 0 and NAME in help_text.stdout, help_text.stderr
    args = [str(ct_crop_path), "-c", "demo", "--classes", "liver,spleen", "--device", "cpu", "-q"]
    labels = script("segment", *args, "-o", str(tmp_path / "seg.nii.gz"), env=env, timeout=600)
    assert labels.returncode == 0, labels.stderr
    table = tmp_path / "volumes.csv"
    done = script("segment", *args, "-o", str(table), "--output-format", NAME, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    counts = _counts(np.asarray(nib.load(tmp_path / "seg.nii.gz").dataobj))
    rows = _rows(table)
    assert counts and {v: r[1] for v, r in rows.items()} == counts  # the same model run, counted by the plugin
    names = json.loads((tmp_path / "seg.label_names.json").read_text())
    assert {v: r[0] for v, r in rows.items()} == {int(v): n for v, n in names.items() if int(v) in counts}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.label_names.json", "seg.nii.gz", "volumes.csv"]
    # Without the plugin the name is unknown: one line, exit 2, before any model work.
    missing = script("segment", *args, "-o", str(tmp_path / "x.csv"), "--output-format", NAME)
    assert missing.returncode == 2 and "unknown kind" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()


def test_segment_refuses_what_a_format_needs_before_any_model_work(plugin, ct_crop_path, tmp_path):
    done = script("segment", str(ct_crop_path), "-o", str(tmp_path / "x.dcm"), "--output-format", "rtstruct", "-c", "demo",
                  "--classes", "liver", "-q", env=plugin_env(plugin))  # fmt: skip
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "not a DICOM series folder" in done.stderr and "rtstruct" in done.stderr
    assert not list(tmp_path.iterdir())


def test_batch_writes_it_per_case(plugin, ct_crop_path, tmp_path):
    cohort = tmp_path / "cts"
    cohort.mkdir()
    shutil.copy(ct_crop_path, cohort / "crop.nii.gz")
    out = tmp_path / "out"
    done = script("batch", str(cohort), "-o", str(out), "-c", "demo", "--classes", "liver,spleen", "--device", "cpu",
                  "--output-format", f"nifti,{NAME}", env=plugin_env(plugin), timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    case = out / "crop"
    counts = _counts(np.asarray(nib.load(case / "labels.nii.gz").dataobj))
    rows = _rows(case / "volumes.csv")
    assert counts and {v: r[1] for v, r in rows.items()} == counts
    names = {int(v): n for v, n in json.loads((case / "label_names.json").read_text()).items()}
    assert all(rows[v][0] == names[v] for v in rows)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["output_formats"] == ["nifti", NAME]
    assert "volumes.csv" in json.dumps(manifest["cases"])


def test_the_server_answers_output_volumes_csv(plugin, ct_crop_path, tmp_path):
    from voxelprompt.server.launch import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(SCRIPT), "serve", "--port", str(port), "--device", "cpu", "--datastore", str(tmp_path / "store")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=plugin_env(plugin), preexec_fn=die_with_parent,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(f"{url}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.communicate(timeout=10)[1]
                assert time.monotonic() < deadline, "server did not start within 120 s"
                time.sleep(0.5)
        put = requests.put(f"{url}/datastore/?image=crop", files={"file": ("crop.nii.gz", ct_crop_path.read_bytes())}, timeout=60)
        assert put.status_code == 200, put.text
        params = {"params": (None, json.dumps({"label_prompt": [1, 3], "result_extension": ".nii.gz"}))}
        image = requests.post(f"{url}/infer/vista3d-demo?image=crop&output=image", files=params, timeout=300)
        assert image.status_code == 200, image.text[:300]
        (tmp_path / "labels.nii.gz").write_bytes(image.content)
        table = requests.post(f"{url}/infer/vista3d-demo?image=crop&output={NAME}", files=params, timeout=300)
        assert table.status_code == 200, table.text[:300]
        assert table.headers["content-type"].startswith("text/csv") and 'filename="volumes.csv"' in table.headers["content-disposition"]
        (tmp_path / "volumes.csv").write_bytes(table.content)
        counts = _counts(np.asarray(nib.load(tmp_path / "labels.nii.gz").dataobj))
        rows = _rows(tmp_path / "volumes.csv")
        assert counts and {v: r[1] for v, r in rows.items()} == counts
        assert {r[0] for r in rows.values()} <= {"liver", "spleen"}
        # A registered format that needs a DICOM series is refused for an uploaded file, in one line.
        refused = requests.post(f"{url}/infer/vista3d-demo?image=crop&output=dicom-seg", files=params, timeout=300)
        assert refused.status_code in (400, 422) and "needs a DICOM source series" in refused.json()["detail"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
