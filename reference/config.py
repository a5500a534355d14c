"""What the reference needs to know about a bounded model: sizes, bounds, optional actions, and
which variant and mutants (edits of the action table, ``reference.protocol``) it runs.

``spec`` builds this from a YAML model file; the reference never reads files.
"""

from __future__ import annotations

import attrs


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
    """``tla`` (raft.tla itself), a shipped variant's name, a dotted module or a ``.py`` path."""
    max_partitions: int = 1
    """How many times the network may split (variants that model partitions only)."""
    initial_members: int = 0
    """Servers 1..M form the initial configuration; 0: every server (membership variants
    only)."""
