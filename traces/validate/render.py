"""Reference states and messages for the verdict: short text lines and plain JSON."""

from __future__ import annotations

from typing import Any

from raftspec.reference.describe import describe_message as describe
from raftspec.reference.state import NIL, Message, Role, State


def describe_message(m: Message) -> str:
    """e.g. ``AEQ s1→s2 t2 prev=1/1 [t2,t2] commit=1`` (traces record entry terms only)."""
    return describe(m, values=False)


def _terms(log) -> str:
    terms = [e.term for e in log]
    if len(terms) > 12:
        return f"[…{len(terms) - 12} more, " + ",".join(map(str, terms[-12:])) + "]"
    return "[" + ",".join(map(str, terms)) + "]"


def state_lines(state: State) -> list[str]:
    """One line per server, then one per message in flight."""
    lines = []
    for i, s in enumerate(state.servers, 1):
        vote = "-" if s.voted_for == NIL else f"s{s.voted_for}"
        line = (f"s{i}: term {s.current_term} {Role.NAMES[s.role].lower()} vote {vote} "
                f"log {_terms(s.log)} commit {s.commit_index}")
        if s.role == Role.LEADER:
            line += f" match {list(s.match_index)}"
        elif s.role == Role.CANDIDATE:
            line += f" votes {sorted(s.votes_granted)}"
        lines.append(line)
    for m, count in state.messages:
        lines.append("in flight: " + describe_message(m) + (f" ×{count}" if count > 1 else ""))
    return lines


def state_json(state: State) -> dict[str, Any]:
    """Servers (log as the list of entry terms) and messages in flight."""
    return {
        "servers": [{"id": i, "term": s.current_term, "role": Role.NAMES[s.role].lower(),
                     "voted_for": None if s.voted_for == NIL else s.voted_for,
                     "log_terms": [e.term for e in s.log], "commit_index": s.commit_index,
                     "next_index": list(s.next_index), "match_index": list(s.match_index),
                     "votes_granted": sorted(s.votes_granted)}
                    for i, s in enumerate(state.servers, 1)],
        "in_flight": [{"message": describe_message(m), "count": c} for m, c in state.messages],
    }
