"""Fixed points of an ensemble split over the processes of a distributed run: each process searches the
members on its devices (`fixed_point_stage`), then the results (variable numbers of points per process)
are gathered, in member order, into one `FixedPoints`, the same in every process."""

import io

import numpy as np

from ..training._distributed import gather_bytes
from ._fixed_point_set import _FP_ARRAYS, _FP_EXTRA, _MEMBER_ARRAYS, _SLOW_ARRAYS, FixedPoints


def gather_fixed_points(fixed_points: FixedPoints, lo: int, n_members: int) -> FixedPoints:
    """The `FixedPoints` of all `n_members` members from every process's own (members `lo`, ... of this
    process), in every process."""
    parts = [_from_bytes(b) for b in gather_bytes(_to_bytes(fixed_points, lo))]
    merged = _merge(parts)
    if merged.n_members != n_members:
        raise ValueError(f"gathered fixed points of {merged.n_members} members, expected {n_members}.")
    return merged


def _to_bytes(fixed_points: FixedPoints, lo: int) -> bytes:
    arrays = {name: getattr(fixed_points, name) for name in (*_FP_ARRAYS, *_SLOW_ARRAYS, *_MEMBER_ARRAYS, "inputs")}
    arrays.update({name: getattr(fixed_points, name) for name in _FP_EXTRA if getattr(fixed_points, name) is not None})
    buf = io.BytesIO()
    np.savez(
        buf,
        lo=np.asarray(lo),
        n_members=np.asarray(fixed_points.n_members),
        marginal_tol=np.asarray(fixed_points.marginal_tol),
        **arrays,
    )
    return buf.getvalue()


def _from_bytes(data: bytes) -> dict:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {name: z[name] for name in z.files}


def _merge(parts: list[dict]) -> FixedPoints:
    """One `FixedPoints` from the processes' parts, in process (= member) order: member indices shift by
    each part's first member."""
    arrays: dict[str, list] = {}
    for a in parts:
        lo = int(a["lo"])
        a = dict(a, member=a["member"] + lo, slow_member=a["slow_member"] + lo)
        for name, value in a.items():
            if name not in ("lo", "n_members", "marginal_tol"):
                arrays.setdefault(name, []).append(value)
    merged = {name: np.concatenate(values) for name, values in arrays.items()}
    order = np.lexsort((merged["member"], ~merged["exact"]))  # the exact points first, as find_fixed_points
    merged.update({name: merged[name][order] for name in (*_FP_ARRAYS, *_FP_EXTRA) if name in merged})
    extra = {name: merged.pop(name, None) for name in _FP_EXTRA}  # None where no process had them
    return FixedPoints(
        n_members=sum(int(a["n_members"]) for a in parts),
        marginal_tol=float(parts[0]["marginal_tol"]),
        **extra,
        **merged,
    )


__all__ = ["gather_fixed_points"]
