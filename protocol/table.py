"""A protocol as data the engines read: a schema, initial states, an ordered action table and
properties (in the spirit of Stateright's ``Model``, made declarative).

``Protocol.steps`` is the one generic loop over the table; a variant is a function that takes a
protocol and returns an edited one (``replace``, ``add``, ``remove``, ``with_properties``,
``with_server_fields``, ``with_message_types``); a mutant is a variant that replaces one row with
a buggy copy of its action.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import attrs

from raftspec.protocol.errors import RaftspecError
from raftspec.protocol.schema import (
    Field,
    Kind,
    MessageType,
    Scalar,
    Schema,
    message_class,
    server_class,
    state_class,
)

MESSAGE = Scalar("MESSAGE")
"""The kind of an action parameter that is a message of the bag (the state's second field):
a row whose only parameter is one has no arguments while the bag is empty, and the checker
does not ask its enumerator then."""


@attrs.frozen
class Param:
    """An action parameter: its name (also its key in JSON) and its kind."""

    name: str
    kind: Kind


class Action(NamedTuple):
    """One action instance, for printing and replaying: the row's name and its arguments."""

    name: str
    args: tuple = ()
    params: tuple[Param, ...] = ()

    def arg(self, name: str, default: Any = None) -> Any:
        """The argument of the parameter called ``name``, or ``default``."""
        for p, a in zip(self.params, self.args, strict=True):
            if p.name == name:
                return a
        return default

    @property
    def server(self) -> int:
        return self.arg("server", 0)

    @property
    def peer(self) -> int:
        return self.arg("peer", 0)

    @property
    def value(self) -> int:
        return self.arg("value", 0)

    @property
    def message(self) -> Any:
        return self.arg("message")


Enumerate = Callable[[Any, Any], Iterable[tuple]]
"""``enumerate(state, config)``: the parameter tuples to try (a superset of the enabled ones)."""


@attrs.frozen
class Row:
    """One row of the action table.

    ``apply(state, *args)`` is the pure action: the next state, or None where it is not enabled.
    ``enumerate`` may skip arguments for which ``apply`` would certainly return None (for speed);
    it must never skip an enabled one. ``encoder`` names the row's Z3 encoder as
    ``"module:function"`` (None: the row has none, and symbolic checking refuses the protocol).
    ``receives``: the row is a case of delivering its message to the message's receiver (raft.tla
    ``Receive``), as opposed to the network duplicating or losing it.

    ``exact`` (optional): a tighter enumerator that also skips arguments that this row's own
    ``apply`` rejects (a guard the action checks anyway, tested once per argument instead of
    once per action call). It is tied to that ``apply`` (remembered in ``exact_for``): a row
    whose action was changed in any way (``Protocol.replace``, ``attrs.evolve``) falls back to
    ``enumerate``. Either way the same enabled instances come out, in the same order.

    ``beyond`` (optional): ``beyond(config)`` returns a predicate of ``(state, *args)`` (or None
    when no instance can leave the bounds under this config) that is true only where ``apply``
    is enabled AND its successor fails the protocol's state constraint: e.g. "the bag is full
    and this action sends". The checker then counts such an instance as generated (TLC counts
    it) without building its state (``checker.system``). The predicate must hold on its own
    (it restates the action's guard; it does not rely on the enumerator) and may answer False
    whenever it is unsure. It is tied to the action and to the constraint it was reasoned
    about (``beyond_for``: ``(apply, constraint)``, the constraint being the protocol's
    ``constraint`` function): a row whose action or protocol constraint changed loses it
    (``Protocol.replace`` may restate it). ``Protocol.beyond`` gives the valid ones.
    """

    name: str
    params: tuple[Param, ...]
    enumerate: Enumerate
    apply: Callable[..., Any]
    encoder: str | None = None
    receives: bool = False
    exact: Enumerate | None = None
    exact_for: Callable[..., Any] | None = attrs.field(default=None, repr=False)
    beyond: Callable[[Any], Callable[..., bool] | None] | None = attrs.field(default=None,
                                                                            repr=False)
    beyond_for: tuple[Callable[..., Any], Callable[..., Any]] | None = attrs.field(
        default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.exact is not None and self.exact_for is None:
            object.__setattr__(self, "exact_for", self.apply)
        if self.beyond is not None and (self.beyond_for is None or len(self.beyond_for) != 2):
            raise RaftspecError(f"row {self.name}: ``beyond`` needs ``beyond_for=(apply, "
                                f"constraint)``, the action and constraint it was written for")

    @property
    def arguments(self) -> Enumerate:
        """The enumerator to use: ``exact`` while the row still has the action it was written
        for, else ``enumerate``."""
        if self.exact is not None and self.exact_for is self.apply:
            return self.exact
        return self.enumerate


Invariant = Callable[[Any, Any], bool]
StepProperty = Callable[[Any, Any, Any], bool]


def give_config_form(prop: Callable[..., bool], for_config: Callable[[Any], Any]) -> None:
    """Give a property (an invariant or a step property) its own form for one config:
    ``for_config(config)`` returns a predicate without the config argument that must agree
    with ``prop`` on every state (precomputed bounds, memoised per-server checks). The form
    belongs to ``prop`` itself: a wrapper that copies its attributes does not inherit it."""
    prop.for_config = (prop, for_config)  # type: ignore[attr-defined]


def config_form(prop: Callable[..., bool], config: Any) -> Callable[..., bool] | None:
    """The property's own form for this config (``give_config_form``), or None."""
    form = getattr(prop, "for_config", None)
    if isinstance(form, tuple) and len(form) == 2 and form[0] is prop:
        return form[1](config)
    return None


def reads_only_servers(*props: Callable[..., bool]) -> None:
    """Declare that each property reads nothing of a state but its servers tuple (the state's
    first field, in every protocol) and never its config: two states with the same servers
    answer alike. The checker may then answer for a servers tuple it has just seen hold
    (``checker.system``); the declaration is the protocol's to keep true (test it)."""
    for prop in props:
        prop.reads_only_servers = prop  # type: ignore[attr-defined]


def only_servers_read(prop: Callable[..., bool]) -> bool:
    """Whether ``reads_only_servers`` declared this very property (not a wrapper's copy)."""
    return getattr(prop, "reads_only_servers", None) is prop


@attrs.frozen
class Render:
    """Optional hints for printing: a message in one line, a server's variables in one line."""

    message: Callable[[Any], str] | None = None
    server: Callable[[int, Any], str] | None = None


@attrs.frozen
class SimulationHints:
    """Optional hints for random simulation (``raftspec simulate``).

    ``rare``: per action name, the probability that a walk leaves the action for quiet moments
    (taken only when nothing else is enabled). ``cell``: a coarse abstraction of a state; walks
    restart from the shortest known trace to each cell met so far.
    """

    rare: dict[str, float] = attrs.field(factory=dict)
    cell: Callable[[Any], Any] | None = None


@attrs.frozen(eq=False)
class Protocol:
    """A protocol: its schema (and the classes generated from it), initial states, the ordered
    action table, its properties and its state constraint.

    ``init(config)`` yields the initial states; ``constraint(config)`` returns the model's state
    constraint as a predicate (TLC ``CONSTRAINT``); properties take the config as last argument.
    ``edits`` lists the variants and mutants applied, in order. Protocols compare by identity
    (their tables hold functions).

    A property may have its own form for a config (``give_config_form``), which the checker
    calls instead of ``prop(..., config)``.
    """

    name: str
    schema: Schema
    init: Callable[[Any], Iterable[Any]]
    rows: tuple[Row, ...]
    constraint: Callable[[Any], Callable[[Any], bool]]
    invariants: dict[str, Invariant] = attrs.field(factory=dict)
    step_properties: dict[str, StepProperty] = attrs.field(factory=dict)
    render: Render = Render()
    simulation: SimulationHints = SimulationHints()
    reachable: dict[str, Invariant] = attrs.field(factory=dict)
    """Reachability properties (Stateright's ``sometimes``): predicates a model may require the
    checker to find true in some reachable state, so that a pass is not vacuous."""
    edits: tuple[str, ...] = ()
    Server: type = attrs.field(default=None, eq=False)
    State: type = attrs.field(default=None, eq=False)
    messages: dict[str, type] = attrs.field(factory=dict, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.Server is None:
            object.__setattr__(self, "Server", server_class(self.schema.server_fields))
        if self.State is None:
            object.__setattr__(self, "State", state_class(self.schema.global_fields))
        for t in self.schema.message_types:
            if t.name not in self.messages:
                self.messages[t.name] = message_class(t)
        names = [r.name for r in self.rows]
        if len(set(names)) != len(names):
            raise RaftspecError(f"protocol {self.name}: action names are not distinct: {names}")

    # --- reading the table ----------------------------------------------------------------

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise RaftspecError(f"protocol {self.name} has no action {name!r}; "
                            f"its actions: {', '.join(r.name for r in self.rows)}")

    def message_type_number(self, name: str) -> int:
        """A message type's ``mtype``: its index in the schema."""
        for k, t in enumerate(self.schema.message_types):
            if t.name == name:
                return k
        raise RaftspecError(f"protocol {self.name} has no message type {name!r}")

    def steps(self, state: Any, config: Any) -> Iterator[tuple[Action, Any]]:
        """Every enabled action instance of ``state``: the table, row by row, in order."""
        for row in self.rows:
            for args in row.arguments(state, config):
                nxt = row.apply(state, *args)
                if nxt is not None:
                    yield Action(row.name, args, row.params), nxt

    def beyond(self, row: Row, config: Any) -> Callable[..., bool] | None:
        """Row ``row``'s out-of-bounds predicate for this config (``Row.beyond``), or None
        when it has none, or when it was written for another action or another constraint
        than this protocol's (a variant that replaced either)."""
        if row.beyond is None or row.beyond_for is None:
            return None
        apply, constraint = row.beyond_for
        if apply is not row.apply or constraint is not self.constraint:
            return None
        return row.beyond(config)

    def receive(self, state: Any, m: Any) -> tuple[str, Any] | None:
        """The one enabled receiving row for message m (raft.tla ``Receive``'s case analysis):
        its name and the next state, or None. For validators, which replay one delivery."""
        for row in self.rows:
            if row.receives:
                nxt = row.apply(state, m)
                if nxt is not None:
                    return row.name, nxt
        return None

    # --- editing (variants and mutants) -----------------------------------------------------

    def replace(self, name: str, *, apply: Callable[..., Any] | None = None,
                enumerate: Enumerate | None = None, params: tuple[Param, ...] | None = None,
                encoder: str | None | type[attrs.NOTHING] = attrs.NOTHING,
                expect: Callable[..., Any] | None = None, edit: str | None = None,
                beyond: Callable[[Any], Callable[..., bool] | None] | None = None) -> Protocol:
        """This protocol with row ``name`` changed. ``expect``: the action the row must hold
        now (a mutant of raft.tla's action refuses a variant that already replaced it). A new
        ``apply`` without a new ``encoder`` leaves the row without one (never the old encoder
        for new code). A new ``apply`` also loses the row's ``beyond`` (``Row.beyond``) unless
        the edit restates one for it here (written for the new action and this protocol's
        constraint)."""
        old = self.row(name)
        if expect is not None and old.apply is not expect:
            who = edit or "this edit"
            raise RaftspecError(f"{who} does not apply to protocol {self.describe()}: its "
                                f"{name} is not {expect.__module__}.{expect.__qualname__}")
        if encoder is attrs.NOTHING:
            encoder = old.encoder if apply is None else None
        # ``exact`` skips what the old action rejects: it goes with a new action or enumerator.
        keep = apply is None and enumerate is None and params is None
        new = attrs.evolve(old, apply=apply or old.apply,
                           enumerate=enumerate or old.enumerate,
                           params=old.params if params is None else params, encoder=encoder,
                           exact=old.exact if keep else None,
                           exact_for=old.exact_for if keep else None)
        if beyond is not None:
            new = attrs.evolve(new, beyond=beyond, beyond_for=(new.apply, self.constraint))
        elif apply is not None:
            new = attrs.evolve(new, beyond=None, beyond_for=None)
        rows = tuple(new if r.name == name else r for r in self.rows)
        return self._edited(rows=rows, edit=edit)

    def add(self, row: Row, *, after: str | None = None, before: str | None = None,
            edit: str | None = None) -> Protocol:
        """This protocol with a new row, after or before a named one (default: last)."""
        rows = list(self.rows)
        if after is not None:
            rows.insert(rows.index(self.row(after)) + 1, row)
        elif before is not None:
            rows.insert(rows.index(self.row(before)), row)
        else:
            rows.append(row)
        return self._edited(rows=tuple(rows), edit=edit)

    def remove(self, name: str, *, edit: str | None = None) -> Protocol:
        self.row(name)
        return self._edited(rows=tuple(r for r in self.rows if r.name != name), edit=edit)

    def with_properties(self, *, invariants: dict[str, Invariant] | None = None,
                        step_properties: dict[str, StepProperty] | None = None,
                        reachable: dict[str, Invariant] | None = None,
                        edit: str | None = None) -> Protocol:
        """This protocol with more (or redefined) properties: invariants, step properties and
        reachability properties (predicates some reachable state must satisfy)."""
        return self._edited(invariants={**self.invariants, **(invariants or {})},
                            step_properties={**self.step_properties, **(step_properties or {})},
                            reachable={**self.reachable, **(reachable or {})},
                            edit=edit)

    def with_field_kind(self, name: str, kind: Kind, *, edit: str | None = None) -> Protocol:
        """This protocol with server field ``name`` of another kind (e.g. a role ``Enum`` with
        one more name); the field keeps its position, so states and classes are unchanged."""
        fields = self.schema.server_fields
        if name not in self.schema.field_names():
            raise RaftspecError(f"protocol {self.name} has no server field {name!r}")
        schema = attrs.evolve(self.schema, server_fields=tuple(
            Field(f.name, kind) if f.name == name else f for f in fields))
        return self._edited(schema=schema, edit=edit)

    def with_global_fields(self, fields: dict[Field, Callable[[Any], Any]], *,
                           edit: str | None = None) -> Protocol:
        """This protocol with more global fields (beside the servers and the bag), each with
        its initial value as a function of the config; initial states get them appended."""
        schema = self.schema.with_global_fields(*fields)
        new_state = state_class(schema.global_fields)
        base_init = self.init
        initial = tuple(fields.values())

        def init(config: Any) -> Iterator[Any]:
            extra = tuple(f(config) for f in initial)
            for state in base_init(config):
                yield new_state(*state, *extra)

        return self._edited(schema=schema, State=new_state, init=init, edit=edit)

    def with_init(self, init: Callable[[Any], Iterable[Any]], *,
                  edit: str | None = None) -> Protocol:
        return self._edited(init=init, edit=edit)

    def with_server_fields(self, fields: dict[Field, Callable[[Any], Any]], *,
                           edit: str | None = None) -> Protocol:
        """This protocol with more per-server fields, each with its initial value as a function
        of the config. Initial states of the base protocol get the new fields appended; actions
        that build servers with ``evolve`` keep them."""
        schema = self.schema.with_server_fields(*fields)
        new_server = server_class(schema.server_fields)
        new_state = state_class(schema.global_fields)
        base_init = self.init
        initial = tuple(fields.values())

        def init(config: Any) -> Iterator[Any]:
            extra = tuple(f(config) for f in initial)
            for state in base_init(config):
                servers = tuple(new_server(*s, *extra) for s in state.servers)
                yield new_state(servers, *state[1:])

        return self._edited(schema=schema, Server=new_server, State=new_state, init=init,
                            edit=edit)

    def with_message_types(self, *types: MessageType, edit: str | None = None) -> Protocol:
        """This protocol with more message types, numbered after the existing ones."""
        return self._edited(schema=self.schema.with_message_types(*types),
                            messages=dict(self.messages), edit=edit)

    def _edited(self, *, edit: str | None, **changes: Any) -> Protocol:
        edits = self.edits + ((edit,) if edit else ())
        changes.setdefault("messages", self.messages)
        return attrs.evolve(self, edits=edits, **changes)

    def describe(self) -> str:
        """The protocol's name with the edits applied, e.g. ``raft.tla + figure2``."""
        return " + ".join((self.name, *self.edits))
