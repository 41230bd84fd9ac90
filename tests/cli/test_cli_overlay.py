"""``voxelprompt overlay`` from the installed console script: labels on the same grid stored in
another axis order are reoriented (said in one line), a truly different grid is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runner import script

from shared_paths import shared_file


def test_overlay_takes_las_labels_of_a_dicom_series_and_refuses_another_grid(tmp_path):
    series = shared_file("data", "totalseg", "example_ct_dicom")
    las = shared_file("data", "totalseg", "example_ct_dicom_seg.nii.gz")
    picture = tmp_path / "ts.png"
    done = script("overlay", str(series), str(las), "-o", str(picture))
    assert done.returncode == 0, done.stderr
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    notes = [line for line in done.stderr.splitlines() if "reoriented" in line]
    assert len(notes) == 1 and "LAS" in notes[0] and "LPS" in notes[0], done.stderr
    other = shared_file("data", "totalseg", "example_ct_sm_seg.nii.gz")  # the other CT's labels
    done = script("overlay", str(series), str(other), "-o", str(tmp_path / "no.png"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "not on the grid" in done.stderr and "resample" in done.stderr
    assert not (tmp_path / "no.png").exists()


def _description(png: Path) -> list[str]:
    from PIL import Image

    with Image.open(png) as picture:
        return picture.info["Description"].splitlines()


def test_overlay_names_the_slices_stretches_thin_views_and_never_guesses_names(tmp_path):
    """The 20-slice series: each panel says its slice (input index, RAS+ mm), the coronal and
    sagittal strips are stretched to a readable height (and say so), and TotalSegmentator's ids
    without a class table are "label N", not VISTA3D names."""
    series = shared_file("data", "totalseg", "example_ct_dicom")
    las = shared_file("data", "totalseg", "example_ct_dicom_seg.nii.gz")
    picture = tmp_path / "ts.png"
    done = script("overlay", str(series), str(las), "-o", str(picture), "--point", "256,256,10")
    assert done.returncode == 0, done.stderr
    assert "no class table" in done.stderr
    lines = _description(picture)
    axial, coronal, sagittal = (next(line for line in lines if line.startswith(v)) for v in ("axial", "coronal", "sagittal"))
    assert "k=10, z=-784.5 mm" in axial and "stretched" not in axial
    assert "j=256" in coronal and "stretched" in coronal and "i=256" in sagittal and "stretched" in sagittal
    legend = next(line for line in lines if line.startswith("legend: ")).removeprefix("legend: ").split("; ")
    assert legend and all(entry.startswith("label ") for entry in legend), legend
    done = script("overlay", str(series), str(las), "-o", str(picture), "--label-names", "vista3d")
    assert done.returncode == 0 and "no class table" not in done.stderr, done.stderr
    assert "liver" in next(line for line in _description(picture) if line.startswith("legend: "))


def _phantom(folder: Path) -> tuple[Path, object]:
    """A 40^3 phantom at 4 mm (a second for the demo model) and its ground-truth labels."""
    from voxelprompt.data import PhantomConfig, make_phantom
    from voxelprompt.imageio import write_volume

    image, truth = make_phantom(PhantomConfig(shape=(40, 40, 40), spacing=(4.0, 4.0, 4.0), seed=0))
    return write_volume(image, folder / "phantom.nii.gz"), truth.array


def _legend(png: Path) -> list[str]:
    return next(line for line in _description(png) if line.startswith("legend: ")).removeprefix("legend: ").split("; ")


@pytest.mark.slow  # three demo-model runs: ~35 s on 2 shared cores
def test_segment_writes_the_class_names_that_overlay_then_shows(tmp_path):
    """`segment` writes ``<stem>.label_names.json`` beside its label map (VISTA3D class names,
    "object" for clicks alone), and `overlay` of that map names the structures, not "label N"."""
    import json

    import numpy as np

    ct, truth = _phantom(tmp_path)
    seg = tmp_path / "out" / "seg.nii.gz"
    done = script("segment", str(ct), "-o", str(seg), "--classes", "liver,spleen", "-q")
    assert done.returncode == 0, done.stderr
    names = json.loads((tmp_path / "out" / "seg.label_names.json").read_text())
    assert sorted(names.values()) == ["liver", "spleen"], names
    picture = tmp_path / "seg.png"
    done = script("overlay", str(ct), str(seg), "-o", str(picture))
    assert done.returncode == 0 and "no class table" not in done.stderr, done.stderr
    legend = _legend(picture)
    assert legend and not any(entry.startswith("label ") for entry in legend), legend
    assert any("liver" in entry for entry in legend), legend

    # Clicks alone: one object of no class. (The demo model's click branch finds nothing on so
    # small a phantom, so only the names file is checked here.)
    liver = np.argwhere(truth == int(next(v for v, n in names.items() if n == "liver")))
    click = ",".join(str(int(v)) for v in liver[len(liver) // 2])
    obj = tmp_path / "out" / "object.nrrd"
    done = script("segment", str(ct), "-o", str(obj), "--point", click, "-q")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "object.label_names.json").read_text()) == {"1": "object"}
