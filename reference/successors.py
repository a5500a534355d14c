"""Every enabled action instance of a state: raft.tla's ``Next``, enumerated.

``steps`` yields every (action, next state) pair, including self-loops and successors outside
the bounds (TLC counts those as generated); ``successors`` drops the out-of-bounds ones, as
TLC's CONSTRAINT does.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator
from typing import NamedTuple

from raftspec.reference import actions
from raftspec.reference.config import Config
from raftspec.reference.state import Message, Role, State, bag_size


class Action(NamedTuple):
    """One action instance, for printing: its raft.tla name and its parameters."""

    name: str
    server: int = 0
    peer: int = 0
    value: int = 0
    message: Message | None = None


@functools.cache
def server_action(name: str, server: int, peer: int = 0, value: int = 0) -> Action:
    """The Action record of a server action; there are few, so each is built once."""
    return Action(name, server, peer, value)


def steps(state: State, config: Config) -> Iterator[tuple[Action, State]]:
    """raft.tla ``Next``: one (action, successor) pair per enabled action instance.

    Server actions come grouped by server, then Receive, DuplicateMessage and DropMessage per
    message (the order changes no count). Each action checks its own enabling condition; the
    role tests below only skip parameter values for which it would certainly return None.
    A model's ``variant`` other than "tla" enumerates its own actions (``reference.variants``).
    """
    if config.variant != "tla":
        yield from variant_steps(config.variant)(state, config)
        return
    servers = range(1, config.servers + 1)
    if config.restart:
        for i in servers:
            yield server_action("Restart", i), actions.restart(state, i)
    current_term_only = "commit_previous_term" not in config.mutants
    strict_quorum = "quorum_off_by_one" not in config.mutants
    for i in servers:
        role = state.server(i).role
        if role != Role.LEADER:
            nxt = actions.timeout(state, i)
            if nxt is not None:
                yield server_action("Timeout", i), nxt
        if role == Role.CANDIDATE:
            for j in servers:
                nxt = actions.request_vote(state, i, j)
                if nxt is not None:
                    yield server_action("RequestVote", i, j), nxt
            nxt = actions.become_leader(state, i, strict_quorum=strict_quorum)
            if nxt is not None:
                yield server_action("BecomeLeader", i), nxt
        if role == Role.LEADER:
            for v in range(1, config.values + 1):
                nxt = actions.client_request(state, i, v)
                yield server_action("ClientRequest", i, value=v), nxt
            nxt = actions.advance_commit_index(
                state, i, current_term_only=current_term_only, strict_quorum=strict_quorum
            )
            yield server_action("AdvanceCommitIndex", i), nxt
            for j in servers:
                if j != i:
                    yield server_action("AppendEntries", i, j), actions.append_entries(state, i, j)
    check_log = "vote_without_log_check" not in config.mutants
    check_term = "no_term_check_on_append" not in config.mutants
    for m, _ in state.messages:
        received = actions.receive(state, m, check_log=check_log, check_term=check_term)
        if received is not None:
            name, nxt = received
            yield Action(name, m.mdest, m.msource, message=m), nxt
    if config.duplicate:
        for m, _ in state.messages:
            yield Action("DuplicateMessage", message=m), actions.duplicate_message(state, m)
    if config.drop:
        for m, _ in state.messages:
            yield Action("DropMessage", message=m), actions.drop_message(state, m)


@functools.cache
def variant_steps(name: str) -> Callable[[State, Config], Iterator[tuple[Action, State]]]:
    """The ``steps`` function of a protocol variant module, by variant name (looked up once:
    ``steps`` asks for it on every state)."""
    return importlib.import_module(f"raftspec.reference.variants.{name}").steps


def within_bounds(state: State, config: Config) -> bool:
    """The model's state constraint (TLC ``CONSTRAINT``)."""
    return bag_size(state.messages) <= config.max_messages and all(
        s.current_term <= config.max_term and len(s.log) <= config.max_log_length
        for s in state.servers
    )


def successors(state: State, config: Config) -> Iterator[tuple[Action, State]]:
    """Every (action, successor) whose successor lies within the model's bounds."""
    for action, nxt in steps(state, config):
        if within_bounds(nxt, config):
            yield action, nxt
