"""The sharded search (``checker.parallel``) with Ray actors as shard owners: ``check --ray``.

Each actor holds one ``Shard`` and builds its own copy of the system with a factory the caller
gives (``check --ray`` loads the model file: the generated successor code does not travel, so
the path must be readable on every node); the shards use the system's ``action_name`` and
``reachable`` attributes where it has them. A level is three chained actor calls, submitted
at once: every actor takes the states other actors give it to even out the level (``give``
results, straight from actor to actor), ranks its level and expands it, returning one list of
claims per owner (``num_returns`` = shards, so each list goes straight from its maker to its
owner through Ray's object store, never through the driver); every owner takes its lists and
returns one award per shard the same way (the claims that shard lost); every shard takes its
awards, checks the states it holds and did not lose, and reports. The driver only sees the
level's sorted keys and runs the same coordinator as for processes, so the figures are one
worker's.

Fingerprints are Python's hash of tuples of ints: the same on every node with the same Python
version (Ray requires one Python version across a cluster anyway).
"""

from __future__ import annotations

import contextlib
import signal
import time
from array import array
from collections.abc import Callable
from typing import Any

from raftspec.checker.gcpolicy import set_search_policy
from raftspec.checker.parallel import Shard, WorkerError
from raftspec.protocol.errors import RaftspecError


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RaftspecError("--ray needs Ray, an optional extra: pip install 'raftspec[ray]'",
                            field="--ray") from None
    return ray


def _compact(claims: tuple) -> tuple:
    """A batch of claims (holder, flat list of fingerprint, key, parent fingerprint, ...) as
    an int64 array, 8 bytes a number in Ray's object store."""
    holder, flat = claims
    return (holder, array("q", flat))


class _ShardActor:
    """One shard inside a Ray actor (wrapped with ``ray.remote`` on first use)."""

    def __init__(self, make_system: Callable[[], Any], me: int, shards: int,
                 count_actions: bool) -> None:
        set_search_policy()   # the actor's process only searches
        system = make_system()
        self.shard = Shard(system, me, shards, count_actions,
                           getattr(system, "action_name", str),
                           getattr(system, "reachable", None) or None)
        self.shards = shards

    def load(self, arg: tuple) -> None:
        self.shard.load(*arg)

    def expand(self, all_keys: list[bytes] | None, *gifts: Any) -> Any:
        """Take the states given to this shard, rank the level (``Shard.advance``), expand
        it: this shard's claims, one list of batches per owner."""
        for given in gifts:
            self.shard.take(given)
        if all_keys is not None:
            self.shard.advance(all_keys)
        out: list[list[tuple]] = [[] for _ in range(self.shards)]
        self.shard.expand(lambda dest, claims: out[dest].append(_compact(claims)), lambda: None)
        return out[0] if self.shards == 1 else tuple(out)

    def arbitrate(self, *inputs: list[tuple]) -> Any:
        """Every shard's claims on this shard's fingerprints in; one award per shard out."""
        for batches in inputs:
            for claims in batches:
                self.shard.receive(claims)
        awards = [array("q", award) for award in self.shard.arbitrate()]
        return awards[0] if self.shards == 1 else tuple(awards)

    def finish(self, pending: list[str], *awards: Any) -> dict:
        for award in awards:
            self.shard.accept(award)
        return self.shard.finish(pending)

    def prefix(self, arg: tuple[int, bool]) -> dict:
        return self.shard.prefix(*arg)

    def give(self, count: int) -> Any:
        return self.shard.give(count)

    def parent(self, fp: int) -> int:
        return self.shard.parent_of(fp)

    def step_violation(self, _: Any = None) -> tuple:
        return self.shard.violating_step()


class RayBackend:
    """Shards as Ray actors, for ``parallel.run_sharded``."""

    def __init__(self, ray: Any, make_system: Callable[[], Any], shards: int,
                 count_actions: bool, owns_ray: bool, startup_s: float = 0.0) -> None:
        self.ray, self.shards, self.owns_ray = ray, shards, owns_ray
        self.startup_s = startup_s   # starting Ray: not the search's time (``run_sharded``)
        actor = ray.remote(num_cpus=1)(_ShardActor)
        self.actors = [actor.remote(make_system, me, shards, count_actions)
                       for me in range(shards)]

    def _get(self, refs: list, watch: Callable[[], None] | None = None) -> list:
        ray = self.ray
        try:
            if watch is not None:
                waiting = list(refs)
                while waiting:
                    _, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=0.1)
                    if waiting:
                        watch()
            return ray.get(refs)
        except ray.exceptions.RayError as err:
            raise WorkerError(f"a Ray shard failed: {err}",
                              killed=isinstance(err, ray.exceptions.RayActorError)) from None

    def call(self, shard: int, command: str, arg: Any = None) -> Any:
        return self._get([getattr(self.actors[shard], command).remote(arg)])[0]

    def call_all(self, command: str, args: list[Any], watch: Callable[[], None] | None = None
                 ) -> list[Any]:
        if command == "level":
            n = self.shards
            pending, all_keys, moves = args[0]
            gifts: list[list] = [[] for _ in range(n)]
            for src, dst, count in moves:   # each actor gives before it expands (call order)
                gifts[dst].append(self.actors[src].give.remote(count))
            made = [a.expand.options(num_returns=n).remote(all_keys, *gifts[d])
                    for d, a in enumerate(self.actors)]
            if n == 1:
                made = [[ref] for ref in made]
            awarded = [a.arbitrate.options(num_returns=n).remote(*[made[s][d] for s in range(n)])
                       for d, a in enumerate(self.actors)]
            if n == 1:
                awarded = [[ref] for ref in awarded]
            refs = [a.finish.remote(pending, *[awarded[s][d] for s in range(n)])
                    for d, a in enumerate(self.actors)]
        else:
            refs = [getattr(a, command).remote(arg)
                    for a, arg in zip(self.actors, args, strict=True)]
        return self._get(refs, watch)

    def progress(self) -> tuple[int, int]:
        return (0, 0)   # actors report at the end of each level only

    def settle(self) -> bool:
        """An actor runs its calls one after the other: it would answer for parents only once
        the whole level is done, so after a stop mid-level no path is rebuilt."""
        return False

    def reset_progress(self) -> None:
        pass

    def close(self) -> None:
        for a in self.actors:
            with contextlib.suppress(Exception):   # already gone with its node
                self.ray.kill(a)
        self.actors = []
        if self.owns_ray:
            self.ray.shutdown()


def ray_backend(address: str | None, make_system: Callable[[], Any],
                num_cpus: int | None = None) -> Callable[..., RayBackend]:
    """A backend factory for ``explore(backend=...)``: connects to the Ray cluster at
    ``address`` (``auto``, ``ray://host:10001``, ``host:6379``) or starts a local instance
    (with ``num_cpus`` CPUs, default all of this machine's), then one actor per shard, each
    building its system with ``make_system`` (picklable: a module-level function or a
    ``functools.partial`` of one)."""
    ray = _import_ray()

    def make(system: Any, shards: int, count_actions: bool, action_name: Any,
             reachable: Any) -> RayBackend:
        owns = not ray.is_initialized()
        started = time.perf_counter()
        if owns:
            # ray.init installs its own SIGTERM handler (it aborted the process: exit 134, a C
            # stack dump): the caller's handlers, e.g. the CLI's stop on SIGTERM, are put back
            handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                ray.init(address=address, num_cpus=num_cpus if address is None else None,
                         include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise RaftspecError(f"cannot start or reach Ray at {address or 'local'}: "
                                    f"{err}", field="--ray") from None
            finally:
                for sig, handler in handlers.items():
                    if handler is not None:   # None: not set from Python, nothing to restore
                        with contextlib.suppress(ValueError):   # not the main thread
                            signal.signal(sig, handler)
        return RayBackend(ray, make_system, shards, count_actions, owns,
                          time.perf_counter() - started)

    return make
