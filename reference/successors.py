"""Every enabled action instance of a state: raft.tla's ``Next`` (or a variant's), enumerated.

``steps`` yields every (action, next state) pair, including self-loops and successors outside
the bounds (TLC counts those as generated); ``successors`` drops the out-of-bounds ones, as
TLC's CONSTRAINT does. Both read the action table of the model's protocol
(``reference.protocol``): raft.tla with the config's shipped variant and mutants applied.
"""

from __future__ import annotations

from collections.abc import Iterator

from raftspec.protocol import Action
from raftspec.reference.config import Config
from raftspec.reference.protocol import bounds, protocol_for
from raftspec.reference.state import State

__all__ = ["Action", "steps", "successors", "within_bounds"]


def steps(state: State, config: Config) -> Iterator[tuple[Action, State]]:
    """raft.tla ``Next`` (with the config's variant and mutants): one (action, successor) pair
    per enabled action instance, row by row of the action table."""
    return protocol_for(config.variant, config.mutants).steps(state, config)


def within_bounds(state: State, config: Config) -> bool:
    """The model's state constraint (TLC ``CONSTRAINT``)."""
    return bounds(config)(state)


def successors(state: State, config: Config) -> Iterator[tuple[Action, State]]:
    """Every (action, successor) whose successor lies within the model's bounds."""
    inside = bounds(config)
    for action, nxt in steps(state, config):
        if inside(nxt):
            yield action, nxt
