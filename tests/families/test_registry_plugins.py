"""The family registry's entry points (:mod:`voxelprompt.plugins`): a plugin it must not take is
skipped with a warning naming it, and the others, built-in ones included, stay."""

from __future__ import annotations

import logging
import textwrap

import pytest

from voxelprompt.families import FAMILIES


def _plugin(root, name, body):
    """A module and its distribution's entry point, as an installed package leaves them."""
    (root / f"{name}.py").write_text(textwrap.dedent(body))
    info = root / f"{name.replace('_', '-')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[voxelprompt.families]\n{name.split('_')[0]} = {name}:FAMILY\n")


ENTRY = """
    from dataclasses import dataclass
    from voxelprompt.families import Capabilities, ModelFamily, option

    @dataclass(frozen=True)
    class Options:
        level: int = option(0, {flag!r}, "a level")

    FAMILY = ModelFamily(
        name={name!r}, description="test", capabilities=Capabilities(classes=True), options=Options, loader="x:y",
        key_signature={keys!r}, prompt_check="x:y", catalog="voxelprompt.catalog:vista3d_catalog",
        learnt_classes="voxelprompt.catalog.learnt:segvol_learnt",
    )
"""


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    FAMILIES.reload()
    yield tmp_path
    monkeypatch.undo()
    FAMILIES.reload()


def test_plugins_the_registry_must_not_take_are_skipped_by_name(registry, caplog):
    _plugin(registry, "good_family", ENTRY.format(name="good", flag="--level", keys=("good.weight",)))
    _plugin(registry, "greedy_family", ENTRY.format(name="greedy", flag="--level", keys=()))
    _plugin(registry, "flagged_family", ENTRY.format(name="flagged", flag="--Level_2", keys=("f.weight",)))
    _plugin(registry, "vista3d_family", ENTRY.format(name="vista3d", flag="--level", keys=("v.weight",)))
    _plugin(registry, "broken_family", "raise ImportError('no such thing')\n")
    FAMILIES.reload()
    with caplog.at_level(logging.WARNING, logger="voxelprompt"):
        names = list(FAMILIES)
    assert names[:2] == ["vista3d", "segvol"] and "good" in names
    assert not {"greedy", "flagged", "broken"} & set(names)
    assert FAMILIES["vista3d"].loader.startswith("voxelprompt.families.vista3d")  # the built-in keeps its name
    text = caplog.text
    assert "greedy" in text and "key_signature is empty" in text
    assert "flagged" in text and "'--Level_2' is not --lower-case-words" in text
    assert "vista3d (vista3d_family:FAMILY) skipped: the name 'vista3d' is taken" in text
    assert "broken (broken_family:FAMILY) failed to load: no such thing" in text
