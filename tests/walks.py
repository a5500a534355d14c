"""Random schedules through a protocol's successors, and the safety check on them, shared by
the reference's and the Figure 2 variant's property tests."""

from __future__ import annotations

from raftspec.reference import Config, State, initial_state, successors
from raftspec.reference.properties import INVARIANTS, STEP_PROPERTIES


def random_walk(config: Config, choices: list[int]) -> list[State]:
    """The path that picks, at each state, successor ``choice % (number of successors)``."""
    state = initial_state(config.servers)
    path = [state]
    for choice in choices:
        options = list(successors(state, config))
        if not options:
            break
        _, state = options[choice % len(options)]
        path.append(state)
    return path


def assert_safe(path: list[State], config: Config) -> None:
    """Every state of the path satisfies every invariant, every step every step property."""
    for state in path:
        for name, holds in INVARIANTS.items():
            assert holds(state, config), name
    for before, after in zip(path, path[1:], strict=False):
        for name, holds in STEP_PROPERTIES.items():
            assert holds(before, after, config), name
