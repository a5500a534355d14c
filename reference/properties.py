"""Raft's safety properties as Python predicates over reference states (paper Figure 3).

raft.tla states several of these over its history variables (``elections``, ``allLogs``); the
reference has none, so each property here is its *state-based* form: a condition on one state
(or, for LeaderAppendOnly, on one step). Each is implied by the paper's property and is what the
explicit checker can test on every reachable state.
"""

from __future__ import annotations

from collections.abc import Callable

from raftspec.reference.config import Config
from raftspec.reference.state import Role, Server, State

_ROLES = (Role.FOLLOWER, Role.CANDIDATE, Role.LEADER)


def type_ok(state: State, config: Config) -> bool:
    """Every variable holds a value of its type (raft.tla ``TypeOK``), and the bag is in its
    canonical form: sorted, positive counts, no key twice."""
    n = config.servers
    ids = frozenset(range(1, n + 1))
    voters = ids | {0}
    values = range(1, config.values + 1)
    for s in state.servers:
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
        for e in s.log:
            if e.term < 1 or e.value not in values:
                return False
    messages = [m for m, _ in state.messages]
    if messages != sorted(set(messages)):
        return False
    for m, count in state.messages:
        if count < 1 or m.msource not in ids or m.mdest not in ids or m.mterm < 1:
            return False
    return True


def election_safety(state: State, config: Config) -> bool:
    """At most one leader per term (paper §5.2): no two servers are leaders of the same term."""
    leader_terms = [s.current_term for s in state.servers if s.role == Role.LEADER]
    return len(leader_terms) == len(set(leader_terms))


def log_matching(state: State, config: Config) -> bool:
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


def leader_completeness(state: State, config: Config) -> bool:
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


def state_machine_safety(state: State, config: Config) -> bool:
    """No two servers have committed different entries at the same index (paper §5.4.3)."""
    committed = [_committed(s) for s in state.servers if s.commit_index]
    for a in range(len(committed)):
        for b in range(a + 1, len(committed)):
            n = min(len(committed[a]), len(committed[b]))
            if committed[a][:n] != committed[b][:n]:
                return False
    return True


def leader_append_only(state: State, nxt: State, config: Config) -> bool:
    """A leader never overwrites or deletes entries in its log during its term (paper §5.3;
    raft.tla ``LeaderAppendOnly``): a step that keeps i leader in the same term only appends."""
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
