"""Reachability properties of raft.tla (Stateright's ``sometimes``): predicates a model can
require the checker to find true in some reachable state, so that "no violation" is not a pass
of a model whose bounds never let the interesting thing happen.

Initial states are in term 1, so the first leader is of term 2 and a leader of term 3 or more
was elected after another election.
"""

from __future__ import annotations

from collections.abc import Callable

from raftspec.reference.config import Config
from raftspec.reference.state import Role, State


def leader_elected(state: State, config: Config) -> bool:
    """Some server is a leader."""
    return any(s.role == Role.LEADER for s in state.servers)


def entry_committed(state: State, config: Config) -> bool:
    """Some server knows an entry to be committed."""
    return any(s.commit_index > 0 for s in state.servers)


def leader_changed(state: State, config: Config) -> bool:
    """A leader of a term after the first election's (term 3 or more): leadership moved."""
    return any(s.role == Role.LEADER and s.current_term >= 3 for s in state.servers)


def committed_after_leader_change(state: State, config: Config) -> bool:
    """A server knows an entry of term 3 or more to be committed: an entry committed by a
    leader elected after another election."""
    return any(s.commit_index > 0 and s.log[s.commit_index - 1].term >= 3
               for s in state.servers)


REACHABLE: dict[str, Callable[[State, Config], bool]] = {
    "leader_elected": leader_elected,
    "entry_committed": entry_committed,
    "leader_changed": leader_changed,
    "committed_after_leader_change": committed_after_leader_change,
}
"""raft.tla's reachability properties by the name used in model files (``reachable: [...]``)."""
