"""Raft's state as immutable values, variable for variable as in raft.tla (SEMANTICS.md, State).

The layout is declared once, as a schema (``SCHEMA``): every other view of a state (the classes
below, fingerprints, symmetry, JSON, the table of changed fields) is derived from it.

Servers are the ints 1..N and client values the ints 1..V; ``NIL`` (0) is "no vote". Every
value inside a state is an int, a tuple or a frozenset of those, so equal states hash equal in
every process whatever ``PYTHONHASHSEED`` is (no str, no None, no Enum inside a state).
"""

from __future__ import annotations

from raftspec.protocol.schema import (
    BOOL,
    NUMBER,
    SERVER,
    SERVERS,
    VALUE,
    Enum,
    Field,
    Log,
    MessageType,
    PerServer,
    Record,
    Schema,
    message_class,
    server_class,
    state_class,
)

NIL = 0
"""votedFor = Nil: no vote in the current term."""

NO_VOTES: frozenset[int] = frozenset()
"""The empty set of servers; one shared object (``frozenset()`` allocates a new one each time,
216 bytes, and the checker keeps many states)."""


class Role:
    """A server's role (raft.tla ``state[i]``), as small ints so states stay hash-stable."""

    FOLLOWER = 0
    CANDIDATE = 1
    LEADER = 2
    NAMES = ("Follower", "Candidate", "Leader")


ENTRY = Record("Entry", (("term", NUMBER), ("value", VALUE)), module=__name__)
Entry = ENTRY.cls
"""A log entry: the term it was created in and the client value (raft.tla [term, value])."""

# Message types (raft.tla's four opaque constants): a message's ``mtype`` is its type's index.
REQUEST_VOTE_REQUEST = 0
REQUEST_VOTE_RESPONSE = 1
APPEND_ENTRIES_REQUEST = 2
APPEND_ENTRIES_RESPONSE = 3

_TYPE = Field("mtype", NUMBER)
_TERM = Field("mterm", NUMBER)
_ENDS = (Field("msource", SERVER), Field("mdest", SERVER))

SCHEMA = Schema(
    server_fields=(
        Field("current_term", NUMBER),
        Field("role", Enum(Role.NAMES)),
        Field("voted_for", SERVER),
        Field("log", Log(ENTRY)),
        Field("commit_index", NUMBER),
        Field("votes_responded", SERVERS),
        Field("votes_granted", SERVERS),
        Field("next_index", PerServer(NUMBER)),
        Field("match_index", PerServer(NUMBER)),
    ),
    message_types=(
        # RVQ: a candidate asks for a vote (paper §5.2, Figure 2 RequestVote RPC).
        MessageType("RequestVoteRequest", "RVQ", (
            _TYPE, _TERM, Field("mlast_log_term", NUMBER), Field("mlast_log_index", NUMBER),
            *_ENDS)),
        # RVP: the answer to an RVQ (raft.tla's history field ``mlog`` is left out).
        MessageType("RequestVoteResponse", "RVP", (
            _TYPE, _TERM, Field("mvote_granted", BOOL), *_ENDS)),
        # AEQ: replicate at most one entry, or a heartbeat (paper §5.3; ``mlog`` left out).
        MessageType("AppendEntriesRequest", "AEQ", (
            _TYPE, _TERM, Field("mprev_log_index", NUMBER), Field("mprev_log_term", NUMBER),
            Field("mentries", Log(ENTRY)), Field("mcommit_index", NUMBER), *_ENDS)),
        # AEP: the answer to an AEQ.
        MessageType("AppendEntriesResponse", "AEP", (
            _TYPE, _TERM, Field("msuccess", BOOL), Field("mmatch_index", NUMBER), *_ENDS)),
    ),
)
"""raft.tla's variables (minus the history variables): serverVars, candidateVars, leaderVars,
logVars per server, and the message bag."""

MESSAGE_TYPE_NAMES = tuple(t.name for t in SCHEMA.message_types)

RequestVoteRequest, RequestVoteResponse, AppendEntriesRequest, AppendEntriesResponse = (
    message_class(t, __name__) for t in SCHEMA.message_types)

Message = RequestVoteRequest | RequestVoteResponse | AppendEntriesRequest | AppendEntriesResponse

Server = server_class(SCHEMA.server_fields, __name__)
"""One server's variables (raft.tla serverVars, candidateVars, leaderVars, logVars), a tuple
with a property per field; ``next_index`` and ``match_index`` are indexed by peer id - 1."""

State = state_class(SCHEMA.global_fields, __name__)
"""A whole-system state: every server plus the network (raft.tla ``vars`` minus history)."""

def last_term(log: tuple) -> int:
    """raft.tla ``LastTerm``: the term of the last entry, 0 for the empty log."""
    return log[-1].term if log else 0


def initial_state(n: int) -> State:
    """raft.tla ``Init``: everyone a follower in term 1 with an empty log; no messages."""
    server = Server(
        current_term=1,
        role=Role.FOLLOWER,
        voted_for=NIL,
        log=(),
        commit_index=0,
        votes_responded=NO_VOTES,
        votes_granted=NO_VOTES,
        next_index=(1,) * n,
        match_index=(0,) * n,
    )
    return State(servers=(server,) * n, messages=())


def is_quorum(members: frozenset[int] | set[int], n: int) -> bool:
    """A quorum is any set of servers with 2*|Q| > N (raft.tla ``Quorum``)."""
    return 2 * len(members) > n
