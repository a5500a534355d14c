"""Driving a protocol by hand in tests: named actions with given arguments, and random walks."""

from __future__ import annotations


class Run:
    """Drive a protocol by hand: named actions with given arguments, every message delivered
    at once (one in flight at a time)."""

    def __init__(self, protocol, config) -> None:
        self.protocol, self.config = protocol, config
        self.state = next(iter(protocol.init(config)))

    def enabled(self, name: str, *args: int) -> bool:
        return any(a.name == name and a.args == args
                   for a, _ in self.protocol.steps(self.state, self.config))

    def do(self, name: str, *args: int) -> None:
        for a, nxt in self.protocol.steps(self.state, self.config):
            if a.name == name and a.args == args:
                self.state = nxt
                return
        raise AssertionError(f"{name}{args} is not enabled")

    def deliver(self) -> str:
        """One step of the (only) message in flight; the step's name."""
        (m, _), *_ = self.state.messages
        for a, nxt in self.protocol.steps(self.state, self.config):
            if a.args == (m,) and a.name not in ("DuplicateMessage", "DropMessage"):
                self.state = nxt
                return a.name
        raise AssertionError(f"no step delivers {m}")

    def flush(self) -> None:
        while self.state.messages:
            (m, _), *_ = self.state.messages
            steps = [nxt for a, nxt in self.protocol.steps(self.state, self.config)
                     if a.args == (m,) and a.name not in ("DuplicateMessage", "DropMessage")]
            assert steps, m
            self.state = steps[0]

    def elect(self, i: int, voters: list[int], timeouts: int = 1) -> None:
        for _ in range(timeouts):
            self.do("Timeout", i)
        for j in voters:
            self.do("RequestVote", i, j)
            self.flush()
        self.do("BecomeLeader", i)

    def holds(self, name: str) -> bool:
        return self.protocol.invariants[name](self.state, self.config)


RARE = frozenset({"Timeout", "Restart", "DuplicateMessage", "DropMessage"})
"""Actions a walk takes at one step in ten (or when nothing else is enabled): with elections
and faults as often as the rest, walks seldom get to commit anything."""


def walk(protocol, config, choices, rare=RARE):
    """(action, state) pairs of a random path: at each state, choice picks an action name
    among the enabled ones (uniformly, so that rare actions such as a configuration change are
    not drowned by message deliveries; ``rare`` ones only at one step in ten), then one of its
    instances."""
    state = next(iter(protocol.init(config)))
    path = [(None, state)]
    for choice in choices:
        by_name: dict[str, list] = {}
        for action, nxt in protocol.steps(state, config):
            by_name.setdefault(action.name, []).append((action, nxt))
        if not by_name:
            break
        names = sorted(by_name)
        if choice % 10:
            names = [n for n in names if n not in rare] or names
        choice //= 10
        options = by_name[names[choice % len(names)]]
        action, state = options[(choice // len(names)) % len(options)]
        path.append((action, state))
    return path
