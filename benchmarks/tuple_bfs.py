"""An independent baseline model checker for raft.tla: plain breadth-first search over tuples.

Why this exists: it is a speed baseline. It answers "how fast can a straightforward, well-written
Python BFS over plain tuples explore raft.tla?", so that the repository's checker can be compared
against it. It was written from ../shared/SEMANTICS.md alone (the exact raft.tla semantics, history
variables dropped) and shares no code with reference/, checker/ or spec/.

It reproduces TLC's counts as TLC counts them (SEMANTICS.md, "What TLC counts"):
- generated = 1 + the number of enabled (action, parameters) instances over all explored states,
  self-loops and successors pruned by the state constraint included;
- distinct = states reachable along paths that stay inside the bounds;
- depth = number of BFS levels, the initial state being level 1.

Representation (no classes, no attrs):
- a state is a tuple ``(S_0, ..., S_{n-1}, bag)``;
- a server ``S_i`` is ``(currentTerm, role, votedFor, log, commitIndex, votesResponded,
  votesGranted, nextIndex, matchIndex)`` with role 0/1/2 = Follower/Candidate/Leader, votedFor -1
  for Nil, votesResponded/votesGranted as bit masks over server ids, nextIndex/matchIndex as
  tuples of ints, and the log a tuple of ``(term, value)`` entries;
- messages are tuples whose last two fields are always ``(msource, mdest)``:
  RVQ ``(0, mterm, mlastLogTerm, mlastLogIndex, src, dst)``,
  RVP ``(1, mterm, mvoteGranted, src, dst)``,
  AEQ ``(2, mterm, mprevLogIndex, mprevLogTerm, mentries, mcommitIndex, src, dst)``,
  AEP ``(3, mterm, msuccess, mmatchIndex, src, dst)``;
- the bag is a sorted tuple of messages, repeated as many times as their count (a canonical form
  of the bag: keys are its distinct elements, the constraint's "messages in flight" is its length,
  and a count reaching 0 simply removes the last copy, as in the fb894bd fix).

Invariants (check_invariants=True, the default): every new distinct state is checked against
type_ok (light: shapes and ranges), election_safety, log_matching, leader_completeness and
state_machine_safety; every transition that stays inside the bounds, against leader_append_only.
A violation raises AssertionError naming the property.

Self-loop successors (Restart of a server already reset, AdvanceCommitIndex that changes nothing)
are counted as generated but not pushed through the seen set: they cannot add a state.

The seen set holds ``hash(state)`` (Python's 64-bit tuple hash), i.e. 64-bit fingerprints as TLC
does: on mid3 without invariants it took 22.1 s CPU against 23.9 s when storing the states
themselves (``--seen=states``; 20.3 s against 27.6 s in another run; 2-core machine shared with
other jobs, time.process_time), and only a 64-bit int per state stays in memory once its level is
expanded. The optimistic collision estimate distinct*(generated-distinct)/2^64 is printed.

Run: ``python benchmarks/tuple_bfs.py`` (all conformance models, exits 1 on any mismatch with
TLC), ``--big`` (adds a ~1.5M-state 3-server model, timing only), ``--custom N,V,T,L,M,RDD``
(any bounds), ``--no-invariants``, ``--progress``; ``--help`` for the rest.
"""

from __future__ import annotations

import argparse
import sys
import time
from bisect import insort
from collections.abc import Callable
from pathlib import Path

# TLC's figures, copied from ../shared/conformance/raft-tla.md (TLC 2.20, raft.tla 6ecbdbc,
# history variables removed, symmetry off). Bounds: (servers, values, max_term, max_log_length,
# max_messages, restart, duplicate, drop), as in that table and spec/models/conformance/*.yaml.
CONFORMANCE: dict[str, tuple[tuple[int, int, int, int, int, bool, bool, bool], int, int, int]] = {
    "tiny2": ((2, 1, 2, 1, 1, True, True, True), 1_645, 12_861, 28),
    "msgs2": ((2, 1, 2, 1, 2, True, True, True), 22_231, 210_801, 33),
    "mid2": ((2, 1, 3, 2, 1, True, True, True), 46_207, 367_277, 46),
    "tiny3": ((3, 1, 2, 0, 1, False, False, False), 61_805, 528_679, 40),
}

# A larger model for timing only (no TLC figure to compare with): tiny3 with logs of up to 2
# entries; 1,477,577 distinct states, 11,050,069 generated, depth 57 (measured with this file).
BIG = ("mid3", (3, 1, 2, 2, 1, False, False, False))

FOLLOWER, CANDIDATE, LEADER = 0, 1, 2
NIL = -1
RVQ, RVP, AEQ, AEP = 0, 1, 2, 3


def _send(bag: tuple, m: tuple) -> tuple:
    """The bag with one more copy of m (kept sorted, hence canonical)."""
    lst = list(bag)
    insort(lst, m)
    return tuple(lst)


def _discard(bag: tuple, m: tuple) -> tuple:
    """The bag with one copy of m removed (m is known to be present)."""
    k = bag.index(m)
    return bag[:k] + bag[k + 1:]


def _reply(bag: tuple, resp: tuple, req: tuple) -> tuple:
    """send(resp) then discard(req), in one list pass."""
    lst = list(bag)
    del lst[lst.index(req)]
    insort(lst, resp)
    return tuple(lst)


def _make_expand(
    n: int, values: int, max_term: int, max_log: int, max_msgs: int,
    restart: bool, duplicate: bool, drop: bool,
) -> Callable[[tuple], tuple[int, list]]:
    """Build expand(st) -> (number of enabled instances, successors inside the bounds)."""
    ones = (1,) * n
    zeros = (0,) * n
    servers = range(n)
    quorum_x2 = n  # a set Q is a quorum iff 2*|Q| > n
    send, discard, reply = _send, _discard, _reply

    def expand(st: tuple) -> tuple[int, list]:
        bag = st[-1]
        head = st[:-1]
        full = len(bag) >= max_msgs  # any send would violate the MaxMsgs constraint
        out: list = []
        app = out.append
        g = 0
        for i in servers:
            term, role, voted, log, commit, vresp, vgrant, nexti, matchi = st[i]
            pre = st[:i]
            post = st[i + 1:]
            if restart:  # Restart(i): always enabled; a self-loop adds nothing to explore
                g += 1
                if role or commit or vresp or vgrant or nexti != ones or matchi != zeros:
                    app(pre + ((term, FOLLOWER, voted, log, 0, 0, 0, ones, zeros),) + post)
            if role != LEADER:
                g += 1  # Timeout(i)
                if term < max_term:
                    app(pre + ((term + 1, CANDIDATE, NIL, log, commit, 0, 0, nexti, matchi),)
                        + post)
                if role == CANDIDATE:
                    ll = len(log)
                    for j in servers:  # RequestVote(i, j), j = i allowed
                        if not (vresp >> j) & 1:
                            g += 1
                            if not full:
                                app(head + (send(bag, (RVQ, term, log[-1][0] if ll else 0,
                                                           ll, i, j)),))
                    if 2 * vgrant.bit_count() > quorum_x2:  # BecomeLeader(i)
                        g += 1
                        app(pre + ((term, LEADER, voted, log, commit, vresp, vgrant,
                                    (ll + 1,) * n, zeros),) + post)
            else:
                ll = len(log)
                g += values  # ClientRequest(i, v)
                if ll < max_log:
                    for v in range(values):
                        app(pre + ((term, role, voted, log + ((term, v),), commit, vresp, vgrant,
                                    nexti, matchi),) + post)
                g += 1  # AdvanceCommitIndex(i): only the largest quorum index is tested
                newc = commit
                for k in range(ll, 0, -1):
                    cnt = 1  # i itself
                    for x in servers:
                        if x != i and matchi[x] >= k:
                            cnt += 1
                    if 2 * cnt > quorum_x2:
                        if log[k - 1][0] == term:
                            newc = k
                        break
                if newc != commit:  # otherwise a self-loop: nothing new to explore
                    app(pre + ((term, role, voted, log, newc, vresp, vgrant, nexti, matchi),)
                        + post)
                g += n - 1  # AppendEntries(i, j), j != i
                if not full:
                    for j in servers:
                        if j == i:
                            continue
                        nx = nexti[j]
                        prev_term = log[nx - 2][0] if nx > 1 else 0
                        if nx <= ll:
                            entries = (log[nx - 1],)
                            last = nx
                        else:
                            entries = ()
                            last = ll
                        app(head + (send(bag, (AEQ, term, nx - 1, prev_term, entries,
                                                  commit if commit < last else last, i, j)),))  # noqa: FURB136
        prev = None
        for m in bag:  # each distinct key of the bag
            if m == prev:
                continue
            prev = m
            if duplicate:  # DuplicateMessage(m)
                g += 1
                if not full:
                    app(head + (send(bag, m),))
            if drop:  # DropMessage(m)
                g += 1
                app(head + (discard(bag, m),))
            # Receive(m)
            i = m[-1]
            j = m[-2]
            mtype = m[0]
            mterm = m[1]
            s = st[i]
            term = s[0]
            if mterm > term:  # UpdateTerm: the message stays in the bag
                g += 1
                if mterm <= max_term:
                    app(st[:i] + ((mterm, FOLLOWER, NIL) + s[3:],) + st[i + 1:])
                continue
            if mtype == RVQ:  # HandleRequestVoteRequest
                g += 1
                log = s[3]
                ll = len(log)
                my_last = log[-1][0] if ll else 0
                grant = mterm == term and (m[2] > my_last or (m[2] == my_last and m[3] >= ll)) \
                    and (s[2] == NIL or s[2] == j)
                nb = reply(bag, (RVP, term, 1 if grant else 0, i, j), m)
                if grant and s[2] != j:
                    app(st[:i] + ((term, s[1], j) + s[3:],) + st[i + 1:-1] + (nb,))
                else:
                    app(head + (nb,))
            elif mtype == RVP:
                g += 1
                nb = discard(bag, m)
                if mterm < term:  # DropStaleResponse
                    app(head + (nb,))
                else:  # HandleRequestVoteResponse (any role)
                    vresp = s[5] | (1 << j)
                    vgrant = s[6] | (1 << j) if m[2] else s[6]
                    app(st[:i] + (s[:5] + (vresp, vgrant) + s[7:],) + st[i + 1:-1] + (nb,))
            elif mtype == AEQ:  # HandleAppendEntriesRequest
                role = s[1]
                if mterm < term:  # reject (stale term)
                    g += 1
                    app(head + (reply(bag, (AEP, term, 0, 0, i, j), m),))
                    continue
                if role == LEADER:  # no case applies: no step
                    continue
                g += 1
                if role == CANDIDATE:  # step down, m stays
                    app(st[:i] + ((term, FOLLOWER) + s[2:],) + st[i + 1:])
                    continue
                log = s[3]
                ll = len(log)
                pidx = m[2]
                if not (pidx == 0 or (pidx <= ll and log[pidx - 1][0] == m[3])):  # reject
                    app(head + (reply(bag, (AEP, term, 0, 0, i, j), m),))
                    continue
                entries = m[4]
                if not entries or (ll > pidx and log[pidx][0] == entries[0][0]):
                    # already done: commitIndex overwritten, reply success
                    nb = reply(bag, (AEP, term, 1, pidx + len(entries), i, j), m)
                    app(st[:i] + (s[:4] + (m[5],) + s[5:],) + st[i + 1:-1] + (nb,))
                elif ll > pidx:  # conflict: drop the last entry, m stays
                    app(st[:i] + (s[:3] + (log[:-1],) + s[4:],) + st[i + 1:])
                else:  # append (ll == pidx), m stays
                    if ll < max_log:
                        app(st[:i] + (s[:3] + (log + entries,) + s[4:],) + st[i + 1:])
            else:  # AEP
                g += 1
                nb = discard(bag, m)
                if mterm < term:  # DropStaleResponse
                    app(head + (nb,))
                else:  # HandleAppendEntriesResponse (any role)
                    nexti = s[7]
                    matchi = s[8]
                    if m[2]:
                        mi = m[3]
                        nexti = nexti[:j] + (mi + 1,) + nexti[j + 1:]
                        matchi = matchi[:j] + (mi,) + matchi[j + 1:]
                    else:
                        nx = nexti[j] - 1
                        nexti = nexti[:j] + (nx if nx > 1 else 1,) + nexti[j + 1:]  # noqa: FURB136
                    app(st[:i] + (s[:7] + (nexti, matchi),) + st[i + 1:-1] + (nb,))
        return g, out

    return expand


def _make_check_state(n: int, values: int, max_term: int, max_log: int,
                      max_msgs: int) -> Callable[[tuple], None]:
    """Build check(st): the state invariants the repository checks, in state-based form."""
    full = (1 << n) - 1
    servers = range(n)
    pairs = [(a, b) for a in servers for b in servers if a < b]
    roles = (FOLLOWER, CANDIDATE, LEADER)
    mtypes = (RVQ, RVP, AEQ, AEP)

    # type_ok looks at one server (or one message) at a time, so each distinct server tuple and
    # message is validated once and remembered; states share them massively.
    good_servers: set = set()
    good_messages: set = set()

    def check_server(s: tuple) -> None:
        term, role, voted, log, commit, vresp, vgrant, nexti, matchi = s
        if not (1 <= term <= max_term and role in roles and -1 <= voted < n and commit >= 0
                and 0 <= vresp <= full and (vgrant & ~vresp) == 0 and len(log) <= max_log
                and len(nexti) == n and len(matchi) == n and min(nexti) >= 1
                and min(matchi) >= 0):
            raise AssertionError(f"type_ok: server {s}")
        for t, v in log:
            if not (1 <= t <= term and 0 <= v < values):
                raise AssertionError(f"type_ok: log entry {(t, v)}")
        good_servers.add(s)

    def check_message(m: tuple) -> None:
        if not (m[0] in mtypes and 1 <= m[1] <= max_term and 0 <= m[-1] < n and 0 <= m[-2] < n
                and len(m) == (6, 5, 8, 6)[m[0]]):
            raise AssertionError(f"type_ok: message {m}")
        good_messages.add(m)

    def check(st: tuple) -> None:
        srv = st[:n]
        bag = st[n]
        # type_ok (light): shapes and ranges of every variable.
        if len(st) != n + 1 or len(bag) > max_msgs:
            raise AssertionError("type_ok: state shape or bag size")
        leader_terms = []
        any_log = False
        any_commit = False
        for s in srv:
            if s not in good_servers:
                check_server(s)
            if s[3]:
                any_log = True
                if s[4]:
                    any_commit = True
            if s[1] == LEADER:
                leader_terms.append(s[0])
        for m in bag:
            if m not in good_messages:
                check_message(m)
        # election_safety: no two leaders with the same current term.
        if len(leader_terms) > 1 and len(leader_terms) != len(set(leader_terms)):
            raise AssertionError("election_safety: two leaders in one term")
        if not any_log:
            return
        # log_matching: two logs holding an entry of equal index and term are identical up to
        # it. Checking the largest such index suffices (identical up to it implies up to any
        # smaller one).
        for a, b in pairs:
            la = srv[a][3]
            lb = srv[b][3]
            if not la or not lb or la == lb:
                continue
            k = min(len(la), len(lb))
            while k > 0 and la[k - 1][0] != lb[k - 1][0]:
                k -= 1
            if k and la[:k] != lb[:k]:
                raise AssertionError(f"log_matching: servers {a} and {b}")
        if not any_commit:
            return
        committed = [s[3][:s[4]] for s in srv]  # each server's log up to its commitIndex
        # leader_completeness: what server k committed is a prefix of the log of every leader
        # whose term is higher than k's current term.
        if leader_terms:
            for lead in srv:
                if lead[1] != LEADER:
                    continue
                for k in servers:
                    c = committed[k]
                    if c and lead[0] > srv[k][0] and lead[3][:len(c)] != c:
                        raise AssertionError(
                            f"leader_completeness: server {k}'s committed entries")
        # state_machine_safety: no two committed prefixes differ at a common index.
        for a, b in pairs:
            ca = committed[a]
            cb = committed[b]
            k = min(len(ca), len(cb))
            if ca[:k] != cb[:k]:
                raise AssertionError(f"state_machine_safety: servers {a} and {b}")

    return check


def _check_step(before: tuple, after: tuple, leaders: list[int]) -> None:
    """leader_append_only: a server leader in the same term before and after only appends.

    leaders lists the servers that are leaders in `before` (no other server can break it).
    """
    for i in leaders:
        a = before[i]
        b = after[i]
        if a is not b and b[1] == LEADER and a[0] == b[0] and b[3][:len(a[3])] != a[3]:
            raise AssertionError(f"leader_append_only: server {i}")


def explore(servers: int, values: int, max_term: int, max_log_length: int, max_messages: int,
            restart: bool = True, duplicate: bool = True, drop: bool = True,
            check_invariants: bool = True, store_states: bool = False,
            progress: bool = False) -> tuple[int, int, int]:
    """Breadth-first search of the bounded raft.tla model; returns (distinct, generated, depth).

    Every new distinct state is checked against the state invariants, and every transition that
    stays inside the bounds against leader_append_only, when check_invariants is true.
    store_states=True keeps whole states in the seen set instead of 64-bit hashes; progress=True
    prints one line per BFS level to stderr.
    """
    n = servers
    expand = _make_expand(n, values, max_term, max_log_length, max_messages,
                          restart, duplicate, drop)
    check = _make_check_state(n, values, max_term, max_log_length, max_messages)
    rng = range(n)
    s0 = (1, FOLLOWER, NIL, (), 0, 0, 0, (1,) * n, (0,) * n)
    init = (s0,) * n + ((),)
    if check_invariants:
        check(init)
    seen: set = {init if store_states else hash(init)}
    frontier = [init]
    generated = 1
    depth = 0
    add = seen.add
    while frontier:
        depth += 1
        nxt: list = []
        push = nxt.append
        if check_invariants:
            for st in frontier:
                g, succ = expand(st)
                generated += g
                leaders = [i for i in rng if st[i][1] == LEADER]
                for s in succ:
                    if leaders:
                        _check_step(st, s, leaders)
                    key = s if store_states else hash(s)
                    if key not in seen:
                        add(key)
                        check(s)
                        push(s)
        elif store_states:
            for st in frontier:
                g, succ = expand(st)
                generated += g
                for s in succ:
                    if s not in seen:
                        add(s)
                        push(s)
        else:
            for st in frontier:
                g, succ = expand(st)
                generated += g
                for s in succ:
                    h = hash(s)
                    if h not in seen:
                        add(h)
                        push(s)
        frontier = nxt
        if progress:
            print(f"level {depth}: distinct {len(seen):,} generated {generated:,} "
                  f"next level {len(nxt):,}", file=sys.stderr, flush=True)
    return len(seen), generated, depth


def _yaml_mismatches(models_dir: Path) -> list[str]:
    """Compare CONFORMANCE's bounds with the model files, so the hard-coded table cannot drift."""
    import yaml  # only needed for this cross-check

    problems = []
    for name, (bounds, *_) in CONFORMANCE.items():
        path = models_dir / f"{name}.yaml"
        try:
            doc = yaml.safe_load(path.read_text())
            b = doc["bounds"]
            a = doc["actions"]
            found = (doc["servers"], doc["values"], b["max_term"], b["max_log_length"],
                     b["max_messages"], a["restart"], a["duplicate"], a["drop"])
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            problems.append(f"{path}: cannot read bounds ({exc})")
            continue
        if found != bounds:
            problems.append(f"{path}: bounds {found} differ from this file's {bounds}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Run every conformance model, print a table against TLC's figures, exit 1 on a mismatch."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--big", action="store_true",
                    help=f"also run {BIG[0]} {BIG[1]} (timing only, no TLC figure)")
    ap.add_argument("--no-invariants", action="store_true", help="skip invariant checking")
    ap.add_argument("--seen", choices=("hashes", "states"), default="hashes",
                    help="what the seen set stores (default: 64-bit hashes, like TLC)")
    ap.add_argument("--custom", metavar="N,V,T,L,M,RDD", action="append", default=[],
                    help="also run a model with these bounds (servers, values, max_term, "
                         "max_log_length, max_messages, Restart/Duplicate/Drop as three 0/1 "
                         "digits, e.g. 3,1,2,1,1,000); timing only; repeatable")
    ap.add_argument("--models-dir", type=Path,
                    default=Path(__file__).resolve().parent.parent / "spec/models/conformance",
                    help="the conformance model files, to cross-check the hard-coded bounds "
                         "(default: spec/models/conformance of this repository)")
    ap.add_argument("--progress", action="store_true", help="print one line per BFS level")
    ap.add_argument("models", nargs="*", help="only these conformance models (default: all)")
    args = ap.parse_args(argv)
    names = args.models or ([] if args.custom else list(CONFORMANCE))
    unknown = [x for x in names if x not in CONFORMANCE]
    if unknown:
        print(f"error: unknown model(s) {', '.join(unknown)}; known: {', '.join(CONFORMANCE)}",
              file=sys.stderr)
        return 2
    customs = []
    for spec in args.custom:
        parts = spec.split(",")
        if len(parts) != 6 or not all(p.isdigit() for p in parts[:5]) \
                or len(parts[5]) != 3 or set(parts[5]) - {"0", "1"} or int(parts[0]) < 1:
            print(f"error: --custom {spec!r}: expected N,V,T,L,M,RDD such as 3,1,2,1,1,000",
                  file=sys.stderr)
            return 2
        nums = [int(p) for p in parts[:5]]
        customs.append((f"custom{len(customs) + 1}",
                        (*nums, *(c == "1" for c in parts[5])), None, None, None))
    if not names:
        pass  # no conformance model to cross-check
    elif args.models_dir.is_dir():
        problems = _yaml_mismatches(args.models_dir)
        for msg in problems:
            print(f"error: {msg}", file=sys.stderr)
        if problems:
            return 1
    else:
        print(f"note: {args.models_dir} not found: bounds taken from the conformance doc table "
              "only, not cross-checked with the model files", file=sys.stderr)
    check = not args.no_invariants
    store = args.seen == "states"
    print(f"{'model':<7} {'distinct':>9} {'generated':>10} {'depth':>5} {'seconds':>8} {'cpu s':>7}"
          f"  {'TLC distinct':>12} {'TLC gen':>9} {'TLC depth':>9}  match  collision-p")
    bad = 0
    rows = [(name, *CONFORMANCE[name]) for name in names]
    if args.big:
        rows.append((BIG[0], BIG[1], None, None, None))
    rows += customs
    for name, bounds, t_dist, t_gen, t_depth in rows:
        t0 = time.perf_counter()
        c0 = time.process_time()
        d, g, dp = explore(*bounds, check_invariants=check, store_states=store,
                           progress=args.progress)
        secs = time.perf_counter() - t0
        cpu = time.process_time() - c0
        if t_dist is None:
            ok = "-"
            tlc = f"{'-':>12} {'-':>9} {'-':>9}"
        else:
            ok = "yes" if (d, g, dp) == (t_dist, t_gen, t_depth) else "NO"
            bad += ok == "NO"
            tlc = f"{t_dist:>12,} {t_gen:>9,} {t_depth:>9}"
        print(f"{name:<7} {d:>9,} {g:>10,} {dp:>5} {secs:>8.2f} {cpu:>7.2f}  {tlc}  {ok:<5}  "
              f"{d * (g - d) / 2 ** 64:.1e}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
