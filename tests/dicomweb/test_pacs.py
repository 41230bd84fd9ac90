"""QIDO / WADO / STOW against a real Orthanc PACS on loopback, through voxelprompt.dicomweb."""

from __future__ import annotations

import numpy as np
import pytest

from orthanc import PASSWORD, USER
from voxelprompt.dicomweb import DicomWebSource, PacsError, connect, find_series, parse_source, retrieve_series
from voxelprompt.imageio import read_volume


@pytest.fixture()
def pacs(orthanc_series):
    return orthanc_series


def test_query_and_retrieve_give_the_local_reader_s_volume(pacs, tmp_path):
    server, folder, study, series = pacs
    client = connect(DicomWebSource(server.dicomweb, USER, PASSWORD))
    found = find_series(client, "Modality=CT")
    assert [(s.study_uid, s.series_uid, s.instances) for s in found] == [(study, series, 20)]
    assert find_series(client, {"Modality": "MR"}) == []
    retrieved = retrieve_series(client, series, tmp_path / "wado")
    local, remote = read_volume(folder), read_volume(retrieved)
    assert np.array_equal(local.array, remote.array) and np.allclose(local.affine, remote.affine)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_pacs_errors_are_one_line_without_secrets(pacs, tmp_path, monkeypatch):
    server, _, _, series = pacs
    wrong = connect(DicomWebSource(server.dicomweb, USER, "not-the-password", retries=0))
    with pytest.raises(PacsError, match="refused the credentials") as info:
        find_series(wrong, "Modality=CT")
    assert "not-the-password" not in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(PacsError, match="unreachable"):
        find_series(connect(DicomWebSource("http://127.0.0.1:9/dicom-web", retries=1, backoff_s=0.01, timeout_s=2)), "Modality=CT")
    with pytest.raises(PacsError, match="unknown query attribute 'Color'"):
        find_series(connect(DicomWebSource(server.dicomweb, USER, PASSWORD)), "Color=red")
    with pytest.raises(PacsError, match="not on the PACS"):
        retrieve_series(connect(DicomWebSource(server.dicomweb, USER, PASSWORD)), "1.2.3", tmp_path / "x")
    with pytest.raises(PacsError, match="not in the URL"):
        DicomWebSource("http://user:secret@127.0.0.1/dicom-web")
    monkeypatch.setenv("VOXELPROMPT_DICOMWEB_USER", USER)
    monkeypatch.setenv("VOXELPROMPT_DICOMWEB_PASSWORD", PASSWORD)
    source = parse_source(f"dicomweb+{server.dicomweb}")
    assert (source.user, source.password) == (USER, PASSWORD) and PASSWORD not in repr(source)
    secrets = tmp_path / "pacs.txt"
    secrets.write_text(f"{USER}:{PASSWORD}\n")
    monkeypatch.delenv("VOXELPROMPT_DICOMWEB_PASSWORD")
    assert parse_source(server.dicomweb, credentials=secrets).password == PASSWORD
