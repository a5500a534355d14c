"""Protocols as packages: the generic interface a protocol fills (schema, initial states, an
ordered action table, properties) and the edits that make variants and mutants of it.

The engines in ``raftspec.checker`` read only this interface; ``raftspec.reference`` is the
raft.tla protocol written against it.
"""

from raftspec.protocol.errors import RaftspecError
from raftspec.protocol.load import apply_edit, find_edit
from raftspec.protocol.schema import (
    BOOL,
    NUMBER,
    SERVER,
    SERVERS,
    VALUE,
    Enum,
    Field,
    Kind,
    Log,
    MessageType,
    PerServer,
    Record,
    Schema,
)
from raftspec.protocol.table import (
    MESSAGE,
    Action,
    Param,
    Protocol,
    Render,
    Row,
    SimulationHints,
)

__all__ = [
    "BOOL", "MESSAGE", "NUMBER", "SERVER", "SERVERS", "VALUE", "Action", "Enum", "Field", "Kind",
    "Log", "MessageType", "Param", "PerServer", "Protocol", "RaftspecError", "Record", "Render",
    "Row", "Schema", "SimulationHints", "apply_edit", "find_edit",
]
