"""A protocol's state layout, declared once: fields with kinds, message types as records.

Everything that used to restate Raft's layout by hand (the classes of server states and messages,
the canonical encoding, symmetry, the JSON form, the table of changed fields) is derived from a
``Schema``. Kinds say what a value *is*, which is all the generic code needs to know:

- ``NUMBER``, ``BOOL``, ``VALUE`` (a client value) and ``Enum`` are the same under any renaming
  of servers;
- ``SERVER`` is a server id (1..N; 0 stands for "none", raft.tla's Nil), ``SERVERS`` a frozenset
  of ids, ``PerServer(kind)`` a tuple indexed by id - 1: symmetry relabels these;
- ``Log(record)`` is a tuple of records (log entries), ``Record`` a named tuple of kinded fields.

States are plain tuples underneath (generated tuple subclasses with named fields and a fast
``evolve``): equal states hash equal in every process whatever ``PYTHONHASHSEED`` is, and the
tuple itself is the plain canonical encoding.
"""

from __future__ import annotations

import keyword
from operator import itemgetter
from typing import Any

import attrs

from raftspec.protocol.errors import RaftspecError


class Kind:
    """What a value is; the subclasses below are the kinds the generic code understands."""

    invariant = True
    """Whether renaming servers leaves values of this kind unchanged."""


@attrs.frozen
class Scalar(Kind):
    name: str

    def __repr__(self) -> str:
        return self.name


NUMBER = Scalar("NUMBER")
"""An integer: a term, an index, a count."""
BOOL = Scalar("BOOL")
"""A boolean."""
VALUE = Scalar("VALUE")
"""A client value (1..V)."""


@attrs.frozen
class Enum(Kind):
    """Small ints with names (a role): stored as ints so states stay hash-stable."""

    names: tuple[str, ...]


@attrs.frozen
class ServerId(Kind):
    """A server id, 1..N; 0 means none (raft.tla's Nil)."""

    invariant = False


SERVER = ServerId()


@attrs.frozen
class ServerSet(Kind):
    """A frozenset of server ids."""

    invariant = False


SERVERS = ServerSet()


@attrs.frozen
class PerServer(Kind):
    """A tuple with one value per server, indexed by id - 1 (nextIndex, matchIndex)."""

    of: Kind = NUMBER
    invariant = False


@attrs.frozen
class Record(Kind):
    """A named record of kinded fields (a log entry); its class is generated (a NamedTuple)."""

    name: str
    fields: tuple[tuple[str, Kind], ...]
    module: str | None = attrs.field(eq=False, repr=False, default=None)
    cls: type = attrs.field(eq=False, repr=False, default=None)

    def __attrs_post_init__(self) -> None:
        if self.cls is None:
            object.__setattr__(self, "cls", record_class(self.name, [f for f, _ in self.fields],
                                                         self.module))

    @property
    def invariant(self) -> bool:  # type: ignore[override]
        return all(kind.invariant for _, kind in self.fields)


@attrs.frozen
class Log(Kind):
    """A tuple of records (a log of entries)."""

    entry: Record

    @property
    def invariant(self) -> bool:  # type: ignore[override]
        return self.entry.invariant


@attrs.frozen
class Field:
    """A named, kinded variable of every server, or of the whole system."""

    name: str
    kind: Kind


@attrs.frozen
class MessageType:
    """A message type: a record whose first field, ``mtype``, is the type's number (its index in
    the schema), so messages of different types never compare equal and sort totally.

    ``short`` is a two- or three-letter name for tables; ``source`` and ``dest`` name the fields
    holding the sender and the receiver (for sequence diagrams and symmetry).
    """

    name: str
    short: str
    fields: tuple[Field, ...]
    source: str = "msource"
    dest: str = "mdest"


@attrs.frozen
class Schema:
    """The whole state layout: per-server fields, global fields (beside the message bag), and the
    message types. ``State`` is (servers, messages, *globals)."""

    server_fields: tuple[Field, ...]
    message_types: tuple[MessageType, ...]
    global_fields: tuple[Field, ...] = ()

    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.server_fields)

    def with_server_fields(self, *fields: Field) -> Schema:
        """This schema with more per-server fields (appended)."""
        return attrs.evolve(self, server_fields=self.server_fields + tuple(fields))

    def with_message_types(self, *types: MessageType) -> Schema:
        """This schema with more message types (numbered after the existing ones)."""
        return attrs.evolve(self, message_types=self.message_types + tuple(types))

    def with_global_fields(self, *fields: Field) -> Schema:
        return attrs.evolve(self, global_fields=self.global_fields + tuple(fields))


def _check_names(kind: str, names: list[str]) -> None:
    for name in names:
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
            raise RaftspecError(f"{kind} field name {name!r} is not a valid identifier")
    if len(set(names)) != len(names):
        raise RaftspecError(f"{kind} fields are not distinct: {names}")


_RESERVED = {"evolve", "update", "send", "discard", "server", "count", "index"}


def record_class(name: str, fields: list[str], module: str | None = None) -> type:
    """A tuple subclass with a named, read-only property per field and a keyword constructor
    (like ``typing.NamedTuple``; ``_make``, ``_replace`` and ``_asdict`` work the same)."""
    from collections import namedtuple

    _check_names(name, fields)
    return namedtuple(name, fields, module=module)


_KEEP = object()
"""The default of every ``evolve`` keyword: keep the field's value."""


def _evolve_source(names: list[str]) -> str:
    """``evolve(self, *, f1=_KEEP, ...)``: one tuple build, no dict of changes (the checker
    calls it a few hundred thousand times a second)."""
    params = ", ".join(f"{name}=_KEEP" for name in names)
    body = ", ".join(f"self[{k}] if {name} is _KEEP else {name}" for k, name in enumerate(names))
    return f"def evolve(self, *, {params}):\n    return _new(cls, ({body},))\n"


def server_class(fields: tuple[Field, ...], module: str | None = None) -> type:
    """The class of one server's variables: a tuple subclass with a property per field and a
    generated ``evolve(**changes)`` (one tuple build; the checker calls it a few hundred
    thousand times a second, so it must not introspect). ``module``: where the class is
    assigned to the name ``Server`` (so that states pickle, for worker processes)."""
    names = [f.name for f in fields]
    _check_names("server", names)
    clash = sorted(_RESERVED & set(names))
    if clash:
        raise RaftspecError(f"server field name(s) {clash} are reserved")
    namespace: dict[str, Any] = {"__slots__": (), "_fields": tuple(names)}
    for k, name in enumerate(names):
        namespace[name] = property(itemgetter(k), doc=f"{name} ({fields[k].kind!r})")
    if module is not None:
        namespace["__module__"] = module
    cls = type("Server", (tuple,), namespace)
    source = _evolve_source(names)
    scope: dict[str, Any] = {"_new": tuple.__new__, "cls": cls, "_KEEP": _KEEP}
    exec(source, scope)  # noqa: S102 (generated from validated identifiers)
    cls.evolve = scope["evolve"]
    cls.evolve.__doc__ = "This server with the given variables changed."

    return _constructible(cls, names)


def state_class(global_fields: tuple[Field, ...], module: str | None = None) -> type:
    """The class of whole-system states: (servers, messages, *globals), a tuple subclass with
    ``server(i)``, ``update(i, server[, messages])``, ``send(m)``, ``discard(m)`` and, for the
    global fields, ``evolve(**changes)``."""
    from raftspec.protocol.bag import bag_discard, bag_send

    names = ["servers", "messages", *(f.name for f in global_fields)]
    _check_names("state", names)
    namespace: dict[str, Any] = {"__slots__": (), "_fields": tuple(names)}
    for k, name in enumerate(names):
        namespace[name] = property(itemgetter(k))
    rest = "".join(f", self[{k}]" for k in range(2, len(names)))
    source = f"""
def update(self, i, server, messages=None):
    servers = self[0]
    return _new(cls, (servers[:i - 1] + (server,) + servers[i:],
                      self[1] if messages is None else messages{rest}))

def send(self, m):
    return _new(cls, (self[0], bag_send(self[1], m){rest}))

def discard(self, m):
    return _new(cls, (self[0], bag_discard(self[1], m){rest}))

def server(self, i):
    return self[0][i - 1]

"""
    source += _evolve_source(names)
    if module is not None:
        namespace["__module__"] = module
    cls = type("State", (tuple,), namespace)
    scope: dict[str, Any] = {"_new": tuple.__new__, "cls": cls, "bag_send": bag_send,
                             "bag_discard": bag_discard, "_KEEP": _KEEP}
    exec(source, scope)  # noqa: S102 (generated from validated identifiers)
    cls.update = scope["update"]
    cls.update.__doc__ = "This state with server i (1..N) replaced, and the bag too if given."
    cls.send = scope["send"]
    cls.send.__doc__ = "raft.tla ``Send``: one more copy of m in the bag."
    cls.discard = scope["discard"]
    cls.discard.__doc__ = "raft.tla ``Discard``: one copy of m fewer."
    cls.server = scope["server"]
    cls.server.__doc__ = "Server i's variables (ids are 1..N)."
    cls.evolve = scope["evolve"]

    return _constructible(cls, names)


def _constructible(cls: type, names: list[str]) -> type:
    """A generated tuple class made constructible by position or field name, printable with its
    field names, and picklable (one helper for servers and states)."""
    kind = cls.__name__

    def make(_cls: type, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            args = args + tuple(kwargs.pop(n) for n in names[len(args):] if n in kwargs)
            if kwargs:
                raise TypeError(f"unknown {kind} field(s): {sorted(kwargs)}")
        if len(args) != len(names):
            raise TypeError(f"a {kind} has the {len(names)} fields {names}, got {len(args)}")
        return tuple.__new__(_cls, args)

    cls.__new__ = make  # type: ignore[assignment]
    cls.__repr__ = lambda self: f"{kind}(" + ", ".join(  # type: ignore[assignment]
        f"{n}={v!r}" for n, v in zip(names, self, strict=True)) + ")"
    cls.__getnewargs__ = lambda self: tuple(self)  # type: ignore[attr-defined]
    return cls


def message_class(t: MessageType, module: str | None = None) -> type:
    """The record class of one message type (its first field is ``mtype``)."""
    names = [f.name for f in t.fields]
    if not names or names[0] != "mtype":
        raise RaftspecError(f"message type {t.name}: the first field must be 'mtype'")
    for needed in (t.source, t.dest):
        if needed not in names:
            raise RaftspecError(f"message type {t.name}: no field {needed!r}")
    return record_class(t.name, names, module)

