"""Every weights test has a cache folder of its own and no offline or mirror setting from outside."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VOXELPROMPT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VOXELPROMPT_OFFLINE", raising=False)
    monkeypatch.delenv("VOXELPROMPT_WEIGHTS_MIRRORS", raising=False)
    return tmp_path / "home"
