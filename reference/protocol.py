"""raft.tla as a protocol: its schema, initial state, action table and properties.

The table lists raft.tla's ``Next`` in its order; ``Receive(m)`` is split into its cases, one row
each, so that each is counted under its own name (as TLC does) and a mutant can replace one.
Each row's enumerator may skip parameters for which the action certainly returns None (a
leader never times out, say); the action's own guard is the definition.

Variants and mutants are edits of ``RAFT_TLA`` (``reference/variants/``, ``reference/mutants/``,
or a user's file named by the model): ``build_protocol`` applies them.
"""

from __future__ import annotations

import functools
import pkgutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from raftspec.protocol import (
    MESSAGE,
    SERVER,
    VALUE,
    Param,
    Protocol,
    Render,
    Row,
    SimulationHints,
)
from raftspec.protocol.load import apply_edit, find_edit
from raftspec.reference import actions, mutants, variants
from raftspec.reference.config import Config
from raftspec.reference.describe import describe_message, describe_server
from raftspec.reference.properties import INVARIANTS, STEP_PROPERTIES
from raftspec.reference.reachable import REACHABLE
from raftspec.reference.state import (
    APPEND_ENTRIES_REQUEST,
    APPEND_ENTRIES_RESPONSE,
    REQUEST_VOTE_REQUEST,
    REQUEST_VOTE_RESPONSE,
    SCHEMA,
    AppendEntriesRequest,
    AppendEntriesResponse,
    RequestVoteRequest,
    RequestVoteResponse,
    Role,
    Server,
    State,
    initial_state,
    is_quorum,
)

# --- Parameters ------------------------------------------------------------------------------

SERVER_PARAM = (Param("server", SERVER),)
PAIR_PARAMS = (Param("server", SERVER), Param("peer", SERVER))
VALUE_PARAMS = (Param("server", SERVER), Param("value", VALUE))
MESSAGE_PARAM = (Param("message", MESSAGE),)


@functools.cache
def _ids(n: int) -> tuple[tuple[int], ...]:
    return tuple((i,) for i in range(1, n + 1))


def restarting_servers(state: State, config: Config) -> tuple[tuple[int], ...]:
    """Every server, when the model has Restart."""
    return _ids(config.servers) if config.restart else ()


class _LastState:
    """A one-entry memo for the enumerators: the action table asks each row's enumerator in
    turn about the same state, and most of them need the same per-server or per-message facts.
    It keeps the state it answered for (so that identity means that state) and the answer."""

    __slots__ = ("state", "value")

    def __init__(self) -> None:
        self.state: Any = None
        self.value: Any = None


_roles_memo = _LastState()


_CANDIDATES, _LEADERS = 0, 1


def _by_role(state: State) -> tuple[tuple[tuple[int, Server], ...], ...]:
    """The (id, server) pairs of the candidates and of the leaders of ``state``, in id order;
    computed once per state. (Variants may add roles: those servers are in neither.)"""
    memo = _roles_memo
    if memo.state is not state:
        found: tuple[list, list] = ([], [])
        for i, s in enumerate(state.servers, 1):
            if s.role == Role.CANDIDATE:
                found[_CANDIDATES].append((i, s))
            elif s.role == Role.LEADER:
                found[_LEADERS].append((i, s))
        memo.value = (tuple(found[0]), tuple(found[1]))
        memo.state = state
    return memo.value


def servers_not_leading(state: State, config: Config) -> list[tuple[int]]:
    return [(i,) for i, s in enumerate(state.servers, 1) if s.role != Role.LEADER]


def candidates(state: State, config: Config) -> list[tuple[int]]:
    return [(i,) for i, _ in _by_role(state)[_CANDIDATES]]


def leaders(state: State, config: Config) -> list[tuple[int]]:
    return [(i,) for i, _ in _by_role(state)[_LEADERS]]


def candidates_and_servers(state: State, config: Config) -> list[tuple[int, int]]:
    ids = range(1, config.servers + 1)
    return [(i, j) for i, _ in _by_role(state)[_CANDIDATES] for j in ids]


def candidates_and_unasked(state: State, config: Config) -> list[tuple[int, int]]:
    """RequestVote's exact arguments: each candidate with each server it has no vote response
    from (the action's own guard, tested here once per pair)."""
    ids = range(1, config.servers + 1)
    out = []
    for i, s in _by_role(state)[_CANDIDATES]:
        responded = s.votes_responded  # read once per candidate, not once per pair
        out += [(i, j) for j in ids if j not in responded]
    return out


def candidates_with_quorum(state: State, config: Config) -> list[tuple[int]]:
    """BecomeLeader's exact arguments: the candidates granted votes by a quorum."""
    n = len(state.servers)
    return [(i,) for i, s in _by_role(state)[_CANDIDATES] if is_quorum(s.votes_granted, n)]


def leaders_and_values(state: State, config: Config) -> list[tuple[int, int]]:
    values = range(1, config.values + 1)
    return [(i, v) for i, _ in _by_role(state)[_LEADERS] for v in values]


def leaders_and_peers(state: State, config: Config) -> list[tuple[int, int]]:
    ids = range(1, config.servers + 1)
    return [(i, j) for i, _ in _by_role(state)[_LEADERS] for j in ids if j != i]


# Receive's cases, by the message's type and how its term compares with its receiver's: each
# message in flight is offered to the one case whose condition can hold.

_terms_memo = _LastState()


def _against_receiver(state: State) -> tuple[tuple[Any, int, int], ...]:
    """(message, its type, the sign of its term minus its receiver's) for each message in
    flight, in bag order; computed once per state for the six receiving rows."""
    memo = _terms_memo
    if memo.state is not state:
        servers = state.servers
        out = []
        for m, _ in state.messages:
            mterm, term = m.mterm, servers[m.mdest - 1].current_term
            out.append((m, m.mtype, (mterm > term) - (mterm < term)))
        memo.value = tuple(out)
        memo.state = state
    return memo.value


def newer_messages(state: State, config: Config) -> list[tuple[Any]]:
    """Messages of a term above their receiver's (UpdateTerm)."""
    return [(m,) for m, _, relation in _against_receiver(state) if relation > 0]


def messages_of(mtypes: tuple[int, ...], term: str) -> Callable[[State, Config],
                                                                 list[tuple[Any]]]:
    """The messages in flight of the given types whose term is ``term`` ("<", "<=" or "==")
    their receiver's."""
    relations = {"<": (-1,), "<=": (-1, 0), "==": (0,)}[term]

    def matching(state: State, config: Config) -> list[tuple[Any]]:
        return [(m,) for m, mtype, relation in _against_receiver(state)
                if mtype in mtypes and relation in relations]

    return matching


def duplicable_messages(state: State, config: Config) -> list[tuple[Any]]:
    return [(m,) for m, _ in state.messages] if config.duplicate else []


def droppable_messages(state: State, config: Config) -> list[tuple[Any]]:
    return [(m,) for m, _ in state.messages] if config.drop else []


_SERVERS, _MESSAGES = 0, 1
_TERM, _LOG = SCHEMA.field_names().index("current_term"), SCHEMA.field_names().index("log")


def bounds(config: Config) -> Callable[[State], bool]:
    """The model's state constraint (TLC ``CONSTRAINT``), with the bounds hoisted: it runs for
    every generated state, so it reads fields by position (a property costs a descriptor call;
    positions from the schema) and a plain loop (it beats map/sum for these few servers and
    messages). More distinct messages than the bound means more in flight: no sum needed."""
    max_term, max_log, max_messages = config.max_term, config.max_log_length, config.max_messages
    passed = _LastState()  # the last servers tuple found within bounds: a step that only
    # sends or consumes messages keeps its state's servers tuple, so siblings share it

    def within_bounds(state: State) -> bool:
        messages = state[_MESSAGES]
        if len(messages) > max_messages:
            return False
        in_flight = 0
        for _, count in messages:
            in_flight += count
        if in_flight > max_messages:
            return False
        servers = state[_SERVERS]
        if servers is passed.state:
            return True
        for s in servers:  # noqa: SIM110 (all() over a generator is slower here)
            if s[_TERM] > max_term or len(s[_LOG]) > max_log:
                return False
        passed.state = servers
        return True

    return within_bounds


# --- Instances that leave the bounds (``Row.beyond``) -------------------------------------------
#
# Three quarters of the successors of a typical model break the constraint: a send into a full
# bag, a Timeout at the largest term, a ClientRequest onto the longest log. Each predicate
# below restates its action's guard (it does not trust the enumerator) and adds the bound that
# the action's successor certainly breaks; the checker then counts the instance without
# building its state. Only sends, Timeout and ClientRequest grow a bounded quantity: the other
# actions keep the bag's size or shrink it, copy a term from a message (never above the
# largest term, which every sender is within), or append to a follower's log at most up to its
# leader's length. tests/checker/test_checker_beyond.py holds every row, variant and mutant to
# these claims.

_flight_memo = _LastState()


def _in_flight(state: State) -> int:
    """Messages in flight in ``state``, counted with multiplicity; once per state."""
    memo = _flight_memo
    if memo.state is not state:
        n = 0
        for _, count in state[_MESSAGES]:
            n += count
        memo.value = n
        memo.state = state
    return memo.value


def timeout_beyond(config: Config) -> Callable[[State, int], bool] | None:
    """Timeout(i) from the largest term: the next term is beyond it."""
    max_term = config.max_term

    def beyond(state: State, i: int) -> bool:
        s = state[_SERVERS][i - 1]
        return s[_TERM] >= max_term and s.role in (Role.FOLLOWER, Role.CANDIDATE)

    return beyond


def request_vote_beyond(config: Config) -> Callable[[State, int, int], bool] | None:
    """RequestVote(i, j) into a full bag."""
    max_messages = config.max_messages

    def beyond(state: State, i: int, j: int) -> bool:
        if _in_flight(state) < max_messages:
            return False
        s = state[_SERVERS][i - 1]
        return s.role == Role.CANDIDATE and j not in s.votes_responded

    return beyond


def client_request_beyond(config: Config) -> Callable[[State, int, int], bool] | None:
    """ClientRequest(i, v) onto a log of the largest length."""
    max_log = config.max_log_length

    def beyond(state: State, i: int, v: int) -> bool:
        s = state[_SERVERS][i - 1]
        return len(s[_LOG]) >= max_log and s.role == Role.LEADER

    return beyond


def append_entries_beyond(config: Config) -> Callable[[State, int, int], bool] | None:
    """AppendEntries(i, j) into a full bag."""
    max_messages = config.max_messages

    def beyond(state: State, i: int, j: int) -> bool:
        return (_in_flight(state) >= max_messages and i != j
                and state[_SERVERS][i - 1].role == Role.LEADER)

    return beyond


def duplicate_beyond(config: Config) -> Callable[[State, Any], bool] | None:
    """DuplicateMessage(m) into a full bag (the action has no guard)."""
    max_messages = config.max_messages

    def beyond(state: State, m: Any) -> bool:
        return _in_flight(state) >= max_messages

    return beyond


# --- The table -------------------------------------------------------------------------------

_SMT = "raftspec.spec.smt"


def _row(name: str, params: tuple[Param, ...], enumerate_: Callable[..., Iterable[tuple]],
         apply: Callable[..., State | None], *, receives: bool = False,
         exact: Callable[..., Iterable[tuple]] | None = None,
         beyond: Callable[[Config], Callable[..., bool] | None] | None = None) -> Row:
    """A raft.tla row; its Z3 encoder is the function of the action's name in ``spec/smt.py``
    (``HandleRequestVoteRequest``: ``handle_request_vote_request``). ``exact``: an enumerator
    that also skips what this very action rejects (``Row.exact``; dropped when a variant or
    mutant replaces the action). ``beyond``: where this action certainly leaves ``bounds``
    (``Row.beyond``; dropped likewise, and when a variant changes the constraint)."""
    return Row(name, params, enumerate_, apply, encoder=f"{_SMT}:{apply.__name__}",
               receives=receives, exact=exact, beyond=beyond,
               beyond_for=(apply, bounds) if beyond is not None else None)


ACTIONS: tuple[Row, ...] = (
    _row("Restart", SERVER_PARAM, restarting_servers, actions.restart),
    _row("Timeout", SERVER_PARAM, servers_not_leading, actions.timeout, beyond=timeout_beyond),
    _row("RequestVote", PAIR_PARAMS, candidates_and_servers, actions.request_vote,
         exact=candidates_and_unasked, beyond=request_vote_beyond),
    _row("BecomeLeader", SERVER_PARAM, candidates, actions.become_leader,
         exact=candidates_with_quorum),
    _row("ClientRequest", VALUE_PARAMS, leaders_and_values, actions.client_request,
         beyond=client_request_beyond),
    _row("AdvanceCommitIndex", SERVER_PARAM, leaders, actions.advance_commit_index),
    _row("AppendEntries", PAIR_PARAMS, leaders_and_peers, actions.append_entries,
         beyond=append_entries_beyond),
    _row("UpdateTerm", MESSAGE_PARAM, newer_messages, actions.update_term, receives=True),
    _row("HandleRequestVoteRequest", MESSAGE_PARAM, messages_of((REQUEST_VOTE_REQUEST,), "<="),
         actions.handle_request_vote_request, receives=True),
    _row("DropStaleResponse", MESSAGE_PARAM,
         messages_of((REQUEST_VOTE_RESPONSE, APPEND_ENTRIES_RESPONSE), "<"),
         actions.drop_stale_response, receives=True),
    _row("HandleRequestVoteResponse", MESSAGE_PARAM,
         messages_of((REQUEST_VOTE_RESPONSE,), "=="),
         actions.handle_request_vote_response, receives=True),
    _row("HandleAppendEntriesRequest", MESSAGE_PARAM,
         messages_of((APPEND_ENTRIES_REQUEST,), "<="),
         actions.handle_append_entries_request, receives=True),
    _row("HandleAppendEntriesResponse", MESSAGE_PARAM,
         messages_of((APPEND_ENTRIES_RESPONSE,), "=="),
         actions.handle_append_entries_response, receives=True),
    _row("DuplicateMessage", MESSAGE_PARAM, duplicable_messages, actions.duplicate_message,
         beyond=duplicate_beyond),
    _row("DropMessage", MESSAGE_PARAM, droppable_messages, actions.drop_message),
)
"""raft.tla ``Next``, row by row, in raft.tla's order."""


def cell(state: State) -> tuple:
    """The abstraction simulation restarts from: each server's term, role, log terms and commit
    index, without votes, indexes or messages (a few thousand cells on the mutant models)."""
    return tuple(
        (s.current_term, s.role, tuple(e.term for e in s.log), s.commit_index)
        for s in state.servers
    )


SIMULATION = SimulationHints(
    rare={"Timeout": 0.9, "Restart": 0.9, "DropMessage": 0.9, "DuplicateMessage": 0.9,
          "AppendEntries": 0.5, "ClientRequest": 0.5},
    cell=cell,
)
"""Swarm hints for Raft: the probability that a walk leaves an action for quiet moments. In a
real cluster an election timeout is long next to a message delay, and restarts, loss and
duplication are rare; half of the walks also let leaders go quiet, which the paper's Figure 8
needs twice. Measured in benchmarks/bench_simulate.py."""


def initial_states(config: Config) -> tuple[State]:
    """raft.tla ``Init``."""
    return (initial_state(config.servers),)


RAFT_TLA = Protocol(
    name="raft.tla",
    schema=SCHEMA,
    init=initial_states,
    rows=ACTIONS,
    constraint=bounds,
    invariants=dict(INVARIANTS),
    step_properties=dict(STEP_PROPERTIES),
    reachable=dict(REACHABLE),
    render=Render(message=describe_message, server=describe_server),
    simulation=SIMULATION,
    Server=Server,
    State=State,
    messages={t.__name__: t for t in (RequestVoteRequest, RequestVoteResponse,
                                      AppendEntriesRequest, AppendEntriesResponse)},
)
"""Ongaro's raft.tla, action for action: the default protocol, whose state counts are TLC's."""


def receive(state: State, m: Any) -> tuple[str, State] | None:
    """raft.tla ``Receive(m)``: the one case that applies, as (handler name, next state), or
    None when no case applies."""
    return RAFT_TLA.receive(state, m)


# --- Variants and mutants ----------------------------------------------------------------------


def shipped(package: Any) -> dict[str, str]:
    """The edits shipped in a package of this repository, by name, with the first line of each
    module's docstring."""
    out = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = find_edit(info.name, package=package.__name__)
        out[info.name] = (module.__doc__ or "").strip().splitlines()[0]
    return out


def build_protocol(variant: str = "tla", mutant_names: Iterable[str] = (),
                   base_dir: Path | None = None) -> Protocol:
    """raft.tla with a variant applied (``tla``: none; a shipped name, a ``.py`` file relative
    to ``base_dir``, or a dotted module; ``a+b`` applies a then b), then each mutant (shipped
    names)."""
    protocol = RAFT_TLA
    for name in variant.split("+") if variant != "tla" else ():
        module = find_edit(name.strip(), package=variants.__name__, base_dir=base_dir)
        protocol = apply_edit(protocol, module, name.strip())
    for name in mutant_names:
        protocol = with_mutant(protocol, name)
    return protocol


def with_mutant(protocol: Protocol, name: str) -> Protocol:
    """The protocol with a shipped mutant applied (``reference/mutants/<name>.py``)."""
    return apply_edit(protocol, find_edit(name, package=mutants.__name__), name)


@functools.cache
def protocol_for(variant: str, mutant_names: frozenset[str]) -> Protocol:
    """``build_protocol`` for shipped variants and mutants, built once per combination."""
    return build_protocol(variant, sorted(mutant_names))
