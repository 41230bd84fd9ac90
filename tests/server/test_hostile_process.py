"""Hostile requests that could end the whole server process, against the installed console script
(issue 26): a NRRD header pointing ITK at /dev/zero, and SIGTERM with sessions open and a request
in flight."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import requests

from cli_runner import SCRIPT, die_with_parent
from voxelprompt.data.phantom import PhantomConfig, make_phantom
from voxelprompt.imageio import write_volume
from voxelprompt.server.launch import free_port


def start(tmp_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [str(SCRIPT), "serve", "--port", str(port), "--device", "cpu", "--datastore", str(tmp_path / "store")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent,
    )  # fmt: skip
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    while True:
        try:
            requests.get(f"{url}/healthz", timeout=2)
            return process, url
        except requests.ConnectionError:
            assert process.poll() is None, process.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "server did not start within 120 s"
            time.sleep(0.5)


def stop(process: subprocess.Popen) -> tuple[int, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    return process.returncode, err


def test_nrrd_naming_dev_zero_is_refused_and_the_server_lives(tmp_path):
    """Item 1: a ~100-byte NRRD header (`encoding: ascii`, `data file: /dev/zero`) on every upload
    route: one-line 400s, the process keeps serving, nothing half-written stays in the store."""
    process, url = start(tmp_path)
    try:
        body = b"NRRD0004\ntype: float\ndimension: 3\nsizes: 64 64 64\nencoding: ascii\ndata file: /dev/zero\n\n"
        assert len(body) < 110
        replies = [
            requests.put(f"{url}/datastore/?image=z", files={"file": ("z.nrrd", body)}, timeout=60),
            requests.put(f"{url}/session/", files={"files": ("z.nrrd", body)}, timeout=60),
            requests.post(f"{url}/infer/vista3d-demo?output=json", files={"file": ("z.nrrd", body)}, timeout=60),
        ]
        for reply in replies:
            assert reply.status_code == 400 and "data file" in reply.json()["detail"], reply.text[:300]
        assert requests.get(f"{url}/healthz", timeout=10).json()["images"] == 0
        assert not [p for p in (tmp_path / "store" / "images").iterdir()]
    finally:
        code, err = stop(process)
    assert code == 0, err[-2000:]


def test_sigterm_with_sessions_open_exits_0(tmp_path):
    """Item 8: sessions pre-encoding in the background and a request in flight; SIGTERM ends the
    process with status 0 (the request finished or was refused), never SIGABRT."""
    ct, _ = make_phantom(PhantomConfig(shape=(80, 64, 48), spacing=(3, 3, 3), seed=3))
    path = write_volume(ct, tmp_path / "ct.nii.gz")
    process, url = start(tmp_path)
    statuses: list[object] = []
    try:
        with open(path, "rb") as handle:
            assert requests.put(f"{url}/datastore/?image=ct", files={"file": ("ct.nii.gz", handle)}, timeout=60).status_code == 200
        click = {"foreground": [[40, 32, 24]]}
        infer = f"{url}/infer/vista3d-demo-interactive?image=ct&output=json"
        assert requests.post(infer, files={"params": (None, json.dumps(click))}, timeout=300).status_code == 200

        def in_flight() -> None:
            try:
                reply = requests.post(infer, files={"params": (None, json.dumps({"foreground": [[30, 30, 20]]}))}, timeout=120)
                statuses.append(reply.status_code)
            except requests.RequestException as err:
                statuses.append(type(err).__name__)

        thread = threading.Thread(target=in_flight)
        thread.start()
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        thread.join(120)
    finally:
        code, err = stop(process)
    assert code == 0, (code, err[-2000:])
    assert "terminate called" not in err
    assert statuses and statuses[0] in (200, 503), statuses
