"""Counterexamples for people and programs: a table of steps, JSON, and a Mermaid diagram.

A trace is a list of (action, state) pairs from the initial state (action None) to the
violating state, as produced by the explicit engine and by the symbolic one alike.
"""

from __future__ import annotations

from typing import Any

from raftspec.reference.describe import describe_message
from raftspec.reference.state import (
    MESSAGE_TYPE_NAMES,
    NIL,
    AppendEntriesRequest,
    Message,
    Role,
    Server,
    State,
)
from raftspec.reference.successors import Action

Trace = list[tuple[Action | None, State]]

def describe_action(action: Action | None) -> str:
    """An action with its arguments, e.g. ``RequestVote(s1, s2)``, ``ClientRequest(s1, v1)``."""
    if action is None:
        return "Init"
    if action.message is not None:
        return f"{action.name}({describe_message(action.message)})"
    args = [f"s{action.server}"]
    if action.peer:
        args.append(f"s{action.peer}")
    if action.value:
        args.append(f"v{action.value}")
    return f"{action.name}({', '.join(args)})"


def _server_fields(s: Server) -> dict[str, Any]:
    return {
        "current_term": s.current_term,
        "role": Role.NAMES[s.role],
        "voted_for": None if s.voted_for == NIL else s.voted_for,
        "log": [[e.term, e.value] for e in s.log],
        "commit_index": s.commit_index,
        "votes_responded": sorted(s.votes_responded),
        "votes_granted": sorted(s.votes_granted),
        "next_index": list(s.next_index),
        "match_index": list(s.match_index),
    }


def message_json(m: Message) -> dict[str, Any]:
    fields = m._asdict()
    fields["mtype"] = MESSAGE_TYPE_NAMES[m.mtype]
    if isinstance(m, AppendEntriesRequest):
        fields["mentries"] = [[e.term, e.value] for e in m.mentries]
    return fields


def state_json(state: State) -> dict[str, Any]:
    """A state as plain JSON values; server ids are 1..N, ``voted_for`` null is Nil."""
    return {
        "servers": [{"id": i, **_server_fields(s)} for i, s in enumerate(state.servers, 1)],
        "messages": [{**message_json(m), "count": count} for m, count in state.messages],
    }


def action_json(action: Action | None) -> dict[str, Any]:
    if action is None:
        return {"action": "Init", "args": {}}
    args: dict[str, Any] = {}
    if action.message is not None:
        args["message"] = message_json(action.message)
    else:
        args["server"] = action.server
        if action.peer:
            args["peer"] = action.peer
        if action.value:
            args["value"] = action.value
    return {"action": action.name, "args": args}


def counterexample_json(trace: Trace) -> list[dict[str, Any]]:
    """``[{"action": name, "args": {...}, "state": {...}}, ...]``, Init first."""
    return [{**action_json(action), "state": state_json(state)} for action, state in trace]


def changes(before: State, after: State) -> list[str]:
    """The variables a step changed, one ``name: old → new`` line each, and the bag's delta."""
    lines = []
    for i, (s, t) in enumerate(zip(before.servers, after.servers, strict=True), 1):
        if s == t:
            continue
        old, new = _server_fields(s), _server_fields(t)
        for name, value in new.items():
            if old[name] != value:
                lines.append(f"s{i}.{name}: {_short(old[name])} → {_short(value)}")
    old_bag, new_bag = dict(before.messages), dict(after.messages)
    for m in sorted(set(old_bag) | set(new_bag)):
        delta = new_bag.get(m, 0) - old_bag.get(m, 0)
        if delta > 0:
            lines.append(f"+ {describe_message(m)}" + (f" (×{new_bag[m]})" if new_bag[m] > 1
                                                          else ""))
        elif delta < 0:
            lines.append(f"- {describe_message(m)}")
    return lines or ["(no change)"]


def _short(value: Any) -> str:
    if value is None:
        return "Nil"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def initial_lines(state: State) -> list[str]:
    """The initial state in full, one server per line."""
    lines = []
    for i, s in enumerate(state.servers, 1):
        f = _server_fields(s)
        lines.append(f"s{i}: term {f['current_term']}, {f['role']}, votedFor "
                     f"{_short(f['voted_for'])}, log {_short(f['log'])}, "
                     f"commit {f['commit_index']}")
    lines.extend(f"+ {describe_message(m)} (×{c})" for m, c in state.messages)
    return lines


def counterexample_rows(trace: Trace) -> list[tuple[int, str, list[str]]]:
    """(step number, action, changed fields) per step; step 1 is Init with the full state."""
    rows = [(1, "Init", initial_lines(trace[0][1]))]
    for k in range(1, len(trace)):
        action, state = trace[k]
        rows.append((k + 1, describe_action(action), changes(trace[k - 1][1], state)))
    return rows


def counterexample_text(trace: Trace) -> str:
    """The counterexample as a plain numbered table (no colours; safe for logs and CI)."""
    out = []
    for number, action, lines in counterexample_rows(trace):
        out.append(f"{number:>3}  {action}")
        out.extend(f"       {line}" for line in lines)
    return "\n".join(out)


def counterexample_table(trace: Trace) -> Any:
    """The counterexample as a rich Table (for terminals)."""
    from rich.table import Table

    table = Table(title="Counterexample (shortest)", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("action")
    table.add_column("changed")
    for number, action, lines in counterexample_rows(trace):
        table.add_row(str(number), action, "\n".join(lines))
    return table


def counterexample_mermaid(trace: Trace) -> str:
    """A Mermaid sequence diagram: one note per step, an arrow per message sent."""
    n = len(trace[0][1].servers)
    out = ["sequenceDiagram"]
    out.extend(f"    participant s{i}" for i in range(1, n + 1))
    for k in range(1, len(trace)):
        action, state = trace[k]
        before = dict(trace[k - 1][1].messages)
        sent = [m for m, c in state.messages if c > before.get(m, 0)]
        if sent and action.name != "DuplicateMessage":
            out.extend(f"    s{m.msource}->>s{m.mdest}: {k + 1}. {describe_message(m)}"
                       for m in sent)
        else:
            where = f"s{action.server}" if action.server else f"s1,s{n}"
            out.append(f"    Note over {where}: {k + 1}. {describe_action(action)}")
    return "\n".join(out)
