"""A protocol and a bounded model of it, seen by the generic engine (``checker.explore``).

Nothing here knows Raft: the protocol (``raftspec.protocol.Protocol``) brings the schema, the
initial states, the action table, the constraint and the properties. States are tuples, so the
plain fingerprint is the tuple's own hash (ints, tuples and frozensets of ints only: the same in
every process); with symmetry it is the hash of the least encoding over server renamings
(``checker.symmetry``).

Successors outside the bounds: most successors of a bounded model break its state constraint,
and TLC counts them as generated all the same. Where a row declares that an instance certainly
leaves the bounds (``Row.beyond``), ``steps`` yields ``OUT_OF_BOUNDS`` in its place instead of
building the state, and ``constraint`` rejects it first: every engine that tests the
constraint before it looks at a successor (they all must: that is what a constraint is) counts
it and goes on, with the same counts and the same step positions. ``beyond="check"`` builds
each such state anyway and raises if the declaration was wrong (tests run it on every variant
and mutant); ``beyond="off"`` always builds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from typing import Protocol as TypingProtocol

from raftspec.checker.symmetry import Canonicalizer
from raftspec.protocol import MESSAGE, Action, Protocol, RaftspecError
from raftspec.protocol.schema import Schema
from raftspec.protocol.table import config_form, only_servers_read


class BoundedModel(TypingProtocol):
    """What the engine needs of a loaded model (``spec.model.Model`` is one)."""

    protocol: Protocol
    config: Any
    symmetry: bool

    @property
    def state_invariants(self) -> tuple[str, ...]: ...
    @property
    def step_properties(self) -> tuple[str, ...]: ...


class _OutOfBounds:
    """The type of ``OUT_OF_BOUNDS``: one object, the same after pickling."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "OUT_OF_BOUNDS"

    def __reduce__(self) -> str:
        return "OUT_OF_BOUNDS"


OUT_OF_BOUNDS = _OutOfBounds()
"""What ``ProtocolSystem.steps`` yields for a successor known to fail the constraint, unbuilt
(``Row.beyond``); ``ProtocolSystem.constraint`` rejects it."""

BEYOND_MODES = ("on", "off", "check")


class ProtocolSystem:
    """init, steps, constraint, fingerprint and properties of one model, for ``explore``.

    ``beyond``: "on" (default) yields ``OUT_OF_BOUNDS`` for the instances a row declares out
    of bounds, unbuilt; "off" builds every successor; "check" builds them too and raises
    ``RaftspecError`` where a declaration is wrong (the instance is disabled, or its state is
    within the constraint), for tests and for checking a protocol's declarations."""

    def __init__(self, model: BoundedModel, *, symmetry: bool | None = None,
                 beyond: str = "on") -> None:
        if beyond not in BEYOND_MODES:
            raise ValueError(f"beyond must be one of {BEYOND_MODES}, not {beyond!r}")
        protocol, config = model.protocol, model.config
        self.model = model
        self.protocol = protocol
        self.config = config
        self.symmetry = model.symmetry if symmetry is None else symmetry
        self.invariants = {
            name: bind_state_property(_lookup(protocol.invariants, name, "invariant"), config)
            for name in model.state_invariants}
        self.step_properties = {
            name: _bind_step(_lookup(protocol.step_properties, name, "step property"), config)
            for name in model.step_properties}
        self.reachable = {name: bind_state_property(_lookup(protocol.reachable, name,
                                                            "reachability property"), config)
                          for name in getattr(model, "reachable", ())}
        within = protocol.constraint(config)
        self.within_bounds = within
        """The protocol's constraint itself (``constraint`` also rejects ``OUT_OF_BOUNDS``)."""
        self.constraint: Callable[[Any], bool] = _rejecting_out_of_bounds(within)
        if self.symmetry:
            self.fingerprint: Callable[[Any], int] = Canonicalizer(
                protocol.schema, config.servers).fingerprint
        else:
            self.fingerprint = hash
        self.steps = _compiled_steps(protocol, config, beyond, within)
        self._beyond = beyond
        self.expand: Callable[[Any], tuple[int, list[tuple[int, Any]]]] | None = (
            _compiled_expand(protocol, config, beyond, within) if beyond != "check" else None)
        """``expand(state) -> (generated, [(position, successor), ...])``: how many successors
        ``steps(state)`` yields (TLC's "generated", the unbuilt ones included), and those
        within the constraint with their position among them, in order. One call per state,
        no Action record, no pair per unbuilt successor and no constraint call by the
        engine: ``explore``'s core loop uses it when it is not None (not in "check" mode,
        which must build and verify every declared successor through ``steps``)."""

    def counting_expand(self) -> tuple[Callable[[Any], tuple[int, list]], list[int],
                                       tuple[str, ...]] | None:
        """``expand`` that also counts what it generates per row, for per-action figures
        (``explore(..., count_actions=True)`` with ``action_name``): a fresh function, the list
        it adds each row's generated successors to (one int per row, zero at first) and the
        rows' names (``action_name`` of their actions) in the list's order. None in "check"
        mode, like ``expand``."""
        if self._beyond == "check":
            return None
        tally = [0] * len(self.protocol.rows)
        expand = _compiled_expand(self.protocol, self.config, self._beyond,
                                  self.within_bounds, tally)
        return expand, tally, tuple(row.name for row in self.protocol.rows)

    def init_states(self) -> Iterable[Any]:
        return self.protocol.init(self.config)

    @staticmethod
    def action_name(action: Action) -> str:
        return action.name


class MessageLinks:
    """The servers a step of a protocol table links, for ``simulate``'s partitions (its
    ``links``): the sender and the receiver (the fields the message type names ``source`` and
    ``dest``) of the message the step receives (its ``message`` argument) and of each message
    it adds to the bag (the state's second field, as ``Schema`` lays states out). A step that
    neither receives nor sends (a timeout, a client request, a configuration entry appended
    by a leader) links nobody, so a partition never holds it back. Built from the schema
    alone, and picklable, for ``simulate``'s worker processes."""

    def __init__(self, schema: Schema) -> None:
        self.ends = tuple(
            ([f.name for f in t.fields].index(t.source), [f.name for f in t.fields].index(t.dest))
            for t in schema.message_types)

    def __call__(self, action: Action, state: Any, nxt: Any) -> tuple[Any, ...]:
        out: list[Any] = []
        message = action.message
        if message is not None:
            source, dest = self.ends[message[0]]
            out += [message[source], message[dest]]
        before = dict(state[1])
        for sent, count in nxt[1]:
            if count > before.get(sent, 0):
                source, dest = self.ends[sent[0]]
                out += [sent[source], sent[dest]]
        return tuple(out)


def bind_state_property(prop: Callable[[Any, Any], bool], config: Any) -> Callable[[Any], bool]:
    """``prop(state, config)`` (an invariant or a reachability property) as a predicate of the
    state, the one the checker calls: the property's own form for this config when it has one
    (``protocol.table.config_form``), else a closure (``partial`` with a keyword argument builds
    a dict on every call, and this runs for every state); remembering (``_remembering``) when
    the protocol declares that it reads only the servers."""
    form = config_form(prop, config)
    if only_servers_read(prop):
        return _remembering(prop, config, form)
    if form is not None:
        return form

    def holds(state: Any) -> bool:
        return prop(state, config)
    return holds


def _remembering(prop: Callable[[Any, Any], bool], config: Any,
                 form: Callable[[Any], bool] | None) -> Callable[[Any], bool]:
    """A servers-only property (``protocol.table.reads_only_servers``) that remembers the last
    servers tuple it held on (keeping a reference, so that its identity cannot be reused) and
    answers True for it without looking again: a step that only sends or consumes a message
    keeps its state's servers tuple, and a parent's successors are checked one after the
    other. Only a success is remembered. ``form``: the property's own config form, if any."""
    last = [None]   # the servers tuple of the last state found to hold

    def holds(state: Any) -> bool:
        servers = state[0]
        if servers is last[0]:
            return True
        if form(state) if form is not None else prop(state, config):
            last[0] = servers
            return True
        return False
    return holds


def _bind_step(prop: Callable[[Any, Any, Any], bool], config: Any) -> Callable[[Any, Any], bool]:
    """``prop(state, nxt, config)`` as a predicate of the step, like ``bind_state_property``."""
    form = config_form(prop, config)
    if form is not None:
        return form

    def holds(state: Any, nxt: Any) -> bool:
        return prop(state, nxt, config)
    return holds


def _lookup(table: dict[str, Any], name: str, what: str) -> Any:
    try:
        return table[name]
    except KeyError:
        raise RaftspecError(f"the protocol has no {what} {name!r}") from None


def _rejecting_out_of_bounds(within: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """The constraint, false for ``OUT_OF_BOUNDS`` too (tested first: an identity test)."""
    out = OUT_OF_BOUNDS

    def constraint(state: Any) -> bool:
        return state is not out and within(state)

    return constraint


def _compiled_steps(protocol: Protocol, config: Any, beyond: str,
                    within: Callable[[Any], bool]) -> Callable[[Any], list[tuple]]:
    """``protocol.steps`` as one function generated for this table: the rows unrolled in order
    (no loop over rows, no generator frame), each row's enumerator and action bound once, the
    arguments passed by position (no ``*args`` for rows of one or two parameters), and one
    Action record per distinct (row, arguments), reused. The engine calls it for every state,
    so it returns a list: it is consumed whole, and a list is cheaper to fill than a generator
    is to resume. ``beyond``: as ``ProtocolSystem``'s; ``within``: the protocol's constraint for
    ``config`` (what "check" verifies against). ``steps_source`` shows the code."""
    source, scope = steps_source(protocol, config, beyond)
    scope["config"] = config
    scope["within"] = within
    exec(source, scope)  # noqa: S102 (generated from the table's row positions only)
    return scope["steps"]


def _compiled_expand(protocol: Protocol, config: Any, beyond: str,
                     within: Callable[[Any], bool],
                     tally: list[int] | None = None) -> Callable[[Any], tuple[int, list]]:
    """``ProtocolSystem.expand`` generated for this table and config (``steps_source`` with
    ``form="expand"`` shows the code); ``beyond`` "on" or "off". With ``tally`` (one int per
    row), the form that adds each row's count to it (``form="count"``)."""
    form = "expand" if tally is None else "count"
    source, scope = steps_source(protocol, config, beyond, form=form)
    scope["config"] = config
    scope["within"] = within
    scope["tally"] = tally
    exec(source, scope)  # noqa: S102 (generated from the table's row positions only)
    return scope["expand"]


def _wrong_beyond(row_name: str, args: tuple, nxt: Any) -> RaftspecError:
    what = "is not enabled" if nxt is None else "leads to a state within the constraint"
    return RaftspecError(f"row {row_name}: its ``beyond`` declares {args!r} out of bounds, but "
                         f"the action {what}")


def steps_source(protocol: Protocol, config: Any = None, beyond: str = "off",
                 form: str = "steps") -> tuple[str, dict[str, Any]]:
    """The source of the generated ``steps(state)`` and the names it reads (``config`` is
    added by the caller). Rows of one parameter key their Action records by the argument
    itself (no tuple built per successor); others by the arguments' tuple. Rows whose only
    parameter is a message of the bag (``MESSAGE``) are not asked when the bag is empty.
    Rows with a valid ``beyond`` predicate for ``config`` (``Protocol.beyond``) ask it first,
    per ``beyond`` mode ("on": yield ``OUT_OF_BOUNDS``; "check": build and verify; "off":
    never ask).

    ``form="expand"``: the source of ``ProtocolSystem.expand`` instead, the same rows in the
    same order: a counter ``n`` stands for the position in ``steps`` ("on": an undeclared
    instance is counted, not built; "check" has no such form), no Action records, and only
    the successors that pass ``within`` (the constraint) are kept, as ``(n, state)``.
    ``form="count"``: ``expand`` that also adds the number of instances of each row to
    ``tally[k]`` (k: the row's position; ``tally`` is added by the caller)."""
    if form not in ("steps", "expand", "count"):
        raise ValueError(f"form must be 'steps', 'expand' or 'count', not {form!r}")
    if form != "steps":
        return _expand_source(protocol, config, beyond, counting=form == "count")
    scope: dict[str, Any] = {"Action": Action, "OUT": OUT_OF_BOUNDS, "wrong": _wrong_beyond}
    lines = ["def steps(state):", "    out = []", "    append = out.append",
             "    messages = state[1]"]
    for k, row in enumerate(protocol.rows):
        scope[f"enumerate_{k}"], scope[f"apply_{k}"] = row.arguments, row.apply
        scope[f"actions_{k}"], scope[f"name_{k}"] = {}, row.name
        scope[f"params_{k}"] = row.params
        test = protocol.beyond(row, config) if beyond != "off" else None
        scope[f"beyond_{k}"] = test
        loop, call, ask = _row_calls(k, row)
        key, args = ("a", "(a,)") if len(row.params) == 1 else ("args", "args")
        record = [
            f"    action = actions_{k}.get({key})",
            "    if action is None:",
            f"        action = actions_{k}[{key}] = Action(name_{k}, {args}, params_{k})",
        ]
        body = [f"for {loop} in enumerate_{k}(state, config):"]
        if test is not None and beyond == "on":
            body += [f"    if {ask}:", "        nxt = OUT", "    else:",
                     f"        nxt = {call}", "        if nxt is None:", "            continue"]
        elif test is not None:  # check
            body += [f"    nxt = {call}",
                     f"    if {ask} and (nxt is None or within(nxt)):",
                     f"        raise wrong(name_{k}, {args}, nxt)",
                     "    if nxt is None:", "        continue"]
        else:
            body += [f"    nxt = {call}", "    if nxt is None:", "        continue"]
        body += record + ["    append((action, nxt))"]
        lines += _row_block(row, body)
    lines.append("    return out")
    return "\n".join(lines) + "\n", scope


def _row_calls(k: int, row: Any) -> tuple[str, str, str]:
    """How the generated code loops over row ``k``'s arguments, applies its action and asks its
    ``beyond`` predicate: one parameter unpacked (no ``*args``), more passed as the tuple."""
    if len(row.params) == 1:
        return "a,", f"apply_{k}(state, a)", f"beyond_{k}(state, a)"
    return "args", f"apply_{k}(state, *args)", f"beyond_{k}(state, *args)"


def _row_block(row: Any, body: list[str]) -> list[str]:
    """A row's lines in the generated function, headed by its name, indented; a row whose only
    parameter is a message of the bag is not asked while the bag is empty."""
    if tuple(p.kind for p in row.params) == (MESSAGE,):
        body = ["if messages:"] + ["    " + line for line in body]
    return [f"    # {row.name}"] + ["    " + line for line in body]


def _expand_source(protocol: Protocol, config: Any, beyond: str,
                   counting: bool = False) -> tuple[str, dict[str, Any]]:
    """``steps_source(..., form="expand")``: the rows unrolled as in ``steps``, each row's
    enumerator, action and ``beyond`` predicate bound as default arguments (local loads, not
    global ones), ``n`` counting every instance ``steps`` would yield; ``counting``: each
    row's share of ``n`` added to ``tally[k]``."""
    if beyond not in ("on", "off"):
        raise ValueError(f"expand is generated for beyond 'on' or 'off', not {beyond!r}")
    scope: dict[str, Any] = {}
    defaults = ["within=within", "config=config"] + (["tally=tally"] if counting else [])
    lines = ["    out = []", "    append = out.append", "    n = 0", "    messages = state[1]"]
    for k, row in enumerate(protocol.rows):
        scope[f"enumerate_{k}"], scope[f"apply_{k}"] = row.arguments, row.apply
        defaults += [f"enumerate_{k}=enumerate_{k}", f"apply_{k}=apply_{k}"]
        test = protocol.beyond(row, config) if beyond == "on" else None
        loop, call, ask = _row_calls(k, row)
        body = [f"for {loop} in enumerate_{k}(state, config):"]
        if test is not None:
            scope[f"beyond_{k}"] = test
            defaults.append(f"beyond_{k}=beyond_{k}")
            body += [f"    if {ask}:", "        n += 1", "        continue"]
        body += [f"    nxt = {call}", "    if nxt is None:", "        continue",
                 "    if within(nxt):", "        append((n, nxt))", "    n += 1"]
        if counting:
            lines.append("    m = n")
        lines += _row_block(row, body)
        if counting:
            lines.append(f"    tally[{k}] += n - m")
    head = "def expand(state, *, " + ", ".join(defaults) + "):"
    lines = [head] + lines + ["    return n, out"]
    return "\n".join(lines) + "\n", scope
