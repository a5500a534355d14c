"""The checker's fast paths against their plain definitions, on random states.

Speed lives in the machinery (generated ``steps``, ``Row.exact`` enumerators, one-entry memos of
per-state facts, the bisected bag, ``type_ok`` remembering well-typed servers, the constraint
reading by position): each is compared here with the straightforward form it replaces, written
in this file or read off the action table row by row with the rows' plain enumerators. (The
successors left unbuilt out of bounds, ``Row.beyond``, have their own tests:
test_checker_beyond.py.)
"""

from __future__ import annotations

from collections import Counter

import attrs
from adhoc import AdHocModel
from hypothesis import given, settings
from hypothesis import strategies as st

from raftspec.checker.system import ProtocolSystem
from raftspec.protocol.bag import bag_discard, bag_send
from raftspec.protocol.table import config_form
from raftspec.reference import Config
from raftspec.reference.properties import type_ok
from raftspec.reference.protocol import RAFT_TLA, bounds, build_protocol
from raftspec.reference.state import RequestVoteRequest, Role

CONFIGS = [
    Config(servers=3, values=2, max_term=3, max_log_length=2, max_messages=2),
    Config(servers=2, values=1, max_term=4, max_log_length=3, max_messages=3),
    Config(servers=3, values=1, max_term=2, max_log_length=1, max_messages=1, restart=False,
           duplicate=False, drop=False),
]
PROTOCOLS = {"tla": RAFT_TLA, "figure2": build_protocol("figure2"),
             "prevote": build_protocol("prevote")}


def _plain_steps(protocol, state, config) -> list:
    """The action table read row by row, with each row's plain (loose) enumerator."""
    out = []
    for row in protocol.rows:
        for args in row.enumerate(state, config):
            nxt = row.apply(state, *args)
            if nxt is not None:
                out.append(((row.name, tuple(args)), nxt))
    return out


def _walk(protocol, config, choices) -> list:
    """States along a random path (stuttering steps included; bounds ignored, so that the
    states also stray outside the model, where the fast paths must agree just the same)."""
    state = next(iter(protocol.init(config)))
    path = [state]
    for choice in choices:
        options = _plain_steps(protocol, state, config)
        if not options:
            break
        state = options[choice % len(options)][1]
        path.append(state)
    return path


walks = st.tuples(st.sampled_from(sorted(PROTOCOLS)), st.sampled_from(CONFIGS),
                  st.lists(st.integers(0, 10_000), min_size=1, max_size=60))


@settings(max_examples=60, deadline=None)
@given(walks)
def test_generated_steps_equal_the_table_read_row_by_row(walk) -> None:
    name, config, choices = walk
    protocol = PROTOCOLS[name]
    system = ProtocolSystem(AdHocModel(protocol, config), beyond="off")  # every successor built
    for state in _walk(protocol, config, choices):
        fast = [((a.name, a.args), nxt) for a, nxt in system.steps(state)]
        assert fast == _plain_steps(protocol, state, config)
        # twice in a row: the enumerators' one-entry memos must not leak between states
        assert [nxt for _, nxt in system.steps(state)] == [nxt for _, nxt in fast]


@settings(max_examples=60, deadline=None)
@given(walks)
def test_exact_enumerators_only_skip_what_their_action_rejects(walk) -> None:
    name, config, choices = walk
    protocol = PROTOCOLS[name]
    rows = [row for row in protocol.rows if row.exact is not None]
    assert name != "tla" or len(rows) == 2  # raft.tla: RequestVote and BecomeLeader
    for state in _walk(protocol, config, choices):
        for row in rows:
            loose = list(row.enumerate(state, config))
            exact = list(row.exact(state, config))
            assert [a for a in loose if a in exact] == exact  # a subsequence, in order
            for args in loose:
                if args not in exact:
                    assert row.apply(state, *args) is None, (row.name, args)


def test_an_exact_enumerator_goes_with_its_action_only() -> None:
    row = RAFT_TLA.row("RequestVote")
    assert row.arguments is row.exact
    replaced = RAFT_TLA.replace("RequestVote", apply=lambda state, i, j: state)
    assert replaced.row("RequestVote").exact is None
    assert replaced.row("RequestVote").arguments is row.enumerate
    evolved = attrs.evolve(row, apply=lambda state, i, j: state)
    assert evolved.arguments is row.enumerate  # exact_for still names the old action
    renamed = RAFT_TLA.replace("RequestVote", encoder=None)  # same action: exact kept
    assert renamed.row("RequestVote").arguments is row.exact


@settings(max_examples=60, deadline=None)
@given(walks)
def test_the_constraint_equals_its_plain_definition(walk) -> None:
    name, config, choices = walk
    protocol = PROTOCOLS[name]
    inside = bounds(config)
    for state in _walk(protocol, config, choices):
        for _, nxt in _plain_steps(protocol, state, config):
            plain = (sum(c for _, c in nxt.messages) <= config.max_messages
                     and all(s.current_term <= config.max_term
                             and len(s.log) <= config.max_log_length for s in nxt.servers))
            assert inside(nxt) == plain


def _broken(state, k: int):
    """The state with one server or message given an ill-typed value (k picks which)."""
    servers = list(state.servers)
    i = k % len(servers)
    s = servers[i]
    kind = k // len(servers) % 5
    if kind == 0:
        servers[i] = s.evolve(current_term=0)
    elif kind == 1:
        servers[i] = s.evolve(role=7)
    elif kind == 2:
        servers[i] = s.evolve(voted_for=len(servers) + 1)
    elif kind == 3:
        servers[i] = s.evolve(votes_granted=frozenset({1}), votes_responded=frozenset())
    elif state.messages:
        m, count = state.messages[0]
        return state.evolve(messages=((m._replace(mdest=99), count),) + state.messages[1:])
    else:
        servers[i] = s.evolve(match_index=(0,))
    return state.evolve(servers=tuple(servers))


@settings(max_examples=60, deadline=None)
@given(walks, st.lists(st.integers(0, 1000), max_size=10))
def test_remembering_type_ok_agrees_with_type_ok(walk, breaks) -> None:
    name, config, choices = walk
    protocol = RAFT_TLA if name == "prevote" else PROTOCOLS[name]  # prevote adds a role
    fast = config_form(type_ok, config)
    path = _walk(protocol, config, choices)
    states = path + [_broken(path[k % len(path)], k) for k in breaks]
    for state in states + states[::-1]:  # again, with the memo full
        assert fast(state) == type_ok(state, config)
    assert not fast(_broken(path[-1], 1)) and fast(path[-1])


def _message(k: int):
    return RequestVoteRequest(0, 1 + k % 3, k % 2, k % 4, 1 + k % 3, 1 + k // 3 % 3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=40))
def test_the_bisected_bag_is_a_multiset(ops) -> None:
    bag, oracle = (), Counter()
    for send, k in ops:
        m = _message(k)
        if send:
            bag, oracle[m] = bag_send(bag, m), oracle[m] + 1
        else:
            bag = bag_discard(bag, m)
            if oracle[m]:
                oracle[m] -= 1
        assert bag == tuple(sorted((m, c) for m, c in oracle.items() if c))


def test_roles_added_by_a_variant_are_neither_candidates_nor_leaders() -> None:
    config = CONFIGS[0]
    state = next(iter(RAFT_TLA.init(config)))
    odd = state.update(2, state.server(2).evolve(role=3))
    leader = odd.update(1, odd.server(1).evolve(role=Role.LEADER))
    row = RAFT_TLA.row("AppendEntries")
    assert list(row.arguments(leader, config)) == [(1, 2), (1, 3)]
    assert list(RAFT_TLA.row("BecomeLeader").arguments(leader, config)) == []


def test_a_config_form_belongs_to_its_property_only() -> None:
    import functools

    @functools.wraps(type_ok)  # copies type_ok's attributes, its config form among them
    def never(state, config) -> bool:
        return False

    state = next(iter(RAFT_TLA.init(CONFIGS[0])))
    assert config_form(type_ok, CONFIGS[0])(state)
    assert config_form(never, CONFIGS[0]) is None
    system = ProtocolSystem(AdHocModel(RAFT_TLA.with_properties(invariants={"type_ok": never}),
                                   CONFIGS[0], state_invariants=("type_ok",)))
    assert not system.invariants["type_ok"](state)
