"""Model files: a bounded Raft model declared in YAML, loaded with errors that say where.

Format (every key but ``name`` and ``servers`` optional)::

    name: tiny2
    description: free text
    servers: 2            # servers are 1..N
    values: 1             # client values are 1..V
    bounds: {max_term: 2, max_log_length: 1, max_messages: 1}
    actions: {restart: true, duplicate: true, drop: true}
    variant: tla          # figure2, a .py file (relative to this file) or a dotted module
    symmetry: false
    invariants: [election_safety, log_matching, leader_completeness, state_machine_safety]
    mutants: []
    reachable: [leader_elected]   # reachability properties: each must hold in some state
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import yaml

from raftspec.protocol import Protocol
from raftspec.protocol.errors import RaftspecError
from raftspec.reference import mutants as shipped_mutants
from raftspec.reference import variants as shipped_variants
from raftspec.reference.config import Config
from raftspec.reference.protocol import RAFT_TLA, build_protocol, shipped, with_mutant

MODELS_DIR = Path(__file__).parent / "models"
DEFAULT_MODEL = MODELS_DIR / "default.yaml"

MAX_SERVERS = 7
"""Beyond this the explicit state space is out of reach anyway; a typo is likelier."""

_BOUND_KEYS = ("max_term", "max_log_length", "max_messages")
# For variants that use them: partitions, membership.
_OPTIONAL_BOUND_KEYS = ("max_partitions", "initial_members")
_ACTION_KEYS = ("restart", "duplicate", "drop")
_TOP_KEYS = (
    "name", "description", "servers", "values", "bounds", "actions", "variant", "symmetry",
    "invariants", "mutants", "reachable",
)


@attrs.frozen
class Model:
    """A loaded model: the protocol instance plus what to check on it."""

    name: str
    path: str
    config: Config
    symmetry: bool = False
    invariants: tuple[str, ...] = ()
    description: str = ""
    reachable: tuple[str, ...] = ()
    """Reachability properties the checker must find true in some reachable state."""
    protocol: Protocol = attrs.field(default=RAFT_TLA, eq=False)
    """raft.tla with the model's variant and mutants applied: what the engines run."""

    @property
    def state_invariants(self) -> tuple[str, ...]:
        return tuple(name for name in self.invariants if name in self.protocol.invariants)

    @property
    def step_properties(self) -> tuple[str, ...]:
        return tuple(name for name in self.invariants if name in self.protocol.step_properties)


def default_model_path() -> Path:
    """The model ``raftspec check`` runs when given none."""
    return DEFAULT_MODEL


def load_model(path: str | Path) -> Model:
    """Read and validate a model file; every mistake names the file, line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RaftspecError("no such model file", path=str(path)) from None
    except UnicodeDecodeError as err:
        raise RaftspecError(f"not a UTF-8 text file (byte {err.start})", path=str(path)) from None
    except OSError as err:
        raise RaftspecError(f"cannot read model file: {err.strerror}", path=str(path)) from None
    return parse_model(text, str(path))


def parse_model(text: str, path: str = "<model>") -> Model:
    """Validate a model given as YAML text (``path`` is only used in messages)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(err, "problem", None) or str(err)
        raise RaftspecError(f"not valid YAML: {problem}", path=path, line=line) from None
    reader = _Reader(path)
    if root is None:
        raise RaftspecError("empty model file", path=path)
    top = reader.mapping(root, "model", _TOP_KEYS)
    for required in ("name", "servers"):
        if required not in top:
            raise RaftspecError(f"missing required key '{required}'", path=path,
                                line=root.start_mark.line + 1)

    name = reader.string(top["name"], "name")
    servers = reader.integer(top["servers"], "servers", low=1, high=MAX_SERVERS)
    values = reader.integer(top["values"], "values", low=1) if "values" in top else 1

    bounds: dict[str, int] = {}
    if "bounds" in top:
        for key, node in reader.mapping(top["bounds"], "bounds",
                                        _BOUND_KEYS + _OPTIONAL_BOUND_KEYS).items():
            low = 1 if key == "max_term" else 0
            high = servers if key == "initial_members" else None
            bounds[key] = reader.integer(node, f"bounds.{key}", low=low, high=high)
    for key in _BOUND_KEYS:
        if key not in bounds:
            raise RaftspecError(
                f"missing bound '{key}': the explicit state space is infinite without it",
                path=path, line=_line(top.get("bounds", root)), field="bounds",
            )

    actions = {key: True for key in _ACTION_KEYS}
    if "actions" in top:
        for key, node in reader.mapping(top["actions"], "actions", _ACTION_KEYS).items():
            actions[key] = reader.boolean(node, f"actions.{key}")

    symmetry = reader.boolean(top["symmetry"], "symmetry") if "symmetry" in top else False
    mutants = (reader.names(top["mutants"], "mutants", tuple(shipped(shipped_mutants)))
               if "mutants" in top else ())
    description = (
        reader.string(top["description"], "description") if "description" in top else ""
    )
    variant = "tla"
    if "variant" in top:
        variant = reader.string(top["variant"], "variant")
    try:
        protocol = build_protocol(variant, (), Path(path).parent)
    except RaftspecError as err:
        if err.path is not None:  # a mistake in the variant's own file, which it names
            raise
        known = ", ".join(["tla", *shipped(shipped_variants)])
        raise reader.fail(top["variant"], "variant", f"{err}; shipped variants: {known}, or "
                          "a .py file relative to the model, or a dotted module") from None
    for mutant, node in zip(mutants, top["mutants"].value if mutants else (), strict=True):
        try:
            protocol = with_mutant(protocol, mutant)
        except RaftspecError as err:
            raise reader.fail(node, "mutants", err.message) from None
    known_properties = (*protocol.invariants, *protocol.step_properties)
    invariants = (
        reader.names(top["invariants"], "invariants", known_properties)
        if "invariants" in top else ()
    )
    reachable = (reader.names(top["reachable"], "reachable", tuple(protocol.reachable))
                 if "reachable" in top else ())
    config = Config(
        servers=servers,
        values=values,
        max_term=bounds["max_term"],
        max_log_length=bounds["max_log_length"],
        max_messages=bounds["max_messages"],
        restart=actions["restart"],
        duplicate=actions["duplicate"],
        drop=actions["drop"],
        mutants=frozenset(mutants),
        variant=variant,
        **{key: bounds[key] for key in _OPTIONAL_BOUND_KEYS if key in bounds},
    )
    return Model(name=name, path=path, config=config, symmetry=symmetry,
                 invariants=invariants, description=description, reachable=reachable,
                 protocol=protocol)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _Reader:
    """Typed access to YAML nodes, raising RaftspecError at the node's line."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, node: yaml.Node, field: str, message: str) -> RaftspecError:
        return RaftspecError(message, path=self.path, line=_line(node), field=field)

    def mapping(self, node: yaml.Node, field: str, keys: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, field, "expected a mapping of keys to values")
        result: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            dotted = key if field == "model" else f"{field}.{key}"
            if key not in keys:
                raise self.fail(key_node, dotted,
                                f"unknown key; expected one of: {', '.join(keys)}")
            if key in result:
                raise self.fail(key_node, dotted, "key given twice")
            result[key] = value_node
        return result

    def _scalar(self, node: yaml.Node, field: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, field, "expected a single value")
        return yaml.safe_load(yaml.serialize(node))

    def integer(self, node: yaml.Node, field: str, low: int = 0, high: int | None = None) -> int:
        value = self._scalar(node, field)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(node, field, f"expected an integer, got {node.value!r}")
        if value < low or (high is not None and value > high):
            allowed = f">= {low}" if high is None else f"between {low} and {high}"
            raise self.fail(node, field, f"must be {allowed}, got {value}")
        return value

    def boolean(self, node: yaml.Node, field: str) -> bool:
        value = self._scalar(node, field)
        if not isinstance(value, bool):
            raise self.fail(node, field, f"expected true or false, got {node.value!r}")
        return value

    def string(self, node: yaml.Node, field: str) -> str:
        value = self._scalar(node, field)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(node, field, f"expected a non-empty string, got {node.value!r}")
        return value

    def names(self, node: yaml.Node, field: str, known: tuple[str, ...]) -> tuple[str, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, field, "expected a list, e.g. [a, b]")
        names: list[str] = []
        for item in node.value:
            name = self.string(item, field)
            if name not in known:
                raise self.fail(item, field,
                                f"unknown name '{name}'; known: {', '.join(known)}")
            if name in names:
                raise self.fail(item, field, f"'{name}' listed twice")
            names.append(name)
        return tuple(names)
