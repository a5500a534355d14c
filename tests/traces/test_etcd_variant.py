"""Properties of the etcd-raft variant's functions (reference/variants/etcd.py) over random
logs and messages: what raft.go's comments promise of handleAppendEntries, findConflictByTerm
and the joint quorum."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from raftspec.reference.variants import etcd
from raftspec.reference.variants.etcd import Entry, Message, Server

terms = st.lists(st.integers(1, 4), max_size=8).map(sorted)


def _log(ts: list[int]) -> tuple[Entry, ...]:
    return tuple(Entry(t) for t in ts)


@st.composite
def follower_and_append(draw):
    leader = _log(draw(terms))
    follower = _log(draw(terms))
    commit = draw(st.integers(0, len(follower)))
    prev = draw(st.integers(0, len(leader)))
    n = draw(st.integers(0, len(leader) - prev))
    term = max([e.term for e in leader] + [1])
    m = Message(etcd.MSG_APP, term, 1, 2, index=prev,
                log_term=leader[prev - 1].term if prev else 0,
                commit=draw(st.integers(0, len(leader))), entries=leader[prev: prev + n])
    return Server(term=term, log=follower, commit=commit), m


@given(follower_and_append())
def test_handle_append_entries_appends_exactly_the_entries_or_rejects(case) -> None:
    s, m = case
    after, resp = etcd.handle_append_entries(s, 2, m)
    assert after.commit >= s.commit
    assert resp.type == etcd.MSG_APP_RESP and resp.to == m.frm
    if m.index < s.commit:
        assert after == s and resp.index == s.commit and not resp.reject
    elif resp.reject:
        assert after == s and resp.index == m.index
        assert resp.reject_hint <= min(m.index, s.last_index)
        assert resp.log_term <= m.log_term
        assert s.term_at(m.index) != m.log_term
    else:
        last = m.index + len(m.entries)
        assert resp.index == last
        assert after.log[m.index: last] == m.entries
        assert after.log[: m.index] == s.log[: m.index]
        assert after.commit == max(s.commit, min(m.commit, last))


@given(terms, st.integers(0, 8), st.integers(0, 5))
def test_find_conflict_by_term_is_the_largest_index_of_a_term_at_most(ts, index, term) -> None:
    s = Server(log=_log(ts))
    index = min(index, s.last_index)
    got, got_term = etcd.find_conflict_by_term(s, index, term)
    assert got <= index and got_term == (s.term_at(got) or 0) and got_term <= term
    assert all(s.term_at(k) > term for k in range(got + 1, index + 1))


voters = st.frozensets(st.integers(1, 5), max_size=5)


@given(voters, voters, st.dictionaries(st.integers(1, 5), st.integers(0, 9)))
def test_the_joint_commit_index_is_acknowledged_by_a_majority_of_both_halves(
        incoming, outgoing, match) -> None:
    s = Server(voters=incoming, outgoing=outgoing, match=tuple(sorted(match.items())))
    index = etcd.committed_index(s)
    for half in (incoming, outgoing):
        if half:
            acked = [v for v in half if match.get(v, 0) >= index]
            assert 2 * len(acked) > len(half)
    if incoming or outgoing:
        higher = index + 1
        assert any(half and 2 * len([v for v in half if match.get(v, 0) >= higher]) <= len(half)
                   for half in (incoming, outgoing))
