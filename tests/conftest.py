"""Fixtures shared by the whole suite: the real CT in ../shared and small VISTA3D checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared_paths import shared_file

TINY_WIDTH = 8


@pytest.fixture(scope="session", autouse=True)
def empty_weights_cache(tmp_path_factory):
    """No test sees the official weights a developer may have fetched: "no --checkpoint" then
    means the demo model everywhere, as on a fresh machine (tests that need a cache set their own)."""
    import os

    saved = {k: os.environ.get(k) for k in ("VOXELPROMPT_HOME", "VOXELPROMPT_WEIGHTS_MIRRORS", "VOXELPROMPT_OFFLINE")}
    os.environ["VOXELPROMPT_HOME"] = str(tmp_path_factory.mktemp("voxelprompt_home"))
    os.environ.pop("VOXELPROMPT_WEIGHTS_MIRRORS", None)
    os.environ.pop("VOXELPROMPT_OFFLINE", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def real_ct_path() -> Path:
    """TotalSegmentator's small abdominal CT (122x101x30 at 3 mm, RAS, int16 HU)."""
    return shared_file("data", "totalseg", "example_ct_sm.nii.gz")


@pytest.fixture(scope="session")
def tiny_spec():
    from voxelprompt.families.vista3d.network import Vista3DSpec

    return Vista3DSpec(width=TINY_WIDTH)


@pytest.fixture(scope="session")
def tiny_net(tiny_spec):
    """VISTA3D of the official architecture at width 8 with fixed deterministic weights."""
    from voxelprompt.families.vista3d.network import random_vista3d

    return random_vista3d(tiny_spec, seed=0)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_net, tmp_path_factory) -> Path:
    """The tiny network saved in the MONAI bundle format (bare state_dict)."""
    from voxelprompt.families.vista3d.network import save_vista3d

    return save_vista3d(tiny_net, tmp_path_factory.mktemp("ckpt") / "model.pt")


@pytest.fixture(scope="session")
def ct_crop_path(real_ct_path, tmp_path_factory) -> Path:
    """A 40x40x20 crop of the real CT around the liver/kidney region: one 64^3 window at 1.5 mm."""
    from voxelprompt.imageio import read_volume, write_volume
    from voxelprompt.types import Volume

    vol = read_volume(real_ct_path, dtype=None)
    start = np.array([40, 30, 5])
    crop = vol.array[40:80, 30:70, 5:25]
    affine = vol.affine.copy()
    affine[:3, 3] = vol.voxel_to_world(start[None])[0]
    return write_volume(Volume(crop, affine, "crop"), tmp_path_factory.mktemp("ct") / "ct_crop.nii.gz")


@pytest.fixture()
def one_thread():
    """Run a test with one torch thread: tiny networks gain nothing from threads, and on a busy
    2-core machine threads slow them ~50x."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def orthanc_series(tmp_path_factory):
    """A real Orthanc PACS on loopback holding the shared DICOM series (given UIDs first):
    ``(server, local copy folder, StudyInstanceUID, SeriesInstanceUID)``."""
    from orthanc import series_with_uids, start_orthanc, stop_orthanc

    work = tmp_path_factory.mktemp("orthanc")
    server = start_orthanc(work)
    folder, study, series = series_with_uids(shared_file("data", "totalseg", "example_ct_dicom"), work / "series")
    server.upload(folder)
    yield server, folder, study, series
    stop_orthanc(server)


@pytest.fixture(scope="session")
def thresholds_plugin(tmp_path_factory):
    """Folder holding the installed test-only family ``thresholds`` (see ``tests/plugin_family.py``)."""
    from plugin_family import install_plugin

    return install_plugin(tmp_path_factory.mktemp("plugin"))


@pytest.fixture
def thresholds_family(thresholds_plugin, monkeypatch):
    """The ``thresholds`` family registered in this process for one test (entry points found again)."""
    from voxelprompt.families import FAMILIES

    monkeypatch.syspath_prepend(str(thresholds_plugin))
    FAMILIES.reload()
    yield FAMILIES["thresholds"]
    monkeypatch.undo()
    FAMILIES.reload()
