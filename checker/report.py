"""Counterexamples for people and programs: a table of steps, JSON, and a Mermaid diagram,
derived from the protocol's schema (and its optional render hints).

A trace is a list of (action, state) pairs from the initial state (action None) to the
violating state, as produced by the explicit engine and by the symbolic one alike.
"""

from __future__ import annotations

import sys
from typing import Any

from raftspec.protocol import MESSAGE, Action, Protocol
from raftspec.protocol.schema import (
    BOOL,
    Enum,
    Kind,
    Log,
    PerServer,
    Record,
    ServerId,
    ServerSet,
)

Trace = list[tuple[Action | None, Any]]


def to_json(kind: Kind, value: Any) -> Any:
    """A value of the given kind as plain JSON: names for enums, null for "no server", sorted
    lists for sets, lists for vectors, logs and records."""
    if isinstance(kind, Enum):
        return kind.names[value]
    if isinstance(kind, ServerId):
        return None if value == 0 else value
    if isinstance(kind, ServerSet):
        return sorted(value)
    if isinstance(kind, PerServer):
        return [to_json(kind.of, v) for v in value]
    if isinstance(kind, Log):
        return [to_json(kind.entry, e) for e in value]
    if isinstance(kind, Record):
        return [to_json(k, v) for (_, k), v in zip(kind.fields, value, strict=True)]
    if kind is BOOL:
        return bool(value)
    return value


def message_json(m: Any, protocol: Protocol) -> dict[str, Any]:
    t = protocol.schema.message_types[m[0]]
    fields = {f.name: to_json(f.kind, v) for f, v in zip(t.fields, m, strict=True)}
    fields["mtype"] = t.name
    return fields


def describe_message(m: Any, protocol: Protocol) -> str:
    """A message in one line: the protocol's render hint, or ``RVQ s1→s2 mterm=2 ...``."""
    if protocol.render.message is not None:
        return protocol.render.message(m)
    t = protocol.schema.message_types[m[0]]
    names = [f.name for f in t.fields]
    rest = " ".join(f"{f.name}={_short(to_json(f.kind, v))}"
                    for f, v in zip(t.fields, m, strict=True)
                    if f.name not in ("mtype", t.source, t.dest))
    head = f"{t.short} s{m[names.index(t.source)]}→s{m[names.index(t.dest)]}"
    return f"{head} {rest}".rstrip()


def server_json(s: Any, protocol: Protocol) -> dict[str, Any]:
    return {f.name: to_json(f.kind, v)
            for f, v in zip(protocol.schema.server_fields, s, strict=True)}


def state_json(state: Any, protocol: Protocol) -> dict[str, Any]:
    """A state as plain JSON values; server ids are 1..N."""
    out = {
        "servers": [{"id": i, **server_json(s, protocol)}
                    for i, s in enumerate(state.servers, 1)],
        "messages": [{**message_json(m, protocol), "count": count}
                     for m, count in state.messages],
    }
    for k, f in enumerate(protocol.schema.global_fields):
        out[f.name] = to_json(f.kind, state[k + 2])
    return out


def describe_action(action: Action | None, protocol: Protocol) -> str:
    """An action with its arguments, e.g. ``RequestVote(s1, s2)``, ``ClientRequest(s1, v1)``,
    ``HandleRequestVoteRequest(RVQ s1→s2 ...)``."""
    if action is None:
        return "Init"
    args = []
    for param, arg in zip(action.params, action.args, strict=True):
        if param.kind is MESSAGE:
            args.append(describe_message(arg, protocol))
        elif isinstance(param.kind, ServerId):
            args.append(f"s{arg}")
        elif param.name == "value":
            args.append(f"v{arg}")
        else:
            args.append(f"{param.name}={_short(to_json(param.kind, arg))}")
    return f"{action.name}({', '.join(args)})"


def action_json(action: Action | None, protocol: Protocol) -> dict[str, Any]:
    if action is None:
        return {"action": "Init", "args": {}}
    args = {}
    for param, arg in zip(action.params, action.args, strict=True):
        args[param.name] = (message_json(arg, protocol) if param.kind is MESSAGE
                            else to_json(param.kind, arg))
    return {"action": action.name, "args": args}


def counterexample_json(trace: Trace, protocol: Protocol) -> list[dict[str, Any]]:
    """``[{"action": name, "args": {...}, "state": {...}}, ...]``, Init first."""
    return [{**action_json(action, protocol), "state": state_json(state, protocol)}
            for action, state in trace]


def changes(before: Any, after: Any, protocol: Protocol) -> list[str]:
    """The variables a step changed, one ``name: old → new`` line each, and the bag's delta."""
    lines = []
    for i, (s, t) in enumerate(zip(before.servers, after.servers, strict=True), 1):
        if s == t:
            continue
        old, new = server_json(s, protocol), server_json(t, protocol)
        for name, value in new.items():
            if old[name] != value:
                lines.append(f"s{i}.{name}: {_short(old[name])} → {_short(value)}")
    for k, f in enumerate(protocol.schema.global_fields):
        if before[k + 2] != after[k + 2]:
            lines.append(f"{f.name}: {_short(to_json(f.kind, before[k + 2]))} → "
                         f"{_short(to_json(f.kind, after[k + 2]))}")
    old_bag, new_bag = dict(before.messages), dict(after.messages)
    for m in sorted(set(old_bag) | set(new_bag)):
        delta = new_bag.get(m, 0) - old_bag.get(m, 0)
        if delta > 0:
            lines.append(f"+ {describe_message(m, protocol)}"
                         + (f" (×{new_bag[m]})" if new_bag[m] > 1 else ""))
        elif delta < 0:
            lines.append(f"- {describe_message(m, protocol)}")
    return lines or ["(no change)"]


def _short(value: Any) -> str:
    if value is None:
        return "Nil"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def initial_lines(state: Any, protocol: Protocol) -> list[str]:
    """The initial state in full, one server per line."""
    lines = []
    for i, s in enumerate(state.servers, 1):
        if protocol.render.server is not None:
            lines.append(protocol.render.server(i, s))
        else:
            lines.append(f"s{i}: " + ", ".join(
                f"{name} {_short(value)}" for name, value in server_json(s, protocol).items()))
    for k, f in enumerate(protocol.schema.global_fields):
        lines.append(f"{f.name}: {_short(to_json(f.kind, state[k + 2]))}")
    lines.extend(f"+ {describe_message(m, protocol)} (×{c})" for m, c in state.messages)
    return lines


def counterexample_rows(trace: Trace, protocol: Protocol) -> list[tuple[int, str, list[str]]]:
    """(step number, action, changed fields) per step; step 1 is Init with the full state."""
    rows = [(1, "Init", initial_lines(trace[0][1], protocol))]
    for k in range(1, len(trace)):
        action, state = trace[k]
        rows.append((k + 1, describe_action(action, protocol),
                     changes(trace[k - 1][1], state, protocol)))
    return rows


def counterexample_text(trace: Trace, protocol: Protocol) -> str:
    """The counterexample as a plain numbered table (no colours; safe for logs and CI)."""
    out = []
    for number, action, lines in counterexample_rows(trace, protocol):
        out.append(f"{number:>3}  {action}")
        out.extend(f"       {line}" for line in lines)
    return "\n".join(out)


def counterexample_table(trace: Trace, protocol: Protocol) -> Any:
    """The counterexample as a rich Table (for terminals)."""
    from rich.table import Table

    table = Table(title="Counterexample (shortest)", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("action")
    table.add_column("changed")
    for number, action, lines in counterexample_rows(trace, protocol):
        table.add_row(str(number), action, "\n".join(lines))
    return table


def print_counterexample(trace: Trace, protocol: Protocol) -> None:
    """Print the counterexample to stdout: the rich table on a terminal, the plain text (safe for
    logs and CI) otherwise."""
    if sys.stdout.isatty():
        from rich.console import Console

        Console().print(counterexample_table(trace, protocol))
    else:
        print(counterexample_text(trace, protocol))


def counterexample_mermaid(trace: Trace, protocol: Protocol) -> str:
    """A Mermaid sequence diagram: one note per step, an arrow per message sent."""
    n = len(trace[0][1].servers)
    types = protocol.schema.message_types
    ends = [([f.name for f in t.fields].index(t.source), [f.name for f in t.fields].index(t.dest))
            for t in types]
    out = ["sequenceDiagram"]
    out.extend(f"    participant s{i}" for i in range(1, n + 1))
    for k in range(1, len(trace)):
        action, state = trace[k]
        before = dict(trace[k - 1][1].messages)
        sent = [m for m, c in state.messages if c > before.get(m, 0)]
        if sent and action.name != "DuplicateMessage":
            for m in sent:
                src, dst = ends[m[0]]
                out.append(f"    s{m[src]}->>s{m[dst]}: {k + 1}. "
                           f"{describe_message(m, protocol)}")
        else:
            server = next((a for p, a in zip(action.params, action.args, strict=True)
                           if isinstance(p.kind, ServerId)), 0)
            where = f"s{server}" if server else f"s1,s{n}"
            out.append(f"    Note over {where}: {k + 1}. {describe_action(action, protocol)}")
    return "\n".join(out)
