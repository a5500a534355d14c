"""Shared fixtures: where the read-only ../shared material lives (present in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """../shared beside the checkout; tests needing it skip (with the reason) in a user's
    clone, where it does not exist. CI always has it."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present (it ships with the project's CI, not with clones)")
    return SHARED
