"""The shipped variants (PreVote, CheckQuorum, partitions): random walks keep raft.tla's safety
properties and each variant's own rules; the CI models reach every reachability property they
declare and violate nothing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftspec.checker.explore import explore
from raftspec.checker.system import ProtocolSystem
from raftspec.protocol import RaftspecError
from raftspec.reference.config import Config
from raftspec.reference.protocol import build_protocol
from raftspec.reference.state import Role
from raftspec.reference.variants import checkquorum, partitions, prevote
from raftspec.spec.model import MODELS_DIR, load_model

VARIANTS = MODELS_DIR / "variants"
SAFETY = ("type_ok", "election_safety", "log_matching", "leader_completeness",
          "state_machine_safety")
COMPOSED = ("prevote", "checkquorum", "partitions", "prevote+checkquorum",
            "checkquorum+partitions", "prevote+checkquorum+partitions")


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


CONFIG = Config(servers=3, values=2, max_term=9, max_log_length=9, max_messages=99,
                max_partitions=3)


@settings(max_examples=40, deadline=None)
@given(variant=st.sampled_from(COMPOSED),
       choices=st.lists(st.integers(0, 10**6), min_size=10, max_size=120))
def test_random_walks_keep_safety_and_the_variants_rules(variant, choices) -> None:
    protocol = build_protocol(variant)
    path = walk(protocol, CONFIG, choices)
    for _, state in path:
        for name in SAFETY:
            assert protocol.invariants[name](state, CONFIG), (variant, name)
    for (_, before), (action, after) in zip(path, path[1:], strict=False):
        assert protocol.step_properties["leader_append_only"](before, after, CONFIG)
        if "partitions" in variant:
            assert partitions.minority_cannot_commit(before, after, CONFIG)
            if action.name in {r.name for r in protocol.rows if r.receives}:
                m = action.message
                assert partitions.connected(before, m.msource, m.mdest)
        raised = [i for i, (s, t) in enumerate(zip(before.servers, after.servers,
                                                   strict=True), 1)
                  if t.current_term > s.current_term]
        if "prevote" in variant:
            # Pre-vote traffic and timeouts change no term; a real election only when the
            # answer that completes a pre-vote quorum arrives (and at once).
            if action.name in ("Timeout", "RequestPreVote", "HandlePreVoteRequest"):
                assert not raised, action
            if action.name == "HandlePreVoteResponse":
                m = action.message
                s = before.server(m.mdest)
                completes = (s.role == prevote.PRE_CANDIDATE and m.mvote_granted
                             and m.mterm == s.current_term + 1
                             and 2 * len(s.votes_granted | {m.msource}) > 3)
                assert raised == ([m.mdest] if completes else []), action
            for k, s in enumerate(after.servers, 1):
                if s.role == prevote.PRE_CANDIDATE:
                    assert k in s.votes_granted  # its own pre-vote, counted at once
                    assert 2 * len(s.votes_granted) <= 3  # a quorum starts the election
        if "checkquorum" in variant:
            if action.name == "Timeout":
                assert not checkquorum.in_contact(before, action.server)
            if action.name in ("UpdateTerm", "HandleRequestVoteRequest") and \
                    action.message.mtype == 0:  # RequestVote request
                assert not checkquorum.in_contact(before, action.message.mdest) or not raised
            if action.name == "CheckQuorum" and after.server(action.server).role != Role.LEADER:
                s = before.server(action.server)
                assert 2 * len(s.heard_from | {action.server}) <= 3


def _bmc_refuses(variant: str) -> str:
    protocol = build_protocol(variant)
    return next(r.name for r in protocol.rows if r.encoder is None)


@pytest.mark.parametrize("variant", ["prevote", "checkquorum", "partitions"])
def test_symbolic_engines_have_no_encoder_for_the_new_rows(variant) -> None:
    assert _bmc_refuses(variant)


def test_composition_order_matters_where_it_should() -> None:
    with pytest.raises(RaftspecError):
        build_protocol("prevote+prevote")  # the message types are added once
    assert build_protocol("prevote+checkquorum").describe() == "raft.tla + prevote + checkquorum"


# (model file, properties expected violated): every other listed property must hold, every
# reachability property must be reached.
CI_MODELS = {
    "prevote.yaml": set(),
    "checkquorum.yaml": set(),
    "partitions.yaml": set(),
    "partitions_commit.yaml": set(),
}


@pytest.mark.parametrize("name", sorted(CI_MODELS))
def test_ci_model_reaches_everything_and_violates_only_what_is_expected(name) -> None:
    from raftspec.commands.matrix import check_model

    row = check_model(load_model(VARIANTS / name))
    model = row.model
    assert model.reachable, "every variant model declares reachability properties"
    for prop in model.reachable:
        assert row.cells[prop].status == "reached", (name, prop)
    for prop in model.invariants:
        want = "violated" if prop in CI_MODELS[name] else "ok"
        assert row.cells[prop].status == want, (name, prop)


def test_reachability_witnesses_are_real_paths() -> None:
    model = load_model(VARIANTS / "prevote.yaml")
    system = ProtocolSystem(model)
    result = explore(system, reachable=system.reachable)
    assert not result.unreached
    for name, trace in result.witnesses.items():
        for (_, before), (action, after) in zip(trace, trace[1:], strict=False):
            assert (action, after) in list(model.protocol.steps(before, model.config))
        assert system.reachable[name](trace[-1][1])


@pytest.mark.parametrize(("name", "depth"), [("disruption_tla.yaml", 15),
                                             ("disruption_checkquorum.yaml", 16)])
def test_no_disruption_is_violated_without_prevote(name, depth) -> None:
    """raft.tla and CheckQuorum alone let a server on the other side of a split raise the
    term of a leader that reaches a quorum (the shortest such run, as BFS finds it)."""
    model = load_model(VARIANTS / name)
    system = ProtocolSystem(model)
    system.invariants = {}
    system.step_properties = {"no_disruption": system.step_properties["no_disruption"]}
    result = explore(system)
    assert result.violated == "no_disruption" and len(result.trace) == depth
    _, before = result.trace[-2]
    action, after = result.trace[-1]
    assert action.name == "UpdateTerm"
    leader = action.message.mdest
    assert before.server(leader).role == Role.LEADER
    assert after.server(leader).current_term > before.server(leader).current_term
    assert (action.message.msource in before.partition) != (leader in before.partition)


def test_bmc_on_a_variant_exits_2_naming_the_action() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "raftspec", "bmc",
                           str(VARIANTS / "checkquorum.yaml")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "no encoder" in proc.stderr and "CheckQuorum" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_variant_model_loads_and_declares_reachability() -> None:
    paths = sorted(VARIANTS.glob("*.yaml"))
    assert len(paths) >= 7
    for path in paths:
        model = load_model(path)
        assert model.reachable, path.name
        assert model.config.variant != "tla", path.name
