"""The interface between a trace format and the search: what an event means in reference steps.

The search (``traces.validate.search``) knows nothing about any implementation's log format; an
adapter reads the files, says which events send and receive which message (for the causal
merge), and maps one event to the reference steps it may stand for. Our cluster's NDJSON traces
are ``traces.validate.cluster.ClusterAdapter``, etcd-raft's ``traces.etcd.EtcdAdapter``; a user's
own file passed with ``--adapter`` defines ``make_adapter()`` returning one
(``traces.validate.user_adapter``; docs/validate.md, "Writing an adapter").
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any, Protocol

import attrs

Candidate = Hashable
"""A point of the search: a reference state plus whatever the adapter must remember about the
trace so far (e.g. a reply computed by the reference but not yet seen in the trace)."""


@attrs.define(slots=True)
class Event:
    """One trace line: where it came from, its decoded object, and its causal links."""

    file: str
    line: int
    node: int
    data: dict[str, Any]
    send_id: str | None = None     # this event sends the message with this id
    recv_id: str | None = None     # this event receives the message with this id
    deliveries: int = 0            # for a send: how many receive events name its id
    after: str | None = None       # placed after the send with this id (default: recv_id)

    @property
    def waits_for(self) -> str | None:
        return self.after if self.after is not None else self.recv_id


@attrs.frozen
class Attempt:
    """One way of explaining an event from a candidate: the reference action(s) tried, the
    conditions that failed (empty: the event is explained), and the resulting candidate."""

    action: str
    failed: tuple[str, ...] = ()
    result: Candidate | None = None
    steps: int = 1


class Adapter(Protocol):
    """How one trace format maps onto the reference."""

    name: str

    def read(self, path: str) -> list[Event]:
        """Parse one file; malformed input raises ``RaftspecError(path=, line=, field=)``."""
        ...

    def initial(self, events: Sequence[Event]) -> Iterable[Candidate]:
        """The candidates before the first event (servers derived from the trace)."""
        ...

    def attempts(self, event: Event, candidate: Candidate) -> Iterable[Attempt]:
        """Every way the reference could produce ``event`` from ``candidate``; successful ones
        have no failed conditions. Several successes are all kept (never a guess)."""
        ...

    def silent(self, candidate: Candidate) -> Iterable[tuple[Candidate, int]]:
        """Reference steps the trace does not log, taken between events (successor, steps).
        Empty for a format that logs every step."""
        ...

    def describe(self, candidate: Candidate) -> tuple[list[str], dict[str, Any]]:
        """A candidate for people (lines) and for programs (JSON)."""
        ...
