"""A protocol and a bounded model of it, seen by the generic engine (``checker.explore``).

Nothing here knows Raft: the protocol (``raftspec.protocol.Protocol``) brings the schema, the
initial states, the action table, the constraint and the properties. States are tuples, so the
plain fingerprint is the tuple's own hash (ints, tuples and frozensets of ints only: the same in
every process); with symmetry it is the hash of the least encoding over server renamings
(``checker.symmetry``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any
from typing import Protocol as TypingProtocol

from raftspec.checker.symmetry import Canonicalizer
from raftspec.protocol import Action, Protocol, RaftspecError


class BoundedModel(TypingProtocol):
    """What the engine needs of a loaded model (``spec.model.Model`` is one)."""

    protocol: Protocol
    config: Any
    symmetry: bool

    @property
    def state_invariants(self) -> tuple[str, ...]: ...
    @property
    def step_properties(self) -> tuple[str, ...]: ...


class ProtocolSystem:
    """init, steps, constraint, fingerprint and properties of one model, for ``explore``."""

    def __init__(self, model: BoundedModel, *, symmetry: bool | None = None) -> None:
        protocol, config = model.protocol, model.config
        self.model = model
        self.protocol = protocol
        self.config = config
        self.symmetry = model.symmetry if symmetry is None else symmetry
        self.invariants = {name: _bind(_lookup(protocol.invariants, name, "invariant"), config)
                           for name in model.state_invariants}
        self.step_properties = {
            name: _bind_step(_lookup(protocol.step_properties, name, "step property"), config)
            for name in model.step_properties}
        self.reachable = {name: _bind(_lookup(protocol.reachable, name,
                                              "reachability property"), config)
                          for name in getattr(model, "reachable", ())}
        self.constraint: Callable[[Any], bool] = protocol.constraint(config)
        if self.symmetry:
            self.fingerprint: Callable[[Any], int] = Canonicalizer(
                protocol.schema, config.servers).fingerprint
        else:
            self.fingerprint = hash
        self.steps = _compiled_steps(protocol, config)

    def init_states(self) -> Iterable[Any]:
        return self.protocol.init(self.config)

    @staticmethod
    def action_name(action: Action) -> str:
        return action.name


def _bind(invariant: Callable[[Any, Any], bool], config: Any) -> Callable[[Any], bool]:
    """``invariant(state, config)`` as a predicate of the state (a closure: ``partial`` with a
    keyword argument builds a dict on every call, and this runs for every state)."""
    def holds(state: Any) -> bool:
        return invariant(state, config)
    return holds


def _bind_step(prop: Callable[[Any, Any, Any], bool], config: Any) -> Callable[[Any, Any], bool]:
    def holds(state: Any, nxt: Any) -> bool:
        return prop(state, nxt, config)
    return holds


def _lookup(table: dict[str, Any], name: str, what: str) -> Any:
    try:
        return table[name]
    except KeyError:
        raise RaftspecError(f"the protocol has no {what} {name!r}") from None


def _compiled_steps(protocol: Protocol, config: Any) -> Callable[[Any], Iterator[tuple]]:
    """``protocol.steps`` with the table unpacked once and one Action record per distinct
    (row, arguments), reused: the engine calls this for every state."""
    rows = [(row.name, row.params, row.enumerate, row.apply, {}) for row in protocol.rows]

    def steps(state: Any) -> Iterator[tuple[Action, Any]]:
        for name, params, enumerate_args, apply, actions in rows:
            for args in enumerate_args(state, config):
                nxt = apply(state, *args)
                if nxt is not None:
                    action = actions.get(args)
                    if action is None:
                        action = actions[args] = Action(name, args, params)
                    yield action, nxt

    return steps
