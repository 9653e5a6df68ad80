"""The flip-flop fixed-point analysis of an ensemble split over the processes of a distributed run.

Each process searches the members that live on its devices in a distributed training run
(`local_members` of the global `member_mesh`): the compiled search, the host-side deduplication and
the eigendecompositions all run where the members live. The results (variable numbers of points per
process) are then gathered, in member order, into one `FixedPoints` and one per-member list, the same
in every process. In a single process this is `analyze_fixed_points` itself.
"""

import io
import json

import jax
import numpy as np

from ..training._distributed import gather_bytes, is_distributed, local_members
from ..training._ensemble import ensemble_size
from ..training._sharding import member_mesh
from ._cube import analyze_fixed_points, ensemble_summary
from ._fixed_points import _FP_ARRAYS, _SLOW_ARRAYS, FixedPoints


def sharded_analyze_fixed_points(ensemble, *, key: jax.Array, **options) -> tuple[FixedPoints, list[dict], dict]:
    """`analyze_fixed_points(ensemble, key=key, **options)` with the members split over the processes.

    **Arguments:** as `analyze_fixed_points`; `ensemble` is the whole stacked ensemble (e.g. read
    from `ensemble.npz` by every process); each process takes its own members' rows.

    **Returns:** `(fixed_points, per_member, summary)` for all `K` members, in every process.

    Process `p` searches with `jax.random.fold_in(key, lo)`, `lo` its first member (process 0 with
    `key` itself), so the random candidates of a member depend on how the members are split; the
    fixed points found do not, up to the search's randomness.
    """
    if not is_distributed():
        return analyze_fixed_points(ensemble, key=key, **options)
    k = ensemble_size(ensemble)
    lo, hi = local_members(member_mesh(k), k)
    local = jax.tree_util.tree_map(lambda x: np.asarray(x)[lo:hi] if hasattr(x, "shape") and x.ndim else x,
                                   ensemble)
    inputs = options.pop("inputs", None)
    if inputs is not None and np.ndim(inputs) == 2:  # one input per member: this process's rows
        inputs = np.asarray(inputs)[lo:hi]
    fixed_points, per_member, _ = analyze_fixed_points(local, key=key if lo == 0 else jax.random.fold_in(key, lo),
                                                       inputs=inputs, **options)
    parts = [_from_bytes(b) for b in gather_bytes(_to_bytes(fixed_points, per_member, lo))]
    return _merge(parts)


def _to_bytes(fixed_points: FixedPoints, per_member: list[dict], lo: int) -> bytes:
    arrays = {name: getattr(fixed_points, name) for name in (*_FP_ARRAYS, *_SLOW_ARRAYS, "inputs")}
    if fixed_points.eigvecs is not None:
        arrays["eigvecs"] = fixed_points.eigvecs
    meta = {"lo": lo, "n_members": fixed_points.n_members, "per_member": per_member}
    buf = io.BytesIO()
    np.savez(buf, meta=np.asarray(json.dumps(meta)), **arrays)
    return buf.getvalue()


def _from_bytes(data: bytes) -> tuple[dict, dict]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    for d in meta["per_member"]:  # JSON made the saddle indices strings
        d["n_saddles"] = {int(i): c for i, c in d["n_saddles"].items()}
    return meta, arrays


def _merge(parts: list[tuple[dict, dict]]) -> tuple[FixedPoints, list[dict], dict]:
    """One `FixedPoints` and per-member list from the processes' parts, in process (= member) order:
    member indices shift by each part's first member, point indices by the points before it."""
    per_member, arrays, offset = [], {}, 0
    for meta, a in parts:
        for d in meta["per_member"]:
            d = dict(d, member=d["member"] + meta["lo"])
            d["corner_points"] = [p + offset if p >= 0 else p for p in d["corner_points"]]
            per_member.append(d)
        a = dict(a, member=a["member"] + meta["lo"], slow_member=a["slow_member"] + meta["lo"])
        for name, value in a.items():
            arrays.setdefault(name, []).append(value)
        offset += len(a["member"])
    merged = {name: np.concatenate(values) for name, values in arrays.items()}
    eigvecs = merged.pop("eigvecs", None)
    fixed_points = FixedPoints(n_members=sum(meta["n_members"] for meta, _ in parts), eigvecs=eigvecs, **merged)
    return fixed_points, per_member, ensemble_summary(per_member)


__all__ = ["sharded_analyze_fixed_points"]
