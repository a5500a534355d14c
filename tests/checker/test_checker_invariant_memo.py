"""The servers-only invariants (``reference.properties.SERVERS_ONLY``): their declared read-set
holds, and the remembering predicate the checker binds them to answers as the invariant itself,
on random reachable states of every shipped model that checks them (variants and mutants
included).

The expected values come from the plain invariants, called on each state afresh.
"""

from __future__ import annotations

from adhoc import constrained_walk
from hypothesis import given, settings
from hypothesis import strategies as st

from raftspec.checker.system import ProtocolSystem, bind_state_property
from raftspec.protocol.table import only_servers_read
from raftspec.reference.properties import INVARIANTS, SERVERS_ONLY
from raftspec.reference.state import Role
from raftspec.spec.model import MODELS_DIR, load_model

MODELS = {str(p.relative_to(MODELS_DIR)): load_model(p)
          for p in sorted(MODELS_DIR.rglob("*.yaml"))}
CHECKING = sorted(name for name, m in MODELS.items()
                  if any(m.protocol.invariants.get(n) in SERVERS_ONLY
                         for n in m.state_invariants))


def test_the_declaration_names_the_raft_invariants_and_models_use_them() -> None:
    assert {p.__name__ for p in SERVERS_ONLY} == {
        "election_safety", "log_matching", "leader_completeness", "state_machine_safety"}
    assert all(INVARIANTS[p.__name__] is p for p in SERVERS_ONLY)
    assert all(only_servers_read(p) for p in SERVERS_ONLY)
    assert not any(only_servers_read(p) for p in INVARIANTS.values() if p not in SERVERS_ONLY)
    assert len(CHECKING) >= 15
    assert any(MODELS[n].config.variant != "tla" for n in CHECKING)
    assert any(MODELS[n].config.mutants for n in CHECKING)


def random_walks(test):
    """80 examples of a model, the choices of a random walk through it, and a random
    generator."""
    return settings(max_examples=80, deadline=None)(given(
        st.sampled_from(CHECKING), st.lists(st.integers(0, 10**6), max_size=40),
        st.randoms(use_true_random=False))(test))


def _walked(name: str, choices: list[int]) -> list:
    """Every successor within the constraint of each state along a random walk of the model
    (siblings together, in ``steps`` order, as the checker meets them)."""
    system = ProtocolSystem(MODELS[name], symmetry=False, beyond="off")
    return constrained_walk(system, choices, siblings=True)


def _with_bag_of(state, other):
    """``state``'s servers with ``other``'s messages and globals (same class)."""
    return tuple.__new__(type(state), (state[0], *other[1:]))


@random_walks
def test_servers_only_invariants_read_only_the_servers(name, choices, rnd) -> None:
    states = _walked(name, choices)
    for prop in SERVERS_ONLY:
        for state in rnd.sample(states, min(len(states), 12)):
            other = rnd.choice(states)
            assert prop(_with_bag_of(state, other)) == prop(state), (prop.__name__, state)


@random_walks
def test_the_remembering_form_answers_as_the_invariant(name, choices, rnd) -> None:
    model = MODELS[name]
    states = _walked(name, choices)
    # in walk order (siblings together, as the checker meets them), then shuffled
    order = states + rnd.sample(states, len(states))
    for prop in SERVERS_ONLY:
        form = bind_state_property(prop, model.config)
        for state in order:
            assert form(state) == prop(state)


def test_the_remembering_form_forgets_nothing_false() -> None:
    """A state on which the invariant fails is never remembered as holding: the same servers
    tuple asked again is checked again (and fails again)."""
    model = MODELS["conformance/tiny2.yaml"]
    system = ProtocolSystem(model, symmetry=False)
    good = next(iter(system.init_states()))
    s1 = good.server(1)
    fields = list(s1)
    fields[type(s1)._fields.index("role")] = Role.LEADER
    lead = tuple.__new__(type(s1), fields)
    bad = tuple.__new__(type(good), ((lead, lead, *good[0][2:]), *good[1:]))
    prop = INVARIANTS["election_safety"]
    assert prop(good) and not prop(bad)
    form = bind_state_property(prop, model.config)
    assert form(good)
    assert not form(bad)
    assert not form(bad)
    assert form(good)
