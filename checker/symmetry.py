"""Server symmetry: one canonical encoding per orbit of states under renaming of server ids.

The canonical encoding is the least (as a tuple) of the state's encodings under the server
permutations. Trying all N! permutations is wasteful, so each server first gets a signature that
renaming cannot change (its term, role, log, commit index and vote counts); only permutations
that list servers in signature order are tried, which usually leaves one. That is still exact:
for any two states of one orbit those permutations produce the same set of encodings, so the
least of them is the same.
"""

from __future__ import annotations

from itertools import permutations, product

from raftspec.reference.state import State


def _mask(ids: frozenset[int], relabel: tuple[int, ...]) -> int:
    mask = 0
    for k in ids:
        mask |= 1 << relabel[k]
    return mask


class Canonicalizer:
    """Canonical encodings of reference states with servers 1..n."""

    def __init__(self, n: int) -> None:
        self.n = n

    def encode(self, state: State) -> tuple:
        servers = state.servers
        signatures = [
            (s.current_term, s.role, s.log, s.commit_index,
             len(s.votes_responded), len(s.votes_granted))
            for s in servers
        ]
        order = sorted(range(len(servers)), key=signatures.__getitem__)
        best = None
        for old_of_new in self._orders(order, signatures):
            key = self._encode_as(state, old_of_new)
            if best is None or key < best:
                best = key
        return best

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

    def _encode_as(self, state: State, old_of_new: tuple[int, ...]) -> tuple:
        """The encoding of the state after renaming old server old_of_new[k]+1 to k+1."""
        relabel = [0] * (self.n + 1)  # relabel[old id] = new id; 0 (Nil) stays 0
        for new, old in enumerate(old_of_new):
            relabel[old + 1] = new + 1
        servers = []
        for old in old_of_new:
            s = state.servers[old]
            servers.append((
                s.current_term, s.role, relabel[s.voted_for], s.log, s.commit_index,
                _mask(s.votes_responded, relabel), _mask(s.votes_granted, relabel),
                tuple(s.next_index[k] for k in old_of_new),
                tuple(s.match_index[k] for k in old_of_new),
            ))
        messages = sorted(
            (m._replace(msource=relabel[m.msource], mdest=relabel[m.mdest]), count)
            for m, count in state.messages
        )
        return tuple(servers), tuple(messages)
