"""A real ``voxelprompt serve`` on loopback (uvicorn in a background thread) with the shipped demo
VISTA3D, shared by the server tests, and the official MONAI Label client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from served import RunningServer, start_server


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory) -> Iterator[RunningServer]:
    """The demo-model server every test of this folder shares (stopped at the end of the run)."""
    server = start_server(tmp_path_factory.mktemp("datastore"))
    yield server
    server.thread.stop()


@pytest.fixture()
def client(demo_server, tmp_path):
    """The official MONAI Label client (``pip install --no-deps monailabel==0.8.5``) on the server."""
    from monailabel.client import MONAILabelClient

    return MONAILabelClient(demo_server.url, tmpdir=str(tmp_path))
