"""The reference as a system for the generic engine: bounds, invariants, canonical fingerprints.

Fingerprints hash a canonical encoding made only of ints and tuples of ints (frozensets become
bitmasks), so they are the same in every process. With symmetry, the encoding is the least one
over the server permutations that can yield it (see ``checker.symmetry``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial
from operator import attrgetter

from raftspec.checker.symmetry import Canonicalizer
from raftspec.reference.config import Config
from raftspec.reference.state import State, initial_state
from raftspec.reference.successors import Action, steps
from raftspec.spec.model import Model
from raftspec.spec.properties import INVARIANTS, STEP_PROPERTIES

server_fields = attrgetter(
    "current_term", "role", "voted_for", "log", "commit_index",
    "votes_responded", "votes_granted", "next_index", "match_index",
)


def plain_encoding(state: State) -> tuple:
    """The state as nested tuples of ints (frozensets hash by their ints: order-free, stable)."""
    return tuple(map(server_fields, state.servers)), state.messages


class RaftSystem:
    """A loaded model, seen by the engine: init, steps, constraint, fingerprint, properties."""

    def __init__(self, model: Model, *, symmetry: bool | None = None) -> None:
        self.model = model
        self.config: Config = model.config
        self.symmetry = model.symmetry if symmetry is None else symmetry
        self.invariants = {
            name: partial(INVARIANTS[name], config=self.config)
            for name in model.state_invariants
        }
        self.step_properties = {
            name: partial(STEP_PROPERTIES[name], config=self.config)
            for name in model.step_properties
        }
        c = self.config
        self._max_term, self._max_log, self._max_messages = (
            c.max_term, c.max_log_length, c.max_messages,
        )
        self._canonical = Canonicalizer(c.servers) if self.symmetry else None

    def init_states(self) -> Iterable[State]:
        return (initial_state(self.config.servers),)

    def steps(self, state: State) -> Iterator[tuple[Action, State]]:
        return steps(state, self.config)

    def constraint(self, state: State) -> bool:
        """``reference.within_bounds``, with the bounds hoisted: it runs for every generated
        state (a plain loop beats map/sum for these few servers and messages)."""
        in_flight = 0
        for _, count in state.messages:
            in_flight += count
        if in_flight > self._max_messages:
            return False
        max_term, max_log = self._max_term, self._max_log
        for s in state.servers:  # noqa: SIM110 (all() over a generator is slower here)
            if s.current_term > max_term or len(s.log) > max_log:
                return False
        return True

    def fingerprint(self, state: State) -> int:
        if self._canonical is not None:
            return hash(self._canonical.encode(state))
        return hash(plain_encoding(state))

    @staticmethod
    def action_name(action: Action) -> str:
        return action.name
