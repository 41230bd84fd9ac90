"""The registry of official checkpoints and the cache layout: facts are well-formed and honest
about their provenance, the registry is torch-free, and settings come from the environment."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from voxelprompt.errors import WeightsError
from voxelprompt.families import FAMILIES
from voxelprompt.weights import (
    WEIGHTS,
    HashTrust,
    get_weight,
    home,
    mirror_urls,
    mirrors_from_env,
    offline_from_env,
    part_path,
    resolve_checkpoint,
    weight_path,
)


@pytest.mark.parametrize("weight", list(WEIGHTS.values()), ids=list(WEIGHTS))
def test_entries_are_well_formed(weight):
    assert weight.family in FAMILIES
    assert weight.urls and all(url.startswith("https://") for url in weight.urls)
    assert "/" not in weight.file_name and weight.file_name
    if weight.sha256 is not None:
        assert re.fullmatch(r"[0-9a-f]{64}", weight.sha256)
    if weight.md5 is not None:
        assert re.fullmatch(r"[0-9a-f]{32}", weight.md5)
    # A trust level says where a digest comes from, so it must agree with whether there is one.
    assert (weight.digest is None) == (weight.trust is HashTrust.none)
    assert weight.licence and weight.source_page.startswith("https://") and weight.hash_source
    if weight.size_bytes is not None:
        assert f"{weight.size_bytes:,}" in weight.size_note


def test_the_three_official_checkpoints_and_their_provenance():
    assert set(WEIGHTS) == {"vista3d-bundle", "vista3d-research", "segvol-v1"}
    assert WEIGHTS["segvol-v1"].trust is HashTrust.upstream and WEIGHTS["segvol-v1"].sha256
    assert WEIGHTS["vista3d-bundle"].sha256 is None and WEIGHTS["vista3d-bundle"].digest[0] == "md5"
    assert "no upstream sha256" in WEIGHTS["vista3d-bundle"].hash_summary
    assert "unverified upstream hash" in WEIGHTS["vista3d-research"].hash_summary


def test_unknown_names_list_the_known_ones():
    with pytest.raises(WeightsError, match="unknown weights 'segvol'; known: vista3d-bundle, vista3d-research, segvol-v1"):
        get_weight("segvol")


def test_the_registry_does_not_import_torch():
    code = "import sys, voxelprompt.weights, voxelprompt.cli.weights_cmd; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_cache_folder_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("VOXELPROMPT_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert home() == tmp_path / "xdg" / "voxelprompt"
    monkeypatch.setenv("VOXELPROMPT_HOME", str(tmp_path / "vp"))
    weight = WEIGHTS["segvol-v1"]
    assert weight_path(weight) == tmp_path / "vp" / "weights" / "segvol-v1" / "SegVol_v1.pth"
    assert part_path(weight) == tmp_path / "vp" / "weights" / "segvol-v1" / "SegVol_v1.pth.part"


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("TRUE", True), ("on", True), ("0", False), ("", False)])
def test_offline_switch(monkeypatch, value, expected):
    monkeypatch.setenv("VOXELPROMPT_OFFLINE", value)
    assert offline_from_env() is expected


def test_mirrors_are_the_cache_layout_served_over_http(monkeypatch):
    monkeypatch.setenv("VOXELPROMPT_WEIGHTS_MIRRORS", "http://a.lan/w/, http://b.lan")
    bases = mirrors_from_env()
    assert mirror_urls(WEIGHTS["segvol-v1"], bases) == [
        "http://a.lan/w/segvol-v1/SegVol_v1.pth",
        "http://b.lan/segvol-v1/SegVol_v1.pth",
    ]


def test_checkpoint_names_resolve_to_fetched_files(tmp_path, monkeypatch):
    monkeypatch.setenv("VOXELPROMPT_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsError, match="voxelprompt weights fetch segvol-v1"):
        resolve_checkpoint(Path("segvol-v1"))
    target = weight_path(WEIGHTS["segvol-v1"])
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    assert resolve_checkpoint(Path("segvol-v1")) == target
    assert resolve_checkpoint(Path("other.pt")) == Path("other.pt")  # not a name: loading reports it
    (tmp_path / "segvol-v1").write_bytes(b"local")  # a file of that name wins over the registry
    assert resolve_checkpoint(Path("segvol-v1")) == Path("segvol-v1")
