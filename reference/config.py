"""What the reference needs to know about a bounded model: sizes, bounds, optional actions, mutants.

``spec`` builds this from a YAML model file; the reference never reads files.
"""

from __future__ import annotations

import attrs

MUTANTS = {
    "vote_without_log_check": "grant a vote ignoring the up-to-date log rule (paper §5.4.1)",
    "commit_previous_term": "AdvanceCommitIndex counts replicas of entries from earlier terms "
    "(the paper's Figure 8 bug, §5.4.2)",
    "no_term_check_on_append": "accept AppendEntries from a stale term (paper §5.1)",
    "quorum_off_by_one": "count half of the servers as a quorum (2|Q| >= N instead of "
    "2|Q| > N), in elections and in commitment (paper §5.2)",
}
"""Deliberate bugs, by name, each a flag on one action (see ``reference.actions``)."""


VARIANTS = {
    "tla": "raft.tla exactly (the default; reproduces TLC's state counts)",
    "figure2": "the paper's Figure 2 granularity, for validating real traces "
    "(reference/variants/figure2.py)",
}
"""Protocol variants by name; a model selects one with ``variant:``."""


@attrs.frozen
class Config:
    """A bounded instance of the protocol: servers 1..N, values 1..V and TLC-style bounds.

    A successor with a term above ``max_term``, a log longer than ``max_log_length`` or more than
    ``max_messages`` messages in flight (with multiplicity) is outside the model (TLC CONSTRAINT).
    """

    servers: int
    values: int
    max_term: int
    max_log_length: int
    max_messages: int
    restart: bool = True
    duplicate: bool = True
    drop: bool = True
    mutants: frozenset[str] = frozenset()
    variant: str = "tla"
