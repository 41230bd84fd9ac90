"""A real Orthanc PACS with its DICOMweb plugin on loopback, for tests (Debian packages ``orthanc``
and ``orthanc-dicomweb``; ``.ci/run`` installs them when missing).

The shared DICOM series carries no Study/Series/SOP Instance UIDs (it was anonymised), and Orthanc
refuses such files, so :func:`series_with_uids` writes a copy with UIDs derived from the file
contents before upload; the shared folder is never changed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from cli_runner import die_with_parent
from voxelprompt.imageio.dicom_source import derive_uid
from voxelprompt.server.launch import free_port

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
USER, PASSWORD = "annotator", "pacs-password-for-tests"


@dataclass
class RunningOrthanc:
    url: str  # the REST root, http://127.0.0.1:PORT
    process: subprocess.Popen

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def upload(self, folder: Path) -> list[str]:
        """POST every file of ``folder`` to /instances; the Orthanc ids."""
        ids = []
        for path in sorted(folder.iterdir()):
            reply = requests.post(f"{self.url}/instances", data=path.read_bytes(), auth=(USER, PASSWORD), timeout=30)
            reply.raise_for_status()
            ids.append(reply.json()["ID"])
        return ids

    def get(self, path: str):
        reply = requests.get(f"{self.url}{path}", auth=(USER, PASSWORD), timeout=30)
        reply.raise_for_status()
        return reply.json()


def start_orthanc(folder: Path) -> RunningOrthanc:
    """Start Orthanc with storage in ``folder``, basic auth, DICOM port off; fail clearly when missing."""
    assert Path(ORTHANC).exists() and DICOMWEB_PLUGIN.exists(), (
        "Orthanc with DICOMweb is needed: apt-get install -y orthanc orthanc-dicomweb (.ci/run does it)"
    )
    port = free_port()
    config = {
        "Name": "voxelprompt-tests", "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
        "HttpPort": port, "DicomServerEnabled": False, "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD},
        "Plugins": [str(DICOMWEB_PLUGIN)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }  # fmt: skip
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = open(folder / "orthanc.log", "wb")
    process = subprocess.Popen(
        [ORTHANC, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{url}/system", auth=(USER, PASSWORD), timeout=2).ok:
                return RunningOrthanc(url, process)
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"Orthanc did not start: {(folder / 'orthanc.log').read_text()[-2000:]}")
        time.sleep(0.2)


def stop_orthanc(server: RunningOrthanc) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()


def series_with_uids(source: Path, folder: Path, tag: str = "voxelprompt") -> tuple[Path, str, str]:
    """A copy of a UID-less series with Study/Series/SOP Instance UIDs; (folder, study, series UID)."""
    import pydicom

    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = derive_uid(tag, "study"), derive_uid(tag, "series"), derive_uid(tag, "frame")
    for path in sorted(source.iterdir()):
        ds = pydicom.dcmread(path)
        sop = derive_uid(tag, path.name)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.FrameOfReferenceUID = study, series, sop, frame
        if not getattr(ds, "SOPClassUID", ""):
            ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.save_as(folder / f"{path.name}.dcm", enforce_file_format=True)
    return folder, study, series
