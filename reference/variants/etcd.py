"""etcd-raft (go.etcd.io/raft/v3) at the level its TLA+ trace points observe, as pure functions.

Each function is one etcd code path, named after it, and reads next to ``raft.go``:
``become_follower`` / ``become_candidate`` / ``become_pre_candidate`` / ``become_leader``
(``raft.become*`` with ``reset``), ``append_entry`` (``raft.appendEntry``: the leader's
proposals, logged as Replicate / ChangeConf, then its self-acknowledging MsgAppResp),
``handle_append_entries`` / ``handle_heartbeat`` / ``handle_snapshot`` (follower side, with
``raftLog.maybeAppend`` and ``findConflictByTerm`` for ``rejectHint``), ``vote_response``
(``Step`` case MsgVote), ``record_vote`` (``poll``), ``app_resp`` (``stepLeader`` case
MsgAppResp: ``Progress.MaybeUpdate``), ``maybe_commit`` (``raft.maybeCommit`` with the joint
quorum of ``tracker.Committed``), ``heartbeat_commit`` (``sendHeartbeat``:
``min(pr.Match, committed)``), ``apply_conf_change`` (``confchange.Changer`` Simple /
EnterJoint / LeaveJoint) and ``campaign_allowed`` (``raft.hup``: promotable, and the guard of
etcd-io/raft #456: no campaign while a committed configuration change is unapplied).

What etcd keeps that its trace points do not show is left open, never guessed: a leader's
``Progress.Next``/probe state and inflight window (any MsgApp whose prevLogIndex is in the
leader's log is allowed), election and heartbeat timers (any follower may campaign, any leader
may step down within its term as CheckQuorum does), leadership known through an untraced
MsgForgetLeader or pre-vote (a follower may grant a vote though it knew a leader), pre-vote
rounds (a node may become a pre-candidate silently; a term learnt from an untraced
MsgPreVoteResp must be some node's term), log compaction, and the application's apply loop
(beyond ApplyConfChange).

States are values (``attrs.frozen``); every function returns a new value or ``None`` where etcd
would not do it. The trace adapter (``traces/etcd/``) maps each event to these functions.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

FOLLOWER, PRE_CANDIDATE, CANDIDATE, LEADER = ("StateFollower", "StatePreCandidate",
                                             "StateCandidate", "StateLeader")

MSG_APP, MSG_APP_RESP = "MsgApp", "MsgAppResp"
MSG_HEARTBEAT, MSG_HEARTBEAT_RESP = "MsgHeartbeat", "MsgHeartbeatResp"
MSG_SNAP = "MsgSnap"
MSG_VOTE, MSG_VOTE_RESP = "MsgVote", "MsgVoteResp"
LEADER_MESSAGES = (MSG_APP, MSG_HEARTBEAT, MSG_SNAP)

ADD_VOTER, REMOVE, ADD_LEARNER = "AddNewServer", "RemoveServer", "AddLearner"

NO_IDS: frozenset[int] = frozenset()

UNKNOWN_CHANGE = (("?", 0),)
"""The changes of a configuration entry the trace never describes (StartNode's bootstrap
entries, one AddNode per initial peer): applying it yields whatever voters the event logs."""


@attrs.frozen(cache_hash=True)
class Entry:
    """A log entry: its term and, for a configuration change, its single changes
    (``((action, node), ...)``; ``()`` is an empty ConfChangeV2, i.e. leave the joint config)."""

    term: int
    conf: tuple[tuple[str, int], ...] | None = None


@attrs.frozen(cache_hash=True)
class Snapshot:
    """What a MsgSnap carries that matters here: its last index and term, and its ConfState."""

    index: int
    term: int
    voters: frozenset[int]
    outgoing: frozenset[int]


@attrs.frozen(cache_hash=True)
class Message:
    """A raftpb.Message as etcd's trace points see it, plus the entries and snapshot it carries
    (taken from the sender's log, so a receiver's log can be computed)."""

    type: str
    term: int
    frm: int
    to: int
    index: int = 0
    log_term: int = 0
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0
    entries: tuple[Entry, ...] = ()
    snapshot: Snapshot | None = None

    @property
    def n_entries(self) -> int:
        """The trace's ``entries`` field: the number of entries, or a MsgSnap's index."""
        return self.snapshot.index if self.snapshot is not None else len(self.entries)


@attrs.frozen(cache_hash=True)
class Server:
    """One node: HardState (term, vote, commit), role, raftLog, tracker.Config, Progress.Match,
    votes, and the message it is stepping (``Step`` is logged on entry, its effects later)."""

    term: int = 0
    vote: int = 0
    role: str = FOLLOWER
    lead: int = 0
    offset: int = 0              # raftLog's snapshot index: entries start at offset + 1
    offset_term: int = 0
    log: tuple[Entry, ...] = ()
    commit: int = 0
    applied: int = 0             # raftLog.applied: the commit of the last Ready, once handled
    conf_applied: int = 0        # index of the last configuration entry the application applied
    voters: frozenset[int] = NO_IDS      # tracker.Config.Voters[0] (incoming)
    outgoing: frozenset[int] = NO_IDS    # tracker.Config.Voters[1] (non-empty: joint)
    learners: frozenset[int] = NO_IDS
    match: tuple[tuple[int, int], ...] = ()   # leader: Progress.Match per peer (sorted)
    granted: frozenset[int] = NO_IDS
    rejected: frozenset[int] = NO_IDS
    stepping: Message | None = None
    restored: bool = False       # the MsgSnap being stepped was restored (ApplyConfChange seen)
    proposal: tuple[Entry, ...] = ()   # leader: traced proposals not yet appended

    def evolve(self, **changes) -> Server:
        return attrs.evolve(self, **changes)

    @property
    def last_index(self) -> int:
        """``raftLog.lastIndex()``: the trace's ``log`` field."""
        return self.offset + len(self.log)

    @property
    def last_term(self) -> int:
        return self.term_at(self.last_index) or 0

    def term_at(self, index: int) -> int | None:
        """``raftLog.term(index)``; None where etcd returns an error (compacted, or beyond)."""
        if index == self.offset:
            return self.offset_term
        if self.offset < index <= self.last_index:
            return self.log[index - self.offset - 1].term
        return None

    def entries(self, lo: int, hi: int) -> tuple[Entry, ...]:
        """Entries lo..hi (inclusive), all inside the log."""
        return self.log[lo - self.offset - 1: hi - self.offset]

    def match_of(self, peer: int) -> int:
        return dict(self.match).get(peer, 0)

    @property
    def members(self) -> frozenset[int]:
        """Every voter of the (possibly joint) configuration: ``trk.Voters.IDs()``."""
        return self.voters | self.outgoing


def ready(s: Server) -> Server:
    """``RawNode.acceptReady`` then ``Advance`` (synchronous storage): everything committed so
    far was handed to the application, which has applied it once the Ready is handled."""
    return s.evolve(applied=s.commit)


# --- quorums (quorum/majority.go, quorum/joint.go) -------------------------------------------

def majority_index(voters: frozenset[int], match: dict[int, int]) -> float:
    """``MajorityConfig.CommittedIndex``: the highest index acknowledged by a majority; an
    empty config commits everything (so that a joint quorum reduces to the other half)."""
    if not voters:
        return float("inf")
    acked = sorted((match.get(v, 0) for v in voters), reverse=True)
    return acked[len(voters) // 2]


def committed_index(s: Server) -> float:
    """``JointConfig.CommittedIndex``: the smaller of both halves."""
    match = dict(s.match)
    return min(majority_index(s.voters, match), majority_index(s.outgoing, match))


def vote_won(s: Server) -> bool:
    """``JointConfig.VoteResult`` is VoteWon: a majority of granted votes in both halves."""
    return all(not half or 2 * len(half & s.granted) > len(half)
               for half in (s.voters, s.outgoing))


# --- role changes (raft.go becomeFollower/Candidate/PreCandidate/Leader, reset) --------------

def reset(s: Server, term: int) -> Server:
    """``raft.reset``: a new term forgets the vote; leadership, votes and progress start over."""
    vote = s.vote if s.term == term else 0
    return s.evolve(term=term, vote=vote, lead=0, granted=NO_IDS, rejected=NO_IDS, match=(),
                    proposal=())


def become_follower(s: Server, term: int, lead: int) -> Server:
    return reset(s, term).evolve(role=FOLLOWER, lead=lead)


def has_unapplied_conf_changes(s: Server) -> bool:
    """``raft.hasUnappliedConfChanges``: a committed configuration entry not yet applied."""
    lo = max(s.applied, s.offset) + 1
    return any(e.conf is not None for e in s.entries(lo, min(s.commit, s.last_index)))


def campaign_allowed(s: Server, i: int, guard: bool = True) -> tuple[str, ...]:
    """``raft.hup``'s conditions, as the ones that fail (empty: may campaign)."""
    failed = []
    if s.role == LEADER:
        failed.append("is not the leader")
    if i not in s.members:
        failed.append(f"promotable: a voter of its configuration {sorted(s.members)}")
    if guard and has_unapplied_conf_changes(s):
        failed.append("no committed configuration change left unapplied (raft.hup guard, "
                      "etcd-io/raft #456)")
    return tuple(failed)


def become_pre_candidate(s: Server) -> Server:
    """``becomePreCandidate``: no term change, no vote; leadership forgotten."""
    return s.evolve(role=PRE_CANDIDATE, lead=0, granted=NO_IDS, rejected=NO_IDS)


def become_candidate(s: Server, i: int) -> Server:
    return reset(s, s.term + 1).evolve(role=CANDIDATE, vote=i)


def become_leader(s: Server, i: int) -> Server:
    """Progress reset: every Match 0 but the leader's own, its last index."""
    s = reset(s, s.term)
    peers = s.members | s.learners | {i}
    match = tuple(sorted((p, s.last_index if p == i else 0) for p in peers))
    return s.evolve(role=LEADER, lead=i, match=match)


# --- the leader's log and progress -----------------------------------------------------------

def propose(s: Server, entry: Entry) -> Server:
    """A traced proposal (Replicate: a normal entry; ChangeConf: a configuration entry): etcd
    traces it before ``raftLog.append``, which happens when ``appendEntry`` returns."""
    return s.evolve(proposal=s.proposal + (entry,))


def append_entry(s: Server, leave_joint: bool) -> Server:
    """``appendEntry``'s ``raftLog.append``: the traced proposals, plus an untraced empty
    ConfChangeV2 (leave the joint configuration: auto-leave, or proposed explicitly; etcd
    traces no ChangeConf for a change without single changes)."""
    entries = s.proposal + ((Entry(s.term, ()),) if leave_joint else ())
    return s.evolve(log=s.log + entries, proposal=())


def maybe_update(s: Server, peer: int, index: int) -> Server:
    """``Progress.MaybeUpdate``: Match only grows."""
    match = dict(s.match)
    if index <= match.get(peer, 0):
        return s
    match[peer] = index
    return s.evolve(match=tuple(sorted(match.items())))


def maybe_commit(s: Server) -> Server:
    """``raft.maybeCommit``: commit the joint-quorum index if its entry is of this term."""
    index = committed_index(s)
    if index == float("inf") or index <= s.commit:
        return s
    if s.term_at(int(index)) != s.term:
        return s
    return s.evolve(commit=int(index))


def heartbeat_commit(s: Server, to: int) -> int:
    """``sendHeartbeat``: the commit a MsgHeartbeat carries."""
    return min(s.match_of(to), s.commit)


def app_message(s: Server, i: int, to: int, prev: int, count: int) -> Message | None:
    """``maybeSendAppend``: entries prev+1..prev+count with prevLogTerm and the commit index;
    None if the leader's log does not hold them (it would send a snapshot)."""
    prev_term = s.term_at(prev)
    if prev_term is None or prev + count > s.last_index:
        return None
    return Message(MSG_APP, s.term, i, to, index=prev, log_term=prev_term, commit=s.commit,
                   entries=s.entries(prev + 1, prev + count))


# --- follower side: raft.handleAppendEntries, handleHeartbeat, handleSnapshot ----------------

def find_conflict_by_term(s: Server, index: int, term: int) -> tuple[int, int]:
    """``raftLog.findConflictByTerm``: the largest index <= index whose term is <= term."""
    while True:
        t = s.term_at(index)
        if t is None:
            return index, 0
        if t <= term or index == 0:
            return index, t
        index -= 1


def handle_append_entries(s: Server, i: int, m: Message) -> tuple[Server, Message]:
    """The follower's log and commit after a MsgApp, and its MsgAppResp."""
    def resp(index: int, **kw) -> Message:
        return Message(MSG_APP_RESP, s.term, i, m.frm, index=index, **kw)

    if m.index < s.commit:
        return s, resp(s.commit)
    if s.term_at(m.index) == m.log_term:
        last_new = m.index + len(m.entries)
        log = s
        for k, e in enumerate(m.entries):
            idx = m.index + 1 + k
            if log.term_at(idx) != e.term:       # findConflict: truncate and append from here
                log = log.evolve(log=log.entries(log.offset + 1, idx - 1) + m.entries[k:])
                break
        commit = max(log.commit, min(m.commit, last_new))
        return log.evolve(commit=commit), resp(last_new)
    hint, hint_term = find_conflict_by_term(s, min(m.index, s.last_index), m.log_term)
    return s, resp(m.index, reject=True, reject_hint=hint, log_term=hint_term)


def handle_heartbeat(s: Server, i: int, m: Message) -> tuple[Server, Message]:
    """``commitTo(m.Commit)`` (never backwards), and a MsgHeartbeatResp."""
    return (s.evolve(commit=max(s.commit, m.commit)),
            Message(MSG_HEARTBEAT_RESP, s.term, i, m.frm))


def restore(s: Server, snap: Snapshot) -> Server | None:
    """``raft.restore`` when it succeeds (a snapshot beyond the commit whose last entry the log
    does not hold): the log becomes the snapshot and the tracker starts empty; None otherwise."""
    if snap.index <= s.commit or s.role != FOLLOWER or s.term_at(snap.index) == snap.term:
        return None
    return s.evolve(offset=snap.index, offset_term=snap.term, log=(), commit=snap.index,
                    voters=NO_IDS, outgoing=NO_IDS, learners=NO_IDS, conf_applied=snap.index,
                    applied=snap.index, restored=True)


def handle_snapshot(s: Server, i: int, m: Message) -> tuple[Server, Message]:
    """The MsgAppResp of ``handleSnapshot``: last index after a restore; otherwise the commit
    index, fast-forwarded when the log already holds the snapshot's last entry."""
    snap = m.snapshot
    assert snap is not None
    if s.restored:
        return s, Message(MSG_APP_RESP, s.term, i, m.frm, index=s.last_index)
    if snap.index > s.commit and s.term_at(snap.index) == snap.term:
        s = s.evolve(commit=snap.index)
    return s, Message(MSG_APP_RESP, s.term, i, m.frm, index=s.commit)


def stale_response(s: Server, i: int, m: Message) -> Message:
    """With CheckQuorum or PreVote, a MsgApp/MsgHeartbeat of a lower term is answered with an
    empty MsgAppResp of the receiver's term (so the stale leader steps down)."""
    return Message(MSG_APP_RESP, s.term, i, m.frm)


# --- elections -------------------------------------------------------------------------------

def is_up_to_date(s: Server, m: Message) -> bool:
    """``raftLog.isUpToDate``: the candidate's last (term, index) is at least ours."""
    return (m.log_term, m.index) >= (s.last_term, s.last_index)


def vote_responses(s: Server, i: int, m: Message) -> list[tuple[Message, bool]]:
    """``Step`` case MsgVote: each response etcd may send (granted?). ``canVote`` needs
    ``r.lead == None``, which untraced events (MsgForgetLeader, a pre-vote round) may have set;
    so a follower that knew a leader may grant or refuse."""
    up = is_up_to_date(s, m)
    grant = Message(MSG_VOTE_RESP, m.term, i, m.frm)
    refuse = Message(MSG_VOTE_RESP, s.term, i, m.frm, reject=True)
    if s.vote == m.frm and up:
        return [(grant, True)]
    if s.vote == 0 and up:
        return [(grant, True), (refuse, False)] if s.lead != 0 else [(grant, True)]
    return [(refuse, False)]


def record_vote(s: Server, m: Message) -> Server:
    """``poll``: a candidate records a response of its term (the first one from each voter)."""
    if m.frm in s.granted or m.frm in s.rejected:
        return s
    if m.reject:
        return s.evolve(rejected=s.rejected | {m.frm})
    return s.evolve(granted=s.granted | {m.frm})


# --- configuration (confchange/confchange.go) ------------------------------------------------

def apply_changes(s: Server, changes: Iterable[tuple[str, int]]
                  ) -> tuple[frozenset[int], frozenset[int]]:
    """Voters and learners after single changes (AddNode, RemoveNode, AddLearnerNode)."""
    voters, learners = set(s.voters), set(s.learners)
    for action, node in changes:
        voters.discard(node)
        learners.discard(node)
        if action == ADD_VOTER:
            voters.add(node)
        elif action == ADD_LEARNER:
            learners.add(node)
    return frozenset(voters), frozenset(learners)


def next_conf_entry(s: Server) -> tuple[int, Entry] | None:
    """The first committed configuration entry not yet applied (the one ApplyConfChange
    applies), if the log holds it."""
    lo = max(s.conf_applied, s.offset) + 1
    for k, e in enumerate(s.entries(lo, min(s.commit, s.last_index))):
        if e.conf is not None:
            return lo + k, e
    return None


def switch_to_config(s: Server, i: int, voters: frozenset[int], outgoing: frozenset[int],
                     learners: frozenset[int]) -> Server:
    """``switchToConfig``: the new configuration; a leader tracks a new peer from Match 0."""
    s = s.evolve(voters=voters, outgoing=outgoing, learners=learners)
    if s.role == LEADER:
        match = dict(s.match)
        for p in voters | outgoing | learners:
            match.setdefault(p, 0)
        s = s.evolve(match=tuple(sorted(match.items())))
    return s


def apply_conf_change(s: Server, i: int, newconf: frozenset[int]) -> list[tuple[str, Server]]:
    """``applyConfChange`` of the next committed configuration entry: LeaveJoint (an empty
    change), EnterJoint or Simple (the entry does not say which; each is kept and the next
    event's ``conf`` tells them apart). Returns (name, state) for each way that yields
    ``newconf`` as the incoming voters."""
    found = next_conf_entry(s)
    if found is None:
        return []
    index, entry = found
    s = s.evolve(conf_applied=index)
    out = []
    if entry.conf == UNKNOWN_CHANGE:
        return [("Simple", switch_to_config(s, i, newconf, NO_IDS, s.learners - newconf))]
    if entry.conf == ():
        if newconf == s.voters and s.outgoing:
            out.append(("LeaveJoint", switch_to_config(s, i, s.voters, NO_IDS, s.learners)))
        return out
    voters, learners = apply_changes(s, entry.conf)
    if voters != newconf:
        return out
    out.append(("Simple", switch_to_config(s, i, voters, NO_IDS, learners)))
    if not s.outgoing:
        out.append(("EnterJoint", switch_to_config(s, i, voters, s.voters, learners)))
    return out


def edit(protocol):  # noqa: ANN001, ANN201 (the variant-loading interface)
    """Not a table edit: say where the etcd-raft semantics are used instead."""
    from raftspec.protocol.errors import RaftspecError

    raise RaftspecError("'etcd' is not an edit of raft.tla's action table: it is the semantics "
                        "etcd-raft traces are validated against (raftspec validate --format "
                        "etcd, docs/etcd.md); its bounded model is "
                        "reference/variants/etcd_model.py")
