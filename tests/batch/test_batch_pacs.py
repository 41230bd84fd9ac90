"""``voxelprompt batch dicomweb+http://...``: a cohort searched on a real Orthanc PACS (QIDO),
retrieved (WADO-RS), segmented, and its DICOM-SEG stored back (STOW-RS) under the same study."""

from __future__ import annotations

import numpy as np
import pytest

from cli_runner import script
from orthanc import PASSWORD, USER


@pytest.mark.slow
def test_batch_over_a_pacs_query_stores_seg_under_the_study(orthanc_series, tmp_path):
    import json

    import highdicom as hd
    import pydicom

    from voxelprompt.imageio import read_labels, read_volume

    orthanc, folder, study, series = orthanc_series
    secrets = tmp_path / "pacs.txt"
    secrets.write_text(f"{USER}:{PASSWORD}\n")
    out = tmp_path / "out"
    args = ["batch", f"dicomweb+{orthanc.dicomweb}", "--query", "Modality=CT", "-o", str(out), "--classes", "liver,spleen,aorta",
            "--output-format", "nifti,dicom-seg,rtstruct", "--store-dicom-seg", "--store-rtstruct", "--dicomweb-credentials", str(secrets), "--device", "cpu", "-q"]  # fmt: skip
    done = script(*args, timeout=600)
    assert done.returncode == 0, done.stderr
    case = out / series  # the case id is the SeriesInstanceUID
    labels = read_labels(case / "labels.nii.gz")
    ct = read_volume(folder)
    assert labels.shape == ct.shape and np.allclose(labels.affine, ct.affine, atol=1e-3)
    seg = hd.seg.segread(case / "segmentation.dcm")
    assert seg.StudyInstanceUID == study
    # Orthanc lists the SEG under the source study, once.
    listed = orthanc.get(f"/dicom-web/studies/{study}/series")
    segs = [s["0020000E"]["Value"][0] for s in listed if s["00080060"]["Value"][0] == "SEG"]
    assert seg.SeriesInstanceUID in segs
    # Its frames, read back with highdicom on the series grid, are the NIfTI output's voxels.
    names = {int(k): v for k, v in json.loads((case / "label_names.json").read_text()).items()}
    expected = np.asarray(labels.array)
    volume = seg.get_volume(combine_segments=True, relabel=False)  # (slices, rows, columns) in the SEG's frame
    assert sorted(np.unique(volume.array).tolist()) == sorted({0, *(int(s.SegmentNumber) for s in seg.SegmentSequence)})
    for segment in seg.SegmentSequence:
        value = next(v for v, n in names.items() if n == segment.SegmentLabel)
        assert int((volume.array == segment.SegmentNumber).sum()) == int((expected == value).sum())
    # A rerun skips the case and stores nothing again.
    again = script(*args, timeout=600)
    assert again.returncode == 0 and "1 skipped" in again.stdout
    listed = orthanc.get(f"/dicom-web/studies/{study}/series")
    assert sum(1 for s in listed if s["00080060"]["Value"][0] == "SEG") == len(segs)
    # The RT-STRUCT is stored under the study too, once.
    rtstruct = pydicom.dcmread(case / "rtstruct.dcm", stop_before_pixels=True)
    assert rtstruct.StudyInstanceUID == study
    assert [s["0020000E"]["Value"][0] for s in listed if s["00080060"]["Value"][0] == "RTSTRUCT"].count(rtstruct.SeriesInstanceUID) == 1


def test_pacs_input_errors_are_one_line(orthanc_series, tmp_path, monkeypatch):
    orthanc, *_ = orthanc_series
    monkeypatch.setenv("VOXELPROMPT_DICOMWEB_USER", USER)
    monkeypatch.setenv("VOXELPROMPT_DICOMWEB_PASSWORD", "pw-wrong-7731")
    cases = [
        ([f"dicomweb+{orthanc.dicomweb}", "--query", "Modality=CT"], "refused the credentials"),
        ([f"dicomweb+{orthanc.dicomweb}"], "needs --query"),
        ([f"dicomweb+{orthanc.dicomweb}", "--query", "Colour=red"], "unknown query attribute"),
        (["dicomweb+http://127.0.0.1:9/dicom-web", "--query", "Modality=CT"], "unreachable"),
        ([str(tmp_path), "--query", "Modality=CT"], "need a PACS INPUT"),
        ([f"dicomweb+{orthanc.dicomweb}", "--series-uids", "1.2.3", "--store-dicom-seg"], "needs --output-format dicom-seg"),
        ([f"dicomweb+{orthanc.dicomweb}", "--series-uids", "1.2.3", "--store-rtstruct"], "needs --output-format rtstruct"),
        ([str(tmp_path), "--store-rtstruct"], "need a PACS INPUT"),
    ]
    for args, words in cases:
        done = script("batch", *args, "-o", str(tmp_path / "out"), "--classes", "liver", "--device", "cpu", "-q", timeout=120)
        errors = [line for line in done.stderr.strip().splitlines() if not line.startswith("WARNING")]  # the demo-model warning
        assert done.returncode == 2 and len(errors) == 1 and words in errors[0], (args, done.stderr)
        assert "pw-wrong-7731" not in done.stderr + done.stdout
