"""Shared fixtures: where the read-only ../shared material lives (present in CI), and BFS
results shared between test files."""

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


@pytest.fixture(scope="session")
def bfs():
    """``bfs(model_path, max_depth=None)``: ``explore`` of a model file, run once per session
    (the checker's and the symbolic tests explore the same mutant models)."""
    from raftspec.checker.explore import explore
    from raftspec.checker.system import ProtocolSystem
    from raftspec.spec.model import load_model

    cache: dict = {}

    def run(path: Path, max_depth: int | None = None):
        key = (Path(path).resolve(), max_depth)
        if key not in cache:
            cache[key] = explore(ProtocolSystem(load_model(path)), max_depth=max_depth)
        return cache[key]

    return run
