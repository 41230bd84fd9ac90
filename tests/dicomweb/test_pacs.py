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


def test_pacs_client_retrieves_a_series_once_and_bounds_its_cache(pacs, tmp_path, monkeypatch):
    """The one client of batch and the server: threads asking for one series retrieve it once,
    and a size bound removes the least recently used other series."""
    import threading

    import voxelprompt.dicomweb.pacs as pacs_module
    from voxelprompt.dicomweb import PacsClient

    server, folder, study, series = pacs
    calls = []
    real = pacs_module.retrieve_series

    def counted(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(pacs_module, "retrieve_series", counted)
    client = PacsClient(DicomWebSource(server.dicomweb, USER, PASSWORD), tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # made with its first series
    assert client.study_of(series) == study and [s.series_uid for s in client.find("Modality=CT")] == [series]
    got = []
    threads = [threading.Thread(target=lambda: got.append(client.series_folder(series, study))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [series] and got == [tmp_path / "cache" / series] * 3
    assert np.array_equal(read_volume(got[0]).array, read_volume(folder).array)

    stale = tmp_path / "bounded" / "stale"
    stale.mkdir(parents=True)
    (stale / "x.dcm").write_bytes(b"\0" * 2**20)
    bounded = PacsClient(DicomWebSource(server.dicomweb, USER, PASSWORD), tmp_path / "bounded", max_cache_mb=0.5, folder_name=lambda uid: "s")
    kept = bounded.series_folder(series)
    assert kept == tmp_path / "bounded" / "s" and not stale.exists() and len(list(kept.iterdir())) == 20
