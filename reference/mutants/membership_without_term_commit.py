"""Membership change without the July 2015 fix (Ongaro, raft-dev, "bug in single-server
membership changes"; dissertation §4.1).

Copies of the ``membership`` variant's ``AddServer`` and ``RemoveServer`` that let a leader
append a configuration entry before it has committed an entry of its current term. Two leaders
of successive terms can then each append a change to the same configuration, one of them
commits its change with a majority of its new configuration, and the other is elected by a
majority of its own configuration, disjoint from the first: a committed entry is lost
(LeaderCompleteness, then StateMachineSafety). Applies to ``variant: membership``.
"""

from __future__ import annotations

from raftspec.protocol import Protocol
from raftspec.reference.state import State
from raftspec.reference.variants import membership


def anytime(state: State, i: int) -> bool:
    """The missing rule: no condition on the leader's commit index."""
    return True


def add_server(state: State, i: int, k: int) -> State | None:
    """``AddServer`` without the July 2015 fix."""
    return membership.change_config(state, i, k, True, anytime)


def remove_server(state: State, i: int, k: int) -> State | None:
    """``RemoveServer`` without the July 2015 fix."""
    return membership.change_config(state, i, k, False, anytime)


def edit(protocol: Protocol) -> Protocol:
    name = "membership_without_term_commit"
    protocol = protocol.replace("AddServer", apply=add_server, expect=membership.add_server,
                                edit=name)
    return protocol.replace("RemoveServer", apply=remove_server,
                            expect=membership.remove_server)
