"""Server symmetry: one canonical encoding per orbit of states under renaming of server ids,
derived from the protocol's schema.

Renaming relabels every server-kinded value wherever it appears: server-id fields, sets of
servers, per-server vectors (permuted, and relabelled if they hold ids), message fields, and
global fields. The canonical encoding is the least (as a tuple) of the state's encodings under
the server permutations. Trying all N! permutations is wasteful, so each server first gets a
signature that renaming cannot change (its renaming-invariant fields, and the size of each of
its sets of servers); only permutations that list servers in signature order are tried, which
usually leaves one. That is still exact: for any two states of one orbit those permutations
produce the same set of encodings, so the least of them is the same.

The per-server and per-message encoders are generated once per schema as plain Python
functions (the checker calls them for every generated state).
"""

from __future__ import annotations

from itertools import permutations, product
from typing import Any

from raftspec.protocol.schema import (
    Kind,
    Log,
    PerServer,
    Record,
    Schema,
    ServerId,
    ServerSet,
)
from raftspec.protocol.table import MESSAGE


def _mask(ids: frozenset[int], relabel: list[int]) -> int:
    mask = 0
    for k in ids:
        mask |= 1 << relabel[k]
    return mask


def _relabel(kind: Kind, value: Any, relabel: list[int], old_of_new: tuple[int, ...],
             as_value: bool = False) -> Any:
    """A value of the given kind after renaming (the generic path, for kinds that are rare in
    hot code: records and logs holding server ids, vectors of sets): its encoding (sets as bit
    masks, records as plain tuples), or with ``as_value`` the renamed value itself (sets as
    frozensets, records of their own class; for ``Renaming``)."""
    if kind.invariant:
        return value
    if isinstance(kind, ServerId):
        return relabel[value]
    if isinstance(kind, ServerSet):
        return frozenset(relabel[k] for k in value) if as_value else _mask(value, relabel)
    if isinstance(kind, PerServer):
        return tuple(_relabel(kind.of, value[k], relabel, old_of_new, as_value)
                     for k in old_of_new)
    if isinstance(kind, Log):
        return tuple(_relabel(kind.entry, e, relabel, old_of_new, as_value) for e in value)
    if isinstance(kind, Record):
        fields = (_relabel(k, v, relabel, old_of_new, as_value)
                  for (_, k), v in zip(kind.fields, value, strict=True))
        return tuple.__new__(kind.cls, fields) if as_value else tuple(fields)
    raise TypeError(f"no renaming for kind {kind!r}")


def _expr(kind: Kind, var: str, kinds: list[Kind]) -> str:
    """Source of an expression renaming ``var`` (of the given kind)."""
    if kind.invariant:
        return var
    if isinstance(kind, ServerId):
        return f"relabel[{var}]"
    if isinstance(kind, ServerSet):
        return f"_mask({var}, relabel)"
    if isinstance(kind, PerServer) and kind.of.invariant:
        return f"tuple([{var}[k] for k in old_of_new])"
    if isinstance(kind, PerServer) and isinstance(kind.of, ServerId):
        return f"tuple([relabel[{var}[k]] for k in old_of_new])"
    kinds.append(kind)
    return f"_relabel(_kinds[{len(kinds) - 1}], {var}, relabel, old_of_new)"


def _signature_source(schema: Schema) -> str:
    parts = []
    for k, field in enumerate(schema.server_fields):
        if field.kind.invariant:
            parts.append(f"s[{k}]")
        elif isinstance(field.kind, ServerSet):
            parts.append(f"len(s[{k}])")
    return f"lambda s: ({', '.join(parts)},)"


class Canonicalizer:
    """Canonical encodings of a schema's states with servers 1..n."""

    def __init__(self, schema: Schema, n: int) -> None:
        self.n = n
        kinds: list[Kind] = []
        server = ", ".join(_expr(f.kind, f"s[{k}]", kinds)
                           for k, f in enumerate(schema.server_fields))
        messages = []
        for t in schema.message_types:
            fields = ", ".join(_expr(f.kind, f"m[{k}]", kinds) for k, f in enumerate(t.fields))
            messages.append(f"lambda m, relabel, old_of_new: ({fields},)")
        globals_ = "".join(f", _relabel(_kinds_g[{k}], state[{k + 2}], relabel, old_of_new)"
                           for k in range(len(schema.global_fields)))
        source = f"""
def encode_as(state, old_of_new, relabel):
    servers = state[0]
    encoded = []
    for old in old_of_new:
        s = servers[old]
        encoded.append(({server},))
    messages = sorted([(_message[m[0]](m, relabel, old_of_new), count)
                       for m, count in state[1]])
    return (tuple(encoded), tuple(messages){globals_})
"""
        scope: dict[str, Any] = {"_mask": _mask, "_relabel": _relabel, "_kinds": kinds,
                                 "_kinds_g": [f.kind for f in schema.global_fields]}
        scope["_message"] = [eval(m, scope) for m in messages]  # noqa: S307 (generated)
        exec(source, scope)  # noqa: S102 (generated from the schema's field positions)
        self._encode_as = scope["encode_as"]
        self._signature = eval(_signature_source(schema), scope)  # noqa: S307

    def encode(self, state: Any) -> tuple:
        servers = state[0]
        signatures = [self._signature(s) for s in servers]
        order = sorted(range(len(servers)), key=signatures.__getitem__)
        best = None
        relabel = [0] * (self.n + 1)  # relabel[old id] = new id; 0 (none) stays 0
        for old_of_new in self._orders(order, signatures):
            for new, old in enumerate(old_of_new):
                relabel[old + 1] = new + 1
            key = self._encode_as(state, old_of_new, relabel)
            if best is None or key < best:
                best = key
        return best

    def fingerprint(self, state: Any) -> int:
        return hash(self.encode(state))

    @staticmethod
    def _orders(order: list[int], signatures: list[tuple]) -> list[tuple[int, ...]]:
        """Every listing of the servers (0-based old positions) in signature order."""
        groups: list[list[int]] = []
        for k in order:
            if groups and signatures[groups[-1][0]] == signatures[k]:
                groups[-1].append(k)
            else:
                groups.append([k])
        if len(groups) == len(order):
            return [tuple(order)]
        return [
            tuple(k for group in choice for k in group)
            for choice in product(*(permutations(group) for group in groups))
        ]


class Renaming:
    """Server renamings applied to a schema's states and actions themselves (not to their
    encodings, as ``Canonicalizer`` does): the state or action that a renaming of the servers
    makes of a given one, with the same classes, so that it compares equal to what the
    protocol's own steps produce from renamed states.

    A renaming is given as ``old_of_new`` (0-based): the new server ``k + 1`` is the old server
    ``old_of_new[k] + 1``. ``classes`` are the protocol's generated classes: ``server`` and
    ``state``, and ``messages``, one per message type in schema order. Simulation uses it to
    shrink modulo symmetry: a shortcut that reaches a renaming of a later state of a trace
    continues with the rest of the trace renamed the same way.
    """

    def __init__(self, schema: Schema, n: int, *, server: type, state: type,
                 messages: list[type]) -> None:
        self.n = n
        self._schema = schema
        self._server, self._state, self._messages = server, state, messages

    def renamings(self) -> list[tuple[int, ...]]:
        """Every renaming, the identity first (then in lexicographic order)."""
        return list(permutations(range(self.n)))

    def _relabel_ids(self, old_of_new: tuple[int, ...]) -> list[int]:
        relabel = list(range(self.n + 1))  # 0 (none) stays 0
        for new, old in enumerate(old_of_new):
            relabel[old + 1] = new + 1
        return relabel

    def _message(self, m: Any, relabel: list[int], old_of_new: tuple[int, ...]) -> Any:
        fields = self._schema.message_types[m[0]].fields
        return tuple.__new__(self._messages[m[0]], (
            _relabel(f.kind, v, relabel, old_of_new, as_value=True)
            for f, v in zip(fields, m, strict=True)))

    def state(self, state: Any, old_of_new: tuple[int, ...]) -> Any:
        """``state`` with its servers renamed."""
        relabel = self._relabel_ids(old_of_new)
        servers = state[0]
        fields = self._schema.server_fields
        renamed = tuple(
            tuple.__new__(self._server, (_relabel(f.kind, v, relabel, old_of_new, as_value=True)
                                         for f, v in zip(fields, servers[old], strict=True)))
            for old in old_of_new)
        bag = tuple(sorted((self._message(m, relabel, old_of_new), count)
                           for m, count in state[1]))
        globals_ = (_relabel(f.kind, v, relabel, old_of_new, as_value=True)
                    for f, v in zip(self._schema.global_fields, state[2:], strict=True))
        return tuple.__new__(self._state, (renamed, bag, *globals_))

    def action(self, action: Any, old_of_new: tuple[int, ...]) -> Any:
        """An action record (``protocol.Action``: name, args, params with kinds) with its
        server and message arguments renamed; a message argument is a message of the bag."""
        relabel = self._relabel_ids(old_of_new)
        args = []
        for param, arg in zip(action.params, action.args, strict=True):
            if param.kind == MESSAGE:
                args.append(self._message(arg, relabel, old_of_new))
            else:
                args.append(_relabel(param.kind, arg, relabel, old_of_new, as_value=True))
        return action._replace(args=tuple(args))


def renaming_of(protocol: Any, servers: int) -> Renaming:
    """The ``Renaming`` of a protocol's states (``raftspec.protocol.Protocol``: its schema and
    generated classes) with ``servers`` servers."""
    return Renaming(protocol.schema, servers, server=protocol.Server, state=protocol.State,
                    messages=[protocol.messages[t.name] for t in protocol.schema.message_types])
