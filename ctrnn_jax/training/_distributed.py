"""One ensemble over many processes and machines, on JAX's own distributed runtime (`jax.distributed`).

After `init_distributed()` every process sees the devices of all processes (`jax.devices()`); the
trainer then splits the member axis over that global mesh (`member_mesh`), and each process holds and
trains only its own members. Members never interact, so the only traffic is the start-up, the loss
gathering between compiled chunks (`to_host`), and the gathers for checkpoints and the final files,
which process 0 alone writes (`is_main_process`).

Nothing here runs at import: `init_distributed` is one explicit call, made by the `ctrnn-jax`
command for `--distributed` or `--coordinator/--num-processes/--process-id`, or by the user.
In a single process every function here is the identity or a no-op.
"""

import functools
import os
import re
import sys
import threading

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from .._checks import check_int


class DistributedError(RuntimeError):
    """A distributed run that could not start or cannot go on (one clear line)."""


_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def init_distributed(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_ids=None,
    timeout: int = 300,
    heartbeat_timeout: int = 100,
    shutdown_timeout: int = 1800,
    cpu_collectives: str | None = "gloo",
) -> None:
    """Join this process to a distributed run (`jax.distributed.initialize`), before any JAX computation.

    **Arguments:**

    - `coordinator`: `"HOST:PORT"` of process 0, which runs the coordination service there.
    - `num_processes`: the number of processes `P` (>= 1).
    - `process_id`: this process's index in `0 … P−1`.
      Leave all three None to let JAX detect them (SLURM, Open MPI, TPU pods, Kubernetes where JAX
      supports it); any given one overrides the detection.
    - `local_device_ids`: restrict this process to these local devices (default: JAX's choice).
    - `timeout`: seconds within which every process must have joined (>= 1). If the coordinator is
      unreachable or fewer processes join, every process ends with a one-line message on stderr and
      exit status 1 after `timeout` seconds (JAX's own `initialization_timeout` is set to
      `timeout + 30` s as a backstop; its failure is a fatal abort with a long log instead).
    - `heartbeat_timeout`: seconds after which JAX declares a silent process dead and ends the others
      (JAX's `heartbeat_timeout_seconds`).
    - `shutdown_timeout`: seconds a finished process waits at exit for the others (JAX's
      `shutdown_timeout_seconds`; long, since process 0 may still be writing figures).
    - `cpu_collectives`: the CPU backend's collectives (`jax_cpu_collectives_implementation`, set here,
      in this call); `"gloo"` lets CPU processes exchange data. None leaves the setting alone.

    After joining, the processes compare the `num_processes` they were given with the coordinator's
    count (process 0's): a mismatch raises `DistributedError` in every process. (Two processes given
    the same `process_id` never complete the start-up: the `timeout` ends them.)
    """
    if coordinator is not None and (
        not isinstance(coordinator, str)
        or not _ADDRESS.match(coordinator)
        or not 0 < int(coordinator.rsplit(":", 1)[1]) < 65536
    ):
        raise ValueError(f"`coordinator` must be HOST:PORT with a port in 1..65535, got {coordinator!r}.")
    if num_processes is not None:
        check_int("num_processes", num_processes, 1)
    if process_id is not None:
        check_int("process_id", process_id, 0)
        if num_processes is not None and process_id >= num_processes:
            raise ValueError(
                f"`process_id` must be in 0..{num_processes - 1} (`num_processes` = {num_processes}), got {process_id}."
            )
    for name, value in (
        ("timeout", timeout),
        ("heartbeat_timeout", heartbeat_timeout),
        ("shutdown_timeout", shutdown_timeout),
    ):
        check_int(name, value, 1)
    if coordinator is not None and process_id == 0:
        _check_port_free(coordinator)
    if cpu_collectives is not None:
        if cpu_collectives not in ("gloo", "mpi", "none"):
            raise ValueError(f"`cpu_collectives` must be gloo, mpi, none or None; got {cpu_collectives!r}.")
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)

    where = coordinator or "the detected coordinator"
    joined = f"all {num_processes} processes" if num_processes else "all processes"
    message = (
        f"the distributed run did not start within {timeout} s: {where} unreachable, or not {joined} "
        "joined (check --coordinator, --num-processes, --process-id and that every process was started)"
    )
    watchdog = threading.Timer(timeout, _give_up, args=(message,))
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(
            coordinator,
            num_processes,
            process_id,
            local_device_ids=local_device_ids,
            initialization_timeout=timeout + 30,
            heartbeat_timeout_seconds=heartbeat_timeout,
            shutdown_timeout_seconds=shutdown_timeout,
        )
        # every process states the count it was told (0: detected); all of them see every claim
        claims = gather_host(np.asarray([num_processes or 0], np.int32))[:, 0]
    finally:
        watchdog.cancel()
    count = jax.process_count()
    for rank, told in enumerate(claims.tolist()):
        if told and told != count:
            raise DistributedError(
                f"--num-processes: process {rank} was told {told} processes, but {count} joined the coordinator."
            )


def _check_port_free(coordinator: str) -> None:
    """Process 0 runs the coordinator: its port must be free here (else JAX's message names neither)."""
    import socket

    port = int(coordinator.rsplit(":", 1)[1])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free to the server
        try:
            sock.bind(("", port))
        except OSError as e:
            raise ValueError(
                f"`coordinator` {coordinator}: port {port} is not free on this machine ({e.strerror}; "
                "another run's coordinator?); choose another port (--coordinator HOST:PORT)."
            ) from None


def _give_up(message: str) -> None:
    """End this process now with a one-line error (the watchdog of `init_distributed`)."""
    sys.stderr.write(f"ctrnn-jax: error: {message}\n")
    sys.stderr.flush()
    os._exit(1)


class PeerWatch:
    """Notice a process of the run that died (killed, its machine down) long before JAX does, and end this
    one with one line (`ctrnn-jax: error: ...`, exit status 1) instead of JAX's fatal abort with a C++ stack
    after `heartbeat_timeout`.

    A daemon thread beats every `beat` seconds through the coordinator's key-value store and reads the
    other processes' beats; a process whose beat has not moved for `stale` seconds (and that has not said it
    finished, `finished()`) is taken as dead, and so is the coordinator when the store cannot be reached.
    Device collectives with a dead peer fail at once by themselves (a `JaxRuntimeError`); this covers the
    rest: waiting in a barrier, writing files, a process that finished early waiting for the others.
    `stop()` before this process's own orderly end. No-op outside a distributed run.
    """

    def __init__(self, stale: float, *, beat: float = 1.0):
        from jax._src import distributed as _jax_distributed  # the runtime's client: no public handle

        self._client = getattr(_jax_distributed.global_state, "client", None)
        self._stop = threading.Event()
        self._stale, self._beat = float(stale), float(beat)
        self._me, self._count = jax.process_index(), jax.process_count()
        self._thread = None
        if self._client is not None and self._count > 1:
            self._thread = threading.Thread(target=self._run, name="ctrnn_jax.PeerWatch", daemon=True)
            self._thread.start()

    def _key(self, what: str, process: int) -> str:
        return f"ctrnn_jax/{what}/{process}"

    def _run(self) -> None:
        import time

        assert self._client is not None  # started only with a client
        last = {p: (-1, time.monotonic()) for p in range(self._count) if p != self._me}
        while not self._stop.wait(self._beat):
            try:
                self._client.key_value_increment(self._key("beat", self._me), 1)
                beats = {p: self._client.key_value_increment(self._key("beat", p), 0) for p in last}
                done = {p for p in last if self._client.key_value_increment(self._key("done", p), 0)}
            except Exception:  # noqa: BLE001 - the coordinator (process 0) is gone
                if not self._stop.is_set():
                    _give_up(
                        f"process {self._me}: lost the coordinator of the distributed run (process 0 ended "
                        "or its machine is unreachable); this process ends too. Files already written are "
                        "intact: start the command again (a run resumes with --resume)."
                    )
                return
            now = time.monotonic()
            for p, (seen, since) in list(last.items()):
                if beats[p] != seen:
                    last[p] = (beats[p], now)
                elif p not in done and now - since > self._stale and not self._stop.is_set():
                    _give_up(
                        f"process {p} of the distributed run has not responded for {self._stale:.0f} s "
                        f"(killed, or its machine is down); process {self._me} ends too. Files already "
                        "written are intact: start the command again (a run resumes with --resume)."
                    )

    def finished(self) -> None:
        """Tell the others that this process ended its work in order (its silence is not a death)."""
        if self._thread is not None:
            assert self._client is not None  # a thread only with a client
            self._client.key_value_increment(self._key("done", self._me), 1)

    def stop(self) -> None:
        self._stop.set()


def is_distributed() -> bool:
    """True when this process is one of several (`jax.process_count() > 1`)."""
    return jax.process_count() > 1


def is_main_process() -> bool:
    """True in process 0, the one that writes files and prints (always True in a single process)."""
    return jax.process_index() == 0


def to_host(tree):
    """Every array of `tree` as a NumPy array holding all of it: arrays split over several processes
    are gathered, all in one compiled call (a collective: every process must call this, in the same
    order); the others are simply copied to the host. Non-array leaves are kept."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    split = [i for i, x in enumerate(leaves) if isinstance(x, jax.Array) and not x.is_fully_addressable]
    named = [i for i in split if isinstance(leaves[i].sharding, NamedSharding)]
    if named:
        whole = tuple(NamedSharding(leaves[i].sharding.mesh, PartitionSpec()) for i in named)
        gathered = _replicate(whole)(*(leaves[i] for i in named))
        for i, x in zip(named, gathered):
            leaves[i] = np.asarray(x.addressable_data(0))
    for i in set(split) - set(named):  # any other layout: JAX's own gather
        from jax.experimental import multihost_utils

        leaves[i] = np.asarray(multihost_utils.process_allgather(leaves[i], tiled=True))
    leaves = [np.asarray(x) if isinstance(x, (jax.Array, np.ndarray)) else x for x in leaves]
    return jax.tree_util.tree_unflatten(treedef, leaves)


@functools.lru_cache(maxsize=64)
def _replicate(shardings: tuple):
    """A compiled identity whose outputs are whole on every device (`shardings`, all replicated)."""
    return jax.jit(lambda *xs: xs, out_shardings=shardings)


def gather_host(x: np.ndarray) -> np.ndarray:
    """`(P, *x.shape)`: this host array from every process, stacked in process order (x itself with a
    leading axis of 1 in a single process). Every process must call it with the same shape."""
    x = np.asarray(x)
    if jax.process_count() == 1:
        return x[None]
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=False))


def gather_bytes(data: bytes) -> list[bytes]:
    """This process's `data` and every other's, in process order (any lengths)."""
    if jax.process_count() == 1:
        return [data]
    sizes = gather_host(np.asarray([len(data)], np.int32))[:, 0]
    buf = np.zeros(max(1, int(sizes.max())), np.uint8)
    buf[: len(data)] = np.frombuffer(data, np.uint8)
    every = gather_host(buf)
    return [every[p, :n].tobytes() for p, n in enumerate(sizes.tolist())]


def barrier(name: str) -> None:
    """Wait until every process has got here (no-op in a single process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def local_members(mesh, n_members: int) -> tuple[int, int]:
    """`(lo, hi)`: the members `lo … hi−1` that live on this process's devices of `mesh` (a
    `member_mesh`; all members when `mesh` is None). Contiguous, since `member_mesh` orders its
    devices by process."""
    if mesh is None:
        return 0, n_members
    devices = list(mesh.devices.flat)
    per = n_members // len(devices)
    mine = [i for i, d in enumerate(devices) if d.process_index == jax.process_index()]
    if not mine:
        return 0, 0
    return mine[0] * per, (mine[-1] + 1) * per


__all__ = [
    "DistributedError",
    "PeerWatch",
    "barrier",
    "gather_bytes",
    "gather_host",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "local_members",
    "to_host",
]
