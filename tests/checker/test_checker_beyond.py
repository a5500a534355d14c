"""Successors counted without being built (``Row.beyond``): the checker's shortcut against
building every successor, on every model, variant and mutant shipped.

A row may declare where its action certainly leaves the bounds; ``ProtocolSystem`` then yields
``OUT_OF_BOUNDS`` instead of the state, and the constraint rejects it. The declaration must be
exact where it answers True (enabled, and outside the constraint): ``beyond="check"`` builds the
state anyway and raises otherwise, and the counts, per-action counts and successor lists must
equal those of ``beyond="off"`` (every successor built, as before the shortcut).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import attrs
import pytest
from adhoc import AdHocModel, constrained_walk
from hypothesis import given, settings
from hypothesis import strategies as st

from raftspec.checker.explore import explore
from raftspec.checker.system import OUT_OF_BOUNDS, ProtocolSystem
from raftspec.protocol import RaftspecError
from raftspec.reference.config import Config
from raftspec.reference.protocol import RAFT_TLA, bounds
from raftspec.reference.state import Role
from raftspec.spec.model import MODELS_DIR, load_model

MODEL_PATHS = sorted(MODELS_DIR.rglob("*.yaml"))
MODELS = {str(p.relative_to(MODELS_DIR)): load_model(p) for p in MODEL_PATHS}
DECLARED = {"Timeout", "RequestVote", "ClientRequest", "AppendEntries", "DuplicateMessage"}


def test_every_shipped_model_is_covered() -> None:
    assert len(MODELS) >= 20
    assert any(m.config.variant != "tla" for m in MODELS.values())
    assert any(m.config.mutants for m in MODELS.values())


def _systems(model) -> dict[str, ProtocolSystem]:
    return {mode: ProtocolSystem(model, symmetry=False, beyond=mode)
            for mode in ("on", "off", "check")}


def _same_steps(systems: dict[str, ProtocolSystem], state) -> int:
    """Assert that the three modes agree on ``state``; the number of unbuilt successors."""
    built = systems["off"].steps(state)
    checked = systems["check"].steps(state)   # raises where a declaration is wrong
    fast = systems["on"].steps(state)
    assert checked == built
    assert [a for a, _ in fast] == [a for a, _ in built]   # same instances, same order
    unbuilt = 0
    for (action, quick), (_, nxt) in zip(fast, built, strict=True):
        if quick is OUT_OF_BOUNDS:
            unbuilt += 1
            assert not systems["off"].within_bounds(nxt), action
            assert action.name in DECLARED
        else:
            assert quick == nxt
    return unbuilt


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(sorted(MODELS)), st.lists(st.integers(0, 10**6), max_size=80))
def test_unbuilt_successors_are_exactly_out_of_bounds(name, choices) -> None:
    systems = _systems(MODELS[name])
    for state in constrained_walk(systems["off"], choices):
        _same_steps(systems, state)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_explore_counts_equal_with_and_without_the_shortcut(name) -> None:
    """A budget of states keeps this cheap; both runs stop at the same state (BFS order), so
    the figures, per action, must be equal; the checking run verifies every declaration met."""
    model = MODELS[name]
    results = {mode: explore(system, count_actions=True, max_states=1500,
                             action_name=ProtocolSystem.action_name)
               for mode, system in _systems(model).items() if mode != "off"}
    on, check = results["on"], results["check"]
    assert (on.distinct_states, on.states_generated, on.depth, on.violated) == \
        (check.distinct_states, check.states_generated, check.depth, check.violated)
    assert on.per_action == check.per_action
    if on.trace is not None:
        assert on.trace == check.trace


def test_each_declaration_is_used_on_a_small_model() -> None:
    """Not vacuous: on tiny2 (restart, duplicate and drop on) each declaring row leaves the
    bounds unbuilt at least once, and most out-of-bounds successors are unbuilt."""
    model = MODELS[str(Path("conformance") / "tiny2.yaml")]
    systems = _systems(model)
    unbuilt: Counter[str] = Counter()
    outside = 0
    seen = set()
    level = list(systems["on"].init_states())
    while level:
        nxt_level = []
        for state in level:
            if len(seen) < 300:
                _same_steps(systems, state)
            for action, nxt in systems["on"].steps(state):
                if nxt is OUT_OF_BOUNDS:
                    unbuilt[action.name] += 1
                    continue
                if not systems["on"].constraint(nxt):
                    outside += 1
                    continue
                if nxt not in seen:
                    seen.add(nxt)
                    nxt_level.append(nxt)
        level = nxt_level
    assert len(seen) == 1_645  # TLC's figure for tiny2
    assert set(unbuilt) == DECLARED
    assert sum(unbuilt.values()) > 10 * outside


CONFIG = Config(servers=3, values=1, max_term=2, max_log_length=1, max_messages=1)
TINY2 = Config(servers=2, values=1, max_term=2, max_log_length=1, max_messages=1)


def _wrongly_declared(protocol):
    """Timeout declared out of bounds one term too early: a wrong declaration."""
    row = protocol.row("Timeout")

    def early(config):
        def beyond(state, i):
            s = state.server(i)
            return s.current_term >= config.max_term - 1 and s.role != Role.LEADER
        return beyond

    wrong = attrs.evolve(row, beyond=early)
    return attrs.evolve(protocol, rows=tuple(wrong if r.name == "Timeout" else r
                                             for r in protocol.rows))


def test_a_wrong_declaration_is_caught() -> None:
    model = AdHocModel(_wrongly_declared(RAFT_TLA), TINY2)
    with pytest.raises(RaftspecError, match="Timeout.*within the constraint"):
        explore(ProtocolSystem(model, beyond="check"))
    # ... and comparing with the built successors catches it too: the counts differ
    on = explore(ProtocolSystem(model, beyond="on"))
    off = explore(ProtocolSystem(model, beyond="off"))
    assert off.distinct_states == 1_645 != on.distinct_states


def test_a_declaration_goes_with_its_action_and_constraint() -> None:
    row = RAFT_TLA.row("Timeout")
    assert row.beyond_for == (row.apply, bounds)
    assert RAFT_TLA.beyond(row, CONFIG) is not None
    assert RAFT_TLA.beyond(RAFT_TLA.row("Restart"), CONFIG) is None
    replaced = RAFT_TLA.replace("Timeout", apply=lambda state, i: state)
    assert replaced.beyond(replaced.row("Timeout"), CONFIG) is None
    assert replaced.row("Timeout").beyond is None
    restated = RAFT_TLA.replace("Timeout", apply=lambda state, i: None,
                                beyond=lambda config: lambda state, i: False)
    assert restated.beyond(restated.row("Timeout"), CONFIG) is not None
    evolved = attrs.evolve(row, apply=lambda state, i: state)   # beyond_for names the old one
    assert RAFT_TLA.beyond(evolved, CONFIG) is None
    other = attrs.evolve(RAFT_TLA, constraint=lambda config: lambda state: True)
    assert all(other.beyond(r, CONFIG) is None for r in other.rows)
    kept = RAFT_TLA.replace("Timeout", encoder=None)   # same action: the declaration stays
    assert kept.beyond(kept.row("Timeout"), CONFIG) is not None
    with pytest.raises(RaftspecError, match="beyond_for"):
        attrs.evolve(row, beyond_for=None)
    with pytest.raises(ValueError, match="beyond"):
        ProtocolSystem(AdHocModel(RAFT_TLA, CONFIG), beyond="fast")


def test_out_of_bounds_is_one_object_and_fails_every_constraint() -> None:
    import pickle

    assert pickle.loads(pickle.dumps(OUT_OF_BOUNDS)) is OUT_OF_BOUNDS
    system = ProtocolSystem(AdHocModel(RAFT_TLA, CONFIG))
    assert not system.constraint(OUT_OF_BOUNDS)
    assert system.constraint(next(iter(system.init_states())))
