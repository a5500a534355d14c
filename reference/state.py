"""Raft's state as immutable values, variable for variable as in raft.tla (SEMANTICS.md, State).

Servers are the ints 1..N and client values the ints 1..V; ``NIL`` (0) is "no vote". Every
value inside a state is an int, a tuple or a frozenset of those, so equal states hash equal in
every process whatever ``PYTHONHASHSEED`` is (no str, no None, no Enum inside a state).
"""

from __future__ import annotations

from typing import NamedTuple

import attrs

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


class Entry(NamedTuple):
    """A log entry: the term it was created in and the client value (raft.tla [term, value])."""

    term: int
    value: int


# Message types (raft.tla's four opaque constants). Every message is a NamedTuple whose first
# field is its type, so messages of different types never compare equal and sort totally.
REQUEST_VOTE_REQUEST = 0
REQUEST_VOTE_RESPONSE = 1
APPEND_ENTRIES_REQUEST = 2
APPEND_ENTRIES_RESPONSE = 3
MESSAGE_TYPE_NAMES = (
    "RequestVoteRequest",
    "RequestVoteResponse",
    "AppendEntriesRequest",
    "AppendEntriesResponse",
)


class RequestVoteRequest(NamedTuple):
    """RVQ: a candidate asks for a vote (paper §5.2, Figure 2 RequestVote RPC)."""

    mtype: int
    mterm: int
    mlast_log_term: int
    mlast_log_index: int
    msource: int
    mdest: int


class RequestVoteResponse(NamedTuple):
    """RVP: the answer to an RVQ (raft.tla's history field ``mlog`` is left out)."""

    mtype: int
    mterm: int
    mvote_granted: bool
    msource: int
    mdest: int


class AppendEntriesRequest(NamedTuple):
    """AEQ: replicate at most one entry, or a heartbeat (paper §5.3; ``mlog`` left out)."""

    mtype: int
    mterm: int
    mprev_log_index: int
    mprev_log_term: int
    mentries: tuple[Entry, ...]
    mcommit_index: int
    msource: int
    mdest: int


class AppendEntriesResponse(NamedTuple):
    """AEP: the answer to an AEQ."""

    mtype: int
    mterm: int
    msuccess: bool
    mmatch_index: int
    msource: int
    mdest: int


Message = RequestVoteRequest | RequestVoteResponse | AppendEntriesRequest | AppendEntriesResponse

Bag = tuple[tuple[Message, int], ...]
"""The network: a bag of messages as (message, count) pairs, sorted, every count positive."""


def bag_send(bag: Bag, m: Message) -> Bag:
    """raft.tla ``Send``: one more copy of m in the bag."""
    for k, (msg, count) in enumerate(bag):
        if msg == m:
            return bag[:k] + ((msg, count + 1),) + bag[k + 1 :]
    return tuple(sorted(bag + ((m, 1),)))


def bag_discard(bag: Bag, m: Message) -> Bag:
    """raft.tla ``Discard`` (fb894bd): one copy fewer; a count that reaches 0 leaves the bag."""
    for k, (msg, count) in enumerate(bag):
        if msg == m:
            if count == 1:
                return bag[:k] + bag[k + 1 :]
            return bag[:k] + ((msg, count - 1),) + bag[k + 1 :]
    return bag


def bag_size(bag: Bag) -> int:
    """Messages in flight, counted with multiplicity."""
    return sum(count for _, count in bag)


def last_term(log: tuple[Entry, ...]) -> int:
    """raft.tla ``LastTerm``: the term of the last entry, 0 for the empty log."""
    return log[-1].term if log else 0


@attrs.frozen
class Server:
    """One server's variables (raft.tla serverVars, candidateVars, leaderVars, logVars).

    ``next_index`` and ``match_index`` are indexed by peer id - 1.
    """

    current_term: int
    role: int
    voted_for: int
    log: tuple[Entry, ...]
    commit_index: int
    votes_responded: frozenset[int]
    votes_granted: frozenset[int]
    next_index: tuple[int, ...]
    match_index: tuple[int, ...]

    def evolve(self, **changes: object) -> Server:
        """This server with the given variables changed (``attrs.evolve``, without its
        per-call introspection: the checker calls this a few hundred thousand times a second)."""
        get = changes.get
        return Server(
            get("current_term", self.current_term),
            get("role", self.role),
            get("voted_for", self.voted_for),
            get("log", self.log),
            get("commit_index", self.commit_index),
            get("votes_responded", self.votes_responded),
            get("votes_granted", self.votes_granted),
            get("next_index", self.next_index),
            get("match_index", self.match_index),
        )


@attrs.frozen
class State:
    """A whole-system state: every server plus the network (raft.tla ``vars`` minus history)."""

    servers: tuple[Server, ...]
    messages: Bag

    def server(self, i: int) -> Server:
        """Server i's variables (ids are 1..N)."""
        return self.servers[i - 1]

    def update(self, i: int, server: Server, messages: Bag | None = None) -> State:
        """This state with server i replaced, and the bag too if given."""
        servers = self.servers[: i - 1] + (server,) + self.servers[i:]
        return State(servers, self.messages if messages is None else messages)

    def send(self, m: Message) -> State:
        return State(self.servers, bag_send(self.messages, m))

    def discard(self, m: Message) -> State:
        return State(self.servers, bag_discard(self.messages, m))


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


def is_quorum(members: frozenset[int] | set[int], n: int, *, strict: bool = True) -> bool:
    """A quorum is any set of servers with 2*|Q| > N (raft.tla ``Quorum``).

    ``strict=False`` is the ``quorum_off_by_one`` mutant: 2*|Q| >= N, so with an even number of
    servers two disjoint halves are both "quorums".
    """
    return 2 * len(members) > n if strict else 2 * len(members) >= n
