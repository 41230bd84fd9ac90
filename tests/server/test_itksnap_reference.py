"""The ITK-SNAP client stand-in (``itksnap_client.py``) proven against the real reference server:
``itksnap-dls --mock-models`` (``pip install --no-deps itksnap-dls==0.1.6``), whose stand-in models
paint a radius-5 ball around a click and keep a lasso as sent. An image with three different
axis lengths shows that the client's buffer order, metadata and mask decoding agree with the
server's, voxel for voxel."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from itksnap_client import ItkSnapClient, ItkSnapError, jsoncpp_styled, paint
from voxelprompt.server.launch import free_port

SHAPE = (23, 17, 11)  # (I, J, K): every axis its own length
AFFINE = np.array([[-0.8, 0, 0, 10.0], [0, -0.7, 0, -20.0], [0, 0, 2.5, 30.0], [0, 0, 0, 1]])


@pytest.fixture(scope="module")
def reference():
    """``python -m itksnap_dls --mock-models`` on a free loopback port, stopped afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "itksnap_dls", "--mock-models", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = ItkSnapClient(f"http://127.0.0.1:{port}", timeout_s=10)
    try:
        for _ in range(120):  # at most ~60 s for torch's import on a busy machine
            if process.poll() is not None:
                raise RuntimeError(f"itksnap-dls exited with {process.returncode}")
            try:
                client.status()
                break
            except (OSError, ItkSnapError):
                time.sleep(0.5)
        else:
            raise RuntimeError("itksnap-dls did not answer /status")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def ball(center, shape, radius=5):
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, center)) <= radius**2


def test_jsoncpp_writer_matches_itksnaps_bundled_jsoncpp():
    # jsoncpp 0.10.6 (Common/JSon of ITK-SNAP): sorted keys, tabs, " : ", arrays always multi-line.
    text = jsoncpp_styled({"spacing": [0.7, 1.0], "component_type": "float32", "components_per_pixel": 1})
    assert text == '{\n\t"component_type" : "float32",\n\t"components_per_pixel" : 1,\n\t"spacing" : \n\t[\n\t\t0.69999999999999996,\n\t\t1\n\t]\n}'


@pytest.mark.parametrize("v2", [True, False], ids=["master-v2", "4.4.0"])
def test_client_against_the_reference_server(reference, v2):
    client = ItkSnapClient(reference, v2=v2, timeout_s=30)
    status = client.status()
    assert status["status"] == "ok" and tuple(map(int, status["version"].split("."))) >= (0, 1, 2)
    if v2:
        assert client.models()["nnInteractive"]["interactions"] == ["point", "box", "scribble", "lasso"]
    client.start_session("nnInteractive")
    image = np.random.default_rng(0).normal(0, 100, SHAPE).astype(np.float32)
    client.upload(image, AFFINE)

    click = (4, 12, 7)  # near two borders: the ball is clipped there, differently per axis
    labels = paint(client.point(click), SHAPE, np.zeros(SHAPE, np.uint8), label=3)
    assert np.array_equal(labels == 3, ball(click, SHAPE))

    lasso = np.zeros(SHAPE, bool)
    lasso[15:20, 2:6, 1:3] = True
    labels = paint(client.stroke("lasso", lasso, AFFINE), SHAPE, labels, label=3)
    assert np.array_equal(labels == 3, ball(click, SHAPE) | lasso)

    labels = paint(client.point(click, foreground=False), SHAPE, labels, label=3)  # erases the ball
    assert np.array_equal(labels == 3, lasso)

    assert client.reset() == {"status": "success"}
    assert np.array_equal(paint(client.point((20, 3, 2)), SHAPE, np.zeros(SHAPE, np.uint8), 1) == 1, ball((20, 3, 2), SHAPE))
    session = client.session
    assert client.end() == {"message": "Session ended"}
    client.session = session
    with pytest.raises(ItkSnapError, match="without 'result'"):  # the reference answers 200 {"error"}
        client.point(click)
