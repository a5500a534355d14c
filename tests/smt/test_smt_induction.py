"""Induction proofs that run in CI: ElectionSafety and LogMatching for 3 servers, within the
bounds, for all depths; and the checker names the action that breaks a non-inductive invariant."""

from __future__ import annotations

import pytest

from checker.symbolic import induct
from reference import Config, RaftspecError, actions

ES_BOUNDS = Config(3, 1, 3, 1, 2)
LM_BOUNDS = Config(3, 2, 3, 2, 2)


def test_election_safety_is_inductive_with_the_shipped_lemmas_for_3_servers() -> None:
    result = induct(ES_BOUNDS, "election_safety", ["shipped"])
    assert result.base_ok
    assert [c.action for c in result.actions if not c.preserved] == []
    assert {c.action for c in result.actions} >= {"Restart", "Timeout", "BecomeLeader",
                                                  "HandleRequestVoteRequest", "DropMessage"}


def test_log_matching_is_inductive_with_the_shipped_lemmas_for_3_servers() -> None:
    result = induct(LM_BOUNDS, "log_matching", ["shipped"])
    assert result.proved, [(c.action, c.broken) for c in result.actions if not c.preserved]


def test_election_safety_alone_is_broken_by_become_leader_and_the_cti_is_a_real_step() -> None:
    result = induct(ES_BOUNDS, "election_safety")
    broken = [c for c in result.actions if not c.preserved]
    assert [c.action for c in broken] == ["BecomeLeader"]
    (_, pre), (action, post) = broken[0].cti
    assert broken[0].broken == "election_safety"
    # The counterexample to induction is a genuine step of the reference.
    assert action.name == "BecomeLeader"
    assert actions.become_leader(pre, action.server) == post


def test_log_matching_needs_its_log_lemmas() -> None:
    result = induct(LM_BOUNDS, "log_matching", ["granted_votes_recorded"])
    assert not result.proved


def test_unknown_invariant_and_lemma_are_user_errors() -> None:
    with pytest.raises(RaftspecError, match="unknown invariant"):
        induct(ES_BOUNDS, "election_safty")
    with pytest.raises(RaftspecError, match="unknown lemma"):
        induct(ES_BOUNDS, "election_safety", ["no_such_lemma"])
    with pytest.raises(RaftspecError, match="--k"):
        induct(ES_BOUNDS, "election_safety", k=0)
