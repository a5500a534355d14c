"""The engine is generic: checker/ imports no protocol, and a second, toy protocol written against
raftspec.protocol alone runs on the same engine, symmetry and reports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import attrs

from raftspec.checker.explore import explore
from raftspec.checker.report import counterexample_json, counterexample_text
from raftspec.checker.system import ProtocolSystem
from raftspec.protocol import (
    BOOL,
    MESSAGE,
    NUMBER,
    SERVER,
    Field,
    MessageType,
    Param,
    Protocol,
    Row,
    Schema,
)

CHECKER = Path(__file__).resolve().parents[2] / "checker"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_module_of_the_checker_imports_the_raft_reference_or_its_spec() -> None:
    modules = sorted(CHECKER.glob("*.py"))
    assert len(modules) >= 7
    for path in modules:
        raft = {n for n in _imports(path)
                if n.startswith(("raftspec.reference", "raftspec.spec", "raftspec.traces"))}
        assert not raft, f"{path.name} imports {sorted(raft)}"


def test_importing_the_whole_checker_loads_no_raft_module() -> None:
    names = [f"raftspec.checker.{p.stem}" for p in sorted(CHECKER.glob("*.py"))
             if p.stem != "__init__"]
    code = ("import sys\n" + "".join(f"import {n}\n" for n in names)
            + "print(sorted(m for m in sys.modules if m.startswith("
              "('raftspec.reference', 'raftspec.spec'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.strip() == "[]"


# --- A second protocol: a token passed around a ring of servers -------------------------------

TOKEN = 0
SCHEMA = Schema(
    server_fields=(Field("holds", BOOL),),
    message_types=(MessageType("Token", "TOK", (Field("mtype", NUMBER), Field("msource", SERVER),
                                                Field("mdest", SERVER))),),
)


def _pass(state, i, j):
    s = state.server(i)
    if not s.holds or i == j:
        return None
    token = TOKEN_PROTOCOL.messages["Token"](TOKEN, i, j)
    return state.update(i, s.evolve(holds=False)).send(token)


def _pass_and_keep(state, i, j):
    """The planted bug: the sender forgets to give up the token."""
    s = state.server(i)
    if not s.holds or i == j:
        return None
    return state.send(TOKEN_PROTOCOL.messages["Token"](TOKEN, i, j))


def _receive(state, m):
    s = state.server(m.mdest)
    return state.update(m.mdest, s.evolve(holds=True)).discard(m)


def _init(config):
    protocol = TOKEN_PROTOCOL
    servers = tuple(protocol.Server(k == 1) for k in range(1, config.servers + 1))
    return (protocol.State(servers, ()),)


def _pairs(state, config):
    return [(i, j) for i in range(1, config.servers + 1) for j in range(1, config.servers + 1)]


def _one_token(state, config) -> bool:
    return sum(s.holds for s in state.servers) + len(state.messages) == 1


TOKEN_PROTOCOL = Protocol(
    name="token ring",
    schema=SCHEMA,
    init=_init,
    rows=(
        Row("Pass", (Param("server", SERVER), Param("peer", SERVER)), _pairs, _pass),
        Row("Receive", (Param("message", MESSAGE),),
            lambda state, config: [(m,) for m, _ in state.messages], _receive, receives=True),
    ),
    constraint=lambda config: lambda state: True,
    invariants={"one_token": _one_token},
)


@attrs.frozen
class ToyModel:
    protocol: Protocol
    config: object
    symmetry: bool = False
    state_invariants: tuple[str, ...] = ("one_token",)
    step_properties: tuple[str, ...] = ()


@attrs.frozen
class Servers:
    servers: int


def test_a_second_protocol_runs_on_the_same_engine_with_the_counts_worked_out_by_hand() -> None:
    # N servers: the token is held by one of N servers, or in flight on one of N(N-1) links:
    # N^2 states. Generated: Init, N-1 passes from each held state, 1 receive from each
    # in-flight one: 1 + 2N(N-1).
    for n in (2, 3, 4):
        result = explore(ProtocolSystem(ToyModel(TOKEN_PROTOCOL, Servers(n))))
        assert (result.distinct_states, result.states_generated) == (n * n, 1 + 2 * n * (n - 1))
        assert result.violated is None
    # With symmetry, all "held" states form one orbit and all "in flight" states another, but
    # server 1 holds the token initially: held by 1 and held by k are one orbit.
    sym = explore(ProtocolSystem(ToyModel(TOKEN_PROTOCOL, Servers(4), symmetry=True)))
    assert sym.distinct_states == 2


def test_a_planted_bug_in_the_second_protocol_is_reported_from_its_schema() -> None:
    buggy = TOKEN_PROTOCOL.replace("Pass", apply=_pass_and_keep, edit="keeps_token")
    result = explore(ProtocolSystem(ToyModel(buggy, Servers(3))))
    assert result.violated == "one_token" and len(result.trace) == 2
    text = counterexample_text(result.trace, buggy)
    assert "Pass(s1, s2)" in text and "+ TOK s1→s2" in text
    steps = counterexample_json(result.trace, buggy)
    assert steps[1]["action"] == "Pass" and steps[1]["args"] == {"server": 1, "peer": 2}
    assert steps[1]["state"]["messages"] == [
        {"mtype": "Token", "msource": 1, "mdest": 2, "count": 1}]
    assert steps[1]["state"]["servers"][0] == {"id": 1, "holds": True}
