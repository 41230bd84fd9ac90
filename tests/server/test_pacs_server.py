"""``voxelprompt serve --dicomweb``: a MONAI Label ``infer`` whose image is a SeriesInstanceUID on a
real Orthanc PACS (as the OHIF plugin sends it), and the DICOM-SEG stored back."""

from __future__ import annotations

import numpy as np
import pytest

from served import start_server
from orthanc import PASSWORD, USER
from voxelprompt.imageio import read_labels, read_volume
from voxelprompt.server.launch import ServeSettings


@pytest.fixture(scope="module")
def pacs_server(orthanc_series, tmp_path_factory):
    server, *_ = orthanc_series
    secrets = tmp_path_factory.mktemp("secrets") / "pacs.txt"
    secrets.write_text(f"{USER}:{PASSWORD}\n")
    running = start_server(tmp_path_factory.mktemp("store"), ServeSettings(device="cpu", dicomweb=server.dicomweb, dicomweb_credentials=secrets))
    yield running
    running.thread.stop()


def test_infer_on_a_series_uid_fetches_it_and_stores_the_seg_back(pacs_server, orthanc_series, tmp_path):
    import highdicom as hd
    import requests

    from monailabel.client import MONAILabelClient

    orthanc, folder, study, series = orthanc_series
    client = MONAILabelClient(pacs_server.url, tmpdir=str(tmp_path))
    result, params = client.infer("vista3d-demo-segmentation", series, {"label_prompt": [1, 3, 5], "store_dicom_seg": True})
    labels = read_labels(result)
    ct = read_volume(folder)
    assert labels.shape == ct.shape and np.allclose(labels.affine, ct.affine, atol=1e-3)
    seg_info = params["dicom_seg"]
    assert seg_info["stored"] is True
    # Orthanc lists the SEG under the same study, and its frames are the label map.
    series_in_study = orthanc.get(f"/dicom-web/studies/{study}/series")
    modalities = {s["0020000E"]["Value"][0]: s["00080060"]["Value"][0] for s in series_in_study}
    assert modalities[series] == "CT" and modalities[seg_info["series_uid"]] == "SEG"  # other tests may store SEGs too
    reply = requests.get(f"{orthanc.dicomweb}/studies/{study}/series/{seg_info['series_uid']}/instances/{seg_info['sop_instance_uid']}",
                         headers={"Accept": 'multipart/related; type="application/dicom"'}, auth=(USER, PASSWORD), timeout=30)  # fmt: skip
    reply.raise_for_status()
    stored = tmp_path / "seg.dcm"
    body = reply.content
    stored.write_bytes(body[body.index(b"DICM") - 128 : body.rindex(b"\r\n--")])
    seg = hd.seg.segread(stored)
    expected = np.asarray(labels.array)
    for number, value in enumerate(sorted(v for v in np.unique(expected) if v), start=1):
        mask = seg.get_volume(segment_numbers=[number], combine_segments=False).array  # (slices, rows, columns) of the SEG
        assert mask.sum() == int((expected == value).sum())
    # output=dicom_seg returns the SEG itself.
    seg_bytes = requests.post(f"{pacs_server.url}/infer/vista3d-demo-segmentation?image={series}&output=dicom_seg",
                              files={"params": (None, '{"label_prompt": [1]}')}, timeout=120)  # fmt: skip
    assert seg_bytes.status_code == 200 and seg_bytes.content[128:132] == b"DICM"


def test_output_rtstruct_returns_the_structure_set_and_stores_it_under_the_study(pacs_server, orthanc_series, tmp_path):
    import io

    import pydicom
    import requests

    from dicom_checkers import dciodvfy_errors

    orthanc, folder, study, series = orthanc_series
    reply = requests.post(f"{pacs_server.url}/infer/vista3d-demo-segmentation?image={series}&output=rtstruct",
                          files={"params": (None, '{"label_prompt": [1], "store_rtstruct": true}')}, timeout=300)  # fmt: skip
    assert reply.status_code == 200, reply.text
    rs = pydicom.dcmread(io.BytesIO(reply.content))
    assert rs.Modality == "RTSTRUCT" and rs.StudyInstanceUID == study and "DEMO model" in rs.SeriesDescription
    references = rs.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert references.SeriesInstanceUID == series
    (tmp_path / "rs.dcm").write_bytes(reply.content)
    assert dciodvfy_errors(tmp_path / "rs.dcm") == []
    listed = orthanc.get(f"/dicom-web/studies/{study}/series")
    assert {s["0020000E"]["Value"][0]: s["00080060"]["Value"][0] for s in listed}[rs.SeriesInstanceUID] == "RTSTRUCT"


def test_pacs_failures_are_one_line_502(orthanc_series, tmp_path_factory, tmp_path, monkeypatch):
    import requests

    orthanc, _, _, series = orthanc_series
    monkeypatch.setenv("VOXELPROMPT_DICOMWEB_USER", USER)
    monkeypatch.setenv("VOXELPROMPT_DICOMWEB_PASSWORD", "wrong-password")
    wrong = start_server(tmp_path_factory.mktemp("store"), ServeSettings(device="cpu", dicomweb=orthanc.dicomweb))
    try:
        reply = requests.post(f"{wrong.url}/infer/vista3d-demo?image={series}", files={"params": (None, "{}")}, timeout=60)
        assert reply.status_code == 502 and "refused the credentials" in reply.json()["detail"]
        assert "wrong-password" not in reply.text
        reply = requests.post(f"{wrong.url}/infer/vista3d-demo?image=not-a-uid", files={"params": (None, "{}")}, timeout=60)
        assert reply.status_code == 404
    finally:
        wrong.thread.stop()
    gone = start_server(tmp_path_factory.mktemp("store"), ServeSettings(device="cpu", dicomweb="http://127.0.0.1:9/dicom-web"))
    try:
        reply = requests.post(f"{gone.url}/infer/vista3d-demo?image={series}", files={"params": (None, "{}")}, timeout=120)
        assert reply.status_code == 502 and "unreachable" in reply.json()["detail"]
    finally:
        gone.thread.stop()
