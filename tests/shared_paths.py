"""Paths to the read-only ../shared folder beside the repository (never an absolute path)."""

from __future__ import annotations

from pathlib import Path

import pytest

# tests/shared_paths.py -> repository root -> ../shared (CI clones main with shared/ beside it).
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_file(*parts: str) -> Path:
    """A file under ../shared, or skip the test when the folder is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data missing: {path}")
    return path
