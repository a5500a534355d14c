"""Transcript tests and properties of the pure core (node/core.py), no sockets."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from node_sim import Net

from raftspec.node.core import Options, RaftCore, Role
from raftspec.node.messages import APPEND, APPEND_RESP, VOTE, VOTE_RESP, Entry, Message

MEMBERS = {1: "a:1", 2: "a:2", 3: "a:3"}


def flush(c: RaftCore):
    """The loop's turn: take the Ready, 'persist' it, advance."""
    rd = c.ready()
    c.advance(rd)
    return rd


def core(i: int, **kw) -> RaftCore:
    return RaftCore(i, MEMBERS, random.Random(i), Options(election_ticks=10, heartbeat_ticks=2),
                    **kw)


def test_timeout_votes_for_self_persists_then_asks_everyone() -> None:
    c = core(1)
    c.timeout()
    rd = flush(c)
    assert (c.role, c.term, c.voted_for) == (Role.CANDIDATE, 1, 1)
    assert rd.hard_state == (1, 1)
    assert sorted((m.type, m.dst) for m in rd.messages) == [(VOTE, 2), (VOTE, 3)]


def test_candidate_with_a_majority_becomes_leader_and_appends_a_noop() -> None:
    c = core(1)
    c.timeout()
    flush(c)
    c.step(Message(VOTE_RESP, 2, 1, 1, granted=True))
    rd = flush(c)
    assert c.role == Role.LEADER
    assert [e.data for e in rd.entries] == [{"op": "noop"}]
    assert {m.dst for m in rd.messages if m.type == APPEND} == {2, 3}


def test_vote_is_refused_to_a_candidate_with_a_stale_log() -> None:
    c = core(2, term=2, entries=[Entry(1, {"op": "noop"}), Entry(2, {"op": "noop"})])
    c.step(Message(VOTE, 1, 2, 3, last_log_index=5, last_log_term=1))
    rd = flush(c)
    assert rd.messages[0].granted is False
    assert c.term == 3 and c.voted_for is None


def test_one_vote_per_term() -> None:
    c = core(3)
    c.step(Message(VOTE, 1, 3, 1))
    c.step(Message(VOTE, 2, 3, 1))
    grants = [m.granted for m in flush(c).messages]
    assert grants == [True, False] and c.voted_for == 1


def test_stale_term_append_entries_is_rejected() -> None:
    c = core(2, term=5)
    c.step(Message(APPEND, 1, 2, 4, prev_index=0, prev_term=0, entries=[Entry(4, {"op": "x"})]))
    m = flush(c).messages[0]
    assert (m.type, m.success, m.term) == (APPEND_RESP, False, 5)
    assert c.last_index == 0


def test_conflicting_suffix_is_truncated_and_replaced() -> None:
    c = core(2, term=2, entries=[Entry(1, {"op": "a"}), Entry(2, {"op": "b"}),
                                 Entry(2, {"op": "c"})])
    c.step(Message(APPEND, 1, 2, 3, prev_index=1, prev_term=1,
                   entries=[Entry(3, {"op": "d"})], commit=2))
    rd = flush(c)
    assert [e.term for e in c.log] == [1, 3]
    assert rd.append_from == 2 and [e.data["op"] for e in rd.entries] == ["d"]
    assert rd.messages[0].success and rd.messages[0].match_index == 2
    assert c.commit_index == 2


def test_rejection_carries_the_conflicting_term_for_fast_backtracking() -> None:
    c = core(2, term=3, entries=[Entry(1, {"op": "a"})] + [Entry(2, {"op": "b"})] * 3)
    c.step(Message(APPEND, 1, 2, 3, prev_index=4, prev_term=3))
    m = flush(c).messages[0]
    assert (m.success, m.conflict_term, m.conflict_index) == (False, 2, 2)


def test_leader_commits_only_current_term_entries_by_counting() -> None:
    c = core(1, term=1, entries=[Entry(1, {"op": "old"})])
    c.timeout()                                        # term 2
    c.step(Message(VOTE_RESP, 2, 1, 2, granted=True))
    flush(c)
    # follower 2 has the old entry only: majority holds index 1, but it is from term 1
    c.step(Message(APPEND_RESP, 2, 1, 2, success=True, match_index=1))
    assert c.commit_index == 0
    c.step(Message(APPEND_RESP, 2, 1, 2, success=True, match_index=2))
    assert c.commit_index == 2


def test_split_vote_resolves_in_a_later_term() -> None:
    net = Net(3, seed=7)
    for i in net.nodes:                                # everyone times out at once
        net.nodes[i].timeout()
        net.process(i)
    while net.inflight:
        net.deliver(0)
    assert net.leader() is None                        # each voted for itself in term 1
    for _ in range(2000):
        net.run(1)
        if net.leader() is not None:
            break
    assert net.leader() is not None and net.nodes[net.leader()].term >= 2


def test_partitioned_leader_entries_are_overwritten() -> None:
    net = Net(3, seed=3)
    net.run(3000)
    old = net.leader()
    assert old is not None
    net.crash(old)                          # cut off: it keeps an uncommitted entry
    net.nodes[old].propose({"op": "put", "key": "k", "value": "lost"})
    others = [i for i in net.nodes if i != old]
    for _ in range(5000):
        net.inflight = [m for m in net.inflight if m.src != old and m.dst != old]
        net.run(1)
        if net.leader() not in (None, old):
            break
    net.propose("kept")
    net.run(2000)
    net.down.discard(old)                   # heal (same process: it was only cut off)
    net.run(5000)
    logs = {i: [e.data.get("value") for e in net.nodes[i].log] for i in net.nodes}
    assert all("lost" not in v for v in logs.values()), logs
    assert all("kept" in v for v in logs.values()), (others, logs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.sampled_from([3, 5]),
       drop=st.sampled_from([0.0, 0.1, 0.3]), crashes=st.integers(0, 3))
def test_random_schedules_keep_election_safety_and_log_matching(seed, n, drop, crashes) -> None:
    """Random delivery order, loss, duplication, crashes and restarts: at most one leader per
    term, and committed prefixes agree (§5.4 State Machine Safety)."""
    net = Net(n, seed=seed)
    rng = random.Random(seed)
    for step in range(12):
        net.run(150, drop=drop)
        if rng.random() < 0.5:
            net.propose(f"v{step}")
        if net.inflight and rng.random() < 0.2:
            net.deliver(rng.randrange(len(net.inflight)), duplicate=True)
        if crashes and rng.random() < 0.3:
            crashes -= 1
            victim = rng.choice(list(net.nodes))
            net.crash(victim)
            net.run(100, drop=drop)
            net.restart(victim)
    for term, leaders in net.leaders_by_term.items():
        assert len(leaders) <= 1, (term, leaders)
    # the applied sequences (indexes and entries) of every node are prefixes of one another
    seqs = [[(i, e.term, repr(e.data)) for i, e in net.applied[k]] for k in net.nodes]
    longest = max(seqs, key=len)
    for s in seqs:
        assert s == longest[:len(s)]
    # committed prefixes agree on terms
    top = max(net.nodes.values(), key=lambda c: c.commit_index)
    for c in net.nodes.values():
        for idx in range(c.offset + 1, c.commit_index + 1):
            assert c.term_at(idx) == top.term_at(idx)


def test_a_follower_that_lost_its_tail_is_caught_up_by_the_same_leader() -> None:
    """Issue 11 item 4: the leader kept next_index above a stale match_index + 1, so a follower
    whose WAL lost its tail was rejected forever while that leader stayed."""
    net = Net(3, seed=5)
    net.run(3000)
    lead = net.leader()
    assert lead is not None
    for k in range(30):
        net.propose(f"v{k}")
        net.run(30)
    for _ in range(200):                          # only the leader ticks: nobody times out
        net.tick(lead)
        while net.inflight:
            net.deliver(0)
    f = next(i for i in net.nodes if i != lead)
    term, last = net.nodes[lead].term, net.nodes[lead].last_index
    assert net.nodes[f].last_index == last > 20
    net.crash(f)
    del net.disks[f].entries[10:]                 # the disk lost everything after index 10
    net.restart(f)
    for _ in range(200):
        net.tick(lead)
        while net.inflight:
            net.deliver(0)
    assert (net.leader(), net.nodes[lead].term) == (lead, term)
    assert net.nodes[f].last_index == last
    assert net.nodes[f].commit_index == net.nodes[lead].commit_index == last
    assert [e.term for e in net.nodes[f].log] == [e.term for e in net.nodes[lead].log]


def test_nothing_counts_as_stable_or_applied_until_advance() -> None:
    """Issue 11 item 2: ready() used to mark entries stable and applied before the loop had
    persisted them. Until advance(rd), the same Ready is asked for again, and a lone leader
    does not commit its own unpersisted entry."""
    c = RaftCore(1, {1: "a:1"}, random.Random(1), Options(election_ticks=10))
    c.timeout()                                        # single node: leader at once
    assert c.role == Role.LEADER
    c.propose({"op": "put", "key": "k", "value": "v"})
    rd = c.ready()
    assert [e.data["op"] for e in rd.entries] == ["noop", "put"] and rd.hard_state == (1, 1)
    assert c.commit_index == 0 and rd.committed == []   # not on its disk yet: no majority
    again = c.ready()                                   # the write failed: nothing moved
    assert again.entries == rd.entries and again.hard_state == rd.hard_state
    c.advance(again)
    assert c.commit_index == 2 and c.applied == 0      # fsync'd: now it commits
    rd = c.ready()
    assert [i for i, _ in rd.committed] == [1, 2] and rd.entries == []
    c.advance(rd)
    assert c.applied == 2 and not c.has_ready()


def test_a_node_that_lost_entries_neither_campaigns_nor_votes_until_caught_up() -> None:
    """Issue 11 item 4 (dissertation §3.8): with ``abstain_until`` set (its WAL fell below its
    high-water mark) a node's timeouts start no election and it refuses even an up-to-date
    candidate; a leader's entries up to that index end it."""
    c = core(2, term=3, entries=[Entry(1, {"op": "noop"})] * 4)
    c.abstain_until = 8
    for _ in range(100):                                   # many election timeouts
        c.tick()
    flush(c)
    assert (c.role, c.term, c.voted_for) == (Role.FOLLOWER, 3, None)
    c.step(Message(VOTE, 1, 2, 4, last_log_index=9, last_log_term=3))
    rd = flush(c)
    assert [(m.type, m.granted) for m in rd.messages] == [(VOTE_RESP, False)]
    assert (c.term, c.voted_for) == (4, None)              # adopts the term, no vote
    c.step(Message(APPEND, 3, 2, 4, prev_index=4, prev_term=1,
                   entries=[Entry(4, {"op": "noop"})] * 3, commit=0))
    flush(c)
    assert c.abstaining() and c.last_index == 7            # one short of the mark
    c.step(Message(APPEND, 3, 2, 4, prev_index=7, prev_term=4,
                   entries=[Entry(4, {"op": "noop"})], commit=0))
    flush(c)
    assert not c.abstaining() and c.abstain_until == 0
    c.step(Message(VOTE, 1, 2, 5, last_log_index=9, last_log_term=4))
    rd = flush(c)
    assert [(m.type, m.granted) for m in rd.messages] == [(VOTE_RESP, True)]
