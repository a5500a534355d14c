"""What the checker derives from a protocol's schema: symmetry that renames every server id
wherever it appears, and edits (new fields, new message types) that the engine follows."""

from __future__ import annotations

import itertools

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from walks import random_walk

from raftspec.checker.explore import explore
from raftspec.checker.report import counterexample_json
from raftspec.checker.symmetry import Canonicalizer
from raftspec.checker.system import ProtocolSystem
from raftspec.protocol import BOOL, NUMBER, SERVER, SERVERS, Field, MessageType
from raftspec.reference import Config, Entry
from raftspec.reference.protocol import RAFT_TLA
from raftspec.reference.state import SCHEMA, State
from raftspec.spec.model import MODELS_DIR, load_model

CONFIG = Config(servers=3, values=2, max_term=3, max_log_length=2, max_messages=3)


def rename(state: State, new_of_old: dict[int, int]) -> State:
    """The state with server k renamed new_of_old[k], written out field by field (independently
    of the schema): ids in votedFor, vote sets, message ends; vectors and servers permuted."""
    old_of_new = {new: old for old, new in new_of_old.items()}
    n = len(state.servers)

    def ids(s: frozenset[int]) -> frozenset[int]:
        return frozenset(new_of_old[k] for k in s)

    servers = []
    for new in range(1, n + 1):
        s = state.server(old_of_new[new])
        servers.append(s.evolve(
            voted_for=new_of_old.get(s.voted_for, 0),
            votes_responded=ids(s.votes_responded), votes_granted=ids(s.votes_granted),
            next_index=tuple(s.next_index[old_of_new[k] - 1] for k in range(1, n + 1)),
            match_index=tuple(s.match_index[old_of_new[k] - 1] for k in range(1, n + 1))))
    messages = sorted((m._replace(msource=new_of_old[m.msource], mdest=new_of_old[m.mdest]), c)
                      for m, c in state.messages)
    return State(tuple(servers), tuple(messages))


@settings(max_examples=120, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=60),
       st.permutations([1, 2, 3]))
def test_symmetric_states_get_one_fingerprint_and_others_do_not_collide(choices, perm) -> None:
    canonical = Canonicalizer(SCHEMA, 3)
    path = random_walk(CONFIG, choices)
    state = path[-1]
    renamed = rename(state, dict(zip([1, 2, 3], perm, strict=True)))
    assert canonical.encode(renamed) == canonical.encode(state)
    for other in path:  # a state not in the orbit of `state` has another encoding
        in_orbit = any(rename(state, dict(zip([1, 2, 3], p, strict=True))) == other
                       for p in itertools.permutations([1, 2, 3]))
        assert (canonical.encode(other) == canonical.encode(state)) == in_orbit


def _counts(protocol, name: str, symmetry: bool) -> tuple[int, int, int]:
    model = attrs.evolve(load_model(MODELS_DIR / "conformance" / f"{name}.yaml"),
                         protocol=protocol)
    r = explore(ProtocolSystem(model, symmetry=symmetry))
    return r.distinct_states, r.states_generated, r.depth


def test_a_new_field_and_a_new_message_type_leave_the_counts_alone_until_used() -> None:
    """A variant that adds a per-server id field, a set field, a number and a message type the
    old actions never touch: every state gains constant values, so the counts of raft.tla stay
    TLC's (tiny2: 1,645 distinct, 12,861 generated, depth 28; with symmetry 831 / 6,475)."""
    edited = RAFT_TLA.with_server_fields({
        Field("leader_hint", SERVER): lambda config: 0,
        Field("heard_from", SERVERS): lambda config: frozenset(),
        Field("ticks", NUMBER): lambda config: 0,
    }).with_message_types(MessageType("PreVoteRequest", "PVQ", (
        Field("mtype", NUMBER), Field("mterm", NUMBER), Field("mgranted", BOOL),
        Field("msource", SERVER), Field("mdest", SERVER))))
    assert _counts(edited, "tiny2", False) == (1_645, 12_861, 28)
    assert _counts(edited, "tiny2", True)[:2] == (831, 6_475)


def test_reports_follow_an_added_field() -> None:
    edited = RAFT_TLA.with_server_fields({Field("leader_hint", SERVER): lambda config: 0})
    state = next(iter(edited.init(CONFIG)))
    nxt = state.update(1, state.server(1).evolve(leader_hint=2, log=(Entry(1, 1),)))
    out = counterexample_json([(None, state), (None, nxt)], edited)
    assert out[0]["state"]["servers"][0]["leader_hint"] is None
    assert out[1]["state"]["servers"][0]["leader_hint"] == 2
    assert out[1]["state"]["servers"][0]["log"] == [[1, 1]]
