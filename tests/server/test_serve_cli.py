"""``voxelprompt serve`` as users run it: the installed console script in a subprocess."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

from cli_runner import SCRIPT, die_with_parent, script
from voxelprompt.server.launch import free_port


def test_serve_starts_answers_and_stops(tmp_path):
    port = free_port()
    store = tmp_path / "store"
    process = subprocess.Popen(
        [str(SCRIPT), "serve", "--port", str(port), "--device", "cpu", "--datastore", str(store)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "server did not start within 120 s"
                time.sleep(0.5)
        assert health["models"] == ["vista3d-demo"]
        info = requests.get(f"http://127.0.0.1:{port}/info/", timeout=10).json()
        assert "vista3d-demo-interactive" in info["models"]
        caps = requests.get(f"http://127.0.0.1:{port}/nninteractive/capabilities", timeout=10).json()  # nnInteractive clients
        assert caps["voxelprompt"]["model"] == "vista3d-demo" and caps["supports_initial_label"]
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=10, allow_redirects=True).status_code == 200  # the viewer
        itksnap = requests.get(f"http://127.0.0.1:{port}/v2/models", timeout=10).json()["models"]  # ITK-SNAP, loopback
        assert itksnap[0] == {"id": "vista3d-demo", "channels": [1], "dimensions": 3, "interactions": ["point", "scribble"]}
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in err and "model vista3d-demo-interactive (deepgrow" in err
    assert "ITK-SNAP deep-learning extension at" in err and "loopback clients only" in err
    assert '"path": "/info/", "status": 200' in err  # the access log, one JSON line per request
    assert (store / "index.json").exists() or (store / "images").is_dir()


def test_serve_refuses_bad_settings_in_one_line_before_loading(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cases = [
            (["--port", str(port)], "cannot listen on 127.0.0.1"),
            (["--port", "70000"], "--port must be 1..65535"),
            (["-c", str(tmp_path / "missing.pt")], "missing.pt: checkpoint file not found"),
            (["--session-idle", "0"], "--session-idle must be a positive number"),
            (["--token", "short"], "at least 8 characters"),
            (["--max-leases", "0"], "--max-leases must be >= 1"),
            (["--lease-idle", "0"], "--lease-idle must be a positive number"),
        ]
        for args, words in cases:
            done = script("serve", *args, timeout=60)
            assert done.returncode == 2, (args, done.stderr)
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and words in lines[0], (args, done.stderr)


def test_sigterm_removes_the_temporary_datastore(tmp_path):
    """systemd, Docker and `kill` stop a server with SIGTERM: the temporary uploads go as on Ctrl-C."""
    import re

    port = free_port()
    process = subprocess.Popen([str(SCRIPT), "serve", "--port", str(port), "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    folder = re.search(r"datastore: (\S+) \(temporary", err).group(1)
    assert process.returncode == 0, err
    assert not Path(folder).exists()
