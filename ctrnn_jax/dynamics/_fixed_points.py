"""Fixed points and their linearization (Sussillo & Barak 2013), for every member of an ensemble at once.

At a constant input `x*`, member `k` iterates the one-step map

    F(h) = (1 - a) h + a σ(W_rec h + W_in x* + b),

whose fixed points satisfy `F(h) = h`. For a gated cell (`GRU`, `LSTM`), `F` is the cell's `step` on its
flat state `s` (`h` for the GRU, `[h, c]` for the LSTM, size `state_size`), and everything below applies
to `s`, with the Jacobian from `jax.jacfwd` of `step`. The finder minimises the speed `q(h) = ½‖F(h) − h‖²` from
many initial states, then solves `F(h) − h = 0` by Newton's method:

1. **Adam** (`optax.scale_by_adam`) on `q` for `adam_steps` steps, with the learning rate decaying
   exponentially from `learning_rate` to `final_learning_rate` (a fixed schedule: no host round trips,
   and a large early rate moves candidates across flat regions while the small final one settles them).
2. **Newton** for `newton_steps` iterations: `δ = −(J − I)⁻¹ (F(h) − h)` by `jnp.linalg.solve`, damped by
   a line search over the step lengths `1, ½, …, 2⁻⁷` evaluated in parallel, with a steepest-descent
   (Cauchy) step as a fallback for singular or poor Newton steps; a candidate whose every trial step
   raises `q` (or is not finite) stays put.

Both run for all members and candidates in one jit-compiled function (`vmap` over members and
candidates, `lax.fori_loop` over iterations); it is compiled once per shape and option set. Matrix
products use `precision=HIGHEST` (GPUs otherwise run float32 products in TF32).

Then, on the host (NumPy, small arrays): candidates with `q <= tol_q` are fixed points, those with
`tol_q < q <= slow_tol` slow points; outliers far from the initial states are dropped; duplicates are
merged; each fixed point gets its Jacobian (`jax.jacfwd` of `F`), its eigendecomposition (NumPy
LAPACK on the host: `jnp.linalg.eig` runs only on the CPU backend), its stability and its readout.
"""

import concurrent.futures
import contextlib
import dataclasses
import functools
import math
import numbers
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from .._checks import check_int
from .._files import atomic_write, read_npz
from ..models._activations import get_activation
from ..models._gated import GRU, LSTM, UGRNN
from ..models._model import CTRNN
from ..training._ensemble import ensemble_size
from ..training._evaluate import ensemble_states

try:  # optional: keeps BLAS single-threaded during the host eigendecomposition (see `_blas_limit`)
    from threadpoolctl import threadpool_limits as _threadpool_limits
except ImportError:  # pragma: no cover - depends on the environment
    _threadpool_limits = None

_HIGHEST = lax.Precision.HIGHEST
_LINE_SEARCH = 8  # Newton step lengths 1, 1/2, ..., 2^-7
_RESTART_NOISE = 0.05  # norm of the perturbation of found points in restart rounds
_RESTART_TIME = 50.0  # restart candidates run ceil(_RESTART_TIME / a) steps of F


# ----------------------------------------------------------------------------------------------------
# The result
# ----------------------------------------------------------------------------------------------------

_FP_ARRAYS = ("member", "points", "q", "jacobians", "eigvals", "is_stable", "is_stable_ct", "n_unstable",
              "outputs")
_SLOW_ARRAYS = ("slow_member", "slow_points", "slow_q")


@dataclasses.dataclass(frozen=True, eq=False)
class FixedPoints:
    """Fixed points of every member, as flat NumPy arrays with a `member` index (`P` points in all).

    **Fields:**

    - `n_members`: `K`, the number of members searched (members may have no points).
    - `inputs`: `(K, M)` the constant input of each member.
    - `member`: `(P,)` int, which member each point belongs to; points are sorted by member, then by
      saddle index, then by `q`.
    - `points`: `(P, N)` the fixed points `h*` (for a gated cell `(P, S)`, the flat state `s*` of size
      `S = state_size`: `h*` for the GRU, `[h*, c*]` for the LSTM; `N` below reads `S`).
    - `q`: `(P,)` the speed `½‖F(h*) − h*‖²` at each point.
    - `jacobians`: `(P, N, N)` `∂F/∂h` at each point (the discrete map's Jacobian).
    - `eigvals`: `(P, N)` complex, its eigenvalues `λ`, sorted by decreasing `|λ|`.
    - `eigvecs`: `(P, N, N)` complex or `None`; column `eigvecs[p, :, i]` goes with `eigvals[p, i]`.
    - `is_stable`: `(P,)` bool, all `|λ| < 1`: stable for the discrete map.
    - `is_stable_ct`: `(P,)` bool, stable for the continuous-time flow `τ dh/dt = −h + σ(W_rec h + u)`,
      whose Jacobian `(J − I)/a` has eigenvalues `μ = (λ − 1)/a`: all `Re λ < 1`. The discrete map's
      stability implies it; the converse fails only when `a` is large (e.g. `λ = −1.5` at `a = 1`).
      For a gated cell (a discrete-time map) this is taken with `a = 1`, i.e. the flow `ds/dt = F(s) − s`
      whose Euler step of 1 is the cell: all `Re λ < 1`.
    - `n_unstable`: `(P,)` int, the number of `|λ| > 1`: the saddle index (0 for stable points).
    - `outputs`: `(P, O)` readouts `W_out h* + b_out` (of the hidden part `h*` for the LSTM).
    - `slow_member`, `slow_points`, `slow_q`: `(S,)`, `(S, N)`, `(S,)`, the slow points (deduplicated
      candidates with `tol_q < q <= slow_tol`), not linearized.
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

    def __len__(self) -> int:
        return int(self.member.shape[0])

    def __repr__(self) -> str:
        return (f"FixedPoints(n_members={self.n_members}, points={len(self)}, "
                f"stable={int(np.sum(self.is_stable))}, slow_points={int(self.slow_member.shape[0])})")

    def _check_member(self, k: object) -> int:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise TypeError(f"`k` must be an integer member index, got {k!r}.")
        if not -self.n_members <= k < self.n_members:
            raise IndexError(f"member {k} out of range for {self.n_members} members.")
        return int(k) % self.n_members

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
        eigvecs = None if self.eigvecs is None else self.eigvecs[keep]
        return dataclasses.replace(self, eigvecs=eigvecs, **arrays)

    def to_npz(self, path: str | os.PathLike) -> None:
        """Write every array under its field name (plus `n_members`), atomically. `eigvecs` is
        written only when it is not `None`."""
        arrays = {name: getattr(self, name) for name in (*_FP_ARRAYS, *_SLOW_ARRAYS)}
        arrays["n_members"] = np.asarray(self.n_members)
        arrays["inputs"] = self.inputs
        if self.eigvecs is not None:
            arrays["eigvecs"] = self.eigvecs
        with atomic_write(path) as f:
            np.savez(f, **arrays)

    @classmethod
    def from_npz(cls, path: str | os.PathLike) -> "FixedPoints":
        """Read a file written by `to_npz`. Raises `ValueError` naming the file if an array is missing
        or the lengths disagree."""
        path = Path(path)
        required = (*_FP_ARRAYS, *_SLOW_ARRAYS, "n_members", "inputs")
        data = read_npz(path, required, "a fixed-points file (eigvecs optional)")
        p = data["member"].shape[0]
        for name in (*_FP_ARRAYS, *(("eigvecs",) if "eigvecs" in data else ())):
            if data[name].ndim < 1 or data[name].shape[0] != p:
                raise ValueError(f"{path}: `{name}` has shape {data[name].shape}; expected {p} rows like `member`.")
        s = data["slow_member"].shape[0]
        for name in _SLOW_ARRAYS:
            if data[name].ndim < 1 or data[name].shape[0] != s:
                raise ValueError(f"{path}: `{name}` has shape {data[name].shape}; expected {s} rows like "
                                 "`slow_member`.")
        arrays = {name: data[name] for name in (*_FP_ARRAYS, *_SLOW_ARRAYS, "inputs")}
        return cls(n_members=int(data["n_members"]), eigvecs=data.get("eigvecs"), **arrays)


# ----------------------------------------------------------------------------------------------------
# The compiled search
# ----------------------------------------------------------------------------------------------------

def _map_fn(activation: str, W_rec, alpha, drive):
    """`F` for one member: `h (N,) -> (N,)`, with full-precision matrix products."""
    sigma = get_activation(activation)

    def F(h):
        return (1 - alpha) * h + alpha * sigma(jnp.matmul(W_rec, h, precision=_HIGHEST) + drive)

    return F


def _member_search(F, linear, h, sim_steps, lrs, *, newton_steps):
    """For the `(C, N)` candidates `h` of one member: iterate `F` `sim_steps (C,)` times (restart
    candidates), then Adam, then Newton. `F` maps `(N,) -> (N,)`; `linear(h)` returns the residual
    `F(h) − h` and `J_F(h) − I`. Returns `(h, q)`, `(C, N)`, `(C,)`."""

    def sim_body(carry):
        i, h = carry
        return i + 1, jnp.where((i < sim_steps)[:, None], jax.vmap(F)(h), h)

    _, h = lax.while_loop(lambda carry: carry[0] < jnp.max(sim_steps), sim_body, (jnp.asarray(0, sim_steps.dtype), h))

    def q_of(h):
        r = F(h) - h
        return 0.5 * jnp.sum(r * r)

    # Adam: the sum of the candidates' q has, per candidate, the gradient of its own q, and Adam
    # is elementwise, so this is independent Adam runs, one per candidate.
    adam = optax.scale_by_adam()
    grad_sum = jax.grad(lambda h: jnp.sum(jax.vmap(q_of)(h)))

    def adam_body(carry, lr):
        h, state = carry
        update, state = adam.update(grad_sum(h), state)
        return (h - lr * update, state), None

    (h, _), _ = lax.scan(adam_body, (h, adam.init(h)), lrs)

    # Newton on F(h) - h = 0
    steps = 0.5 ** jnp.arange(_LINE_SEARCH, dtype=h.dtype)

    def newton_one(h):
        r, A = linear(h)
        delta = jnp.linalg.solve(A, -r)
        g = jnp.matmul(A.T, r, precision=_HIGHEST)  # gradient of q
        Ag = jnp.matmul(A, g, precision=_HIGHEST)
        cauchy = -(jnp.sum(g * g) / jnp.sum(Ag * Ag)) * g
        trials = jnp.concatenate([h[None] + steps[:, None] * delta[None],
                                  (h + cauchy)[None], (h + 0.5 * cauchy)[None]])
        qs = jax.vmap(q_of)(trials)
        q0 = 0.5 * jnp.sum(r * r)
        qs = jnp.where(jnp.isfinite(qs) & jnp.all(jnp.isfinite(trials), axis=1), qs, jnp.inf)
        best = jnp.argmin(qs)
        return jnp.where(qs[best] < q0, trials[best], h)

    h = lax.fori_loop(0, newton_steps, lambda _, h: jax.vmap(newton_one)(h), h)
    return h, jax.vmap(q_of)(h)


def _ctrnn_member_search(W_rec, alpha, drive, h, sim_steps, lrs, *, activation, newton_steps):
    """`_member_search` for one CTRNN member, with the analytic `J_F = (1-a) I + a diag(σ'(u)) W_rec`
    (σ is elementwise)."""
    sigma = get_activation(activation)
    F = _map_fn(activation, W_rec, alpha, drive)
    eye = jnp.eye(h.shape[-1], dtype=h.dtype)

    def linear(h):
        u = jnp.matmul(W_rec, h, precision=_HIGHEST) + drive
        s, ds = jax.jvp(sigma, (u,), (jnp.ones_like(u),))
        r = (1 - alpha) * h + alpha * s - h
        A = alpha * (ds[:, None] * W_rec - eye)  # J_F - I
        return r, A

    return _member_search(F, linear, h, sim_steps, lrs, newton_steps=newton_steps)


@functools.partial(jax.jit, static_argnames=("activation", "adam_steps", "newton_steps"))
def _search(W_rec, W_in, b, alpha, inputs, h0, sim_steps, lr, final_lr, *, activation, adam_steps, newton_steps):
    drive = jnp.einsum("knm,km->kn", W_in, inputs, precision=_HIGHEST) + b
    lrs = _schedule(lr, final_lr, adam_steps, h0.dtype)
    member = functools.partial(_ctrnn_member_search, activation=activation, newton_steps=newton_steps)
    return jax.vmap(member, in_axes=(0, 0, 0, 0, 0, None))(W_rec, alpha, drive, h0, sim_steps, lrs)


@functools.partial(jax.jit, static_argnames=("activation",))
def _linearize(W_rec, W_in, b, W_out, b_out, alpha, inputs, member, points, *, activation):
    """Jacobians `(P, N, N)` (by `jax.jacfwd`) and readouts `(P, O)` at `points` of `member`s."""

    def one(k, h):
        drive = jnp.matmul(W_in[k], inputs[k], precision=_HIGHEST) + b[k]
        F = _map_fn(activation, W_rec[k], alpha[k], drive)
        return jax.jacfwd(F)(h), jnp.matmul(W_out[k], h, precision=_HIGHEST) + b_out[k]

    return jax.vmap(one)(member, points)


def _schedule(lr, final_lr, adam_steps, dtype):
    t = jnp.arange(adam_steps, dtype=dtype) / max(adam_steps - 1, 1)
    return lr * (final_lr / lr) ** t


@functools.partial(jax.jit, static_argnames=("adam_steps", "newton_steps"))
def _search_cell(ensemble, inputs, h0, sim_steps, lr, final_lr, *, adam_steps, newton_steps):
    """`_search` for a stacked ensemble of gated cells, through their `step` map (matmuls at full
    precision) with the Jacobian by `jax.jacfwd`."""
    with jax.default_matmul_precision("highest"):
        lrs = _schedule(lr, final_lr, adam_steps, h0.dtype)

        def member(model, x, h, steps):
            F = lambda s: model.step(s, x)  # noqa: E731
            eye = jnp.eye(h.shape[-1], dtype=h.dtype)
            linear = lambda s: (F(s) - s, jax.jacfwd(F)(s) - eye)  # noqa: E731
            return _member_search(F, linear, h, steps, lrs, newton_steps=newton_steps)

        return jax.vmap(member)(ensemble, inputs, h0, sim_steps)


@jax.jit
def _linearize_cell(ensemble, inputs, member, points):
    """`_linearize` for gated cells: Jacobians `(P, S, S)` of `step` and readouts `(P, O)` of `hidden`."""
    with jax.default_matmul_precision("highest"):
        def one(k, s):
            model = jax.tree_util.tree_map(lambda a: a[k], ensemble)
            return jax.jacfwd(lambda s: model.step(s, inputs[k]))(s), model.readout(model.hidden(s))

        return jax.vmap(one)(member, points)


@jax.jit
def _full_states(ensemble, inputs):
    return jax.vmap(lambda model: model.full_states(inputs))(ensemble)


# ----------------------------------------------------------------------------------------------------
# Host-side helpers
# ----------------------------------------------------------------------------------------------------

Cell = CTRNN | GRU | LSTM | UGRNN


def _as_ensemble(ensemble: object) -> Cell:
    if not isinstance(ensemble, (CTRNN, GRU, LSTM, UGRNN)):
        raise TypeError(f"`ensemble` must be a CTRNN, GRU, LSTM or UGRNN (a stacked ensemble or a single network), "
                        f"got {type(ensemble).__name__}.")
    if ensemble.W_rec.ndim == 2:  # a single network: K = 1
        ensemble = jax.tree_util.tree_map(lambda x: x[None], ensemble)
    ensemble_size(ensemble)
    return ensemble


def _state_size(ensemble: Cell) -> int:
    """The size of the state the search runs on: `N` for a CTRNN, `state_size` for a gated cell."""
    return ensemble.W_rec.shape[-1] if isinstance(ensemble, CTRNN) else ensemble.state_size


def _matching(ensemble: object, fixed_points: object) -> tuple[Cell, int, int]:
    """`(ensemble, K, state size)` with `ensemble` stacked, after checking that `fixed_points` is a
    `FixedPoints` of this ensemble's `K` members and state size (a TypeError/ValueError otherwise)."""
    ensemble = _as_ensemble(ensemble)
    if not isinstance(fixed_points, FixedPoints):
        raise TypeError(f"`fixed_points` must be a FixedPoints, got {type(fixed_points).__name__}.")
    k, s = ensemble.W_rec.shape[0], _state_size(ensemble)
    if fixed_points.n_members != k or fixed_points.points.shape[1:] != (s,):
        raise ValueError(f"`fixed_points` ({fixed_points.n_members} members, points {fixed_points.points.shape}) "
                         f"do not belong to this ensemble (K={k}, state size {s}).")
    return ensemble, k, s


def _alphas(ensemble: Cell) -> np.ndarray:
    """`(K,)` float64 `a = dt/tau` per member; 1 for gated cells (discrete-time maps)."""
    if isinstance(ensemble, CTRNN):
        return np.asarray(ensemble.alpha, np.float64)
    return np.ones(ensemble.W_rec.shape[0], np.float64)


def _check_positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise TypeError(f"`{name}` must be a real number, got {value!r}.")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"`{name}` must be {'>= 0' if allow_zero else '> 0'}, got {value!r}.")
    return float(value)


def _working_dtype(dtype: object, ensemble: Cell):
    if dtype is None:
        return jnp.dtype(ensemble.W_rec.dtype)
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"`dtype` must be None, float32 or float64, got {dtype!r}.") from None
    if dt not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise ValueError(f"`dtype` must be None, float32 or float64, got {dtype!r}.")
    if jax.dtypes.canonicalize_dtype(dt) != dt:
        raise ValueError("`dtype`=float64 needs 64-bit JAX: set `jax.config.update('jax_enable_x64', True)` "
                         "(or use `with jax.enable_x64():`) before calling; ctrnn_jax never changes it.")
    return dt


def _check_inputs(inputs: object, k: int, m: int) -> np.ndarray:
    x = np.asarray(inputs, dtype=np.float64)
    if x.shape == (m,):
        x = np.broadcast_to(x, (k, m))
    if x.shape != (k, m):
        raise ValueError(f"`inputs` must have shape ({m},) (shared) or ({k}, {m}) (one per member), "
                         f"got {np.shape(inputs)}.")
    if not np.all(np.isfinite(x)):
        raise ValueError("`inputs` contains NaN or inf.")
    return x


def _check_states(initial_states: object, k: int, n: int) -> np.ndarray:
    h0 = np.asarray(initial_states)
    if h0.ndim != 3 or h0.shape[0] != k or h0.shape[2] != n or h0.shape[1] < 1:
        raise ValueError(f"`initial_states` must have shape (K, C, N) = ({k}, C, {n}) with C >= 1, "
                         f"got {h0.shape}.")
    if not np.issubdtype(h0.dtype, np.floating) and not np.issubdtype(h0.dtype, np.integer):
        raise TypeError(f"`initial_states` must be a real array, got dtype {h0.dtype}.")
    if not np.all(np.isfinite(h0)):
        raise ValueError("`initial_states` contains NaN or inf.")
    return h0


def _dedup(points: np.ndarray, q: np.ndarray, tol: float) -> np.ndarray:
    """Indices of a subset of `points` (one member's) no two within `tol` (Euclidean), keeping the
    lowest `q` of each group (greedy, in order of increasing `q`)."""
    order = np.argsort(q, kind="stable")
    pts = points[order].astype(np.float64)
    keep, removed = [], np.zeros(len(order), bool)
    for i in range(len(order)):
        if removed[i]:
            continue
        keep.append(order[i])
        removed[i:] |= np.sum((pts[i:] - pts[i]) ** 2, axis=1) <= tol * tol
    return np.asarray(keep, dtype=np.int64)


def _blas_limit():
    """One BLAS thread per call while in this context, when `threadpoolctl` is installed (else a no-op).

    OpenBLAS's own threads make `geev` on small matrices many times slower (and LAPACK in `jnp.linalg`
    on the CPU a little) as soon as the cores are busy, e.g. by XLA's threads; one thread per call,
    with the matrices spread over a pool of Python threads, is faster and predictable."""
    if _threadpool_limits is None:
        return contextlib.nullcontext()
    return _threadpool_limits(limits=1, user_api="blas")


def _eig(jacobians: np.ndarray, with_vectors: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Eigendecomposition of `(P, N, N)` matrices in float64 with NumPy (LAPACK `geev`, on the host).
    Eigenvalues sorted by decreasing modulus. With `threadpoolctl` installed, BLAS runs single-threaded
    and the matrices are split over one Python thread per core (LAPACK releases the GIL)."""
    jac = np.asarray(jacobians, dtype=np.float64)
    n = jac.shape[-1]
    if jac.shape[0] == 0:
        return np.zeros((0, n), np.complex128), (np.zeros((0, n, n), np.complex128) if with_vectors else None)
    fn = np.linalg.eig if with_vectors else np.linalg.eigvals
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    n_threads = min(cores, max(1, jac.shape[0] // 8)) if _threadpool_limits is not None else 1
    with _blas_limit():
        if n_threads == 1:
            results = [fn(jac)]
        else:
            with concurrent.futures.ThreadPoolExecutor(n_threads) as pool:
                results = list(pool.map(fn, np.array_split(jac, n_threads)))
    if with_vectors:
        vals = np.concatenate([r[0] for r in results])
        vecs = np.concatenate([r[1] for r in results])
    else:
        vals, vecs = np.concatenate(results), None
    order = np.argsort(-np.abs(vals), axis=1, kind="stable")
    vals = np.take_along_axis(vals, order, axis=1)
    if vecs is not None:
        vecs = np.take_along_axis(vecs, order[:, None, :], axis=2)
    return vals, vecs


def _restart_candidates(found: list[np.ndarray], h0: np.ndarray, alpha: np.ndarray,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """New `(K, C, N)` candidates from each member's fixed points found so far, and the `(K, C)` number
    of steps of `F` to run from each before the search.

    Up to half (4 per point) are the points plus Gaussian noise of norm about `_RESTART_NOISE`, run
    forward `ceil(_RESTART_TIME / a)` steps: from a saddle, the dynamics leave along its unstable
    directions towards the attractors it connects. The rest are on the segments between pairs of
    points (first all midpoints, a random subset if there are more pairs than places, then random
    points `t·p + (1−t)·p'` with `t ~ U(0.2, 0.8)`): saddles often lie between attractors. A member
    with no point keeps its candidates; one with a single point gets only the first kind.
    """
    out = h0.copy()
    k, c, n = h0.shape
    steps = np.zeros((k, c), np.int32)
    for kk, pts in enumerate(found):
        if len(pts) == 0:
            continue
        c_seg = c - min(c // 2, 4 * len(pts)) if len(pts) >= 2 else 0
        if c_seg:
            i, j = np.triu_indices(len(pts), 1)
            pick = rng.permutation(len(i))[:c_seg]
            t = np.full(len(pick), 0.5)
            extra = c_seg - len(pick)
            if extra:
                pick = np.concatenate([pick, rng.integers(0, len(i), extra)])
                t = np.concatenate([t, rng.uniform(0.2, 0.8, extra)])
            out[kk, :c_seg] = t[:, None] * pts[i[pick]] + (1 - t[:, None]) * pts[j[pick]]
        src = np.resize(rng.permutation(len(pts)), c - c_seg)
        out[kk, c_seg:] = pts[src] + _RESTART_NOISE / math.sqrt(n) * rng.standard_normal((c - c_seg, n))
        steps[kk, c_seg:] = math.ceil(_RESTART_TIME / alpha[kk])
    return out, steps


# ----------------------------------------------------------------------------------------------------
# Public functions
# ----------------------------------------------------------------------------------------------------

def find_fixed_points(
    ensemble: Cell,
    inputs,
    initial_states,
    *,
    adam_steps: int = 300,
    learning_rate: float = 0.1,
    final_learning_rate: float = 1e-3,
    newton_steps: int = 8,
    tol_q: float | None = None,
    slow_tol: float = 1e-6,
    dedup_tol: float = 1e-3,
    outlier_scale: float | None = 10.0,
    restarts: int = 0,
    key: jax.Array | None = None,
    dtype=None,
    eigvecs: bool = True,
) -> FixedPoints:
    """Find the fixed points of every member at a constant input, and linearize there.

    **Arguments:**

    - `ensemble`: a stacked ensemble of `K` CTRNNs, GRUs or LSTMs (or one network, taken as `K = 1`).
      For gated cells the search runs on the flat state of size `S = state_size` through the cell's
      `step` (read `N` as `S` below), continuous-time stability is taken at `a = 1`, and restart
      candidates run 50 steps (as for `a = 1`).
    - `inputs`: the constant input, `(M,)` shared by all members or `(K, M)` one per member
      (zeros for the flip-flop's memory states).
    - `initial_states`: `(K, C, N)` finite candidates per member, e.g. from
      `initial_states_from_trajectories` (for the LSTM `(K, C, 2N)` flat states `[h, c]`).
    - `adam_steps`: Adam steps on `q` (>= 0).
    - `learning_rate`, `final_learning_rate`: the Adam learning rate decays exponentially from the
      first to the second over the `adam_steps` steps.
    - `newton_steps`: damped Newton iterations after Adam (>= 0).
    - `tol_q`: candidates with `q <= tol_q` are fixed points. Default: `½·N·(10 ε)²`, i.e. a residual
      `‖F(h) − h‖` of 10 machine epsilons per unit (`7e-11` for N = 100 in float32; `2.5e-28` in
      float64), what Newton reaches at working precision.
    - `slow_tol`: candidates with `tol_q < q <= slow_tol` are reported as slow points.
    - `dedup_tol`: points of one member closer than this (Euclidean) are merged, keeping the lowest `q`.
    - `outlier_scale`: drop a point (fixed or slow) of member `k` whose distance to the centroid of
      `k`'s initial states exceeds `outlier_scale` times the mean distance of those initial states to
      their centroid (skipped if that mean is 0); `None` keeps all points.
    - `restarts`: extra rounds of the search, each from `C` new candidates per member made from the
      fixed points found so far: 4 per point (at most `C/2`) near them, run forward `ceil(50 / a)`
      steps of `F` first (from a saddle, the flow leaves along its unstable directions to the
      attractors it connects), the rest on the segments between pairs of them (first all midpoints:
      saddles often lie between attractors, like a cube's edge, face and centre saddles). The union
      over rounds is deduplicated. Needs `key`. Same shapes, so no recompilation.
    - `key`: a PRNG key, required when `restarts > 0`.
    - `dtype`: `None` (the ensemble's dtype, float32 by default) or `float64`. float64 needs 64-bit
      JAX enabled by the caller (`jax.config.update("jax_enable_x64", True)` or `with jax.enable_x64():`);
      the library never changes `jax.config`.
    - `eigvecs`: also compute eigenvectors (`(P, N, N)` complex; set False to save memory).

    **Returns:** a `FixedPoints` with the `P` distinct fixed points of all members (a member whose
    weights or candidates produce non-finite values simply has none).

    The search over all members and candidates is one compiled call; the eigendecomposition runs on
    the host in float64 with NumPy, since `jnp.linalg.eig` is implemented on the CPU backend only.
    """
    ensemble = _as_ensemble(ensemble)
    k, n = ensemble.W_rec.shape[0], _state_size(ensemble)
    m = ensemble.W_in.shape[-1]
    x = _check_inputs(inputs, k, m)
    h0 = _check_states(initial_states, k, n)
    adam_steps = check_int("adam_steps", adam_steps, 0)
    newton_steps = check_int("newton_steps", newton_steps, 0)
    restarts = check_int("restarts", restarts, 0)
    lr = _check_positive("learning_rate", learning_rate)
    final_lr = _check_positive("final_learning_rate", final_learning_rate)
    slow_tol = _check_positive("slow_tol", slow_tol, allow_zero=True)
    dedup_tol = _check_positive("dedup_tol", dedup_tol, allow_zero=True)
    if outlier_scale is not None:
        outlier_scale = _check_positive("outlier_scale", outlier_scale)
    if not isinstance(eigvecs, bool):
        raise TypeError(f"`eigvecs` must be a bool, got {eigvecs!r}.")
    dt = _working_dtype(dtype, ensemble)
    if tol_q is None:
        tol_q = 0.5 * n * (10 * float(jnp.finfo(dt).eps)) ** 2
    tol_q = _check_positive("tol_q", tol_q, allow_zero=True)
    if restarts > 0:
        if not (isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ()):
            raise TypeError(f"`key` must be a typed key from `jax.random.key` when `restarts` > 0, got {key!r}.")
        rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    else:
        rng = None

    if isinstance(ensemble, CTRNN):
        params = tuple(jnp.asarray(getattr(ensemble, name), dt) for name in ("W_rec", "W_in", "b", "alpha"))
    else:
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dt), ensemble)
    xs = jnp.asarray(x, dt)

    with _blas_limit():
        return _find(ensemble, params, xs, h0, dt, n, restarts, rng, adam_steps, newton_steps, lr, final_lr, tol_q,
                     slow_tol, dedup_tol, outlier_scale, eigvecs)


def _find(ensemble, params, xs, h0, dt, n, restarts, rng, adam_steps, newton_steps, lr, final_lr, tol_q, slow_tol,
          dedup_tol, outlier_scale, eigvecs):
    """The body of `find_fixed_points`, after the checks."""
    k = h0.shape[0]
    h0_64 = h0.astype(np.float64)
    outliers = _OutlierRule(h0_64, outlier_scale)
    fixed = [[] for _ in range(k)]  # per member: a list of (points, q) over rounds
    slow = [[] for _ in range(k)]
    candidates, sim_steps = h0, np.zeros(h0.shape[:2], np.int32)
    for round_ in range(restarts + 1):
        args = (xs, jnp.asarray(candidates, dt), jnp.asarray(sim_steps), jnp.asarray(lr, dt), jnp.asarray(final_lr, dt))
        if isinstance(ensemble, CTRNN):
            h, q = _search(*params, *args, activation=ensemble.activation, adam_steps=adam_steps,
                           newton_steps=newton_steps)
        else:
            h, q = _search_cell(params, *args, adam_steps=adam_steps, newton_steps=newton_steps)
        _split(np.asarray(h), np.asarray(q), tol_q, slow_tol, outliers, fixed, slow)
        if round_ < restarts:
            found = [pts.astype(np.float64) for pts in _merge(fixed, n, dedup_tol)[1]]
            candidates, sim_steps = _restart_candidates(found, h0_64, _alphas(ensemble), rng)
    member, points, qv = (np.concatenate(v) for v in _merge(fixed, n, dedup_tol))
    slow_member, slow_points, slow_q = (np.concatenate(v) for v in _merge(slow, n, dedup_tol))
    return _linearized(ensemble, params, xs, dt, member, points, qv, slow_member, slow_points, slow_q, eigvecs)


class _OutlierRule:
    """Far from member `k`'s initial states: farther from their centroid than `scale` times their mean
    distance to it (no rule when `scale` is None or that mean is 0)."""

    def __init__(self, h0: np.ndarray, scale: float | None):
        self.centroid = h0.mean(axis=1)  # (K, N)
        self.spread = np.linalg.norm(h0 - self.centroid[:, None], axis=2).mean(axis=1)  # (K,)
        self.scale = scale

    def keep(self, k: int, points: np.ndarray) -> np.ndarray:
        if self.scale is None or self.spread[k] == 0:
            return np.ones(len(points), bool)
        dist = np.linalg.norm(points.astype(np.float64) - self.centroid[k], axis=1)
        return dist <= self.scale * self.spread[k]


def _split(h, q, tol_q, slow_tol, outliers, fixed, slow) -> None:
    """Append each member's fixed and slow candidates `(points, q)` of one round to `fixed[k]`, `slow[k]`."""
    finite = np.isfinite(q) & np.all(np.isfinite(h), axis=2)
    for k in range(h.shape[0]):
        ok = finite[k] & outliers.keep(k, h[k])
        is_fp = ok & (q[k] <= tol_q)
        is_slow = ok & (q[k] > tol_q) & (q[k] <= slow_tol)
        fixed[k].append((h[k][is_fp], q[k][is_fp]))
        slow[k].append((h[k][is_slow], q[k][is_slow]))


def _merge(per_member, n, dedup_tol):
    """Deduplicate each member's candidates over rounds: lists of `member`, `points`, `q` arrays."""
    members, pts, qs = [], [], []
    for k, rounds in enumerate(per_member):
        p = np.concatenate([r[0] for r in rounds]).reshape(-1, n)
        v = np.concatenate([r[1] for r in rounds])
        idx = _dedup(p, v, dedup_tol)
        members.append(np.full(len(idx), k, np.int64))
        pts.append(p[idx])
        qs.append(v[idx])
    return members, pts, qs


def _linearized(ensemble, params, xs, dt, member, points, q, slow_member, slow_points, slow_q, with_vectors):
    k, n = ensemble.W_rec.shape[0], _state_size(ensemble)
    o = ensemble.W_out.shape[1]
    p = len(member)
    if p:
        size = max(8, 1 << (p - 1).bit_length())  # pad to a power of two: few compiled shapes
        pad = size - p
        at = (jnp.asarray(np.pad(member, (0, pad))), jnp.asarray(np.pad(points, ((0, pad), (0, 0))), dt))
        if isinstance(ensemble, CTRNN):
            arrays = tuple(jnp.asarray(getattr(ensemble, name), dt)
                           for name in ("W_rec", "W_in", "b", "W_out", "b_out", "alpha"))
            jac, out = _linearize(*arrays, xs, *at, activation=ensemble.activation)
        else:
            jac, out = _linearize_cell(params, xs, *at)
        jac, out = np.asarray(jac)[:p], np.asarray(out)[:p]
    else:
        jac, out = np.zeros((0, n, n), dt), np.zeros((0, o), dt)
    vals, vecs = _eig(jac, with_vectors)
    a = _alphas(ensemble)[member]
    modulus = np.abs(vals)
    n_unstable = np.sum(modulus > 1, axis=1).astype(np.int64)
    is_stable = np.all(modulus < 1, axis=1)
    is_stable_ct = np.all((vals.real - 1) / a[:, None] < 0, axis=1)
    order = np.lexsort((q, n_unstable, member))
    cdt = np.complex128 if dt == jnp.dtype(jnp.float64) else np.complex64
    return FixedPoints(
        n_members=k, inputs=np.asarray(xs), member=member[order], points=np.asarray(points, dt)[order],
        q=np.asarray(q, dt)[order], jacobians=jac[order], eigvals=vals[order].astype(cdt),
        eigvecs=None if vecs is None else vecs[order].astype(cdt), is_stable=is_stable[order],
        is_stable_ct=is_stable_ct[order], n_unstable=n_unstable[order], outputs=out[order],
        slow_member=slow_member, slow_points=np.asarray(slow_points, dt), slow_q=np.asarray(slow_q, dt),
    )


def initial_states_from_trajectories(
    ensemble: Cell,
    inputs_batch,
    n_candidates: int,
    *,
    key: jax.Array,
    noise_std: float = 0.0,
) -> jax.Array:
    """Candidate initial states sampled from each member's own noise-free trajectories.

    **Arguments:**

    - `ensemble`: a stacked ensemble of `K` members (or one network, `K = 1`): CTRNNs, GRUs or LSTMs.
      Gated cells are sampled from their whole flat states (`full_states`; for the LSTM `[h, c]`).
    - `inputs_batch`: `(B, T, M)` trials, the same for every member (e.g. the flip-flop test set).
    - `n_candidates`: `C`, states per member, drawn uniformly from the member's `B·T` visited states
      (without replacement when `C <= B·T`), by a NumPy generator seeded with `key`.
    - `key`: a PRNG key (keyword-only).
    - `noise_std`: std of Gaussian noise added to every sampled state (>= 0).

    **Returns:** `(K, C, N)` float array of candidates (`(K, C, state_size)` for a gated cell), for
    `find_fixed_points`.
    """
    ensemble = _as_ensemble(ensemble)
    c = check_int("n_candidates", n_candidates, 1)
    noise_std = _check_positive("noise_std", noise_std, allow_zero=True)
    if not (isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ()):
        raise TypeError(f"`key` must be a typed key from `jax.random.key`, got {key!r}.")
    x = jnp.asarray(inputs_batch)
    m = ensemble.W_in.shape[-1]
    if x.ndim != 3 or x.shape[2] != m or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"`inputs_batch` must have shape (B, T, {m}), got {x.shape}.")
    if not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError("`inputs_batch` contains NaN or inf.")
    # (K, B, T, N); for gated cells (K, B, T, S), the whole flat state
    states = ensemble_states(ensemble, x) if isinstance(ensemble, CTRNN) else _full_states(ensemble, x)
    k, b, t, n = states.shape
    # Indices and noise from a NumPy generator seeded by `key`: cheap, nothing to compile.
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    picks = np.stack([rng.choice(b * t, c, replace=c > b * t) for _ in range(k)])
    chosen = jnp.take_along_axis(states.reshape(k, b * t, n), jnp.asarray(picks)[:, :, None], axis=1)
    if noise_std > 0:
        chosen = chosen + jnp.asarray(noise_std * rng.standard_normal(chosen.shape), chosen.dtype)
    return chosen


__all__ = ["FixedPoints", "find_fixed_points", "initial_states_from_trajectories"]
