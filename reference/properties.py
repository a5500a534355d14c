"""Raft's safety properties as Python predicates over reference states (paper Figure 3).

raft.tla states several of these over its history variables (``elections``, ``allLogs``); the
reference has none, so each property here is its *state-based* form: a condition on one state
(or, for LeaderAppendOnly, on one step). Each is implied by the paper's property and is what the
explicit checker can test on every reachable state.
"""

from __future__ import annotations

from collections.abc import Callable

from raftspec.protocol.table import give_config_form, reads_only_servers
from raftspec.reference.config import Config
from raftspec.reference.state import Message, Role, Server, State

_ROLES = (Role.FOLLOWER, Role.CANDIDATE, Role.LEADER)


def _server_type_ok(s: Server, ids: frozenset[int], voters: frozenset[int], n: int,
                    values: range) -> bool:
    """One server's variables hold values of their types."""
    if (
        s.current_term < 1
        or s.role not in _ROLES
        or s.voted_for not in voters
        or s.commit_index < 0
        or not s.votes_granted <= s.votes_responded <= ids
        or len(s.next_index) != n
        or len(s.match_index) != n
        or min(s.next_index) < 1
        or min(s.match_index) < 0
    ):
        return False
    return all(e.term >= 1 and e.value in values for e in s.log)


def _message_type_ok(m: Message, count: int, ids: frozenset[int]) -> bool:
    return count >= 1 and m.msource in ids and m.mdest in ids and m.mterm >= 1


def _bag_is_canonical(state: State) -> bool:
    """The bag is sorted, with no message twice."""
    messages = [m for m, _ in state.messages]
    return messages == sorted(set(messages))


def type_ok(state: State, config: Config) -> bool:
    """Every variable holds a value of its type (raft.tla ``TypeOK``), and the bag is in its
    canonical form: sorted, positive counts, no key twice."""
    n = config.servers
    ids = frozenset(range(1, n + 1))
    voters = ids | {0}
    values = range(1, config.values + 1)
    return (
        all(_server_type_ok(s, ids, voters, n, values) for s in state.servers)
        and _bag_is_canonical(state)
        and all(_message_type_ok(m, count, ids) for m, count in state.messages)
    )


MEMO_LIMIT = 1 << 16
"""Entries a remembering check keeps before it starts over (bounds its memory)."""


def _type_ok_for(config: Config) -> Callable[[State], bool]:
    """``type_ok`` for one model, remembering the servers and messages found well-typed: states
    share them (a step changes one server or one message), so each is checked once, not once
    per state that holds it. Only successes are remembered; a failure is found again."""
    n = config.servers
    ids = frozenset(range(1, n + 1))
    voters = ids | {0}
    values = range(1, config.values + 1)
    good_servers: set[Server] = set()
    good_messages: set[tuple[Message, int]] = set()

    def holds(state: State) -> bool:
        for s in state.servers:
            if s not in good_servers:
                if not _server_type_ok(s, ids, voters, n, values):
                    return False
                if len(good_servers) >= MEMO_LIMIT:
                    good_servers.clear()
                good_servers.add(s)
        if state.messages:
            if not _bag_is_canonical(state):
                return False
            for pair in state.messages:
                if pair not in good_messages:
                    if not _message_type_ok(*pair, ids):
                        return False
                    if len(good_messages) >= MEMO_LIMIT:
                        good_messages.clear()
                    good_messages.add(pair)
        return True

    return holds


give_config_form(type_ok, _type_ok_for)


def election_safety(state: State, config: Config | None = None) -> bool:
    """At most one leader per term (paper §5.2): no two servers are leaders of the same term."""
    leader_terms = [s.current_term for s in state.servers if s.role == Role.LEADER]
    return len(leader_terms) == len(set(leader_terms))


def log_matching(state: State, config: Config | None = None) -> bool:
    """If two logs have an entry with the same index and term, the logs are identical up to
    that index (paper §5.3)."""
    logs = [s.log for s in state.servers if s.log]
    for a in range(len(logs)):
        for b in range(a + 1, len(logs)):
            x, y = logs[a], logs[b]
            for n in range(min(len(x), len(y)), 0, -1):
                if x[n - 1].term == y[n - 1].term:
                    if x[:n] != y[:n]:
                        return False
                    break
    return True


def _committed(s: Server) -> tuple:
    """The entries server s knows to be committed: its log up to its commit index."""
    return s.log[: s.commit_index]


def leader_completeness(state: State, config: Config | None = None) -> bool:
    """Every entry committed at some server k is in the log of every leader whose term is
    higher than k's current term (paper §5.4; state-based form: k learnt the commit in a term
    no higher than its current term, so later leaders must hold it)."""
    for k in state.servers:
        committed = _committed(k)
        if not committed:
            continue
        for leader in state.servers:
            if (
                leader.role == Role.LEADER
                and leader.current_term > k.current_term
                and leader.log[: len(committed)] != committed
            ):
                return False
    return True


def state_machine_safety(state: State, config: Config | None = None) -> bool:
    """No two servers have committed different entries at the same index (paper §5.4.3)."""
    committed = [_committed(s) for s in state.servers if s.commit_index]
    for a in range(len(committed)):
        for b in range(a + 1, len(committed)):
            n = min(len(committed[a]), len(committed[b]))
            if committed[a][:n] != committed[b][:n]:
                return False
    return True


def leader_append_only(state: State, nxt: State, config: Config | None = None) -> bool:
    """A leader never overwrites or deletes entries in its log during its term (paper §5.3;
    raft.tla ``LeaderAppendOnly``): a step that keeps i leader in the same term only appends."""
    if state.servers is nxt.servers:
        return True  # the step changed no server (it sent or consumed a message)
    for s, t in zip(state.servers, nxt.servers, strict=True):
        if s is t or s.role != Role.LEADER:
            continue
        if (
            t.role == Role.LEADER
            and s.current_term == t.current_term
            and t.log[: len(s.log)] != s.log
        ):
            return False
    return True


SERVERS_ONLY: tuple[Callable[..., bool], ...] = (
    election_safety, log_matching, leader_completeness, state_machine_safety)
"""The invariants that read nothing of a state but its servers tuple (``state.servers``) and
never the config: their read-set, declared for the checker (which may then skip a servers tuple
it has just seen hold); tests/checker/test_checker_invariant_memo.py holds each to it: the same
answer with any other bag and globals."""
reads_only_servers(*SERVERS_ONLY)

# This one never reads the config (it defaults to None): the checker calls it as it is, one
# call fewer per state than through a closure.
give_config_form(leader_append_only, lambda config: leader_append_only)


INVARIANTS: dict[str, Callable[[State, Config], bool]] = {
    "type_ok": type_ok,
    "election_safety": election_safety,
    "log_matching": log_matching,
    "leader_completeness": leader_completeness,
    "state_machine_safety": state_machine_safety,
}
"""State invariants by the name used in model files."""

STEP_PROPERTIES: dict[str, Callable[[State, State, Config], bool]] = {
    "leader_append_only": leader_append_only,
}
"""Properties of one step (state, next state) by the name used in model files."""
