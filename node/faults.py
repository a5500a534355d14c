"""Fault injection for node-to-node datagrams: the seed's simulated network, for real.

``FaultConfig.parse("loss=0.1,dup=0.05,delay=5-50ms,reorder=0.2")``:
- ``loss``: probability a datagram is dropped;
- ``dup``: probability it is sent twice;
- ``delay=A-Bms`` (or ``delay=Bms``): every datagram waits uniformly A..B ms;
- ``reorder``: probability a datagram is held back an extra 0..max(B, 20) ms so later ones overtake.
Partitions are separate: a set of blocked peer ids (both directions, checked on send and receive).
Only Raft traffic between nodes is subject to faults; client and control traffic is not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from raftspec.node.errors import NodeError

MAX_DELAY_MS = 60_000.0
"""The longest delay ``--faults`` takes: a datagram held longer is as good as lost, and each one
held keeps a timer."""


@dataclass(slots=True)
class FaultConfig:
    loss: float = 0.0
    dup: float = 0.0
    delay_min_ms: float = 0.0
    delay_max_ms: float = 0.0
    reorder: float = 0.0

    @property
    def active(self) -> bool:
        return bool(self.loss or self.dup or self.delay_max_ms or self.reorder)

    @classmethod
    def parse(cls, spec: str | None) -> FaultConfig:
        """Parse ``key=value,...``; raise NodeError naming the bad item."""
        cfg = cls()
        if not spec or spec.strip() in ("", "none"):
            return cfg
        for item in spec.split(","):
            key, sep, value = item.strip().partition("=")
            if not sep:
                raise NodeError(f"--faults: {item!r}: expected key=value "
                                "(loss, dup, delay, reorder)")
            try:
                if key in ("loss", "dup", "reorder"):
                    p = float(value)
                    if not 0.0 <= p <= 1.0:
                        raise ValueError
                    setattr(cfg, key, p)
                elif key == "delay":
                    v = value.removesuffix("ms")
                    lo, _, hi = v.partition("-")
                    cfg.delay_min_ms = float(lo) if hi else 0.0
                    cfg.delay_max_ms = float(hi or lo)
                    if not 0 <= cfg.delay_min_ms <= cfg.delay_max_ms <= MAX_DELAY_MS:
                        raise ValueError   # and nan; inf kept every datagram's timer for ever
                else:
                    raise NodeError(f"--faults: unknown fault {key!r} "
                                    "(known: loss, dup, delay, reorder)")
            except ValueError:
                raise NodeError(f"--faults: {item!r}: probabilities are 0..1, delays are "
                                f"'A-Bms' or 'Bms' with 0 <= A <= B <= {MAX_DELAY_MS:g}"
                                ) from None
        return cfg

    def plan(self, rng: random.Random) -> list[float]:
        """Delays in seconds for each copy to send ([] = dropped)."""
        if rng.random() < self.loss:
            return []
        copies = 2 if rng.random() < self.dup else 1
        out = []
        for _ in range(copies):
            d = rng.uniform(self.delay_min_ms, self.delay_max_ms) if self.delay_max_ms else 0.0
            if rng.random() < self.reorder:
                d += rng.uniform(0, max(self.delay_max_ms, 20.0))
            out.append(d / 1000.0)
        return out

    def describe(self) -> str:
        return (f"loss={self.loss},dup={self.dup},delay={self.delay_min_ms:g}-"
                f"{self.delay_max_ms:g}ms,reorder={self.reorder}")
