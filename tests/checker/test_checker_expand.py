"""``ProtocolSystem.expand``: the generated one-call-per-state form of ``steps`` that the core
loop of ``explore`` uses (a count of the successors, and only those within the constraint, with
their positions), held to ``steps`` and ``constraint`` on every model, variant and mutant
shipped.

The expected values come from ``steps`` and ``constraint`` (the plain path ``explore`` takes for
systems without ``expand``, and for counting per action), never from ``expand`` itself.
"""

from __future__ import annotations

import pytest
from adhoc import constrained_walk
from hypothesis import given, settings
from hypothesis import strategies as st

from raftspec.checker.explore import explore
from raftspec.checker.parallel import InlineBackend
from raftspec.checker.system import ProtocolSystem, steps_source
from raftspec.spec.model import MODELS_DIR, load_model

MODEL_PATHS = sorted(MODELS_DIR.rglob("*.yaml"))
MODELS = {str(p.relative_to(MODELS_DIR)): load_model(p) for p in MODEL_PATHS}


def test_every_shipped_model_is_covered() -> None:
    assert len(MODELS) >= 20
    assert any(m.config.variant != "tla" for m in MODELS.values())
    assert any(m.config.mutants for m in MODELS.values())


def _read_off(system: ProtocolSystem, state) -> tuple[int, list]:
    """What ``expand`` must return, from ``steps`` and ``constraint``."""
    pairs = list(system.steps(state))
    kept = [(k, nxt) for k, (_, nxt) in enumerate(pairs) if system.constraint(nxt)]
    return len(pairs), kept


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(MODELS)), st.lists(st.integers(0, 10**6), max_size=80))
def test_expand_equals_steps_and_constraint_on_reachable_states(name, choices) -> None:
    model = MODELS[name]
    on = ProtocolSystem(model, symmetry=False, beyond="on")
    off = ProtocolSystem(model, symmetry=False, beyond="off")
    assert ProtocolSystem(model, symmetry=False, beyond="check").expand is None
    for state in constrained_walk(off, choices, random_init=True):
        count, kept = on.expand(state)
        assert (count, kept) == _read_off(on, state)
        assert off.expand(state) == _read_off(off, state)
        assert (count, kept) == off.expand(state)   # unbuilt ones counted, the rest the same
        assert all(type(k) is int for k, _ in kept)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_explore_with_and_without_expand_gives_the_same_search(name) -> None:
    """A budget of states keeps this cheap; both runs stop at the same state (BFS order)."""
    model = MODELS[name]
    fast = ProtocolSystem(model, symmetry=False)
    plain = ProtocolSystem(model, symmetry=False)
    plain.expand = None
    a, b = explore(fast, max_states=1500), explore(plain, max_states=1500)
    assert (a.distinct_states, a.states_generated, a.depth, a.violated, a.stopped) == \
        (b.distinct_states, b.states_generated, b.depth, b.violated, b.stopped)
    assert a.trace == b.trace


def test_a_step_property_violation_names_the_step_expand_found() -> None:
    """``expand`` gives positions, not actions: the counterexample's last step is the pair of
    ``steps`` at that position, as without ``expand``."""
    model = MODELS["conformance/tiny2.yaml"]
    results = []
    for use_expand in (True, False):
        system = ProtocolSystem(model, symmetry=False)
        if not use_expand:
            system.expand = None
        system.step_properties = {
            "term_stays_below_2": lambda s, n: max(x.current_term for x in n.servers) < 2}
        results.append(explore(system))
    fast, plain = results
    assert fast.violated == plain.violated == "term_stays_below_2"
    assert fast.trace == plain.trace
    action, last = fast.trace[-1]
    assert action.name == "Timeout"
    assert max(x.current_term for x in last.servers) == 2
    # generated counts the steps up to the violating one, as the shards count (one by one,
    # through ``steps``: their own code, independent of ``expand``)
    assert fast.states_generated == plain.states_generated == _sharded(system).states_generated


def test_per_action_counts_stop_at_a_step_violation_in_one_process_and_in_shards() -> None:
    """A step property violated by a Timeout (an early row: later rows of that state are not
    counted): the rows counted in generated code, with the rest taken back, against the
    actions read off ``steps``, in one process and in shards (``parallel_from=1``)."""
    system = ProtocolSystem(MODELS["conformance/tiny2.yaml"], symmetry=False)
    system.step_properties = {
        "term_stays_below_2": lambda s, n: max(x.current_term for x in n.servers) < 2}
    own = system.action_name

    def other(action):   # the same names, but not the system's own function: read off steps
        return own(action)
    runs = [explore(system, count_actions=True, action_name=name) for name in (own, other)]
    runs += [_sharded(system, count_actions=True, action_name=name) for name in (own, other)]
    assert {r.violated for r in runs} == {"term_stays_below_2"}
    assert all(r.per_action == runs[1].per_action for r in runs)
    assert sum(runs[1].per_action.values()) == runs[1].states_generated


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(MODELS)), st.integers(1, 1500))
def test_per_action_counts_of_the_counting_form_equal_those_read_off_steps(name, budget) -> None:
    """``counting_expand`` (rows counted in the generated code; used when ``action_name`` is
    the system's own) against the list of actions read off ``steps`` (used for any other
    ``action_name``, here the same names through a wrapper), budgets and violations stopping
    the search inside a state's successors included."""
    system = ProtocolSystem(MODELS[name], symmetry=False)
    fast = explore(system, count_actions=True, action_name=system.action_name,
                   max_states=budget)
    plain = explore(system, count_actions=True, action_name=lambda a: system.action_name(a),
                    max_states=budget)
    assert (fast.distinct_states, fast.states_generated, fast.violated, fast.stopped) == \
        (plain.distinct_states, plain.states_generated, plain.violated, plain.stopped)
    assert fast.per_action == plain.per_action
    assert sum(fast.per_action.values()) == fast.states_generated
    assert all(count > 0 for count in fast.per_action.values())


def _sharded(system: ProtocolSystem, **budget):
    return explore(system, workers=2, parallel_from=1, backend=InlineBackend, **budget)


@pytest.mark.parametrize("name", ["conformance/tiny2.yaml", "mutant_quorum_off_by_one.yaml"])
def test_an_interrupted_search_counts_as_the_shards_count(name) -> None:
    """A budget or a violation stops the search inside a state's successors: ``generated``
    then counts that state's steps up to the one that stopped it, not all of them."""
    model = MODELS[name]
    for budget in ({"max_states": 700}, {}):
        fast = explore(ProtocolSystem(model, symmetry=False), **budget)
        shards = _sharded(ProtocolSystem(model, symmetry=False), **budget)
        assert (fast.distinct_states, fast.states_generated, fast.violated, fast.stopped) == \
            (shards.distinct_states, shards.states_generated, shards.violated, shards.stopped)


def test_expand_source_is_shown_and_refuses_the_checking_mode() -> None:
    model = MODELS["conformance/tiny2.yaml"]
    source, _ = steps_source(model.protocol, model.config, "on", form="expand")
    assert source.startswith("def expand(state")
    assert "beyond_" in source and "within(nxt)" in source
    off, _ = steps_source(model.protocol, model.config, "off", form="expand")
    assert "beyond_" not in off
    counting, _ = steps_source(model.protocol, model.config, "on", form="count")
    assert "tally[0] += n - m" in counting
    with pytest.raises(ValueError):
        steps_source(model.protocol, model.config, "check", form="expand")
    with pytest.raises(ValueError):
        steps_source(model.protocol, model.config, "check", form="count")
    with pytest.raises(ValueError):
        steps_source(model.protocol, model.config, "on", form="fused")
