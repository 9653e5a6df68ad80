"""The linearization of a network at its fixed points, with the input: `δs' = A δs + B δu`.

At a fixed point `s* = F(s*, u*)` of the one-step map, a state `s = s* + δs` at an input `u = u* + δu` moves
to `F(s, u) ≈ s* + A δs + B δu`, with `A = ∂F/∂s` (`(S, S)`) and `B = ∂F/∂u` (`(S, M)`, the cell's
`input_jacobian`). With the right eigenvectors `r_j` of `A` (columns, unit norm) and the left ones `l_i`
(rows of `R⁻¹`, so that `l_i · r_j = δ_ij`), a perturbation decomposes into modes, `δs = Σ_j (l_j · δs) r_j`,
each scaled by its eigenvalue `λ_j` per step.

For a slow or marginal mode (`λ` near 1: a line attractor's direction, a slow manifold), the left eigenvector
is Mante, Sussillo et al.'s (Nature 2013) **selection vector**: an input moves the state along the slow mode
by `l · B δu` per step, so `l · B[:, m]` (the **input overlap**) says how much input channel `m` is integrated
along it, whatever the direction `r` the state then moves in. Selection vectors and overlaps are taken for
the `k` modes whose eigenvalues are closest to 1.

`prediction_error` measures how far the linear system holds: from `s* + δ` (`‖δ‖ = r`, random directions),
the network's own `k`-step state against the affine iterate `e_k = A e_{k−1} + d`, `e_0 = δ` (`d = F(s*) − s*`,
0 at an exact fixed point, the drift at a slow point), relative to `r`, per point and radius.

Every function works on any cell through `AbstractRNN` (`step`, `residual_and_jacobian`, `input_jacobian`),
vmapped over the points (each with its member's weights) and compiled once per shape.
"""

import dataclasses
import functools
import typing

import jax
import jax.numpy as jnp
import numpy as np

from .._results import Result, html_table
from ._fixed_point_set import FixedPoints
from ._fixed_points import _left_vectors, _rows, as_ensemble


@jax.jit
def _jacobians(models, points, inputs):
    """`(A, B, d)`, `(P, S, S)`, `(P, S, M)` and `(P, S)`: the Jacobians and the residual `F(s*, u*) − s*` at
    each point with its own network and input."""

    def one(model, s, u):
        with jax.default_matmul_precision("highest"):
            r, jm = model.residual_and_jacobian(s, u)
            return jm + jnp.eye(s.shape[-1], dtype=s.dtype), model.input_jacobian(s, u), r

    return jax.vmap(one)(models, points, inputs)


def _left_right(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues `(P, S)` sorted by decreasing `|λ|`, right eigenvectors `(P, S, S)` (columns, unit norm)
    and left eigenvectors `(P, S, S)` (rows, `L R = I`), from `(P, S, S)` matrices, in float64 on the host."""
    lam, right = np.linalg.eig(np.asarray(a, np.float64))
    order = np.argsort(-np.abs(lam), axis=-1, kind="stable")
    lam = np.take_along_axis(lam, order, -1)
    right = np.take_along_axis(right, order[:, None, :], -1)
    return lam, right, _left_vectors(right)


def _phase(right: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """`(P, k)` the unit phase `c` of the largest entry of each chosen right eigenvector: `r c̄` has it real
    and positive, and `l c` keeps `l · r = 1`."""
    r = np.take_along_axis(right, idx[:, None, :], 2)  # (P, S, k)
    big = np.take_along_axis(r, np.argmax(np.abs(r), axis=1)[:, None, :], 1)[:, 0, :]
    size = np.abs(big)
    return np.where(size > 0, big / np.where(size > 0, size, 1.0), 1.0)


def _real_if(x: np.ndarray, eigvals: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """`x` real when every chosen eigenvalue is real (its vectors then are, after `_phase`), else complex."""
    return x.real if np.all(np.take_along_axis(eigvals, idx, 1).imag == 0) else x


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Linearization(Result):
    """The linear system `δs' = A δs + B δu` at each of `P` fixed points (module docstring).

    **Fields:**

    - `member`: `(P,)` int, the member each point belongs to.
    - `points`: `(P, S)` the fixed points `s*`.
    - `inputs`: `(P, M)` the constant input `u*` each point is a fixed point at.
    - `A`: `(P, S, S)` `∂F/∂s`, the state Jacobian of the one-step map.
    - `B`: `(P, S, M)` `∂F/∂u`, the input Jacobian.
    - `eigvals`: `(P, S)` complex, the eigenvalues of `A`, sorted by decreasing `|λ|`.
    - `right`: `(P, S, S)` complex, `right[p, :, j]` the unit right eigenvector of `eigvals[p, j]`.
    - `left`: `(P, S, S)` complex, `left[p, i, :]` the left eigenvector of `eigvals[p, i]`, normalised so
      that `left[p] @ right[p] = I` (`l_i · r_j = δ_ij`).
    - `drift`: `(P, S)` `F(s*, u*) − s*`: 0 at an exact fixed point (to working precision); the slow drift at
      an analysed slow point, kept as the constant term of the affine prediction.
    """

    member: np.ndarray
    points: np.ndarray
    inputs: np.ndarray
    A: np.ndarray
    B: np.ndarray
    eigvals: np.ndarray
    right: np.ndarray
    left: np.ndarray
    drift: np.ndarray = typing.cast(np.ndarray, None)  # None (the default) is filled in by __post_init__: zeros

    def __post_init__(self):
        if self.drift is None:
            object.__setattr__(self, "drift", np.zeros_like(self.points))

    def __len__(self) -> int:
        return int(self.member.shape[0])

    def _check_k(self, k: object) -> int:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.A.shape[-1]:
            raise ValueError(f"`k` must be an integer in 1..{self.A.shape[-1]} (the state size), got {k!r}.")
        return k

    def slow_modes(self, k: int = 1) -> np.ndarray:
        """`(P, k)` the indices (into `eigvals`) of the `k` modes whose eigenvalues are closest to 1, closest
        first."""
        k = self._check_k(k)
        return np.argsort(np.abs(self.eigvals - 1.0), axis=-1, kind="stable")[:, :k]

    def selection_vectors(self, k: int = 1) -> np.ndarray:
        """`(P, k, S)` the left eigenvectors of the `k` slowest modes (`slow_modes`): Mante et al.'s selection
        vectors, normalised so that `l · r = 1` with `r` the mode's unit right eigenvector. Real for a real
        eigenvalue (the sign makes the largest entry of `r` positive); complex for a complex pair."""
        idx = self.slow_modes(k)
        left = np.take_along_axis(self.left, idx[:, :, None], 1) * _phase(self.right, idx)[:, :, None]
        return _real_if(left, self.eigvals, idx)

    def slow_directions(self, k: int = 1) -> np.ndarray:
        """`(P, S, k)` the unit right eigenvectors of the `k` slowest modes, with the sign of
        `selection_vectors` (largest entry positive): the directions the state moves along."""
        idx = self.slow_modes(k)
        right = np.take_along_axis(self.right, idx[:, None, :], 2) * np.conj(_phase(self.right, idx))[:, None, :]
        return _real_if(right, self.eigvals, idx)

    def input_overlaps(self, k: int = 1) -> np.ndarray:
        """`(P, k, M)` `l_i · B[:, m]`: how far one step of a unit input on channel `m` moves the state along
        each of the `k` slowest modes (in units of the mode's unit right eigenvector)."""
        return np.einsum("pks,psm->pkm", self.selection_vectors(k), self.B)

    def predict(self, states, inputs) -> np.ndarray:
        """The linearized next state `s* + d + A (s − s*) + B (u − u*)` at every point (`d` the `drift`, 0 at
        an exact fixed point): `states` `(P, S)` (or `(S,)`, the same for every point), `inputs` `(P, M)` or
        `(M,)`. Returns `(P, S)`."""
        s = np.broadcast_to(np.asarray(states, np.float64), self.points.shape)
        u = np.broadcast_to(np.asarray(inputs, np.float64), self.inputs.shape)
        return (
            self.points
            + self.drift
            + np.einsum("pij,pj->pi", self.A, s - self.points)
            + np.einsum("pim,pm->pi", self.B, u - self.inputs)
        )

    def _table(self) -> tuple[str, list[str], list[list[str]]]:
        lam = np.take_along_axis(self.eigvals, self.slow_modes(1), 1)[:, 0] if len(self) else np.zeros(0)
        overlap = self.input_overlaps(1)[:, 0, :] if len(self) else np.zeros((0, self.B.shape[-1]))
        header = ["member", "points", "slowest |λ|", "|l·B| per input, median"]
        body = []
        for k in np.unique(self.member):
            mine = self.member == k
            over = np.median(np.abs(overlap[mine]), axis=0)
            body.append(
                [
                    str(int(k)),
                    str(int(mine.sum())),
                    f"{np.max(np.abs(lam[mine])):.4f}",
                    " ".join(f"{v:.3g}" for v in over),
                ]
            )
        return f"Linearization: {len(self)} points, S = {self.A.shape[-1]}, M = {self.B.shape[-1]}", header, body

    def _repr_html_(self) -> str:
        _, header, body = self._table()  # a shorter title than `repr`'s
        return html_table(f"Linearization: {len(self)} points", header, body)

    def to_dict(self, k: int = 1) -> dict:
        """Per point: member, the `k` slowest eigenvalues and the input overlaps (JSON-able; the matrices stay
        in the object)."""
        idx = self.slow_modes(k)
        lam = np.take_along_axis(self.eigvals, idx, 1)
        overlap = self.input_overlaps(k)
        return {
            "member": self.member.tolist(),
            "slow_eigvals": {"real": lam.real.tolist(), "imag": lam.imag.tolist()},
            "input_overlaps": np.abs(overlap).tolist() if np.iscomplexobj(overlap) else overlap.tolist(),
        }


def linearize(ensemble, fixed_points: FixedPoints, *, points: np.ndarray | None = None) -> Linearization:
    """The linearization `δs' = A δs + B δu` of every point of `fixed_points` (or of the rows `points`, a
    boolean mask or indices), each with its member's weights and the input it was found at.

    **Arguments:**

    - `ensemble`: the stacked ensemble the points belong to (any cell).
    - `fixed_points`: a `FixedPoints` of that ensemble.
    - `points`: which points (default all).

    **Returns:** a `Linearization`.
    """
    ensemble = as_ensemble(ensemble)
    if not isinstance(fixed_points, FixedPoints):
        raise TypeError(f"`fixed_points` must be a FixedPoints, got {type(fixed_points).__name__}.")
    if fixed_points.n_members != ensemble.W_out.shape[0] or fixed_points.points.shape[-1] != ensemble.state_size:
        raise ValueError(
            f"`fixed_points` has {fixed_points.n_members} members of state size "
            f"{fixed_points.points.shape[-1]}; the ensemble has {ensemble.W_out.shape[0]} of "
            f"{ensemble.state_size}."
        )
    rows = np.arange(len(fixed_points)) if points is None else np.arange(len(fixed_points))[np.asarray(points)]
    member = fixed_points.member[rows].astype(int)
    states = np.asarray(fixed_points.points[rows])
    inputs = np.asarray(fixed_points.inputs)[member]
    return linearize_states(ensemble, member, states, inputs)


def linearize_states(ensemble, member, states, inputs) -> Linearization:
    """`linearize` at any states (fixed points or not): `member` `(P,)`, `states` `(P, S)`, `inputs` `(P, M)`."""
    ensemble = as_ensemble(ensemble)
    member = np.asarray(member, int).reshape(-1)
    states = np.asarray(states, np.float64).reshape(member.shape[0], ensemble.state_size)
    inputs = np.broadcast_to(np.asarray(inputs, np.float64), (member.shape[0], ensemble.n_inputs))
    if member.size and (member.min() < 0 or member.max() >= ensemble.W_out.shape[0]):
        raise ValueError(f"`member` must index the ensemble's {ensemble.W_out.shape[0]} members.")
    dtype = ensemble.W_rec.dtype
    if member.size:
        a, b, d = _jacobians(_rows(ensemble, member.tolist()), jnp.asarray(states, dtype), jnp.asarray(inputs, dtype))
        a, b, d = np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(d, np.float64)
    else:
        s, m = ensemble.state_size, ensemble.n_inputs
        a, b, d = np.zeros((0, s, s)), np.zeros((0, s, m)), np.zeros((0, s))
    if member.size:
        lam, right, left = _left_right(a)
    else:
        lam, right, left = np.zeros(a.shape[:2], complex), np.zeros(a.shape, complex), np.zeros(a.shape, complex)
    return Linearization(
        member=member, points=states, inputs=np.array(inputs), A=a, B=b, eigvals=lam, right=right, left=left, drift=d
    )


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class PredictionError(Result):
    """How well the linearization predicts the network near each point (`prediction_error`).

    **Fields:**

    - `member`: `(P,)` the member of each point.
    - `radii`: `(R,)` the distances `r = ‖δ‖` of the starting states from the point.
    - `steps`: `(K,)` the numbers of steps `k` compared.
    - `error`: `(P, R, K)` the median over directions of `‖F^k(s* + δ) − (s* + A^k δ)‖ / r`: 0 for a linear
      network; for a smooth one it shrinks in proportion to `r` (the quadratic remainder).
    """

    member: np.ndarray
    radii: np.ndarray
    steps: np.ndarray
    error: np.ndarray

    def summary(self) -> list[dict]:
        """Per member: the median error over its points at each radius and step count."""
        out = []
        for k in np.unique(self.member):
            med = np.median(self.error[self.member == k], axis=0)
            out.append(
                {
                    "member": int(k),
                    "median": {
                        f"r={r:g}": {f"k={s}": float(med[i, j]) for j, s in enumerate(self.steps.tolist())}
                        for i, r in enumerate(self.radii.tolist())
                    },
                }
            )
        return out

    def _table(self) -> tuple[str, list[str], list[list[str]]]:
        header = ["member"] + [f"r={r:g}, k={s}" for r in self.radii for s in self.steps]
        body = [
            [str(int(k))] + [f"{v:.2e}" for v in np.median(self.error[self.member == k], axis=0).ravel()]
            for k in np.unique(self.member)
        ]
        return "Linearized prediction error (median ‖true − linear‖ / r)", header, body

    def to_dict(self) -> dict:
        return {"radii": self.radii.tolist(), "steps": self.steps.tolist(), "per_member": self.summary()}


def _check_positive(name: str, values, integer: bool = False) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, np.float64))
    if (
        arr.ndim != 1
        or arr.size == 0
        or not np.all(np.isfinite(arr))
        or np.any(arr <= 0)
        or (integer and np.any(arr != np.round(arr)))
    ):
        kind = "positive integers" if integer else "positive finite numbers"
        raise ValueError(f"`{name}` must be a non-empty sequence of {kind}, got {values!r}.")
    return arr.astype(int) if integer else arr


@functools.partial(jax.jit, static_argnames=("k_max",))
def _iterate(models, points, inputs, starts, *, k_max):
    """`(P, D, k_max, S)` the network's states after 1..k_max steps from `starts` `(P, D, S)`."""

    def member(model, u, s0):
        def body(s, _):
            s = model.step(s, u)
            return s, s

        return jax.lax.scan(body, s0, None, length=k_max)[1]

    with jax.default_matmul_precision("highest"):
        return jax.vmap(lambda m, u, s0: jax.vmap(lambda s: member(m, u, s))(s0))(models, inputs, starts)


def prediction_error(
    ensemble,
    linearization: Linearization,
    *,
    radii=(1e-3, 1e-2, 1e-1),
    steps=(1, 10),
    n_directions: int = 8,
    seed: int = 0,
) -> PredictionError:
    """The linearized prediction against the network (module docstring), from `n_directions` random unit
    directions at each radius of `radii`, after each step count of `steps`.

    **Returns:** a `PredictionError`, `error` of shape `(P, R, K)`.
    """
    ensemble = as_ensemble(ensemble)
    if not isinstance(linearization, Linearization):
        raise TypeError(f"`linearization` must be a Linearization, got {type(linearization).__name__}.")
    radii = _check_positive("radii", radii)
    steps = _check_positive("steps", steps, integer=True)
    if isinstance(n_directions, bool) or not isinstance(n_directions, int) or n_directions < 1:
        raise ValueError(f"`n_directions` must be an integer >= 1, got {n_directions!r}.")
    lin = linearization
    p, s = lin.points.shape
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((p, n_directions, s))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    deltas = radii[None, :, None, None] * d[:, None]  # (P, R, D, S)
    starts = lin.points[:, None, None, :] + deltas
    k_max = int(steps.max())
    dtype = ensemble.W_rec.dtype
    if p == 0:
        return PredictionError(member=lin.member, radii=radii, steps=steps, error=np.zeros((0, radii.size, steps.size)))
    true = np.asarray(
        _iterate(
            _rows(ensemble, lin.member.tolist()),
            jnp.asarray(lin.points, dtype),
            jnp.asarray(lin.inputs, dtype),
            jnp.asarray(starts.reshape(p, -1, s), dtype),
            k_max=k_max,
        ),
        np.float64,
    )
    true = true.reshape(p, radii.size, n_directions, k_max, s)[:, :, :, steps - 1]  # (P, R, D, K, S)
    # the affine iterate e_j = A e_{j-1} + d from e_0 = δ (d = 0 at an exact fixed point)
    e, at = deltas, {}
    for j in range(1, k_max + 1):
        e = np.einsum("pij,prdj->prdi", lin.A, e) + lin.drift[:, None, None, :]
        at[j] = lin.points[:, None, None, :] + e
    linear = np.stack([at[int(j)] for j in steps], 3)  # (P, R, D, K, S)
    err = np.linalg.norm(true - linear, axis=-1) / radii[None, :, None, None]
    return PredictionError(member=lin.member, radii=radii, steps=steps, error=np.median(err, axis=2))


__all__ = ["Linearization", "PredictionError", "linearize", "linearize_states", "prediction_error"]
