"""Network partitions as part of a model: the network splits the servers into two groups and
heals, at most ``bounds.max_partitions`` times; while split, no message is delivered from one
group to the other (it stays in flight, and may still be duplicated or lost).

This is the setting of the dissertation's discussion of leader election under partitions
(§3.6 "only a server with a majority can be elected", §6.2 and §9.6 on disruptive servers):
"only the majority partition can elect a new leader", "only one leader once the partition
heals".

Edits: global fields ``split`` (whether the network is split now), ``partition`` (one group of
the current or last split, canonically the smaller one, or the one holding server 1 when both
have half; empty before the first split), ``partitions``
(splits so far), ``split_term`` (the highest term of any server at the last split: a leader
of a higher term was elected after it) and ``heal_term`` (the highest term of the minority
group at the last heal if above ``split_term``, else 0; 0 after an even split); actions
``Partition(group)`` (every split, while not split and fewer than ``max_partitions`` so far)
and ``Heal``; every receiving row
(``Row.receives``) is disabled for a message whose sender and receiver are in different groups.
Apply it last when composing (``variant: prevote+checkquorum+partitions``) so that it guards
every receiving row.

Properties:

- ``minority_cannot_commit`` (step): while split, a leader whose group is a minority advances
  its commit index only to an entry that a quorum of servers stores. (The literal "never
  advances" is false in raft.tla: a leader may learn before the split that a quorum stores an
  entry and commit it after; what a minority cannot do is commit an entry a quorum lacks.)
- ``no_disruption`` (step, dissertation §9.6: "While a server is partitioned, it won't be
  able to increment its term ... when it rejoins the cluster, it still won't be able to
  increment its term"): a leader of the majority side of the last split never has its term
  raised, after the heal, to a term a server of the minority side reached while separated
  (above ``split_term``, at most ``heal_term``: the minority's highest term at the heal).
  Terms a server reached before the split (a race between elections, which PreVote does not
  claim to prevent) or after the heal are not attributed to the separation, nor is a term
  relayed through a third server. raft.tla violates it; ``checkquorum`` with ``prevote``
  keeps it.
- reachable: ``majority_elects_while_split`` (while split, the majority group has a leader
  elected after the split), ``healed_with_new_leader`` (healed, and every server in the term
  of the one leader, elected after the split), ``minority_leader_while_split`` (a leader with
  entries cut off from a quorum).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from itertools import combinations
from typing import Any

from raftspec.protocol import BOOL, NUMBER, SERVERS, Field, Param, Protocol, Row
from raftspec.reference.config import Config
from raftspec.reference.state import NO_VOTES, Role, State, is_quorum

GROUP_PARAM = (Param("group", SERVERS),)


def connected(state: Any, a: int, b: int) -> bool:
    """Whether a message from a can reach b now (always, in a protocol without partitions)."""
    if not getattr(state, "split", False):
        return True
    group = state.partition
    return (a in group) == (b in group)


def reachable_from(state: Any, i: int) -> int:
    """How many servers (i included) i can reach now."""
    return sum(connected(state, i, k) for k in range(1, len(state.servers) + 1))


@cache
def splits(n: int) -> tuple[tuple[frozenset[int]], ...]:
    """Every split of servers 1..n in two nonempty groups, each named by one group: the smaller,
    or the one holding server 1 when both have n/2 servers."""
    ids = range(1, n + 1)
    out = []
    for size in range(1, n // 2 + 1):
        for group in combinations(ids, size):
            if 2 * size == n and 1 not in group:
                continue
            out.append((frozenset(group),))
    return tuple(out)


def partition(state: State, group: frozenset[int]) -> State | None:
    """The network splits into ``group`` and the other servers."""
    if state.split:
        return None
    return state.evolve(split=True, partition=group, partitions=state.partitions + 1,
                        split_term=max(s.current_term for s in state.servers))


def heal(state: State) -> State | None:
    """The network heals: every message can be delivered again (``heal_term`` records the
    highest term the minority group reached)."""
    if not state.split:
        return None
    group = state.partition
    reached = max(state.server(k).current_term for k in group)
    minority = 2 * len(group) < len(state.servers)
    # 0 unless the minority reached a new term while split (fewer distinct states).
    return state.evolve(split=False,
                        heal_term=reached if minority and reached > state.split_term else 0)


def possible_splits(state: State, config: Config) -> tuple[tuple[frozenset[int]], ...]:
    if state.split or state.partitions >= config.max_partitions:
        return ()
    return splits(config.servers)


def when_split(state: State, config: Config) -> tuple[tuple[()], ...]:
    return ((),) if state.split else ()


def across_groups_blocked(apply: Callable[..., Any]) -> Callable[..., Any]:
    """A receiving row's action, not enabled for a message across the split."""
    def receive(state: State, m: Any) -> State | None:
        if not connected(state, m.msource, m.mdest):
            return None
        return apply(state, m)
    receive.__name__ = getattr(apply, "__name__", "receive")
    receive.__doc__ = f"{apply.__doc__}\n\nNot across a partition."
    return receive


# --- Properties -------------------------------------------------------------------------------


def minority_cannot_commit(state: State, nxt: State, config: Config) -> bool:
    """While split, a minority-side leader advances its commit index only to an entry a quorum
    of servers stores."""
    if not state.split:
        return True
    n = config.servers
    for i, (s, t) in enumerate(zip(state.servers, nxt.servers, strict=True), 1):
        if (s.role != Role.LEADER or t.role != Role.LEADER or t.commit_index <= s.commit_index
                or is_quorum(range(reachable_from(state, i)), n)):
            continue
        index = t.commit_index
        entry = t.log[index - 1]
        holders = sum(len(k.log) >= index and k.log[index - 1] == entry for k in nxt.servers)
        if not is_quorum(range(holders), n):
            return False
    return True


def no_disruption(state: State, nxt: State, config: Config) -> bool:
    """A leader of the majority side of the last split does not have its term raised by a term
    that a server of the minority side reached while separated (a term above the highest term
    at the split, and at most the minority's highest term at the heal)."""
    if not state.partitions or state.split or not state.heal_term:
        return True
    group = state.partition  # the minority group (heal_term is 0 after an even split)
    for i, (s, t) in enumerate(zip(state.servers, nxt.servers, strict=True), 1):
        if (s.role == Role.LEADER and t.current_term > s.current_term and i not in group
                and state.split_term < t.current_term <= state.heal_term):
            for m, _ in state.messages:
                if m.mdest == i and m.mterm == t.current_term and m.msource in group:
                    return False
    return True


def majority_elects_while_split(state: State, config: Config) -> bool:
    """Reachable: while split, a leader elected after the split leads the majority."""
    return state.split and any(
        s.role == Role.LEADER and s.current_term > state.split_term
        and is_quorum(range(reachable_from(state, i)), config.servers)
        for i, s in enumerate(state.servers, 1))


def minority_leader_while_split(state: State, config: Config) -> bool:
    """Reachable: while split, a leader whose group is a minority, with entries in its log
    (the situation ``minority_cannot_commit`` is about)."""
    return state.split and any(
        s.role == Role.LEADER and s.log
        and not is_quorum(range(reachable_from(state, i)), config.servers)
        for i, s in enumerate(state.servers, 1))


def healed_with_new_leader(state: State, config: Config) -> bool:
    """Reachable: after a split, healed, every server in the term of the one leader, elected
    after the split."""
    if state.split or not state.partitions:
        return False
    leaders = [s.current_term for s in state.servers if s.role == Role.LEADER]
    return (len(leaders) == 1 and leaders[0] > state.split_term
            and all(s.current_term == leaders[0] for s in state.servers))


def edit(protocol: Protocol) -> Protocol:
    p = protocol.with_global_fields({Field("split", BOOL): lambda config: False,
                                     Field("partition", SERVERS): lambda config: NO_VOTES,
                                     Field("partitions", NUMBER): lambda config: 0,
                                     Field("split_term", NUMBER): lambda config: 0,
                                     Field("heal_term", NUMBER): lambda config: 0},
                                    edit="partitions")
    for row in p.rows:
        if row.receives:
            p = p.replace(row.name, apply=across_groups_blocked(row.apply))
    p = p.add(Row("Partition", GROUP_PARAM, possible_splits, partition))
    p = p.add(Row("Heal", (), when_split, heal))
    return p.with_properties(
        step_properties={"minority_cannot_commit": minority_cannot_commit,
                         "no_disruption": no_disruption},
        reachable={"majority_elects_while_split": majority_elects_while_split,
                   "minority_leader_while_split": minority_leader_while_split,
                   "healed_with_new_leader": healed_with_new_leader})
