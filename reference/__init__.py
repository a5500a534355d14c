"""The Raft protocol as pure functions over immutable states (raft.tla, action for action)."""

from raftspec.reference.config import MUTANTS, Config
from raftspec.reference.errors import RaftspecError
from raftspec.reference.state import NIL, Entry, Role, Server, State, initial_state
from raftspec.reference.successors import Action, steps, successors, within_bounds

__all__ = [
    "MUTANTS",
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
