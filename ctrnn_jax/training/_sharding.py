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
    devices of the default backend) that divides `n_members`; None when that number is 1."""
    devices = list(jax.local_devices() if devices is None else devices)
    d = max(i for i in range(1, len(devices) + 1) if n_members % i == 0)
    return None if d == 1 else Mesh(np.array(devices[:d]), ("members",))


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
        return jax.device_put(x, split if x.ndim >= 1 and x.shape[0] == n_members else whole)

    return jax.tree_util.tree_map(put, tree)
