"""`FixedPoints`, the result of the fixed-point search (`find_fixed_points`, `fixed_point_stage`), and its file
format (`to_npz`/`from_npz`, the `.npz` of the fixed points).

**Classification** with the tolerance band `δ = marginal_tol` around the unit circle: a point is *stable*
when every `|λ| <= 1 − δ`, a *saddle of index k* when `k >= 1` eigenvalues have `|λ| > 1 + δ` (`n_unstable`),
*marginal of dimension m* when none does and `m` have `1 − δ < |λ| <= 1 + δ` (`n_marginal`).
"""

import dataclasses
import json
import numbers
import os
import typing
from pathlib import Path

import numpy as np

from .._files import atomic_write, jsonable, read_npz
from .._results import Result, html_table, text_table

_FP_ARRAYS = (
    "member",
    "points",
    "q",
    "jacobians",
    "eigvals",
    "is_stable",
    "is_stable_ct",
    "n_unstable",
    "outputs",
    "exact",
    "n_marginal",
)
_FP_OPTIONAL = ("exact", "n_marginal")  # absent from files written before slow points were analysed
# per point, may be None (not computed, or files written before them): (P, S, S), (P, S, S), (P, S, M)
_FP_EXTRA = ("eigvecs", "left_eigvecs", "input_jacobians")
MARGINAL_TOL = 1e-3  # the default δ (`FixedPointConfig.marginal_tol`)
_SLOW_ARRAYS = ("slow_member", "slow_points", "slow_q")
# a default of FixedPoints' fields that __post_init__ fills in (None at construction, an array afterwards)
_FILLED = typing.cast(np.ndarray, None)
_MEMBER_ARRAYS = ("capped", "new_last_round")  # (K,) per member; absent from files written before them


def count_marginal(eigvals: np.ndarray, tol: float) -> np.ndarray:
    """`(P,)` int, the number of eigenvalues of each row of `(P, S)` `eigvals` within the band of the unit
    circle, `1 − tol < |λ| <= 1 + tol`."""
    modulus = np.abs(np.asarray(eigvals))
    return np.sum((modulus > 1 - tol) & (modulus <= 1 + tol), axis=-1).astype(np.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class FixedPoints(Result):
    """Fixed points of every member, as flat NumPy arrays with a `member` index (`P` points in all).

    **Fields:**

    - `n_members`: `K`, the number of members searched (members may have no points).
    - `inputs`: `(K, M)` the constant input of each member.
    - `member`: `(P,)` int, which member each point belongs to; the exact points come first, sorted by
      member, then by saddle index, then by `q` (the arrays as they were before slow points were analysed),
      then the analysed slow points, sorted the same way.
    - `points`: `(P, N)` the fixed points `h*` (for a gated cell `(P, S)`, the flat state `s*` of size
      `S = state_size`: `h*` for the GRU, `[h*, c*]` for the LSTM; `N` below reads `S`).
    - `q`: `(P,)` the speed `½‖F(h*) − h*‖²` at each point.
    - `jacobians`: `(P, N, N)` `∂F/∂h` at each point (the discrete map's Jacobian).
    - `eigvals`: `(P, N)` complex, its eigenvalues `λ`, sorted by decreasing `|λ|`.
    - `eigvecs`: `(P, N, N)` complex or `None`; column `eigvecs[p, :, i]` goes with `eigvals[p, i]`.
    - `left_eigvecs`: `(P, N, N)` complex or `None` (kept with `eigvecs`): row `left_eigvecs[p, i, :]` is the
      left eigenvector of `eigvals[p, i]`, normalised so that `left_eigvecs[p] @ eigvecs[p] = I`
      (`lᵢ·rⱼ = δᵢⱼ`); for a slow or marginal mode, its selection vector (`ctrnn_jax.Linearization`).
      complex128 whatever the working precision: at a nearly defective Jacobian (two eigenvectors nearly
      parallel) `lᵢ·rᵢ = 1` makes `lᵢ` very long.
    - `input_jacobians`: `(P, N, M)` or `None` (files written before it was stored): `B = ∂F/∂x` at each point
      and the member's input, so that `h* + A (h − h*) + B (x − x*)` is the map's linearization there.
    - `is_stable`: `(P,)` bool, all `|λ| < 1`: stable for the discrete map.
    - `is_stable_ct`: `(P,)` bool, stable for the continuous-time flow `τ dh/dt = −h + σ(W_rec h + u)`,
      whose Jacobian `(J − I)/a` has eigenvalues `μ = (λ − 1)/a`: all `Re λ < 1`. The discrete map's
      stability implies it; the converse fails only when `a` is large (e.g. `λ = −1.5` at `a = 1`).
      For a gated cell (a discrete-time map) this is taken with `a = 1`, i.e. the flow `ds/dt = F(s) − s`
      whose Euler step of 1 is the cell: all `Re λ < 1`.
    - `n_unstable`: `(P,)` int, the number of `|λ| > 1 + δ`: the saddle index (0 for stable and marginal
      points; the number of `|λ| > 1` wherever no eigenvalue is within δ of the unit circle).
    - `outputs`: `(P, O)` readouts `W_out h* + b_out` (of the hidden part `h*` for the LSTM).
    - `slow_member`, `slow_points`, `slow_q`: `(S,)`, `(S, N)`, `(S,)`, the slow points (deduplicated
      candidates with `tol_q < q <= slow_tol`), as listed before; those under the slow threshold are also
      among the points above, linearized, with `exact` False.
    - `network`: the fingerprint (`ctrnn_jax.io.fingerprint`) of the ensemble the points belong to, or None;
      written to and read from the `.npz`, so that a reader can tell points of other weights.
    - `exact`: `(P,)` bool, `q <= tol_q` (a fixed point to working precision); False for an analysed slow
      point. Default (and in files written before slow points were analysed): all True.
    - `n_marginal`: `(P,)` int, the number of eigenvalues with `1 − δ < |λ| <= 1 + δ`; default computed from
      `eigvals` with `marginal_tol`.
    - `marginal_tol`: δ, the classification's band (`FixedPointConfig.marginal_tol`, default 1e-3).
    - `found_with`: what the points were found with, as JSON: `{"config": FixedPointConfig.to_dict(), "input":
      the constant input (M,), "task": {"name", "config"} or None}` (`fixed_point_stage` records it), or None
      (points of another origin, or files written before it was recorded). Written to and read from the `.npz`,
      so that stored points are reused only for the same input, settings and task.
    - `capped`: `(K,)` bool, a limit cut the member's search short (`max_points`, `completion_rounds`, or the
      pairs per completion round when the rounds ran out with pairs left): its counts are lower bounds.
      Default (and in files written before it was recorded): all False.
    - `new_last_round`: `(K,)` int, the distinct roots the member's last search round added (the completion's
      last round, or the first search when nothing was completed): a completeness estimate, 0 where the
      search had stopped finding new points; -1 unknown (files written before it was recorded).

    Every exact point is polished in float64 (damped Newton) and points that polish to the same root are one
    point, so the counts are counts of distinct roots; a slow point is listed only when no fixed point lies
    within its own slow region (`docs/fixed_points.md`).

    `kind` is each point's class, `"stable"`, `"saddle"` or `"marginal"` (module docstring). `is_stable`
    (every `|λ| < 1`) and `is_stable_ct` are the plain linear stability, without the band.
    """

    n_members: int
    inputs: np.ndarray
    member: np.ndarray
    points: np.ndarray
    q: np.ndarray
    jacobians: np.ndarray
    eigvals: np.ndarray
    eigvecs: np.ndarray | None
    is_stable: np.ndarray
    is_stable_ct: np.ndarray
    n_unstable: np.ndarray
    outputs: np.ndarray
    slow_member: np.ndarray
    slow_points: np.ndarray
    slow_q: np.ndarray
    network: str | None = None
    exact: np.ndarray = _FILLED  # None (the default) is filled in by __post_init__, as for the three below
    n_marginal: np.ndarray = _FILLED
    marginal_tol: float = MARGINAL_TOL
    found_with: dict | None = None
    capped: np.ndarray = _FILLED
    new_last_round: np.ndarray = _FILLED
    left_eigvecs: np.ndarray | None = None
    input_jacobians: np.ndarray | None = None

    def __post_init__(self):
        if self.capped is None:
            object.__setattr__(self, "capped", np.zeros(self.n_members, bool))
        if self.new_last_round is None:
            object.__setattr__(self, "new_last_round", np.full(self.n_members, -1, np.int64))
        for name in _MEMBER_ARRAYS:
            object.__setattr__(self, name, np.asarray(getattr(self, name)).reshape(-1))
            if getattr(self, name).shape != (self.n_members,):
                raise ValueError(
                    f"`{name}` has shape {getattr(self, name).shape}; expected ({self.n_members},), "
                    "one entry per member."
                )
        if self.exact is None:
            object.__setattr__(self, "exact", np.ones(self.member.shape[0], bool))
        if self.n_marginal is None:
            object.__setattr__(self, "n_marginal", count_marginal(self.eigvals, self.marginal_tol))
        for name in _FP_EXTRA:
            value = getattr(self, name)
            if value is not None and (np.ndim(value) != 3 or np.shape(value)[0] != np.shape(self.member)[0]):
                raise ValueError(
                    f"`{name}` has shape {np.shape(value)}; expected ({np.shape(self.member)[0]}, ...), "
                    "one matrix per point like `member`, or None."
                )
        for name in ("exact", "n_marginal"):
            if np.shape(getattr(self, name)) != np.shape(self.member):
                raise ValueError(
                    f"`{name}` has shape {np.shape(getattr(self, name))}; expected "
                    f"{np.shape(self.member)}, one entry per point like `member`."
                )

    def __len__(self) -> int:
        return int(self.member.shape[0])

    @property
    def kind(self) -> np.ndarray:
        """`(P,)` str: `"saddle"` (`n_unstable >= 1`), `"marginal"` (`n_marginal >= 1`) or `"stable"`."""
        return np.where(self.n_unstable > 0, "saddle", np.where(self.n_marginal > 0, "marginal", "stable"))

    def counts(self) -> list[dict]:
        """Per member: `{"member", "points", "stable", "saddles": {index: count}, "slow", "analysed_slow",
        "marginal", "capped", "new_last_round"}`: `points` (distinct roots), `stable` (`kind == "stable"`) and
        `saddles` count the exact points; `slow` the listed slow points; `analysed_slow` the slow points
        analysed; `marginal` the points of either kind classified marginal; `capped`: a limit cut the search
        short (the counts are lower bounds); `new_last_round`: the new roots of the last search round."""
        rows = []
        kind = self.kind
        for k in range(self.n_members):
            mine = (self.member == k) & self.exact
            index = self.n_unstable[mine]
            rows.append(
                {
                    "member": k,
                    "points": int(np.sum(mine)),
                    "stable": int(np.sum(kind[mine] == "stable")),
                    "saddles": {int(i): int(np.sum(index == i)) for i in np.unique(index[index > 0])},
                    "slow": int(np.sum(self.slow_member == k)),
                    "analysed_slow": int(np.sum((self.member == k) & ~self.exact)),
                    "marginal": int(np.sum((self.member == k) & (self.n_unstable == 0) & (self.n_marginal > 0))),
                    "capped": bool(self.capped[k]),
                    "new_last_round": int(self.new_last_round[k]),
                }
            )
        return rows

    def _table(self) -> tuple[str, list[str], list[list[str]]]:
        rows = self.counts()
        present = sorted({i for r in rows for i in r["saddles"]})  # the saddle indices that occur
        header = [
            "member",
            "points",
            "stable",
            *[f"index {i}" for i in present],
            "slow",
            "analysed",
            "marginal",
            "capped",
            "new last round",
        ]
        body = [
            [
                str(r["member"]),
                str(r["points"]),
                str(r["stable"]),
                *[str(r["saddles"].get(i, 0)) for i in present],
                str(r["slow"]),
                str(r["analysed_slow"]),
                str(r["marginal"]),
                "yes" if r["capped"] else "no",
                "?" if r["new_last_round"] < 0 else str(r["new_last_round"]),
            ]
            for r in rows
        ]
        exact = int(np.sum(self.exact))
        capped = int(np.sum(self.capped))
        title = (
            f"FixedPoints: {self.n_members} member(s), {exact} fixed points "
            f"({int(np.sum((self.kind == 'stable') & self.exact))} stable), "
            f"{int(self.slow_member.shape[0])} slow points ({len(self) - exact} analysed), "
            f"state size {self.points.shape[1]}"
            + (f"; CAPPED: {capped} member(s) cut short by a limit (counts are lower bounds)" if capped else "")
        )
        return title, header, body

    def __repr__(self) -> str:
        return text_table(*self._table())

    def _repr_html_(self) -> str:
        _, header, body = self._table()  # a shorter title than `repr`'s
        return html_table(
            f"<b>FixedPoints</b>: {self.n_members} member(s), {int(np.sum(self.exact))} fixed points, "
            f"{int(self.slow_member.shape[0])} slow points",
            header,
            body,
        )

    def to_dict(self) -> dict:
        """The points as plain JSON: `n_members`, `inputs`, `marginal_tol`, `network`, `found_with`, `counts()`
        (per member), the small per-point arrays `member`, `points`, `q`, `exact`, `n_unstable`, `n_marginal`,
        `is_stable`, `is_stable_ct`, `outputs` and `eigvals` (as `[re, im]` pairs, `(P, N, 2)`), and the slow
        points (`slow_member`, `slow_points`, `slow_q`). Not the matrices per point (`jacobians`, `eigvecs`,
        `left_eigvecs`, `input_jacobians`: `to_npz` keeps them)."""
        small = ("member", "points", "q", "exact", "n_unstable", "n_marginal", "is_stable", "is_stable_ct", "outputs")
        eigvals = np.asarray(self.eigvals)
        return jsonable(
            {
                "n_members": int(self.n_members),
                "inputs": self.inputs,
                "marginal_tol": float(self.marginal_tol),
                "network": self.network,
                "found_with": self.found_with,
                "counts": self.counts(),
                **{name: getattr(self, name) for name in small},
                "eigvals": np.stack([eigvals.real, eigvals.imag], axis=-1),
                **{name: getattr(self, name) for name in _SLOW_ARRAYS},
            }
        )

    def _check_member(self, k: object) -> int:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise TypeError(f"`k` must be an integer member index, got {k!r}.")
        index = int(k)
        if not -self.n_members <= index < self.n_members:
            raise IndexError(f"member {k} out of range for {self.n_members} members.")
        return index % self.n_members

    def member_points(self, k: int) -> np.ndarray:
        """`(P_k, N)` the fixed points of member `k`."""
        return self.points[self.member == self._check_member(k)]

    def select(self, k: int) -> "FixedPoints":
        """The fixed points (and slow points) of member `k` only, as a `FixedPoints`. Member indices
        and `n_members` keep their original values, so `select(k).member_points(k)` works."""
        k = self._check_member(k)
        keep, keep_slow = self.member == k, self.slow_member == k
        arrays = {name: getattr(self, name)[keep] for name in _FP_ARRAYS}
        arrays.update({name: getattr(self, name)[keep_slow] for name in _SLOW_ARRAYS})
        arrays.update({name: None if getattr(self, name) is None else getattr(self, name)[keep] for name in _FP_EXTRA})
        return dataclasses.replace(self, **arrays)

    def to_npz(self, path: str | os.PathLike) -> None:
        """Write every array under its field name (plus `n_members`), atomically. `eigvecs`, `left_eigvecs`
        and `input_jacobians` are written only when they are not `None`."""
        arrays = {name: getattr(self, name) for name in (*_FP_ARRAYS, *_SLOW_ARRAYS)}
        arrays["n_members"] = np.asarray(self.n_members)
        arrays["inputs"] = self.inputs
        arrays["marginal_tol"] = np.asarray(self.marginal_tol)
        arrays.update({name: getattr(self, name) for name in _MEMBER_ARRAYS})
        arrays.update({name: getattr(self, name) for name in _FP_EXTRA if getattr(self, name) is not None})
        if self.network is not None:
            arrays["network"] = np.asarray(self.network)
        if self.found_with is not None:
            arrays["found_with"] = np.asarray(json.dumps(self.found_with))
        with atomic_write(path) as f:
            np.savez(f, **arrays)

    @classmethod
    def from_npz(cls, path: str | os.PathLike) -> "FixedPoints":
        """Read a file written by `to_npz`. Raises `ValueError` naming the file if an array is missing
        or the lengths disagree. A file written before slow points were analysed (no `exact`, `n_marginal`,
        `marginal_tol`) reads as all points exact, classified with the default δ; one written before the input
        Jacobians were stored reads with `input_jacobians = None`."""
        path = Path(path)
        required = (*[a for a in _FP_ARRAYS if a not in _FP_OPTIONAL], *_SLOW_ARRAYS, "n_members", "inputs")
        data = read_npz(path, required, "a fixed-points file (eigvecs optional)")
        p = data["member"].shape[0]
        for name in (*_FP_ARRAYS, *(name for name in _FP_EXTRA if name in data)):
            if name not in data:
                continue
            if data[name].ndim < 1 or data[name].shape[0] != p:
                raise ValueError(f"{path}: `{name}` has shape {data[name].shape}; expected {p} rows like `member`.")
        s = data["slow_member"].shape[0]
        for name in _SLOW_ARRAYS:
            if data[name].ndim < 1 or data[name].shape[0] != s:
                raise ValueError(
                    f"{path}: `{name}` has shape {data[name].shape}; expected {s} rows like `slow_member`."
                )
        arrays = {name: data[name] for name in (*_FP_ARRAYS, *_SLOW_ARRAYS, "inputs") if name in data}
        network = str(data["network"]) if "network" in data else None
        tol = float(data["marginal_tol"]) if "marginal_tol" in data else MARGINAL_TOL
        try:
            found_with = json.loads(str(data["found_with"])) if "found_with" in data else None
        except ValueError:
            found_with = None  # unreadable: as if not recorded (the points are found again where it matters)
        members = {
            name: data[name]
            for name in _MEMBER_ARRAYS
            if name in data and data[name].shape == (int(data["n_members"]),)
        }
        extra: dict[str, typing.Any] = {name: data.get(name) for name in _FP_EXTRA}
        return cls(
            n_members=int(data["n_members"]),
            network=network,
            **members,
            **extra,
            marginal_tol=tol,
            found_with=found_with if isinstance(found_with, dict) else None,
            **arrays,
        )


__all__ = ["MARGINAL_TOL", "FixedPoints", "count_marginal"]
