"""Fixtures of the batch tests: the six-case cohort (see ``batch_cohort.py``), made once per module."""

from __future__ import annotations

from pathlib import Path

import pytest
from batch_cohort import make_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    return make_cohort(tmp_path_factory.mktemp("cohort"))
