"""Memory states: where a network can hold a memory, whether at attractors or on marginal manifolds.

A trained network need not store its memories at isolated attractors: a gated cell with saturated update
gates has a continuum of slow, marginal states (Jacobian eigenvalues on the unit circle), found by the
finder as many slow points along a manifold. `memory_states` groups every member's stable and marginal
points (`FixedPoints.n_unstable == 0`: exact fixed points and analysed slow points alike) into memory
states:

1. **by readout label** first: the nearest of the task's memory readouts (`task.memory_readouts()`, e.g.
   the flip-flop's corners of {−1, +1}³), so that one memory state answers one way; without readouts
   every point has the same label (grouping by distance only);
2. **by distance** within a label: single linkage, two points are linked when they are at most `scale`
   apart (Euclidean, in the flat state space) and a memory state is a connected component.

The default `scale` is a quarter of the smallest distance between two of the member's *stable* points
(no eigenvalue within δ of the unit circle), the rule `topology_graph` matches branch ends with: two
attractors are never linked, so a network whose memory states are all attractors has one memory state per
stable point, as before; points on a marginal manifold, as dense as the finder found them, are linked
into one state per label. A member with fewer than two stable points has an infinite scale: one memory
state per label.

Each memory state has a **mechanism**: `"attractor"` when all its points are stable (an isolated
attractor, or a few stable points within `scale`), else `"marginal manifold of dimension m"` with `m` the
most common number of marginal eigenvalues (`n_marginal`) of its marginal points.
"""

import collections
import dataclasses
import math

import numpy as np

from .._checks import check_positive
from .._results import Result
from ._fixed_point_set import FixedPoints
from ._fixed_points import pairwise_distances

ATTRACTOR = "attractor"


def marginal_mechanism(dimension: int) -> str:
    """The mechanism name of a marginal memory state of dimension `dimension`."""
    return f"marginal manifold of dimension {int(dimension)}"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class MemoryStates(Result):
    """The memory states of every member (`memory_states`' result; `V_k` states for member `k`).

    **Fields:**

    - `n_members`: `K`.
    - `points`: a list of `K` lists, one `(P_i,)` int array per memory state: the indices (into the
      `FixedPoints` arrays) of its stable and marginal points.
    - `representative`: a list of `K` `(V_k,)` int arrays, each state's point of least `q` (the node of
      `topology_graph`).
    - `label`: a list of `K` `(V_k,)` int arrays, the index of each state's readout among `readouts`
      (−1 without readouts).
    - `dimension`: a list of `K` `(V_k,)` int arrays, the marginal dimension `m` (0 for an attractor).
    - `exact`: a list of `K` `(V_k,)` bool arrays, whether the state has an exact fixed point.
    - `scale`: `(K,)` the linkage scale used for each member.
    - `readouts`: `(C, O)` the readouts the points were labelled by, or None.
    """

    n_members: int
    points: list
    representative: list
    label: list
    dimension: list
    exact: list
    scale: np.ndarray
    readouts: np.ndarray | None

    _max_rows = 8  # the rows `repr` shows

    def __len__(self) -> int:
        return self.n_members

    def n_states(self, k: int) -> int:
        """`V_k`, the number of memory states of member `k`."""
        return len(self.representative[k])

    def mechanisms(self, k: int) -> list[str]:
        """Member `k`'s mechanism of each memory state (`"attractor"` or `"marginal manifold of dimension m"`)."""
        return [ATTRACTOR if m == 0 else marginal_mechanism(m) for m in self.dimension[k]]

    def counts(self, k: int) -> dict:
        """`{mechanism: number of member k's memory states}`."""
        return dict(sorted(collections.Counter(self.mechanisms(k)).items()))

    def to_dict(self) -> dict:
        """JSON-ready: per member, the number of memory states, their counts by mechanism and every state
        (points, representative, readout label, mechanism, dimension, exact)."""
        members = []
        for k in range(self.n_members):
            mech = self.mechanisms(k)
            members.append(
                {
                    "member": k,
                    "n_states": self.n_states(k),
                    "by_mechanism": self.counts(k),
                    "scale": float(self.scale[k]),
                    "states": [
                        {
                            "points": self.points[k][i].tolist(),
                            "representative": int(self.representative[k][i]),
                            "label": int(self.label[k][i]),
                            "mechanism": mech[i],
                            "dimension": int(self.dimension[k][i]),
                            "exact": bool(self.exact[k][i]),
                        }
                        for i in range(self.n_states(k))
                    ],
                }
            )
        return {
            "n_members": self.n_members,
            "readouts": None if self.readouts is None else self.readouts.tolist(),
            "members": members,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "MemoryStates":
        """The `MemoryStates` of a `to_dict()` (e.g. read back from `analysis.json`'s `memory`). Raises
        `ValueError` naming the missing key."""
        try:
            members = sorted(d["members"], key=lambda m: m["member"])
            k = int(d["n_members"])
            if [m["member"] for m in members] != list(range(k)):
                raise ValueError(f"`members` must list members 0..{k - 1}.")
            fields: dict[str, list] = {name: [] for name in ("points", "representative", "label", "dimension", "exact")}
            for m in members:
                states = m["states"]
                fields["points"].append([np.asarray(st["points"], np.int64) for st in states])
                for name, dtype in (
                    ("representative", np.int64),
                    ("label", np.int64),
                    ("dimension", np.int64),
                    ("exact", bool),
                ):
                    fields[name].append(np.asarray([st[name] for st in states], dtype))
            scale = np.asarray([math.inf if m["scale"] is None else m["scale"] for m in members], np.float64)
            readouts = None if d["readouts"] is None else np.asarray(d["readouts"], np.float64)
        except KeyError as e:
            raise ValueError(f"not a MemoryStates dict (no {e}).") from None
        return cls(n_members=k, scale=scale, readouts=readouts, **fields)

    def _table(self) -> tuple[str, list[str], list[list[str]]]:
        header = ["member", "states", "points", "by mechanism"]
        body = [
            [
                str(k),
                str(self.n_states(k)),
                str(sum(len(p) for p in self.points[k])),
                ", ".join(f"{n} {name}" for name, n in self.counts(k).items()) or "–",
            ]
            for k in range(self.n_members)
        ]
        total = collections.Counter(m for k in range(self.n_members) for m in self.mechanisms(k))
        by = ", ".join(f"{n} {name}" for name, n in sorted(total.items())) or "none"
        labels = "no readouts" if self.readouts is None else f"labelled by {self.readouts.shape[0]} readouts"
        return (
            f"MemoryStates: {self.n_members} member(s), {sum(total.values())} memory states ({by}), {labels}",
            header,
            body,
        )


def _components(d: np.ndarray, scale: float) -> np.ndarray:
    """Connected components `(P,)` (labels 0.., in order of first point) of the graph `d <= scale`."""
    p = len(d)
    comp = np.full(p, -1)
    linked = d <= scale
    c = 0
    for i in range(p):
        if comp[i] >= 0:
            continue
        frontier = [i]
        comp[i] = c
        while frontier:
            j = frontier.pop()
            new = np.flatnonzero(linked[j] & (comp < 0))
            comp[new] = c
            frontier.extend(new.tolist())
        c += 1
    return comp


def memory_states(fixed_points: FixedPoints, *, readouts=None, scale: float | None = None) -> MemoryStates:
    """Every member's memory states: its stable and marginal points grouped by readout label, then by
    distance (single linkage; see the module docstring).

    **Arguments:**

    - `fixed_points`: a `FixedPoints` (exact fixed points and analysed slow points).
    - `readouts`: `(C, O)` the memory states' readouts (a task's `memory_readouts()`), each point labelled
      by the nearest (Euclidean); None to group by distance only.
    - `scale`: the linkage distance (> 0); None for a quarter of the smallest distance between two of the
      member's stable points (`inf` with fewer than two).

    **Returns:** a `MemoryStates`; states are ordered by their first point in `fixed_points`' order (so
    with only stable points, in the order of the points).
    """
    if not isinstance(fixed_points, FixedPoints):
        raise TypeError(f"`fixed_points` must be a FixedPoints, got {type(fixed_points).__name__}.")
    fp = fixed_points
    o = fp.outputs.shape[1]
    if readouts is not None:
        readouts = np.asarray(readouts, np.float64)
        if readouts.ndim != 2 or readouts.shape[0] < 1 or readouts.shape[1] != o or not np.all(np.isfinite(readouts)):
            raise ValueError(f"`readouts` must be finite, of shape (C, {o}) with C >= 1, got {readouts.shape}.")
    if scale is not None:
        scale = check_positive("scale", scale)
    fields: dict[str, list] = {name: [] for name in ("points", "representative", "label", "dimension", "exact")}
    scales = np.zeros(fp.n_members)
    assert fp.n_marginal is not None and fp.exact is not None  # the finder sets them
    for k in range(fp.n_members):
        idx = np.flatnonzero((fp.member == k) & (fp.n_unstable == 0))
        pts = fp.points[idx].astype(np.float64)
        marginal = fp.n_marginal[idx] > 0
        if readouts is not None and len(idx):
            label = np.argmin(pairwise_distances(fp.outputs[idx].astype(np.float64), readouts), axis=1)
        else:
            label = np.full(len(idx), -1)
        s = scale
        if s is None:
            st = pts[~marginal]
            s = math.inf
            if len(st) >= 2:
                dd = pairwise_distances(st, st)
                np.fill_diagonal(dd, np.inf)
                s = 0.25 * float(dd.min())
        scales[k] = s
        comp = np.full(len(idx), -1)
        for lab in np.unique(label):  # components within each label, numbered after the previous labels'
            sel = np.flatnonzero(label == lab)
            comp[sel] = _components(pairwise_distances(pts[sel], pts[sel]), s) + comp.max(initial=-1) + 1
        groups = [np.flatnonzero(comp == c) for c in range(comp.max(initial=-1) + 1)]
        groups.sort(key=lambda g: int(g[0]))  # fixed_points' order of their first point
        q = fp.q[idx].astype(np.float64)
        mine: dict[str, list] = {name: [] for name in fields}
        for g in groups:
            mine["points"].append(idx[g])
            mine["representative"].append(int(idx[g[np.argmin(q[g])]]))
            mine["label"].append(int(label[g[0]]))
            m = fp.n_marginal[idx[g]][marginal[g]]
            mine["dimension"].append(int(collections.Counter(m.tolist()).most_common(1)[0][0]) if len(m) else 0)
            mine["exact"].append(bool(np.any(fp.exact[idx[g]])))
        fields["points"].append(mine["points"])
        for name, dtype in (
            ("representative", np.int64),
            ("label", np.int64),
            ("dimension", np.int64),
            ("exact", bool),
        ):
            fields[name].append(np.asarray(mine[name], dtype))
    return MemoryStates(n_members=fp.n_members, scale=scales, readouts=readouts, **fields)


__all__ = ["MemoryStates", "marginal_mechanism", "memory_states"]
