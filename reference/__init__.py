"""The Raft protocol as pure functions over immutable states (raft.tla, action for action),
written as a protocol package: schema (``state``), actions (``actions``), the action table
(``protocol``), properties, variants and mutants."""

from raftspec.protocol.errors import RaftspecError
from raftspec.reference.config import Config
from raftspec.reference.state import NIL, Entry, Role, Server, State, initial_state
from raftspec.reference.successors import Action, steps, successors, within_bounds

__all__ = [
    "NIL",
    "Action",
    "Config",
    "Entry",
    "RaftspecError",
    "Role",
    "Server",
    "State",
    "initial_state",
    "steps",
    "successors",
    "within_bounds",
]
