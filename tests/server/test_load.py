"""A bounded load test on loopback: 200 concurrent requests mixing ``/info/``, uploads and small
inferences against ``voxelprompt serve`` in a subprocess. No 5xx other than 503 (busy, with
Retry-After), no lost upload, and the server's resident memory stays under a stated bound."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import requests

from cli_runner import SCRIPT, die_with_parent
from voxelprompt.data.phantom import PhantomConfig, make_phantom
from voxelprompt.imageio import write_volume
from voxelprompt.server.launch import free_port

REQUESTS = 200
RSS_BOUND_MB = 2048  # the demo model server idles at ~0.5 GB


def test_200_concurrent_requests(tmp_path):
    ct, _ = make_phantom(PhantomConfig(shape=(40, 32, 24), spacing=(6, 6, 6), seed=5))
    image = write_volume(ct, tmp_path / "ct.nii.gz").read_bytes()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(SCRIPT), "serve", "--port", str(port), "--device", "cpu", "--queue", "4", "--datastore", str(tmp_path / "store")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent,
    )  # fmt: skip
    peak = {"rss": 0.0}
    stop = threading.Event()

    def watch() -> None:
        process = psutil.Process(server.pid)
        while not stop.is_set():
            try:
                peak["rss"] = max(peak["rss"], process.memory_info().rss / 2**20)
            except psutil.Error:
                return
            time.sleep(0.05)

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(url + "/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.5)
        requests.put(url + "/datastore/?image=shared", files={"file": ("ct.nii.gz", image)}, timeout=60).raise_for_status()
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()

        def call(n: int) -> tuple[str, int, str]:
            kind = ("info", "upload", "infer", "info")[n % 4]
            if kind == "info":
                reply = requests.get(url + "/info/", timeout=120)
            elif kind == "upload":
                reply = requests.put(f"{url}/datastore/?image=up-{n}", files={"file": ("ct.nii.gz", image)}, timeout=120)
            else:
                params = {"foreground": [[20, 16, 8 + n % 8]], "label": "liver"}
                reply = requests.post(f"{url}/infer/vista3d-demo-interactive?image=shared&output=json",
                                      files={"params": (None, json.dumps(params))}, timeout=120)  # fmt: skip
            if reply.status_code == 503:
                assert int(reply.headers["Retry-After"]) > 0
            sha = reply.json().get("sha256", "") if kind == "upload" and reply.status_code == 200 else ""
            return kind, reply.status_code, f"up-{n}", sha

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
            results = list(pool.map(call, range(REQUESTS)))
        elapsed = time.monotonic() - started
        stop.set()
        statuses = [status for _, status, _, _ in results]
        assert all(s < 500 or s == 503 for s in statuses), sorted(set(statuses))
        assert all(s == 200 for kind, s, _, _ in results if kind != "infer")  # only model work may be refused
        served = sum(1 for kind, s, _, _ in results if kind == "infer" and s == 200)
        assert served >= 1
        store = requests.get(url + "/datastore/?output=all", timeout=30).json()
        digest = hashlib.sha256(image).hexdigest()
        uploads = [(name, sha) for kind, s, name, sha in results if kind == "upload" and s == 200]
        assert len(uploads) == REQUESTS // 4 and {sha for _, sha in uploads} == {digest}
        assert {name for name, _ in uploads} <= set(store["images"])  # no lost upload
        for name, _ in uploads[:5]:  # what is stored is what was sent
            assert requests.get(f"{url}/datastore/image", params={"image": name}, timeout=30).content == image
        assert peak["rss"] < RSS_BOUND_MB, f"server RSS peaked at {peak['rss']:.0f} MB"
        print(
            f"\n{REQUESTS} requests in {elapsed:.1f} s: infer {served} served / "
            f"{sum(1 for k, s, _, _ in results if k == 'infer' and s == 503)} busy (503); peak server RSS {peak['rss']:.0f} MB"
        )
    finally:
        stop.set()
        server.send_signal(signal.SIGINT)
        try:
            server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()
