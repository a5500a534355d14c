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


def walk(protocol, config, choices):
    """(action, state) pairs of the path choosing successor ``choice % count`` at each state."""
    state = next(iter(protocol.init(config)))
    path = [(None, state)]
    for choice in choices:
        options = list(protocol.steps(state, config))
        if not options:
            break
        action, state = options[choice % len(options)]
        path.append((action, state))
    return path
