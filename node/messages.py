"""Raft messages and log entries as plain records (paper Figure 2, §7 for InstallSnapshot).

One ``Message`` type for every RPC, in the style of etcd-raft's ``raftpb.Message``: the
``type`` says which fields matter. Peers are named by integer id; addresses live in the
transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VOTE = "vote"                  # RequestVote (§5.2)
VOTE_RESP = "vote_resp"
APPEND = "append"              # AppendEntries (§5.3); no entries = heartbeat
APPEND_RESP = "append_resp"
SNAP = "snap"                  # InstallSnapshot chunk (§7)
SNAP_RESP = "snap_resp"

RAFT_TYPES = (VOTE, VOTE_RESP, APPEND, APPEND_RESP, SNAP, SNAP_RESP)


@dataclass(slots=True)
class Entry:
    """One log entry: the term it was created in and the command (a JSON object).

    Commands: ``{"op": "noop"}``, kv commands (see kv.py) and
    ``{"op": "config", "members": {"1": "127.0.0.1:9001", ...}}`` (membership, §4 of the
    dissertation: one server at a time).
    """

    term: int
    data: dict[str, Any]
    size: int = field(default=0, compare=False, repr=False)     # approx. wire bytes, lazily
    digest: str = field(default="", compare=False, repr=False)  # trace hash, lazily

    def wire_size(self) -> int:
        """A cheap upper estimate of the encoded size, computed once per entry."""
        if not self.size:
            n = 24
            for v in self.data.values():
                n += len(v) + 4 if isinstance(v, str) else 16
            self.size = n
        return self.size


@dataclass(slots=True)
class Snapshot:
    """A compacted prefix: state machine image up to ``index`` (paper §7)."""

    index: int
    term: int
    members: dict[int, str]
    data: bytes


@dataclass(slots=True)
class Message:
    """A Raft RPC. Only the fields of its ``type`` are meaningful; the rest stay default."""

    type: str
    src: int
    dst: int
    term: int
    # RequestVote
    last_log_index: int = 0
    last_log_term: int = 0
    granted: bool = False
    # AppendEntries
    prev_index: int = 0
    prev_term: int = 0
    entries: list[Entry] = field(default_factory=list)
    commit: int = 0
    success: bool = False
    match_index: int = 0
    conflict_index: int = 0
    conflict_term: int = 0
    # InstallSnapshot (chunked: ``offset`` into the snapshot bytes, ``done`` on the last)
    snap_index: int = 0
    snap_term: int = 0
    members: dict[int, str] = field(default_factory=dict)
    offset: int = 0
    chunk: bytes = b""
    done: bool = False
    # causal id "<node>:<seq>" of the send event, carried so the receiver's trace can name it
    msg_id: str = ""
