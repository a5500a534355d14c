"""The reference's state, actions and safety properties as Z3 formulas (SEMANTICS.md, raft.tla).

Why a second encoding: the explicit checker enumerates states one by one; Z3 lets the same model
be checked symbolically (bounded model checking of all interleavings, induction proofs for all
depths). The encoding is trusted only because ``tests/smt`` checks it against the reference,
action instance by action instance and property by property.

Encoding (one set of Z3 constants per state, named ``<tag>_...``). Numbers are signed
bit-vectors just wide enough for every value an in-bounds state leads to (``number_width``), so
they behave exactly as integers there, and Z3 solves by bit-blasting to SAT: on BMC of the mutant
models this is 20x faster than linear integer arithmetic at depth 13, and the gap widens with
depth.

- per server: ``term``, ``role`` (reference ``Role`` ints), ``voted_for`` (0 = Nil), ``log_len``
  and ``max_log_length`` log slots (term and value; slots past ``log_len`` are 0),
  ``commit_index``, ``votes_responded``/``votes_granted`` as Bools per peer, ``next_index`` and
  ``match_index`` numbers per peer;
- the bag as ``max_messages`` *slots* (a bag of at most M messages has at most M distinct keys).
  A slot holds one message record in nine number fields plus a count. Used slots come first,
  strictly sorted lexicographically by record, unused slots are all zero. So every bag has
  exactly one representation and "same successor" is equality of the constants.

A transition is a disjunction of *branches*, one per action instance (Receive split per message
slot, receiving server and handler case). Each branch is a guard over the pre-state and a body
relating pre, post and a shared per-step *effect* (which servers changed, at most one message
sent, at most one discarded); one shared constraint turns the effect into the post bag.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
import z3

from raftspec.reference.config import MUTANTS, Config
from raftspec.reference.errors import RaftspecError
from raftspec.reference.state import (
    APPEND_ENTRIES_REQUEST,
    APPEND_ENTRIES_RESPONSE,
    REQUEST_VOTE_REQUEST,
    REQUEST_VOTE_RESPONSE,
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    Message,
    RequestVoteRequest,
    RequestVoteResponse,
    Role,
    Server,
    State,
)
from raftspec.reference.successors import Action

FOLLOWER, CANDIDATE, LEADER = Role.FOLLOWER, Role.CANDIDATE, Role.LEADER

FIELDS = ("mtype", "mterm", "a", "b", "eterm", "evalue", "mcommit", "src", "dst")
"""A slot's fields. mtype is the reference type + 1 (0 = empty slot). ``a``: RVQ lastLogTerm,
AEQ prevLogTerm, RVP voteGranted / AEP success (0/1). ``b``: RVQ lastLogIndex, AEQ prevLogIndex,
AEP matchIndex. ``eterm``/``evalue``: the AEQ's entry (0/0 = no entry). ``mcommit``: AEQ
commitIndex. Fields a record type does not have are 0."""

RVQ, RVP, AEQ, AEP = (t + 1 for t in (REQUEST_VOTE_REQUEST, REQUEST_VOTE_RESPONSE,
                                      APPEND_ENTRIES_REQUEST, APPEND_ENTRIES_RESPONSE))
_UNUSED_FIELDS = {
    RVQ: ("eterm", "evalue", "mcommit"),
    RVP: ("b", "eterm", "evalue", "mcommit"),
    AEQ: (),
    AEP: ("eterm", "evalue", "mcommit"),
}

SUPPORTED_MUTANTS = frozenset(
    {"vote_without_log_check", "commit_previous_term", "no_term_check_on_append",
     "quorum_off_by_one"}
)
_CONFIG_FIELDS = frozenset(
    {"servers", "values", "max_term", "max_log_length", "max_messages", "restart", "duplicate",
     "drop", "mutants"}
)

Num = z3.BitVecRef
"""A number in the encoding (see ``number_width``)."""

Msg = tuple  # nine field expressions (ints or z3 terms), in FIELDS order


def same_record(a: Sequence, b: Sequence) -> z3.BoolRef:
    """Two records are one bag key: equal field by field."""
    return z3.And([x == y for x, y in zip(a, b, strict=True)])


def lex_less(a: Sequence, b: Sequence) -> z3.BoolRef:
    """Record a sorts strictly before b (lexicographic on FIELDS): the bag's canonical order."""
    out: z3.BoolRef = z3.BoolVal(False)
    for x, y in reversed(list(zip(a, b, strict=True))):
        out = z3.Or(x < y, z3.And(x == y, out))
    return out


def _ite_sum(terms: Sequence[Num]) -> Num:
    return z3.Sum(*terms) if len(terms) > 1 else terms[0]


def _min(a: Num, b: Num) -> Num:
    return z3.If(a < b, a, b)


@attrs.frozen
class ServerVars:
    """One server's Z3 constants (raft.tla serverVars, candidateVars, leaderVars, logVars)."""

    term: Num
    role: Num
    voted_for: Num
    log_len: Num
    log_term: tuple[Num, ...]
    log_value: tuple[Num, ...]
    commit_index: Num
    votes_responded: tuple[z3.BoolRef, ...]
    votes_granted: tuple[z3.BoolRef, ...]
    next_index: tuple[Num, ...]
    match_index: tuple[Num, ...]

    def values(self) -> list[z3.ExprRef]:
        return [self.term, self.role, self.voted_for, self.log_len, *self.log_term,
                *self.log_value, self.commit_index, *self.votes_responded, *self.votes_granted,
                *self.next_index, *self.match_index]


@attrs.frozen
class Slot:
    """One message slot of the bag: a record and its count (0 = empty)."""

    fields: tuple[Num, ...]
    count: Num

    def field(self, name: str) -> Num:
        return self.fields[FIELDS.index(name)]


@attrs.frozen
class StateVars:
    """A whole state's constants: servers (index i-1 for server i) and message slots."""

    tag: str
    servers: tuple[ServerVars, ...]
    slots: tuple[Slot, ...]

    def server(self, i: int) -> ServerVars:
        return self.servers[i - 1]

    def values(self) -> list[z3.ExprRef]:
        out: list[z3.ExprRef] = []
        for s in self.servers:
            out += s.values()
        for slot in self.slots:
            out += [*slot.fields, slot.count]
        return out


@attrs.frozen
class Effect:
    """What one step does besides the acting server: send at most one message, discard at most
    one (raft.tla Send, Discard, Reply), and which servers' variables may change."""

    touched: tuple[z3.BoolRef, ...]
    send_on: z3.BoolRef
    send: tuple[Num, ...]
    discard_on: z3.BoolRef
    discard: tuple[Num, ...]


@attrs.frozen
class Branch:
    """One action instance (or one handler case of a Receive instance).

    ``name`` is the reference's Action name; ``server``/``peer``/``value`` are its parameters
    where they are concrete; ``slot`` is the message slot of Receive/Duplicate/Drop.
    ``guard`` mentions only the pre-state; ``body`` relates pre, post and effect.
    """

    name: str
    case: str
    server: int = 0
    peer: int = 0
    value: int = 0
    slot: int = -1
    guard: z3.BoolRef = z3.BoolVal(True)
    body: z3.BoolRef = z3.BoolVal(True)


@attrs.frozen
class Step:
    """The transition pre -> post: ``formula`` plus one selector Bool per branch."""

    pre: StateVars
    post: StateVars
    effect: Effect
    branches: tuple[Branch, ...]
    selectors: tuple[z3.BoolRef, ...]
    formula: z3.BoolRef


def check_supported(config: Config) -> None:
    """Refuse, with a clear message, any model feature this encoding does not cover.

    Never a silent wrong answer: a new Config field or mutant has to be encoded here first.
    """
    for field in attrs.fields(Config):
        if field.name not in _CONFIG_FIELDS and getattr(config, field.name) != field.default:
            raise RaftspecError(
                f"the Z3 encoding does not support '{field.name}' yet; use 'raftspec check'",
                field=field.name,
            )
    unknown = set(config.mutants) - SUPPORTED_MUTANTS
    if unknown:
        raise RaftspecError(
            f"the Z3 encoding does not support mutant(s) {sorted(unknown)} yet "
            f"(supported: {sorted(SUPPORTED_MUTANTS)}; known: {sorted(MUTANTS)})",
            field="mutants",
        )
    if config.max_messages < 0 or config.max_log_length < 0 or config.max_term < 1:
        raise RaftspecError("bounds must be max_term >= 1, others >= 0", field="bounds")


def number_width(config: Config) -> int:
    """Bits per number: every value the encoding computes from an in-bounds state (a term one
    past max_term, an index one past the log, 2 * servers in Quorum, a count one past
    max_messages and sums of counts), plus a sign bit, so that signed bit-vector arithmetic
    agrees with integer arithmetic on every state the checks consider."""
    m = config.max_messages
    high = max(2 * config.servers + 1, config.max_term + 2, config.max_log_length + 2,
               config.values + 1, AEP + 1, (m + 2) * (m + 1))
    return high.bit_length() + 1


class Encoding:
    """The Z3 encoding of one bounded model (a reference ``Config``)."""

    def __init__(self, config: Config) -> None:
        check_supported(config)
        self.config = config
        self.n = config.servers
        self.v = config.values
        self.max_term = config.max_term
        self.max_log = config.max_log_length
        self.max_msgs = config.max_messages
        self.ids = range(1, self.n + 1)
        self.check_log = "vote_without_log_check" not in config.mutants
        self.current_term_only = "commit_previous_term" not in config.mutants
        self.check_term = "no_term_check_on_append" not in config.mutants
        self.strict_quorum = "quorum_off_by_one" not in config.mutants
        self.width = number_width(config)

    def num(self, name: str) -> Num:
        """A fresh number constant (a signed bit-vector of ``width`` bits)."""
        return z3.BitVec(name, self.width)

    def lit(self, k: int) -> Num:
        return z3.BitVecVal(k, self.width)

    def b2i(self, b: z3.BoolRef) -> Num:
        return z3.If(b, self.lit(1), self.lit(0))

    def solver(self) -> z3.Solver:
        """An incremental solver for this encoding's formulas (bit-blasting to SAT)."""
        return z3.SolverFor("QF_BV")

    # --- variables ------------------------------------------------------------------------

    def state_vars(self, tag: str) -> StateVars:
        """Fresh constants for one state."""
        n, L = self.n, self.max_log

        def nums(name: str, count: int) -> tuple[Num, ...]:
            return tuple(self.num(f"{name}_{k}") for k in range(1, count + 1))

        def bools(name: str, count: int) -> tuple[z3.BoolRef, ...]:
            return tuple(z3.Bool(f"{name}_{k}") for k in range(1, count + 1))

        servers = []
        for i in self.ids:
            p = f"{tag}_s{i}"
            servers.append(ServerVars(
                term=self.num(f"{p}_term"), role=self.num(f"{p}_role"),
                voted_for=self.num(f"{p}_voted"), log_len=self.num(f"{p}_loglen"),
                log_term=nums(f"{p}_lt", L), log_value=nums(f"{p}_lv", L),
                commit_index=self.num(f"{p}_commit"),
                votes_responded=bools(f"{p}_resp", n), votes_granted=bools(f"{p}_gran", n),
                next_index=nums(f"{p}_next", n), match_index=nums(f"{p}_match", n),
            ))
        slots = tuple(
            Slot(tuple(self.num(f"{tag}_m{k}_{f}") for f in FIELDS), self.num(f"{tag}_m{k}_count"))
            for k in range(self.max_msgs)
        )
        return StateVars(tag, tuple(servers), slots)

    def effect_vars(self, tag: str) -> Effect:
        return Effect(
            touched=tuple(z3.Bool(f"{tag}_touch_{i}") for i in self.ids),
            send_on=z3.Bool(f"{tag}_send"),
            send=tuple(self.num(f"{tag}_send_{f}") for f in FIELDS),
            discard_on=z3.Bool(f"{tag}_disc"),
            discard=tuple(self.num(f"{tag}_disc_{f}") for f in FIELDS),
        )

    # --- state constraints ------------------------------------------------------------------

    def canonical(self, s: StateVars) -> z3.BoolRef:
        """The bag's one representation: used slots first, strictly sorted, unused slots all
        zero. (No range constraints: a transition must never be cut off by the encoding.)"""
        cs = []
        for k, slot in enumerate(s.slots):
            used = slot.count > 0
            cs.append(slot.count >= 0)
            cs.append(z3.Implies(z3.Not(used), z3.And([f == 0 for f in slot.fields])))
            cs.append(z3.Implies(used, z3.And(slot.fields[0] >= 1, slot.fields[0] <= 4)))
            if k + 1 < len(s.slots):
                nxt = s.slots[k + 1]
                cs.append(z3.Implies(nxt.count > 0, z3.And(
                    used, lex_less(slot.fields, nxt.fields))))
        return z3.And(cs)

    def domain(self, s: StateVars) -> z3.BoolRef:
        """Every reachable in-bounds state lies in this box (proved inductive in tests); the
        induction checks assume it of the pre-state and prove it of the post-state."""
        L, n = self.max_log, self.n
        cs = [self.canonical(s)]
        for sv in s.servers:
            cs += [sv.term >= 1, sv.role >= 0, sv.role <= 2, sv.voted_for >= 0,
                   sv.voted_for <= n, sv.log_len >= 0, sv.log_len <= L,
                   sv.commit_index >= 0, sv.commit_index <= L]
            for k in range(1, L + 1):
                t, v = sv.log_term[k - 1], sv.log_value[k - 1]
                cs.append(z3.If(k <= sv.log_len,
                                z3.And(t >= 1, t <= self.max_term, v >= 1, v <= self.v),
                                z3.And(t == 0, v == 0)))
            for j in range(n):
                cs += [sv.next_index[j] >= 1, sv.next_index[j] <= L + 1,
                       sv.match_index[j] >= 0, sv.match_index[j] <= L,
                       z3.Implies(sv.votes_granted[j], sv.votes_responded[j])]
        for slot in s.slots:
            cs.append(z3.Implies(slot.count > 0, self.message_in_domain(slot.fields)))
        return z3.And(cs)

    def message_in_domain(self, m: Msg) -> z3.BoolRef:
        """A well-formed record of one of the four types, every field within the bounds."""
        mtype, mterm, a, b, eterm, evalue, mcommit, src, dst = m
        T, L = self.max_term, self.max_log
        common = z3.And(mterm >= 1, mterm <= T, src >= 1, src <= self.n, dst >= 1,
                        dst <= self.n)

        def zero(t: int) -> z3.BoolRef:
            return z3.And([m[FIELDS.index(f)] == 0 for f in _UNUSED_FIELDS[t]])

        return z3.And(common, z3.Or(
            z3.And(mtype == RVQ, zero(RVQ), a >= 0, a <= T, b >= 0, b <= L),
            z3.And(mtype == RVP, zero(RVP), a >= 0, a <= 1),
            z3.And(mtype == AEQ, a >= 0, a <= T, b >= 0, b <= L, mcommit >= 0, mcommit <= L,
                   z3.If(eterm == 0, evalue == 0,
                         z3.And(eterm >= 1, eterm <= T, evalue >= 1, evalue <= self.v))),
            z3.And(mtype == AEP, zero(AEP), a >= 0, a <= 1, b >= 0, b <= L),
        ))

    def bounds(self, s: StateVars) -> z3.BoolRef:
        """The model's state constraint (TLC CONSTRAINT; reference ``within_bounds``)."""
        cs = [z3.And(sv.term <= self.max_term, sv.log_len <= self.max_log) for sv in s.servers]
        if s.slots:
            cs.append(_ite_sum([slot.count for slot in s.slots]) <= self.max_msgs)
        return z3.And(cs)

    def init(self, s: StateVars) -> z3.BoolRef:
        """raft.tla ``Init``."""
        cs = []
        for sv in s.servers:
            cs += [sv.term == 1, sv.role == FOLLOWER, sv.voted_for == 0, sv.log_len == 0,
                   sv.commit_index == 0]
            cs += [x == 0 for x in (*sv.log_term, *sv.log_value, *sv.match_index)]
            cs += [x == 1 for x in sv.next_index]
            cs += [z3.Not(x) for x in (*sv.votes_responded, *sv.votes_granted)]
        for slot in s.slots:
            cs += [slot.count == 0, *[f == 0 for f in slot.fields]]
        return z3.And(cs)

    # --- log helpers --------------------------------------------------------------------------

    def term_at(self, sv: ServerVars, index: Num) -> Num:
        """log[index].term for a symbolic index (0 outside 1..max_log_length)."""
        out: Num = self.lit(0)
        for k in range(self.max_log, 0, -1):
            out = z3.If(index == k, sv.log_term[k - 1], out)
        return out

    def value_at(self, sv: ServerVars, index: Num) -> Num:
        out: Num = self.lit(0)
        for k in range(self.max_log, 0, -1):
            out = z3.If(index == k, sv.log_value[k - 1], out)
        return out

    def last_term(self, sv: ServerVars) -> Num:
        """raft.tla ``LastTerm``."""
        return self.term_at(sv, sv.log_len)

    def is_quorum(self, members: Sequence[z3.BoolRef]) -> z3.BoolRef:
        return self._quorum_size(_ite_sum([self.b2i(b) for b in members]))

    def _quorum_size(self, size: Num) -> z3.BoolRef:
        """2*|Q| > N (raft.tla ``Quorum``); >= N with the ``quorum_off_by_one`` mutant."""
        return 2 * size > self.n if self.strict_quorum else 2 * size >= self.n

    # --- the transition -------------------------------------------------------------------------

    def _server_is(self, pre: ServerVars, post: ServerVars, **changes) -> z3.BoolRef:
        """post equals pre except for the given variables (lists for per-slot/per-peer ones)."""
        cs = []
        for name in attrs.fields_dict(ServerVars):
            old, new = getattr(pre, name), getattr(post, name)
            val = changes.get(name, old)
            if isinstance(old, tuple):
                cs += [a == b for a, b in zip(new, val, strict=True)]
            else:
                cs.append(new == val)
        return z3.And(cs)

    def _effect(self, e: Effect, touch: int = 0, send: Msg | None = None,
                discard: Msg | None = None) -> z3.BoolRef:
        cs = [t if i == touch else z3.Not(t) for i, t in zip(self.ids, e.touched, strict=True)]
        if send is None:
            cs.append(z3.Not(e.send_on))
            cs += [f == 0 for f in e.send]
        else:
            cs.append(e.send_on)
            cs += [f == v for f, v in zip(e.send, send, strict=True)]
        if discard is None:
            cs.append(z3.Not(e.discard_on))
            cs += [f == 0 for f in e.discard]
        else:
            cs.append(e.discard_on)
            cs += [f == v for f, v in zip(e.discard, discard, strict=True)]
        return z3.And(cs)

    def frame(self, pre: StateVars, post: StateVars, e: Effect) -> z3.BoolRef:
        """Shared by all branches: untouched servers keep their variables, and the post bag is
        the pre bag plus the sent message minus the discarded one (raft.tla Send/Discard with
        the fb894bd fix: a key whose count reaches 0 leaves the bag)."""
        cs = [z3.Implies(z3.Not(t), self._server_is(a, b))
              for t, a, b in zip(e.touched, pre.servers, post.servers, strict=True)]
        if not pre.slots:
            cs.append(z3.Not(e.send_on))  # max_messages = 0: any send leaves the bounds
            return z3.And(cs)
        skey = e.send

        def count(slots: Sequence[Slot], r: Msg) -> Num:
            return _ite_sum([z3.If(same_record(s.fields, r), s.count, 0) for s in slots])

        def delta(r: Msg) -> Num:
            return (self.b2i(z3.And(e.send_on, same_record(skey, r)))
                    - self.b2i(z3.And(e.discard_on, same_record(e.discard, r))))

        for slot in pre.slots:
            cs.append(z3.Implies(slot.count > 0,
                                 count(post.slots, slot.fields) == slot.count + delta(slot.fields)))
        cs.append(z3.Implies(e.send_on, count(post.slots, skey)
                             == count(pre.slots, skey) + delta(skey)))
        for slot in post.slots:
            cs.append(z3.Implies(slot.count > 0, z3.Or(
                [z3.And(s.count > 0, same_record(slot.fields, s.fields)) for s in pre.slots]
                + [z3.And(e.send_on, same_record(slot.fields, skey))])))
        # Implied by the above and the canonical form; stated so the solver need not search.
        cs.append(z3.Implies(z3.And(z3.Not(e.send_on), z3.Not(e.discard_on)), z3.And(
            [z3.And(a.count == b.count, same_record(a.fields, b.fields))
             for a, b in zip(pre.slots, post.slots, strict=True)])))
        # Discard only ever removes a present message (Receive, Drop, Reply): counts stay >= 0.
        return z3.And(cs)

    def branches(self, pre: StateVars, post: StateVars, e: Effect) -> list[Branch]:
        """Every action instance of raft.tla ``Next`` (reference ``steps``), as branches."""
        out: list[Branch] = []
        cfg = self.config
        for i in self.ids:
            p, q = pre.server(i), post.server(i)
            if cfg.restart:
                out.append(Branch("Restart", "Restart", i, body=z3.And(
                    self._effect(e, touch=i),
                    self._server_is(p, q, role=FOLLOWER,
                                    votes_responded=[False] * self.n,
                                    votes_granted=[False] * self.n,
                                    next_index=[1] * self.n, match_index=[0] * self.n,
                                    commit_index=0))))
            out.append(Branch("Timeout", "Timeout", i,
                              guard=z3.Or(p.role == FOLLOWER, p.role == CANDIDATE),
                              body=z3.And(self._effect(e, touch=i), self._server_is(
                                  p, q, role=CANDIDATE, term=p.term + 1, voted_for=0,
                                  votes_responded=[False] * self.n,
                                  votes_granted=[False] * self.n))))
            for j in self.ids:
                rvq = (RVQ, p.term, self.last_term(p), p.log_len, 0, 0, 0, i, j)
                out.append(Branch("RequestVote", "RequestVote", i, j,
                                  guard=z3.And(p.role == CANDIDATE,
                                               z3.Not(p.votes_responded[j - 1])),
                                  body=self._effect(e, send=rvq)))
            out.append(Branch("BecomeLeader", "BecomeLeader", i,
                              guard=z3.And(p.role == CANDIDATE, self.is_quorum(p.votes_granted)),
                              body=z3.And(self._effect(e, touch=i), self._server_is(
                                  p, q, role=LEADER, next_index=[p.log_len + 1] * self.n,
                                  match_index=[0] * self.n))))
            for v in range(1, self.v + 1):
                new_len = p.log_len + 1
                out.append(Branch("ClientRequest", "ClientRequest", i, value=v,
                                  guard=p.role == LEADER,
                                  body=z3.And(self._effect(e, touch=i), self._server_is(
                                      p, q, log_len=new_len,
                                      log_term=[z3.If(new_len == k, p.term, p.log_term[k - 1])
                                                for k in range(1, self.max_log + 1)],
                                      log_value=[z3.If(new_len == k, v, p.log_value[k - 1])
                                                 for k in range(1, self.max_log + 1)]))))
            out.append(Branch("AdvanceCommitIndex", "AdvanceCommitIndex", i,
                              guard=p.role == LEADER,
                              body=z3.And(self._effect(e, touch=i), self._server_is(
                                  p, q, commit_index=self._advance_commit(i, p)))))
            for j in self.ids:
                if j == i:
                    continue
                nxt = p.next_index[j - 1]
                has = nxt <= p.log_len
                last = _min(p.log_len, nxt)
                aeq = (AEQ, p.term, z3.If(nxt > 1, self.term_at(p, nxt - 1), 0), nxt - 1,
                       z3.If(has, self.term_at(p, nxt), 0), z3.If(has, self.value_at(p, nxt), 0),
                       _min(p.commit_index, last), i, j)
                out.append(Branch("AppendEntries", "AppendEntries", i, j,
                                  guard=p.role == LEADER, body=self._effect(e, send=aeq)))
        for k, slot in enumerate(pre.slots):
            for i in self.ids:
                out += self._receive(pre, post, e, k, slot, i)
        for k, slot in enumerate(pre.slots):
            m = slot.fields
            if cfg.duplicate:
                out.append(Branch("DuplicateMessage", "DuplicateMessage", slot=k,
                                  guard=slot.count > 0, body=self._effect(e, send=m)))
            if cfg.drop:
                out.append(Branch("DropMessage", "DropMessage", slot=k, guard=slot.count > 0,
                                  body=self._effect(e, discard=m)))
        return out

    def _advance_commit(self, i: int, p: ServerVars) -> Num:
        """raft.tla ``AdvanceCommitIndex``: the largest quorum-replicated index, if its entry is
        of the current term (any term with the ``commit_previous_term`` mutant)."""
        max_agree: Num = self.lit(0)
        for index in range(1, self.max_log + 1):
            agree = 1 + _ite_sum([self.b2i(p.match_index[k - 1] >= index)
                                  for k in self.ids if k != i] or [self.lit(0)])
            max_agree = z3.If(z3.And(index <= p.log_len, self._quorum_size(agree)), index,
                              max_agree)
        ok = z3.And(max_agree > 0, z3.Or(self.term_at(p, max_agree) == p.term,
                                         not self.current_term_only))
        return z3.If(ok, max_agree, p.commit_index)

    def _peer_value(self, values: Sequence[Num], j: Num) -> Num:
        out = values[-1]
        for k in range(len(values) - 1, 0, -1):
            out = z3.If(j == k, values[k - 1], out)
        return out

    def _receive(self, pre: StateVars, post: StateVars, e: Effect, k: int, slot: Slot,
                 i: int) -> list[Branch]:
        """raft.tla ``Receive`` of the message in slot k by server i (= its mdest): one branch
        per handler case; the cases are mutually exclusive (SEMANTICS.md, Disjointness)."""
        mtype, mterm, a, b, eterm, evalue, mcommit, src, _dst = slot.fields
        p, q = pre.server(i), post.server(i)
        here = z3.And(slot.count > 0, slot.field("dst") == i)
        mkey = slot.fields
        nxt_src = self._peer_value(p.next_index, src)

        def branch(name: str, case: str, guard: z3.BoolRef, body: z3.BoolRef) -> Branch:
            return Branch(name, case, i, slot=k, guard=z3.And(here, guard), body=body)

        def reply(mt: int, fa: Num, fb: Num) -> Msg:
            return (mt, p.term, fa, fb, 0, 0, 0, i, src)

        def set_peer(old: Sequence, new: z3.ExprRef) -> list:
            return [z3.If(src == j, new, old[j - 1]) for j in self.ids]

        out = [branch("UpdateTerm", "UpdateTerm", mterm > p.term, z3.And(
            self._effect(e, touch=i),
            self._server_is(p, q, term=mterm, role=FOLLOWER, voted_for=0)))]

        log_ok = z3.Or(a > self.last_term(p),
                       z3.And(a == self.last_term(p), b >= p.log_len)) if self.check_log else True
        grant = z3.And(mterm == p.term, log_ok, z3.Or(p.voted_for == 0, p.voted_for == src))
        out.append(branch("HandleRequestVoteRequest", "HandleRequestVoteRequest",
                          z3.And(mtype == RVQ, mterm <= p.term), z3.And(
                              self._effect(e, touch=i, send=reply(RVP, self.b2i(grant), 0),
                                           discard=mkey),
                              self._server_is(p, q, voted_for=z3.If(grant, src, p.voted_for)))))
        out.append(branch("DropStaleResponse", "DropStaleResponse",
                          z3.And(z3.Or(mtype == RVP, mtype == AEP), mterm < p.term),
                          self._effect(e, discard=mkey)))
        out.append(branch("HandleRequestVoteResponse", "HandleRequestVoteResponse",
                          z3.And(mtype == RVP, mterm == p.term), z3.And(
                              self._effect(e, touch=i, discard=mkey),
                              self._server_is(
                                  p, q,
                                  votes_responded=set_peer(p.votes_responded, True),
                                  votes_granted=[z3.Or(p.votes_granted[j - 1],
                                                       z3.And(src == j, a == 1))
                                                 for j in self.ids]))))
        # HandleAppendEntriesRequest: reject, step down, or accept (done / conflict / append).
        aeq = z3.And(mtype == AEQ, mterm <= p.term)
        current = mterm == p.term if self.check_term else z3.BoolVal(True)
        prev_ok = z3.Or(b == 0, z3.And(b >= 1, b <= p.log_len, self.term_at(p, b) == a))
        index = b + 1
        has_entry = eterm > 0
        reject = z3.Or(z3.Not(current), z3.And(p.role == FOLLOWER, z3.Not(prev_ok)))
        accept = z3.And(aeq, z3.Not(reject), p.role == FOLLOWER)
        name = "HandleAppendEntriesRequest"
        out.append(branch(name, "AEQ/reject", z3.And(aeq, reject), self._effect(
            e, send=reply(AEP, 0, 0), discard=mkey)))
        out.append(branch(name, "AEQ/step-down", z3.And(aeq, z3.Not(reject),
                                                         p.role == CANDIDATE), z3.And(
            self._effect(e, touch=i), self._server_is(p, q, role=FOLLOWER))))
        matches = z3.And(p.log_len >= index, self.term_at(p, index) == eterm)
        out.append(branch(name, "AEQ/done", z3.And(accept, z3.Or(z3.Not(has_entry), matches)),
                          z3.And(self._effect(e, touch=i,
                                              send=reply(AEP, 1, b + self.b2i(has_entry)),
                                              discard=mkey),
                                 self._server_is(p, q, commit_index=mcommit))))
        L = self.max_log
        out.append(branch(name, "AEQ/conflict", z3.And(
            accept, has_entry, p.log_len >= index, self.term_at(p, index) != eterm), z3.And(
                self._effect(e, touch=i),
                self._server_is(p, q, log_len=p.log_len - 1,
                                log_term=[z3.If(p.log_len == k, 0, p.log_term[k - 1])
                                          for k in range(1, L + 1)],
                                log_value=[z3.If(p.log_len == k, 0, p.log_value[k - 1])
                                           for k in range(1, L + 1)]))))
        out.append(branch(name, "AEQ/append", z3.And(accept, has_entry, p.log_len < index),
                          z3.And(self._effect(e, touch=i), self._server_is(
                              p, q, log_len=p.log_len + 1,
                              log_term=[z3.If(index == k, eterm, p.log_term[k - 1])
                                        for k in range(1, L + 1)],
                              log_value=[z3.If(index == k, evalue, p.log_value[k - 1])
                                         for k in range(1, L + 1)]))))
        out.append(branch("HandleAppendEntriesResponse", "HandleAppendEntriesResponse",
                          z3.And(mtype == AEP, mterm == p.term), z3.And(
                              self._effect(e, touch=i, discard=mkey),
                              self._server_is(
                                  p, q,
                                  next_index=set_peer(p.next_index, z3.If(
                                      a == 1, b + 1, z3.If(nxt_src > 2, nxt_src - 1, 1))),
                                  match_index=[z3.If(z3.And(src == j, a == 1), b,
                                                     p.match_index[j - 1]) for j in self.ids]))))
        return out

    def step(self, pre: StateVars, post: StateVars, tag: str | None = None,
             only: Sequence[str] | None = None) -> Step:
        """The transition relation pre -> post within the bounds (raft.tla ``Next`` and
        the model's CONSTRAINT on the successor); ``only`` keeps the named actions."""
        tag = tag or f"{post.tag}_by"
        e = self.effect_vars(tag)
        branches = self.branches(pre, post, e)
        if only is not None:
            branches = [br for br in branches if br.name in only]
        selectors = tuple(z3.Bool(f"{tag}_sel_{k}") for k in range(len(branches)))
        cs = [z3.Or(selectors), self.frame(pre, post, e), self.canonical(post), self.bounds(post)]
        cs += [z3.Implies(sel, z3.And(br.guard, br.body))
               for sel, br in zip(selectors, branches, strict=True)]
        return Step(pre, post, e, tuple(branches), selectors, z3.And(cs))

    # --- concrete states ----------------------------------------------------------------------

    def message_fields(self, m: Message) -> tuple[int, ...]:
        """A reference message as slot fields."""
        if m.mtype == REQUEST_VOTE_REQUEST:
            return (RVQ, m.mterm, m.mlast_log_term, m.mlast_log_index, 0, 0, 0, m.msource,
                    m.mdest)
        if m.mtype == REQUEST_VOTE_RESPONSE:
            return (RVP, m.mterm, int(m.mvote_granted), 0, 0, 0, 0, m.msource, m.mdest)
        if m.mtype == APPEND_ENTRIES_REQUEST:
            e = m.mentries[0] if m.mentries else Entry(0, 0)
            return (AEQ, m.mterm, m.mprev_log_term, m.mprev_log_index, e.term, e.value,
                    m.mcommit_index, m.msource, m.mdest)
        return (AEP, m.mterm, int(m.msuccess), m.mmatch_index, 0, 0, 0, m.msource, m.mdest)

    def message_of(self, f: Sequence[int]) -> Message:
        """Slot fields back to a reference message."""
        mtype, mterm, a, b, eterm, evalue, mcommit, src, dst = f
        if mtype == RVQ:
            return RequestVoteRequest(REQUEST_VOTE_REQUEST, mterm, a, b, src, dst)
        if mtype == RVP:
            return RequestVoteResponse(REQUEST_VOTE_RESPONSE, mterm, bool(a), src, dst)
        if mtype == AEQ:
            entries = (Entry(eterm, evalue),) if eterm else ()
            return AppendEntriesRequest(APPEND_ENTRIES_REQUEST, mterm, b, a, entries, mcommit,
                                        src, dst)
        if mtype == AEP:
            return AppendEntriesResponse(APPEND_ENTRIES_RESPONSE, mterm, bool(a), b, src, dst)
        raise ValueError(f"not a message type: {mtype}")

    def representable(self, state: State) -> bool:
        """Whether a reference state fits this encoding (in particular: within the bounds)."""
        return (len(state.servers) == self.n
                and len(state.messages) <= self.max_msgs
                and all(len(s.log) <= self.max_log for s in state.servers))

    def assign(self, s: StateVars, state: State) -> list[tuple[z3.ExprRef, z3.ExprRef]]:
        """(constant, value) pairs fixing ``s`` to a concrete reference state."""
        if not self.representable(state):
            raise ValueError("state does not fit the encoding's bounds")
        pairs: list[tuple[z3.ExprRef, z3.ExprRef]] = []

        def put(var: z3.ExprRef, val: int | bool) -> None:
            pairs.append((var, z3.BoolVal(val) if isinstance(val, bool) else self.lit(val)))

        for sv, server in zip(s.servers, state.servers, strict=True):
            put(sv.term, server.current_term)
            put(sv.role, server.role)
            put(sv.voted_for, server.voted_for)
            put(sv.log_len, len(server.log))
            for k in range(self.max_log):
                e = server.log[k] if k < len(server.log) else Entry(0, 0)
                put(sv.log_term[k], e.term)
                put(sv.log_value[k], e.value)
            put(sv.commit_index, server.commit_index)
            for j in self.ids:
                put(sv.votes_responded[j - 1], j in server.votes_responded)
                put(sv.votes_granted[j - 1], j in server.votes_granted)
                put(sv.next_index[j - 1], server.next_index[j - 1])
                put(sv.match_index[j - 1], server.match_index[j - 1])
        records = sorted((self.message_fields(m), c) for m, c in state.messages)
        for k, slot in enumerate(s.slots):
            fields, count = records[k] if k < len(records) else (
                (0,) * len(FIELDS), 0)
            for var, val in zip(slot.fields, fields, strict=True):
                put(var, val)
            put(slot.count, count)
        return pairs

    def equals(self, s: StateVars, state: State) -> z3.BoolRef:
        """``s`` is the concrete state (a formula, for solvers)."""
        return z3.And([var == val for var, val in self.assign(s, state)])

    def decode(self, model: z3.ModelRef, s: StateVars) -> State:
        """The reference state a Z3 model assigns to ``s``."""
        def num(x: z3.ExprRef) -> int:
            return model.eval(x, model_completion=True).as_signed_long()

        def flag(x: z3.ExprRef) -> bool:
            return z3.is_true(model.eval(x, model_completion=True))

        servers = []
        for sv in s.servers:
            length = num(sv.log_len)
            servers.append(Server(
                current_term=num(sv.term), role=num(sv.role), voted_for=num(sv.voted_for),
                log=tuple(Entry(num(sv.log_term[k]), num(sv.log_value[k]))
                          for k in range(length)),
                commit_index=num(sv.commit_index),
                votes_responded=frozenset(j for j in self.ids if flag(sv.votes_responded[j - 1])),
                votes_granted=frozenset(j for j in self.ids if flag(sv.votes_granted[j - 1])),
                next_index=tuple(num(x) for x in sv.next_index),
                match_index=tuple(num(x) for x in sv.match_index),
            ))
        bag = []
        for slot in s.slots:
            count = num(slot.count)
            if count > 0:
                bag.append((self.message_of([num(f) for f in slot.fields]), count))
        return State(tuple(servers), tuple(sorted(bag)))

    def decode_action(self, model: z3.ModelRef, step: Step, pre_state: State) -> Action:
        """The reference Action of the branch the model selected (message from the pre-state)."""
        for sel, br in zip(step.selectors, step.branches, strict=True):
            if z3.is_true(model.eval(sel, model_completion=True)):
                return self.action_of(br, model, step.pre)
        raise AssertionError("no branch selected")

    def action_of(self, br: Branch, model: z3.ModelRef | None, pre: StateVars) -> Action:
        """The reference Action record of a branch (for Receive: dest, source and message)."""
        if br.slot < 0:
            return Action(br.name, br.server, br.peer, br.value)
        assert model is not None
        slot = pre.slots[br.slot]
        m = self.message_of([model.eval(f, model_completion=True).as_signed_long()
                             for f in slot.fields])
        if br.name in ("DuplicateMessage", "DropMessage"):
            return Action(br.name, message=m)
        return Action(br.name, m.mdest, m.msource, message=m)


# --- properties ---------------------------------------------------------------------------------

def _entries_equal(enc: Encoding, x: ServerVars, y: ServerVars, upto: int) -> z3.BoolRef:
    return z3.And([z3.And(x.log_term[m - 1] == y.log_term[m - 1],
                          x.log_value[m - 1] == y.log_value[m - 1])
                   for m in range(1, upto + 1)])


def type_ok(enc: Encoding, s: StateVars) -> z3.BoolRef:
    """spec.properties.type_ok (raft.tla ``TypeOK``) on the encoded state. The bag's canonical
    form holds by construction of the encoding (``Encoding.canonical``)."""
    cs = []
    for sv in s.servers:
        cs += [sv.term >= 1, sv.role >= 0, sv.role <= 2, sv.voted_for >= 0,
               sv.voted_for <= enc.n, sv.commit_index >= 0]
        cs += [z3.Implies(g, r) for g, r in zip(sv.votes_granted, sv.votes_responded,
                                                strict=True)]
        cs += [x >= 1 for x in sv.next_index] + [x >= 0 for x in sv.match_index]
        for k in range(1, enc.max_log + 1):
            cs.append(z3.Implies(k <= sv.log_len, z3.And(
                sv.log_term[k - 1] >= 1, sv.log_value[k - 1] >= 1,
                sv.log_value[k - 1] <= enc.v)))
    for slot in s.slots:
        cs.append(z3.Implies(slot.count > 0, z3.And(
            slot.field("src") >= 1, slot.field("src") <= enc.n, slot.field("dst") >= 1,
            slot.field("dst") <= enc.n, slot.field("mterm") >= 1)))
    return z3.And(cs)


def election_safety(enc: Encoding, s: StateVars) -> z3.BoolRef:
    """At most one leader per term (paper §5.2)."""
    return z3.And([z3.Not(z3.And(x.role == LEADER, y.role == LEADER, x.term == y.term))
                   for a, x in enumerate(s.servers) for y in s.servers[a + 1:]] or [True])


def log_matching(enc: Encoding, s: StateVars) -> z3.BoolRef:
    """Same index and term in two logs => the logs agree up to that index (paper §5.3)."""
    cs = []
    for a, x in enumerate(s.servers):
        for y in s.servers[a + 1:]:
            for n in range(1, enc.max_log + 1):
                cs.append(z3.Implies(
                    z3.And(n <= x.log_len, n <= y.log_len,
                           x.log_term[n - 1] == y.log_term[n - 1]),
                    _entries_equal(enc, x, y, n)))
    return z3.And(cs or [True])


def _committed_upto(sv: ServerVars) -> Num:
    """How many entries s knows committed: log[:commit_index] (commit may exceed the log)."""
    return _min(sv.commit_index, sv.log_len)


def leader_completeness(enc: Encoding, s: StateVars) -> z3.BoolRef:
    """Entries committed at k are in the log of every leader of a term above k's (paper §5.4)."""
    cs = []
    for k in s.servers:
        for ld in s.servers:
            if ld is k:
                continue
            for n in range(1, enc.max_log + 1):
                cs.append(z3.Implies(
                    z3.And(ld.role == LEADER, ld.term > k.term, n <= _committed_upto(k)),
                    z3.And(n <= ld.log_len, ld.log_term[n - 1] == k.log_term[n - 1],
                           ld.log_value[n - 1] == k.log_value[n - 1])))
    return z3.And(cs or [True])


def state_machine_safety(enc: Encoding, s: StateVars) -> z3.BoolRef:
    """No two servers have committed different entries at one index (paper §5.4.3)."""
    cs = []
    for a, x in enumerate(s.servers):
        for y in s.servers[a + 1:]:
            for n in range(1, enc.max_log + 1):
                cs.append(z3.Implies(
                    z3.And(n <= _committed_upto(x), n <= _committed_upto(y)),
                    z3.And(x.log_term[n - 1] == y.log_term[n - 1],
                           x.log_value[n - 1] == y.log_value[n - 1])))
    return z3.And(cs or [True])


def leader_append_only(enc: Encoding, s: StateVars, t: StateVars) -> z3.BoolRef:
    """A server that stays leader in the same term only appends (raft.tla LeaderAppendOnly)."""
    cs = []
    for x, y in zip(s.servers, t.servers, strict=True):
        same = z3.And(x.role == LEADER, y.role == LEADER, x.term == y.term)
        cs.append(z3.Implies(same, z3.And(
            y.log_len >= x.log_len,
            z3.And([z3.Implies(n <= x.log_len, z3.And(
                y.log_term[n - 1] == x.log_term[n - 1],
                y.log_value[n - 1] == x.log_value[n - 1]))
                for n in range(1, enc.max_log + 1)] or [True]))))
    return z3.And(cs)


INVARIANTS: dict[str, Callable[[Encoding, StateVars], z3.BoolRef]] = {
    "type_ok": type_ok,
    "election_safety": election_safety,
    "log_matching": log_matching,
    "leader_completeness": leader_completeness,
    "state_machine_safety": state_machine_safety,
}
"""The Z3 forms of ``spec.properties.INVARIANTS``, by the same names."""

STEP_PROPERTIES: dict[str, Callable[[Encoding, StateVars, StateVars], z3.BoolRef]] = {
    "leader_append_only": leader_append_only,
}
"""The Z3 forms of ``spec.properties.STEP_PROPERTIES``."""
