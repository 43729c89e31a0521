"""Fixtures for the task loader tests: the reference data folder (see ``reference_data_dir`` in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def data_dir(reference_data_dir: Path) -> Path:
    """The folder with the data sets named by the test's ``needs_reference_data`` marker; skips when absent."""
    return reference_data_dir
