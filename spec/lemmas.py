"""Lemmas (auxiliary invariants) that make Raft's safety properties inductive, as Z3 formulas.

A safety property is rarely inductive by itself: a state that satisfies ElectionSafety can step
to one that violates it (two candidates of one term, each holding a quorum of granted votes).
Each lemma below is a fact about reachable states, stated over the reference's protocol state
only (no history variables), that rules out such unreachable predecessors. ``raftspec induct``
proves the invariant and its lemmas together: every lemma is itself checked to be preserved.

The arguments follow the paper: votes are unique per term (§5.2, Figure 2 RequestVote rule 2),
so two quorums of one term share a voter who voted twice; a leader's log holds every entry of its
term (§5.3), and no second leader of that term can arise once entries exist (§5.4.1).
"""

from __future__ import annotations

from collections.abc import Callable

import z3

from raftspec.spec.smt import (
    AEQ,
    CANDIDATE,
    LEADER,
    RVP,
    Encoding,
    Num,
    ServerVars,
    Slot,
    StateVars,
)

Lemma = Callable[[Encoding, StateVars], z3.BoolRef]


def _active(sv: ServerVars) -> z3.BoolRef:
    """Candidates and leaders: the roles whose votesGranted belongs to their current term."""
    return z3.Or(sv.role == CANDIDATE, sv.role == LEADER)


def _granted_rvp(slot: Slot) -> z3.BoolRef:
    return z3.And(slot.count > 0, slot.field("mtype") == RVP, slot.field("a") == 1)


def _voter_agrees(voter: ServerVars, term: Num, candidate: Num) -> z3.BoolRef:
    """A vote for ``candidate`` in ``term`` is still on record at the voter, or the voter has
    moved to a later term (where it can no longer vote in ``term``)."""
    return z3.And(voter.term >= term, z3.Implies(voter.term == term,
                                                  voter.voted_for == candidate))


def granted_votes_recorded(enc: Encoding, s: StateVars) -> z3.BoolRef:
    """Every vote in a candidate's or leader's votesGranted is recorded at the voter
    (raft.tla HandleRequestVoteRequest sets votedFor before it grants)."""
    return z3.And([z3.Implies(z3.And(_active(c), c.votes_granted[j - 1]),
                              _voter_agrees(s.server(j), c.term, i))
                   for i, c in zip(enc.ids, s.servers, strict=True) for j in enc.ids])


def granted_responses_recorded(enc: Encoding, s: StateVars) -> z3.BoolRef:
    """Every granted RequestVote response in flight is recorded at its sender."""
    return z3.And([z3.Implies(z3.And(_granted_rvp(m), m.field("src") == j),
                              _voter_agrees(s.server(j), m.field("mterm"), m.field("dst")))
                   for m in s.slots for j in enc.ids] or [True])


def granted_sets_disjoint(enc: Encoding, s: StateVars) -> z3.BoolRef:
    """Two candidates or leaders of one term hold disjoint sets of granted votes."""
    cs = []
    for a, x in enumerate(s.servers):
        for y in s.servers[a + 1:]:
            both = z3.And(_active(x), _active(y), x.term == y.term)
            cs.append(z3.Implies(both, z3.And([
                z3.Not(z3.And(x.votes_granted[j], y.votes_granted[j])) for j in range(enc.n)])))
    return z3.And(cs or [True])


def granted_responses_not_counted_elsewhere(enc: Encoding, s: StateVars) -> z3.BoolRef:
    """A granted response in flight to i is not already counted by another candidate or
    leader of its term."""
    cs = []
    for m in s.slots:
        for i, c in zip(enc.ids, s.servers, strict=True):
            for j in enc.ids:
                cs.append(z3.Implies(
                    z3.And(_granted_rvp(m), m.field("dst") != i, m.field("src") == j,
                           _active(c), c.term == m.field("mterm")),
                    z3.Not(c.votes_granted[j - 1])))
    return z3.And(cs or [True])


def one_granted_response_per_voter(enc: Encoding, s: StateVars) -> z3.BoolRef:
    """A voter's granted responses of one term all go to the same candidate."""
    cs = []
    for a, m in enumerate(s.slots):
        for m2 in s.slots[a + 1:]:
            cs.append(z3.Implies(
                z3.And(_granted_rvp(m), _granted_rvp(m2), m.field("src") == m2.field("src"),
                       m.field("mterm") == m2.field("mterm")),
                m.field("dst") == m2.field("dst")))
    return z3.And(cs or [True])


def leader_has_quorum(enc: Encoding, s: StateVars) -> z3.BoolRef:
    """A leader's votesGranted is a quorum (it only grows while it leads)."""
    return z3.And([z3.Implies(sv.role == LEADER, enc.is_quorum(sv.votes_granted))
                   for sv in s.servers])


# --- log lemmas -------------------------------------------------------------------------------

def _entry_of_term_exists(enc: Encoding, s: StateVars, t: int) -> z3.BoolRef:
    in_logs = [z3.And(n <= sv.log_len, sv.log_term[n - 1] == t)
               for sv in s.servers for n in range(1, enc.max_log + 1)]
    in_flight = [z3.And(m.count > 0, m.field("mtype") == AEQ, m.field("eterm") == t)
                 for m in s.slots]
    return z3.Or(in_logs + in_flight) if in_logs or in_flight else z3.BoolVal(False)


def no_rival_leader_once_entries_exist(enc: Encoding, s: StateVars) -> z3.BoolRef:
    """Once an entry of term t exists, no candidate of term t (or server that may still become
    one) can gather a quorum: its possible voters — votes it holds, granted responses in
    flight to it, and servers that may still vote for it in t — are no quorum."""
    cs = []
    for t in range(1, enc.max_term + 1):
        exists = _entry_of_term_exists(enc, s, t)
        for j, cand in zip(enc.ids, s.servers, strict=True):
            possible = []
            for k, voter in zip(enc.ids, s.servers, strict=True):
                possible.append(z3.Or(
                    [z3.And(_active(cand), cand.term == t, cand.votes_granted[k - 1]),
                     voter.term < t,
                     z3.And(voter.term == t, z3.Or(voter.voted_for == 0, voter.voted_for == j))]
                    + [z3.And(_granted_rvp(m), m.field("mterm") == t, m.field("src") == k,
                              m.field("dst") == j) for m in s.slots]))
            may_run = z3.Or(z3.And(cand.role == CANDIDATE, cand.term == t), cand.term < t)
            cs.append(z3.Implies(z3.And(exists, may_run), z3.Not(enc.is_quorum(possible))))
    return z3.And(cs)


def _aeq_entry_at(m: Slot, n: int) -> z3.BoolRef:
    """m is an AppendEntries request carrying an entry for index n."""
    return z3.And(m.count > 0, m.field("mtype") == AEQ, m.field("eterm") > 0,
                  m.field("b") == n - 1)


def entries_in_flight_match_logs(enc: Encoding, s: StateVars) -> z3.BoolRef:
    """An entry in flight and a log entry with the same index and term are the same entry, and
    the log's previous entry has the request's prevLogTerm (Log Matching, extended to
    requests)."""
    cs = []
    for m in s.slots:
        for sv in s.servers:
            for n in range(1, enc.max_log + 1):
                same = z3.And(_aeq_entry_at(m, n), n <= sv.log_len,
                              sv.log_term[n - 1] == m.field("eterm"))
                prev = sv.log_term[n - 2] == m.field("a") if n > 1 else z3.BoolVal(True)
                cs.append(z3.Implies(same, z3.And(sv.log_value[n - 1] == m.field("evalue"),
                                                  prev)))
    return z3.And(cs or [True])


def entries_in_flight_agree(enc: Encoding, s: StateVars) -> z3.BoolRef:
    """Two requests carrying an entry with the same index and term carry the same entry and
    (past index 1) the same prevLogTerm."""
    cs = []
    for a, m in enumerate(s.slots):
        for m2 in s.slots[a + 1:]:
            for n in range(1, enc.max_log + 1):
                cs.append(z3.Implies(
                    z3.And(_aeq_entry_at(m, n), _aeq_entry_at(m2, n),
                           m.field("eterm") == m2.field("eterm")),
                    z3.And(m.field("evalue") == m2.field("evalue"),
                           m.field("a") == m2.field("a") if n > 1 else z3.BoolVal(True))))
    return z3.And(cs or [True])


def leader_has_entries_of_its_term(enc: Encoding, s: StateVars) -> z3.BoolRef:
    """Every entry of a leader's term, in any log or in flight, is in the leader's log at the
    same index (entries of term t are only created by t's leader, whose log only grows)."""
    cs = []
    for ld in s.servers:
        is_leader = ld.role == LEADER
        for n in range(1, enc.max_log + 1):
            has = z3.And(n <= ld.log_len, ld.log_term[n - 1] == ld.term)
            for sv in s.servers:
                if sv is ld:
                    continue
                cs.append(z3.Implies(
                    z3.And(is_leader, n <= sv.log_len, sv.log_term[n - 1] == ld.term), has))
            for m in s.slots:
                prev = ld.log_term[n - 2] == m.field("a") if n > 1 else z3.BoolVal(True)
                cs.append(z3.Implies(
                    z3.And(is_leader, _aeq_entry_at(m, n), m.field("eterm") == ld.term),
                    z3.And(has, ld.log_value[n - 1] == m.field("evalue"), prev)))
    return z3.And(cs)


LEMMAS: dict[str, Lemma] = {
    "granted_votes_recorded": granted_votes_recorded,
    "granted_responses_recorded": granted_responses_recorded,
    "granted_sets_disjoint": granted_sets_disjoint,
    "granted_responses_not_counted_elsewhere": granted_responses_not_counted_elsewhere,
    "one_granted_response_per_voter": one_granted_response_per_voter,
    "leader_has_quorum": leader_has_quorum,
    "no_rival_leader_once_entries_exist": no_rival_leader_once_entries_exist,
    "entries_in_flight_match_logs": entries_in_flight_match_logs,
    "entries_in_flight_agree": entries_in_flight_agree,
    "leader_has_entries_of_its_term": leader_has_entries_of_its_term,
}
"""Every lemma by name (``raftspec induct --with NAME``)."""

_VOTES = ("granted_votes_recorded", "granted_responses_recorded", "granted_sets_disjoint",
          "granted_responses_not_counted_elsewhere", "one_granted_response_per_voter",
          "leader_has_quorum")

SHIPPED: dict[str, tuple[str, ...]] = {
    "election_safety": _VOTES,
    "log_matching": (*_VOTES, "election_safety", "no_rival_leader_once_entries_exist",
                     "entries_in_flight_match_logs", "entries_in_flight_agree",
                     "leader_has_entries_of_its_term"),
}
"""The lemma set that makes each invariant inductive (``--with shipped``)."""
