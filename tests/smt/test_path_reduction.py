"""BMC's path reduction rests on one claim about the reference (the encoding's footprint): two
action instances with different actors, at least one of them local, commute. Checked here on the
reference itself, on random reachable states, for every such pair of enabled instances; and the
reduced BMC is checked to lose no violation depth against the unreduced one."""

from __future__ import annotations

import pytest
import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from walks import random_walk

from raftspec.checker.symbolic import PathReduction, bmc, candidate, houdini, independent
from raftspec.reference import Config, State, steps
from raftspec.reference.successors import within_bounds
from raftspec.spec import smt

footprint = smt.Encoding.footprint

CONFIGS = {
    "all_actions": Config(3, 2, 3, 2, 2),
    "no_faults": Config(3, 1, 3, 1, 1, restart=False, duplicate=False, drop=False),
}


def _successors(state: State, config: Config) -> dict:
    """Every enabled action instance (bounds ignored: they are checked separately)."""
    return {action: nxt for action, nxt in steps(state, config)}


def _footprint(a) -> tuple[int, bool]:
    """The footprint of a reference action, as the encoding gives it for the branch of that
    action instance: a receive row's actor is the message's receiver (its branch's server)."""
    receiver = a.message.mdest if a.message is not None and a.name not in (
        "DuplicateMessage", "DropMessage") else 0
    return footprint(a.name, a.server or receiver)


def _changed_servers(before: State, after: State) -> set[int]:
    return {i for i, (a, b) in enumerate(zip(before.servers, after.servers, strict=True), 1)
            if a != b}


def check_commutation(state: State, config: Config) -> int:
    """Assert the footprint claims at ``state``; the number of independent pairs checked."""
    pairs = 0
    enabled = _successors(state, config)
    for a, after_a in enabled.items():
        fa = _footprint(a)
        # The footprint bounds what changes: the actor's variables, and the bag if it uses it.
        assert _changed_servers(state, after_a) <= {fa[0]}, a
        if not fa[1]:
            assert after_a.messages == state.messages, a
        for b, after_b in enabled.items():
            if not independent(fa, _footprint(b)):
                continue
            pairs += 1
            ab = _successors(after_a, config).get(b)
            ba = _successors(after_b, config).get(a)
            assert ab is not None and ba is not None, (a, b)
            assert ab == ba, (a, b)
            assert within_bounds(ab, config) == (
                within_bounds(after_a, config) and within_bounds(after_b, config)), (a, b)
    return pairs


@pytest.mark.parametrize("name", CONFIGS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(choices=st.lists(st.integers(0, 10_000), max_size=30))
def test_independent_instances_commute(name: str, choices: list[int]) -> None:
    config = CONFIGS[name]
    for state in random_walk(config, choices)[-6:]:
        check_commutation(state, config)


def test_independence_is_not_vacuous() -> None:
    """On the initial state the three Timeouts are pairwise independent (6 ordered pairs); a
    send and a receive, or two actions of one server, never are."""
    config = CONFIGS["no_faults"]
    assert check_commutation(random_walk(config, [])[0], config) == 6
    assert not independent(footprint("RequestVote", 1), footprint("UpdateTerm", 2))
    assert not independent(footprint("Timeout", 1), footprint("UpdateTerm", 1))


@pytest.mark.parametrize("config", [
    Config(2, 1, 3, 1, 1, mutants=frozenset({"quorum_off_by_one"})),
    Config(2, 1, 2, 1, 2, mutants=frozenset({"quorum_off_by_one"})),
], ids=["all_actions", "two_messages"])
def test_reduced_bmc_finds_the_unreduced_depth(config: Config) -> None:
    """Symmetry breaking plus partial-order reduction against plain BMC: same violation, same
    depth."""
    props = ["election_safety", "leader_completeness", "state_machine_safety"]
    enc = smt.Encoding(config)
    plain = bmc(enc, props, ["leader_append_only"], max_depth=12, reduce=False)
    reduced = bmc(enc, props, ["leader_append_only"], max_depth=12, symmetry=True)
    assert plain.violated is not None
    assert (reduced.violated, reduced.depth) == (plain.violated, plain.depth)


def test_reduced_paths_still_exist_at_depth() -> None:
    """The reductions must never make the unrolled path itself unsatisfiable (BMC would then
    report 'no violation' vacuously): with every action on, long reduced paths exist."""
    enc = smt.Encoding(Config(3, 1, 2, 1, 1))
    facts = houdini(enc).invariants
    reduction = PathReduction(enc, symmetry=True)
    solver = enc.solver()
    states = [enc.state_vars("s0")]
    solver.add(enc.init(states[0]))
    for depth in range(1, 25):
        nxt = enc.state_vars(f"s{depth}")
        step = enc.step(states[-1], nxt)
        solver.add(step.formula, *reduction.add_step(step, f"s{depth}"),
                   *[candidate(enc, n)(enc, nxt) for n in facts])
        states.append(nxt)
    assert solver.check() == z3.sat
    path = [enc.decode(solver.model(), s) for s in states]
    assert len(set(path)) >= 20
