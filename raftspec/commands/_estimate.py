"""Up-front size estimates, so that absurd bounds are named before a run eats the machine.

Both figures are crude and say so; they only have to separate the bundled models (explicit
bound at most ~10^9, symbolic size at most ~10^3) from a typo such as ``max_term: 1000000``
(explicit bound ~10^38, symbolic size ~10^7), by orders of magnitude. The memory budget
(``--max-memory``) remains the guard that always holds.
"""

from __future__ import annotations

import math
import sys

from raftspec.protocol.errors import RaftspecError
from raftspec.reference.config import Config

EXPLICIT_WARN = 10
"""``check`` warns when the upper bound on states exceeds 10 to this power (the bundled models:
below 10^9; the decimal logarithm is compared, ``explicit_bound_log10``)."""

SYMBOLIC_LIMIT = 10**6
"""Above this many Z3 terms per unrolled state, ``bmc`` and ``induct`` refuse the model."""


def explicit_bound_log10(c: Config) -> float:
    """The decimal logarithm of an upper bound on the distinct states counting each server's
    own variables only (term, role, vote, log, commit index), the message bag left out:
    (per-server combinations)^N. In logarithms, as the bound itself may have more digits than
    Python turns into a string (``max_term: 1000000`` and long logs: thousands)."""
    entries = c.max_term * c.values   # one log entry's choices
    length = c.max_log_length
    # the logs: sum over k <= length of entries^k = (entries^(length+1) - 1) / (entries - 1)
    if entries <= 1:
        logs = math.log10(length + 1)
    elif (length + 1) * math.log10(entries) < 1_000:   # exactly, while the integer is small
        logs = math.log10((entries ** (length + 1) - 1) // (entries - 1))
    else:
        logs = (length + 1) * math.log10(entries) - math.log10(entries - 1)
    per_server = (math.log10(c.max_term + 1) + math.log10(3) + math.log10(c.servers + 1) + logs
                  + math.log10(length + 1))
    return per_server * c.servers


def symbolic_size(c: Config) -> int:
    """Z3 terms per unrolled state, roughly: the state's variables (per server: term, role,
    vote, commit, 2 per log slot, 4 per peer; 10 fields per message slot) plus the lemmas that
    expand per term, server pair and message slot (spec/lemmas.py)."""
    n = c.servers
    variables = n * (4 + 2 * c.max_log_length + 4 * n) + 10 * c.max_messages
    per_term = c.max_term * n * n * (n + c.max_messages)
    return variables + per_term


def warn_if_large(c: Config, command: str) -> None:
    digits = explicit_bound_log10(c)
    if digits > EXPLICIT_WARN:
        print(f"raftspec {command}: warning: these bounds allow up to ~10^{int(digits)} "
              "states (a crude upper bound from the servers' own variables); the run stops "
              "at --max-memory / --time-limit with exit 3", file=sys.stderr, flush=True)


def refuse_if_symbolic_too_large(c: Config) -> None:
    size = symbolic_size(c)
    if size > SYMBOLIC_LIMIT:
        raise RaftspecError(
            f"the Z3 encoding would need ~{size:,} terms per state (limit {SYMBOLIC_LIMIT:,}: "
            f"max_term {c.max_term}, max_log_length {c.max_log_length}, max_messages "
            f"{c.max_messages}); lower the bounds", field="bounds")
