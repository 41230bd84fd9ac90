"""Paths to the read-only ../shared folder beside the repository (never an absolute path).

A missing shared file fails the test: a golden test that skips proves nothing, and CI always has
``../shared`` beside its clone. Set ``VOXELPROMPT_ALLOW_MISSING_SHARED=1`` to skip instead (a
checkout without the shared data, on purpose).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# tests/shared_paths.py -> repository root -> ../shared (CI clones main with shared/ beside it).
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_file(*parts: str) -> Path:
    """A file under ../shared; fails the test when it is missing (see the module docstring)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"shared test data missing: {path} (CI needs ../shared beside the clone)"
        if os.environ.get("VOXELPROMPT_ALLOW_MISSING_SHARED") == "1":
            pytest.skip(message)
        pytest.fail(message)
    return path
