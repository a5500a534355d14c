"""Induction proofs that run in CI: ElectionSafety and LogMatching for 3 servers, within the
bounds, for all depths; and the checker names the action that breaks a non-inductive invariant."""

from __future__ import annotations

import pytest

from raftspec.checker.symbolic import houdini, induct
from raftspec.reference import Config, RaftspecError, actions
from raftspec.reference.protocol import RAFT_TLA
from raftspec.spec import smt

ES_BOUNDS = Config(3, 1, 3, 1, 2)
LM_BOUNDS = Config(3, 2, 3, 2, 2)


def test_election_safety_is_inductive_with_the_shipped_lemmas_for_3_servers() -> None:
    result = induct(smt.Encoding(ES_BOUNDS), "election_safety", ["shipped"])
    assert result.base_ok
    assert [c.action for c in result.actions if not c.preserved] == []
    assert {c.action for c in result.actions} >= {"Restart", "Timeout", "BecomeLeader",
                                                  "HandleRequestVoteRequest", "DropMessage"}


def test_log_matching_is_inductive_with_the_shipped_lemmas_for_3_servers() -> None:
    result = induct(smt.Encoding(LM_BOUNDS), "log_matching", ["shipped"])
    assert result.proved, [(c.action, c.broken) for c in result.actions if not c.preserved]


def test_election_safety_alone_is_broken_by_become_leader_and_the_cti_is_a_real_step() -> None:
    result = induct(smt.Encoding(ES_BOUNDS), "election_safety")
    broken = [c for c in result.actions if not c.preserved]
    assert [c.action for c in broken] == ["BecomeLeader"]
    (_, pre), (action, post) = broken[0].cti
    assert broken[0].broken == "election_safety"
    # The counterexample to induction is a genuine step of the reference.
    assert action.name == "BecomeLeader"
    assert actions.become_leader(pre, action.server) == post


def test_log_matching_needs_its_log_lemmas() -> None:
    result = induct(smt.Encoding(LM_BOUNDS), "log_matching", ["granted_votes_recorded"])
    assert not result.proved


def test_unknown_invariant_and_lemma_are_user_errors() -> None:
    with pytest.raises(RaftspecError, match="unknown invariant"):
        induct(smt.Encoding(ES_BOUNDS), "election_safty")
    with pytest.raises(RaftspecError, match="unknown lemma"):
        induct(smt.Encoding(ES_BOUNDS), "election_safety", ["no_such_lemma"])
    with pytest.raises(RaftspecError, match="--k"):
        induct(smt.Encoding(ES_BOUNDS), "election_safety", k=0)


def _apply(action, state):
    """The successor of one named action instance (the CTI's states need not be reachable, so
    enumerating every action with ``steps`` could touch undefined values, as TLC would)."""
    return RAFT_TLA.row(action.name).apply(state, *action.args)


def test_two_induction_still_breaks_and_its_cti_is_a_two_step_path_of_the_reference() -> None:
    """k = 2: the counterexample to induction has three states, pairwise distinct, each step a
    genuine reference step, the hypothesis holding on the first two."""
    from raftspec.reference.properties import INVARIANTS

    result = induct(smt.Encoding(ES_BOUNDS), "election_safety", k=2)
    broken = [c for c in result.actions if not c.preserved]
    assert broken and all(c.broken == "election_safety" for c in broken)
    cti = broken[0].cti
    assert len(cti) == 3
    states = [state for _, state in cti]
    assert len(set(states)) == 3
    for (_, before), (action, after) in zip(cti, cti[1:], strict=False):
        assert _apply(action, before) == after
    assert all(INVARIANTS["election_safety"](s, ES_BOUNDS) for s in states[:2])
    assert not INVARIANTS["election_safety"](states[2], ES_BOUNDS)


def test_houdini_keeps_an_inductive_set_and_drops_what_a_mutant_breaks() -> None:
    """What BMC asserts on every state must hold on every reachable state: the kept set is
    re-proved by ``induct`` (base case and every action), and on the mutant the property it
    breaks is not kept."""
    config = Config(3, 1, 3, 1, 1, restart=False, duplicate=False, drop=False,
                    mutants=frozenset({"vote_without_log_check"}))
    strengthening = houdini(smt.Encoding(config))
    kept = [n for n in strengthening.invariants if n != "domain"]
    assert "leader_completeness" in strengthening.dropped
    assert {"election_safety", "log_matching"} <= set(kept)
    result = induct(smt.Encoding(config), "log_matching", kept)
    assert result.proved, [(c.action, c.broken) for c in result.actions if not c.preserved]


def test_houdini_drops_a_true_invariant_that_is_not_inductive_alone() -> None:
    """ElectionSafety holds on every reachable state, but without its lemmas BecomeLeader
    breaks it: Houdini keeps only what it can prove."""
    strengthening = houdini(smt.Encoding(ES_BOUNDS), ["domain", "election_safety"])
    assert strengthening.invariants == ("domain",)
    assert strengthening.dropped == ("election_safety",)
