"""``voxelprompt overlay`` from the installed console script: labels on the same grid stored in
another axis order are reoriented (said in one line), a truly different grid is refused."""

from __future__ import annotations

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
