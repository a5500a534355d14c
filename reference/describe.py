"""One-line descriptions of reference values, shared by every report (checker, validator)."""

from __future__ import annotations

from raftspec.reference.state import (
    NIL,
    AppendEntriesRequest,
    AppendEntriesResponse,
    Message,
    RequestVoteRequest,
    RequestVoteResponse,
    Role,
    Server,
)

SHORT_NAMES = {
    RequestVoteRequest: "RVQ",
    RequestVoteResponse: "RVP",
    AppendEntriesRequest: "AEQ",
    AppendEntriesResponse: "AEP",
}


def describe_message(m: Message, *, values: bool = True) -> str:
    """A message in one short line, e.g. ``AEQ s1→s2 t2 prev=1/1 [t2:v1] commit=0``.

    ``values=False`` shows entries by term only (for traces that do not record values).
    """
    head = f"{SHORT_NAMES[type(m)]} s{m.msource}→s{m.mdest} t{m.mterm}"
    if isinstance(m, RequestVoteRequest):
        return f"{head} last={m.mlast_log_index}/{m.mlast_log_term}"
    if isinstance(m, RequestVoteResponse):
        return f"{head} {'granted' if m.mvote_granted else 'denied'}"
    if isinstance(m, AppendEntriesRequest):
        entries = ",".join(f"t{e.term}:v{e.value}" if values else f"t{e.term}"
                           for e in m.mentries)
        return (f"{head} prev={m.mprev_log_index}/{m.mprev_log_term} [{entries}] "
                f"commit={m.mcommit_index}")
    return f"{head} {'ok' if m.msuccess else 'fail'} match={m.mmatch_index}"


def describe_server(i: int, s: Server) -> str:
    """A server's main variables in one line, e.g. ``s1: term 1, Follower, votedFor Nil, log
    [], commit 0``."""
    voted = "Nil" if s.voted_for == NIL else str(s.voted_for)
    log = "[" + ", ".join(f"[{e.term}, {e.value}]" for e in s.log) + "]"
    return (f"s{i}: term {s.current_term}, {Role.NAMES[s.role]}, votedFor {voted}, log {log}, "
            f"commit {s.commit_index}")
