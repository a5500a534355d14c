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

import importlib
from collections.abc import Callable, Sequence

import attrs
import z3

from raftspec.protocol import Action, Protocol
from raftspec.protocol.errors import RaftspecError
from raftspec.reference.config import Config
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
from raftspec.reference.state import SCHEMA as RAFT_SCHEMA

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

_CONFIG_FIELDS = frozenset(
    {"servers", "values", "max_term", "max_log_length", "max_messages", "restart", "duplicate",
     "drop", "mutants", "variant"}
)

LOCAL_ACTIONS = frozenset({"Restart", "Timeout", "BecomeLeader", "ClientRequest",
                           "AdvanceCommitIndex"})
"""Actions that read and write only their own server's variables (never the bag)."""

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


def check_supported(config: Config, protocol: Protocol) -> list[Encoder]:
    """Refuse, with a clear message, any model feature this encoding does not cover, and return
    the encoders of the protocol's rows, in order.

    Never a silent wrong answer: a row without an encoder (a variant's new or replaced action),
    a schema other than raft.tla's, or a new Config field has to be encoded here first.
    """
    for field in attrs.fields(Config):
        if field.name not in _CONFIG_FIELDS and getattr(config, field.name) != field.default:
            raise RaftspecError(
                f"the Z3 encoding does not support '{field.name}' yet; use 'raftspec check'",
                field=field.name,
            )
    from raftspec.reference.protocol import RAFT_TLA

    missing = [row.name for row in protocol.rows if row.encoder is None]
    if missing:
        raise RaftspecError(f"the Z3 encoding has no encoder for action(s) {', '.join(missing)} "
                            f"of {protocol.describe()}; use 'raftspec check'", field="variant")
    if protocol.schema != RAFT_SCHEMA:
        raise RaftspecError(f"the Z3 encoding covers raft.tla's variables only; "
                            f"{protocol.describe()} changes them; use 'raftspec check'")
    for what, ours, theirs in (("initial states", protocol.init, RAFT_TLA.init),
                               ("state constraint", protocol.constraint, RAFT_TLA.constraint)):
        if ours is not theirs:
            raise RaftspecError(f"the Z3 encoding has raft.tla's {what} only; "
                                f"{protocol.describe()} changes them; use 'raftspec check'")
    changed = sorted(name for name in (*INVARIANTS, *STEP_PROPERTIES)
                     if {**protocol.invariants, **protocol.step_properties}.get(name)
                     is not {**RAFT_TLA.invariants, **RAFT_TLA.step_properties}[name])
    if changed:
        raise RaftspecError(f"{protocol.describe()} redefines {', '.join(changed)}, which the "
                            "Z3 encoding states as raft.tla does; use 'raftspec check'")
    if config.max_messages < 0 or config.max_log_length < 0 or config.max_term < 1:
        raise RaftspecError("bounds must be max_term >= 1, others >= 0", field="bounds")
    return [_resolve(row.name, row.encoder) for row in protocol.rows]


def _resolve(action: str, where: str) -> Encoder:
    module_name, _, function = where.partition(":")
    try:
        encoder = getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as err:
        raise RaftspecError(f"the encoder {where!r} of action {action} cannot be loaded: "
                            f"{err}") from None
    if getattr(encoder, "shape", None) not in SHAPES:
        raise RaftspecError(f"the encoder {where!r} of action {action} is not declared with "
                            "@server_encoder, @receive_encoder or @message_encoder")
    return encoder


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
    """The Z3 encoding of one bounded model: a reference ``Config`` and the protocol it runs
    (raft.tla with its mutants by default), whose rows name their encoders."""

    def __init__(self, config: Config, protocol: Protocol | None = None) -> None:
        if protocol is None:
            from raftspec.reference.protocol import protocol_for

            protocol = protocol_for(config.variant, config.mutants)
        self.encoders = check_supported(config, protocol)
        self.protocol = protocol
        self.config = config
        self.n = config.servers
        self.v = config.values
        self.max_term = config.max_term
        self.max_log = config.max_log_length
        self.max_msgs = config.max_messages
        self.ids = range(1, self.n + 1)
        self.width = number_width(config)

    # --- what the generic driver (checker.symbolic) asks of an encoding ------------------

    @property
    def invariants(self) -> dict[str, Callable[[Encoding, StateVars], z3.BoolRef]]:
        return INVARIANTS

    @property
    def step_properties(self) -> dict[str, Callable[..., z3.BoolRef]]:
        return STEP_PROPERTIES

    @property
    def lemmas(self) -> dict[str, Callable[[Encoding, StateVars], z3.BoolRef]]:
        from raftspec.spec.lemmas import LEMMAS

        return LEMMAS

    @property
    def shipped_lemmas(self) -> dict[str, tuple[str, ...]]:
        from raftspec.spec.lemmas import SHIPPED

        return SHIPPED

    def type_ok(self, s: StateVars) -> z3.BoolRef:
        return type_ok(self, s)

    @staticmethod
    def footprint(name: str, server: int) -> tuple[int, bool]:
        """An action instance's (actor, uses_bag): the server whose variables it reads or
        writes (0 for DuplicateMessage/DropMessage, which touch only the bag) and whether it
        reads or writes the bag. Two instances with different actors, at least one of them
        local, commute: both orders are enabled together and reach the same state (tests/smt
        checks this on the reference)."""
        return server, name not in LOCAL_ACTIONS

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
        """2*|Q| > N (raft.tla ``Quorum``)."""
        return 2 * size > self.n

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
        """Every action instance of the protocol's ``Next``, as branches: for each server, its
        rows' instances; then, per message slot and receiving server, the receive rows; then,
        per slot, the network's rows."""
        out: list[Branch] = []
        by_shape = {shape: [enc for enc in self.encoders if enc.shape == shape]
                    for shape in SHAPES}
        for i in self.ids:
            for encode in by_shape["server"]:
                out += encode(self, pre, post, e, i)
        for k, slot in enumerate(pre.slots):
            for i in self.ids:
                here = Receipt(self, pre, post, e, k, slot, i)
                for encode in by_shape["receive"]:
                    out += encode(self, here)
        for k, slot in enumerate(pre.slots):
            for encode in by_shape["message"]:
                out += encode(self, pre, post, e, k, slot)
        return out

    def agree_index(self, i: int, p: ServerVars,
                    quorum: Callable[[Num], z3.BoolRef] | None = None) -> Num:
        """The largest index of leader i's log stored on a quorum (``quorum`` decides what a
        quorum is: raft.tla's by default), 0 if there is none."""
        quorum = quorum or self._quorum_size
        max_agree: Num = self.lit(0)
        for index in range(1, self.max_log + 1):
            agree = 1 + _ite_sum([self.b2i(p.match_index[k - 1] >= index)
                                  for k in self.ids if k != i] or [self.lit(0)])
            max_agree = z3.If(z3.And(index <= p.log_len, quorum(agree)), index, max_agree)
        return max_agree

    def peer_value(self, values: Sequence[Num], j: Num) -> Num:
        out = values[-1]
        for k in range(len(values) - 1, 0, -1):
            out = z3.If(j == k, values[k - 1], out)
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
        """The Action record of a branch, with the arguments its row's parameters name."""
        params = self.protocol.row(br.name).params
        if br.slot >= 0:
            assert model is not None
            slot = pre.slots[br.slot]
            message = self.message_of([model.eval(f, model_completion=True).as_signed_long()
                                       for f in slot.fields])
        known = {"server": br.server, "peer": br.peer, "value": br.value}
        args = tuple(message if p.name == "message" else known[p.name] for p in params)
        return Action(br.name, args, params)


# --- the action table's encoders ----------------------------------------------------------------
#
# One function per row of raft.tla's action table (``reference.protocol``), named after it; a
# row names its encoder as "module:function". Shapes: a server encoder gives the branches of
# server i's instances; a receive encoder the branches of server i receiving the message in slot
# k (``Receipt``); a message encoder those of the network acting on slot k.

SHAPES = ("server", "receive", "message")
Encoder = Callable[..., list[Branch]]


def server_encoder(f: Encoder) -> Encoder:
    """``f(enc, pre, post, e, i)``: the branches of server i's instances of one row."""
    f.shape = "server"  # type: ignore[attr-defined]
    return f


def receive_encoder(f: Encoder) -> Encoder:
    """``f(enc, receipt)``: the branches of one receive row for one slot and receiver."""
    f.shape = "receive"  # type: ignore[attr-defined]
    return f


def message_encoder(f: Encoder) -> Encoder:
    """``f(enc, pre, post, e, k, slot)``: the branches of one network row on slot k."""
    f.shape = "message"  # type: ignore[attr-defined]
    return f


class Receipt:
    """Server i receiving the message in slot k: the names every receive encoder uses."""

    def __init__(self, enc: Encoding, pre: StateVars, post: StateVars, e: Effect, k: int,
                 slot: Slot, i: int) -> None:
        self.enc, self.pre, self.post, self.e, self.k, self.slot, self.i = (
            enc, pre, post, e, k, slot, i)
        (self.mtype, self.mterm, self.a, self.b, self.eterm, self.evalue, self.mcommit,
         self.src, _dst) = slot.fields
        self.p, self.q = pre.server(i), post.server(i)
        self.here = z3.And(slot.count > 0, slot.field("dst") == i)
        self.mkey = slot.fields

    def branch(self, name: str, case: str, guard: z3.BoolRef, body: z3.BoolRef) -> Branch:
        return Branch(name, case, self.i, slot=self.k, guard=z3.And(self.here, guard),
                      body=body)

    def reply(self, mt: int, fa: Num, fb: Num) -> Msg:
        """The response to this message (raft.tla ``Reply``'s message)."""
        return (mt, self.p.term, fa, fb, 0, 0, 0, self.i, self.src)

    def set_peer(self, old: Sequence, new: z3.ExprRef) -> list:
        """``old`` with the sender's entry replaced by ``new``."""
        return [z3.If(self.src == j, new, old[j - 1]) for j in self.enc.ids]


@server_encoder
def restart(enc: Encoding, pre: StateVars, post: StateVars, e: Effect, i: int) -> list[Branch]:
    if not enc.config.restart:
        return []
    p, q, n = pre.server(i), post.server(i), enc.n
    return [Branch("Restart", "Restart", i, body=z3.And(
        enc._effect(e, touch=i),
        enc._server_is(p, q, role=FOLLOWER, votes_responded=[False] * n,
                       votes_granted=[False] * n, next_index=[1] * n, match_index=[0] * n,
                       commit_index=0)))]


@server_encoder
def timeout(enc: Encoding, pre: StateVars, post: StateVars, e: Effect, i: int) -> list[Branch]:
    p, q, n = pre.server(i), post.server(i), enc.n
    return [Branch("Timeout", "Timeout", i, guard=z3.Or(p.role == FOLLOWER, p.role == CANDIDATE),
                   body=z3.And(enc._effect(e, touch=i), enc._server_is(
                       p, q, role=CANDIDATE, term=p.term + 1, voted_for=0,
                       votes_responded=[False] * n, votes_granted=[False] * n)))]


@server_encoder
def request_vote(enc: Encoding, pre: StateVars, post: StateVars, e: Effect,
                 i: int) -> list[Branch]:
    p = pre.server(i)
    out = []
    for j in enc.ids:
        rvq = (RVQ, p.term, enc.last_term(p), p.log_len, 0, 0, 0, i, j)
        out.append(Branch("RequestVote", "RequestVote", i, j,
                          guard=z3.And(p.role == CANDIDATE, z3.Not(p.votes_responded[j - 1])),
                          body=enc._effect(e, send=rvq)))
    return out


def become_leader_when(enc: Encoding, pre: StateVars, post: StateVars, e: Effect, i: int,
                       quorum: Callable[[Num], z3.BoolRef]) -> list[Branch]:
    """raft.tla ``BecomeLeader`` with ``quorum`` deciding what a quorum of votes is."""
    p, q, n = pre.server(i), post.server(i), enc.n
    votes = _ite_sum([enc.b2i(b) for b in p.votes_granted])
    return [Branch("BecomeLeader", "BecomeLeader", i,
                   guard=z3.And(p.role == CANDIDATE, quorum(votes)),
                   body=z3.And(enc._effect(e, touch=i), enc._server_is(
                       p, q, role=LEADER, next_index=[p.log_len + 1] * n,
                       match_index=[0] * n)))]


@server_encoder
def become_leader(enc: Encoding, pre: StateVars, post: StateVars, e: Effect,
                  i: int) -> list[Branch]:
    return become_leader_when(enc, pre, post, e, i, enc._quorum_size)


@server_encoder
def client_request(enc: Encoding, pre: StateVars, post: StateVars, e: Effect,
                   i: int) -> list[Branch]:
    p, q, L = pre.server(i), post.server(i), enc.max_log
    out = []
    for v in range(1, enc.v + 1):
        new_len = p.log_len + 1
        out.append(Branch("ClientRequest", "ClientRequest", i, value=v,
                          guard=p.role == LEADER,
                          body=z3.And(enc._effect(e, touch=i), enc._server_is(
                              p, q, log_len=new_len,
                              log_term=[z3.If(new_len == k, p.term, p.log_term[k - 1])
                                        for k in range(1, L + 1)],
                              log_value=[z3.If(new_len == k, v, p.log_value[k - 1])
                                         for k in range(1, L + 1)]))))
    return out


def advance_commit_index_to(enc: Encoding, pre: StateVars, post: StateVars, e: Effect, i: int,
                            commit: Num) -> list[Branch]:
    """raft.tla ``AdvanceCommitIndex``'s shape: leader i sets its commit index to ``commit``."""
    p, q = pre.server(i), post.server(i)
    return [Branch("AdvanceCommitIndex", "AdvanceCommitIndex", i, guard=p.role == LEADER,
                   body=z3.And(enc._effect(e, touch=i),
                               enc._server_is(p, q, commit_index=commit)))]


@server_encoder
def advance_commit_index(enc: Encoding, pre: StateVars, post: StateVars, e: Effect,
                         i: int) -> list[Branch]:
    """The largest quorum-replicated index, if its entry is of the current term."""
    p = pre.server(i)
    agreed = enc.agree_index(i, p)
    ok = z3.And(agreed > 0, enc.term_at(p, agreed) == p.term)
    return advance_commit_index_to(enc, pre, post, e, i, z3.If(ok, agreed, p.commit_index))


@server_encoder
def append_entries(enc: Encoding, pre: StateVars, post: StateVars, e: Effect,
                   i: int) -> list[Branch]:
    p = pre.server(i)
    out = []
    for j in enc.ids:
        if j == i:
            continue
        nxt = p.next_index[j - 1]
        has = nxt <= p.log_len
        last = _min(p.log_len, nxt)
        aeq = (AEQ, p.term, z3.If(nxt > 1, enc.term_at(p, nxt - 1), 0), nxt - 1,
               z3.If(has, enc.term_at(p, nxt), 0), z3.If(has, enc.value_at(p, nxt), 0),
               _min(p.commit_index, last), i, j)
        out.append(Branch("AppendEntries", "AppendEntries", i, j, guard=p.role == LEADER,
                          body=enc._effect(e, send=aeq)))
    return out


@receive_encoder
def update_term(enc: Encoding, r: Receipt) -> list[Branch]:
    p, q = r.p, r.q
    return [r.branch("UpdateTerm", "UpdateTerm", r.mterm > p.term, z3.And(
        enc._effect(r.e, touch=r.i),
        enc._server_is(p, q, term=r.mterm, role=FOLLOWER, voted_for=0)))]


def vote_log_ok(enc: Encoding, r: Receipt) -> z3.BoolRef:
    """The candidate's log is at least as up-to-date as the receiver's (paper §5.4.1)."""
    return z3.Or(r.a > enc.last_term(r.p), z3.And(r.a == enc.last_term(r.p), r.b >= r.p.log_len))


def handle_request_vote_request_given(enc: Encoding, r: Receipt,
                                      log_ok: z3.BoolRef) -> list[Branch]:
    """raft.tla ``HandleRequestVoteRequest`` with ``log_ok`` as the up-to-date condition."""
    p, q = r.p, r.q
    grant = z3.And(r.mterm == p.term, log_ok, z3.Or(p.voted_for == 0, p.voted_for == r.src))
    return [r.branch("HandleRequestVoteRequest", "HandleRequestVoteRequest",
                     z3.And(r.mtype == RVQ, r.mterm <= p.term), z3.And(
                         enc._effect(r.e, touch=r.i, send=r.reply(RVP, enc.b2i(grant), 0),
                                     discard=r.mkey),
                         enc._server_is(p, q, voted_for=z3.If(grant, r.src, p.voted_for))))]


@receive_encoder
def handle_request_vote_request(enc: Encoding, r: Receipt) -> list[Branch]:
    return handle_request_vote_request_given(enc, r, vote_log_ok(enc, r))


@receive_encoder
def drop_stale_response(enc: Encoding, r: Receipt) -> list[Branch]:
    return [r.branch("DropStaleResponse", "DropStaleResponse",
                     z3.And(z3.Or(r.mtype == RVP, r.mtype == AEP), r.mterm < r.p.term),
                     enc._effect(r.e, discard=r.mkey))]


@receive_encoder
def handle_request_vote_response(enc: Encoding, r: Receipt) -> list[Branch]:
    p, q = r.p, r.q
    return [r.branch("HandleRequestVoteResponse", "HandleRequestVoteResponse",
                     z3.And(r.mtype == RVP, r.mterm == p.term), z3.And(
                         enc._effect(r.e, touch=r.i, discard=r.mkey),
                         enc._server_is(
                             p, q,
                             votes_responded=r.set_peer(p.votes_responded, True),
                             votes_granted=[z3.Or(p.votes_granted[j - 1],
                                                  z3.And(r.src == j, r.a == 1))
                                            for j in enc.ids])))]


def handle_append_entries_request_given(enc: Encoding, r: Receipt,
                                        current: z3.BoolRef) -> list[Branch]:
    """raft.tla ``HandleAppendEntriesRequest`` (reject, step down, or accept: done / conflict /
    append) with ``current`` as the condition that the request's term is the receiver's."""
    p, q, b = r.p, r.q, r.b
    aeq = z3.And(r.mtype == AEQ, r.mterm <= p.term)
    prev_ok = z3.Or(b == 0, z3.And(b >= 1, b <= p.log_len, enc.term_at(p, b) == r.a))
    index = b + 1
    has_entry = r.eterm > 0
    reject = z3.Or(z3.Not(current), z3.And(p.role == FOLLOWER, z3.Not(prev_ok)))
    accept = z3.And(aeq, z3.Not(reject), p.role == FOLLOWER)
    name, e, L = "HandleAppendEntriesRequest", r.e, enc.max_log
    matches = z3.And(p.log_len >= index, enc.term_at(p, index) == r.eterm)
    return [
        r.branch(name, "AEQ/reject", z3.And(aeq, reject), enc._effect(
            e, send=r.reply(AEP, 0, 0), discard=r.mkey)),
        r.branch(name, "AEQ/step-down", z3.And(aeq, z3.Not(reject), p.role == CANDIDATE),
                 z3.And(enc._effect(e, touch=r.i), enc._server_is(p, q, role=FOLLOWER))),
        r.branch(name, "AEQ/done", z3.And(accept, z3.Or(z3.Not(has_entry), matches)),
                 z3.And(enc._effect(e, touch=r.i, send=r.reply(AEP, 1, b + enc.b2i(has_entry)),
                                    discard=r.mkey),
                        enc._server_is(p, q, commit_index=r.mcommit))),
        r.branch(name, "AEQ/conflict", z3.And(
            accept, has_entry, p.log_len >= index, enc.term_at(p, index) != r.eterm), z3.And(
                enc._effect(e, touch=r.i),
                enc._server_is(p, q, log_len=p.log_len - 1,
                               log_term=[z3.If(p.log_len == k, 0, p.log_term[k - 1])
                                         for k in range(1, L + 1)],
                               log_value=[z3.If(p.log_len == k, 0, p.log_value[k - 1])
                                          for k in range(1, L + 1)]))),
        r.branch(name, "AEQ/append", z3.And(accept, has_entry, p.log_len < index),
                 z3.And(enc._effect(e, touch=r.i), enc._server_is(
                     p, q, log_len=p.log_len + 1,
                     log_term=[z3.If(index == k, r.eterm, p.log_term[k - 1])
                               for k in range(1, L + 1)],
                     log_value=[z3.If(index == k, r.evalue, p.log_value[k - 1])
                                for k in range(1, L + 1)]))),
    ]


@receive_encoder
def handle_append_entries_request(enc: Encoding, r: Receipt) -> list[Branch]:
    return handle_append_entries_request_given(enc, r, r.mterm == r.p.term)


@receive_encoder
def handle_append_entries_response(enc: Encoding, r: Receipt) -> list[Branch]:
    p, q, a, b = r.p, r.q, r.a, r.b
    nxt_src = enc.peer_value(p.next_index, r.src)
    return [r.branch("HandleAppendEntriesResponse", "HandleAppendEntriesResponse",
                     z3.And(r.mtype == AEP, r.mterm == p.term), z3.And(
                         enc._effect(r.e, touch=r.i, discard=r.mkey),
                         enc._server_is(
                             p, q,
                             next_index=r.set_peer(p.next_index, z3.If(
                                 a == 1, b + 1, z3.If(nxt_src > 2, nxt_src - 1, 1))),
                             match_index=[z3.If(z3.And(r.src == j, a == 1), b,
                                                p.match_index[j - 1]) for j in enc.ids])))]


@message_encoder
def duplicate_message(enc: Encoding, pre: StateVars, post: StateVars, e: Effect, k: int,
                      slot: Slot) -> list[Branch]:
    if not enc.config.duplicate:
        return []
    return [Branch("DuplicateMessage", "DuplicateMessage", slot=k, guard=slot.count > 0,
                   body=enc._effect(e, send=slot.fields))]


@message_encoder
def drop_message(enc: Encoding, pre: StateVars, post: StateVars, e: Effect, k: int,
                 slot: Slot) -> list[Branch]:
    if not enc.config.drop:
        return []
    return [Branch("DropMessage", "DropMessage", slot=k, guard=slot.count > 0,
                   body=enc._effect(e, discard=slot.fields))]



# --- properties ---------------------------------------------------------------------------------

def _entries_equal(enc: Encoding, x: ServerVars, y: ServerVars, upto: int) -> z3.BoolRef:
    return z3.And([z3.And(x.log_term[m - 1] == y.log_term[m - 1],
                          x.log_value[m - 1] == y.log_value[m - 1])
                   for m in range(1, upto + 1)])


def type_ok(enc: Encoding, s: StateVars) -> z3.BoolRef:
    """reference.properties.type_ok (raft.tla ``TypeOK``) on the encoded state. The bag's canonical
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
"""The Z3 forms of ``reference.properties.INVARIANTS``, by the same names."""

STEP_PROPERTIES: dict[str, Callable[[Encoding, StateVars, StateVars], z3.BoolRef]] = {
    "leader_append_only": leader_append_only,
}
"""The Z3 forms of ``reference.properties.STEP_PROPERTIES``."""


def encode_model(model: object) -> Encoding:
    """The encoding of a loaded model (``spec.model.Model``): its config and its protocol."""
    return Encoding(model.config, model.protocol)  # type: ignore[attr-defined]
