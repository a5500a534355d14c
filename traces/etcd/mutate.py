"""Mutants of an etcd-raft trace, to measure what the validator rejects and how soon.

Each operator changes one recorded fact the way a buggy implementation (or a buggy trace point)
would: a term, a commit index, a vote, a reject flag, a receive deleted, two events of one node
swapped. A mutant is only made where it cannot be another real behaviour of etcd-raft:

- never on a bootstrap or restart line (InitState and the BecomeFollower/ApplyConfChange run
  after it): those lines *define* the initial or durable state, which may be anything;
- a receive is deleted only when its node answers it at its next event (the answer then has
  nothing to answer);
- two events of one node are swapped only when they are adjacent in that node's order and their
  logged states differ (swapping two sends of one state is another valid order);
- a mutant identical to the original is skipped.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import attrs

from raftspec.traces.validate.files import open_text

OPERATORS = ("term", "commit", "vote", "reject", "delete_receive", "swap")

RESPONSE_OF = {"ReceiveAppendEntriesRequest": "SendAppendEntriesResponse",
               "ReceiveRequestVoteRequest": "SendRequestVoteResponse"}


@attrs.frozen
class Mutant:
    """A mutated trace: its lines, what was changed, and the first line that differs."""

    operator: str
    line: int              # 1-based line of the (first) changed event in the mutated file
    description: str
    lines: tuple[str, ...]

    def text(self) -> str:
        return "".join(self.lines)


def read_raw(path: str) -> list[str]:
    with open_text(path) as f:
        return f.readlines()


def _event(line: str) -> dict[str, Any] | None:
    start = line.find("{")
    if start < 0:
        return None
    obj = json.loads(line[start:])
    return obj.get("event") if obj.get("tag") == "trace" else None


def _with_event(line: str, event: dict[str, Any]) -> str:
    start = line.find("{")
    obj = json.loads(line[start:])
    obj["event"] = event
    return line[:start] + json.dumps(obj, separators=(",", ":")) + "\n"


def _state(e: dict[str, Any]) -> tuple:
    return (e["state"]["term"], e["state"]["vote"], e["state"]["commit"], e["role"], e["log"],
            json.dumps(e["conf"]))


def sites(lines: list[str]) -> dict[str, list[int]]:
    """For each operator, the 0-based line indexes where it may apply (see the module doc)."""
    events = [_event(line) for line in lines]
    booting: set[str] = set()
    boot_lines: set[int] = set()
    for k, e in enumerate(events):
        if e is None:
            continue
        nid = e["nid"]
        if e["name"] == "InitState":
            booting.add(nid)
        elif not (nid in booting and e["name"] in ("BecomeFollower", "ApplyConfChange")):
            booting.discard(nid)
        if nid in booting:
            boot_lines.add(k)
    nxt: dict[int, int] = {}
    last: dict[str, int] = {}
    for k, e in enumerate(events):
        if e is not None:
            if e["nid"] in last:
                nxt[last[e["nid"]]] = k
            last[e["nid"]] = k
    out: dict[str, list[int]] = {op: [] for op in OPERATORS}
    for k, e in enumerate(events):
        if e is None or k in boot_lines:
            continue
        out["term"].append(k)
        out["commit"].append(k)
        out["vote"].append(k)
        m = e.get("msg")
        if m is not None and m["type"] in ("MsgAppResp", "MsgVoteResp"):
            out["reject"].append(k)
        if e["name"] in RESPONSE_OF and k in nxt:
            after = events[nxt[k]]
            if after["name"] == RESPONSE_OF[e["name"]] and after["msg"]["to"] == m["from"]:
                out["delete_receive"].append(k)
        if k in nxt and nxt[k] not in boot_lines and _state(e) != _state(events[nxt[k]]):
            out["swap"].append(k)
    return out


def mutate(lines: list[str], operator: str, k: int, rng: random.Random) -> Mutant | None:
    """The mutant of ``operator`` at line index ``k`` (None if it would change nothing)."""
    events = [_event(line) for line in lines]
    e = json.loads(json.dumps(events[k]))
    new = list(lines)
    if operator == "term":
        e["state"]["term"] += 1
        what = f"state.term {e['state']['term'] - 1} → {e['state']['term']}"
    elif operator == "commit":
        delta = -1 if e["state"]["commit"] > 0 and rng.random() < 0.5 else 1
        e["state"]["commit"] += delta
        what = f"state.commit {e['state']['commit'] - delta} → {e['state']['commit']}"
    elif operator == "vote":
        ids = sorted(({x for c in e["conf"] for x in c} | {e["nid"], "0"}) - {e["state"]["vote"]})
        old = e["state"]["vote"]
        e["state"]["vote"] = rng.choice(ids)
        what = f"state.vote {old} → {e['state']['vote']}"
    elif operator == "reject":
        e["msg"]["reject"] = not e["msg"]["reject"]
        what = f"msg.reject → {e['msg']['reject']}"
    elif operator == "delete_receive":
        del new[k]
        return Mutant(operator, k + 1, f"deleted {e['name']} of {e['msg']['type']}",
                      tuple(new))
    elif operator == "swap":
        j = next(j for j in range(k + 1, len(events))
                 if events[j] is not None and events[j]["nid"] == e["nid"])
        new[k], new[j] = _with_event(lines[k], events[j]), _with_event(lines[j], events[k])
        return Mutant(operator, k + 1, f"swapped {e['name']} (line {k + 1}) with "
                      f"{events[j]['name']} (line {j + 1}) of node {e['nid']}", tuple(new))
    else:
        raise ValueError(operator)
    if e == events[k]:
        return None
    new[k] = _with_event(lines[k], e)
    return Mutant(operator, k + 1, f"{e['name']} of node {e['nid']}: {what}", tuple(new))


def sample(lines: list[str], per_operator: int, seed: int) -> Iterator[Mutant]:
    """Up to ``per_operator`` mutants of each operator, at sites drawn with a fixed seed
    (``per_operator`` <= 0: every site)."""
    rng = random.Random(seed)
    for operator, where in sites(lines).items():
        chosen = where if per_operator <= 0 or len(where) <= per_operator \
            else sorted(rng.sample(where, per_operator))
        for k in chosen:
            m = mutate(lines, operator, k, rng)
            if m is not None:
                yield m
