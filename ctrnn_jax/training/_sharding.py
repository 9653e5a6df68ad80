"""Spreading the members of an ensemble over several devices (CPU cores, GPUs).

Members never interact, so splitting the member axis over a 1-D device mesh needs no communication:
each device trains its share of the members. On a CPU, JAX shows one device unless asked for more
(`jax.config.update("jax_num_cpu_devices", n)` before first use; the `ctrnn-jax` command does this
for you); then each device runs on its own core.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def member_mesh(n_members: int, devices=None) -> Mesh | None:
    """A 1-D mesh (axis `"members"`) over the largest number of `devices` (default: all local
    devices of the default backend) that divides `n_members`; None when that number is 1.

    In a distributed run (`init_distributed`, several processes) the default is the global mesh:
    the same number of devices from every process, in process order, as many as divide `n_members`
    (a `ValueError` when `n_members` is not a multiple of the number of processes)."""
    if devices is None and jax.process_count() > 1:
        return _global_mesh(n_members)
    devices = list(jax.local_devices() if devices is None else devices)
    d = max(i for i in range(1, len(devices) + 1) if n_members % i == 0)
    return None if d == 1 else Mesh(np.array(devices[:d]), ("members",))


def _global_mesh(n_members: int) -> Mesh:
    p = jax.process_count()
    by_process = [sorted((d for d in jax.devices() if d.process_index == i), key=lambda d: d.id) for i in range(p)]
    for per in range(min(len(b) for b in by_process), 0, -1):
        if n_members % (per * p) == 0:
            return Mesh(np.array([d for b in by_process for d in b[:per]]), ("members",))
    raise ValueError(
        f"`members` ({n_members}) must be a multiple of the number of processes ({p}) in a distributed run."
    )


def shard_members(tree, mesh: Mesh | None, n_members: int):
    """Place every array of `tree` on `mesh`: split along axis 0 when its length is `n_members`,
    replicated otherwise. Identity when `mesh` is None. Values are unchanged (only the layout)."""
    if mesh is None:
        return tree
    split = NamedSharding(mesh, PartitionSpec("members"))
    whole = NamedSharding(mesh, PartitionSpec())

    def put(x):
        if not isinstance(x, (jax.Array, np.ndarray)):
            return x
        if not split.is_fully_addressable and isinstance(x, jax.Array) and x.is_fully_addressable:
            x = np.asarray(x)  # a process-local array onto a global mesh: each process puts its own part
        return jax.device_put(x, split if x.ndim >= 1 and x.shape[0] == n_members else whole)

    return jax.tree_util.tree_map(put, tree)
