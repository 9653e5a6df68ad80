"""Fixed points and their linearization (Sussillo & Barak 2013), for every member of an ensemble at once,
for every cell: the search runs on the network's one-step map through the model interface
(`AbstractRNN.step`, `residual_and_jacobian`), never on a particular class.

At a constant input `x*`, member `k` iterates its one-step map `F(s) = step(s, x*)` on the flat state
`s` (`h` for the CTRNN, GRU and UGRNN, `[h, c]` for the LSTM; size `S = state_size`); fixed points
satisfy `F(s) = s`. The finder minimises the speed `q(s) = ½‖F(s) − s‖²` from many initial states,
then solves `F(s) − s = 0` by Newton's method:

1. **Adam** (`optax.scale_by_adam`) on `q` for `adam_steps` steps, with the learning rate decaying
   exponentially from `learning_rate` to `final_learning_rate` (a fixed schedule: no host round trips,
   and a large early rate moves candidates across flat regions while the small final one settles them).
2. **Newton** for `newton_steps` iterations: `δ = −(J − I)⁻¹ (F(s) − s)` by `jnp.linalg.solve`, damped by
   a line search over the step lengths `1, ½, …, 2⁻⁷` evaluated in parallel, with a steepest-descent
   (Cauchy) step as a fallback for singular or poor Newton steps; a candidate whose every trial step
   raises `q` (or is not finite) stays put. In two phases (most candidates converge in a few iterations,
   and each iteration costs one LU per candidate): the first `_NEWTON_FIRST` (4) iterations run on every
   candidate, the rest only on those still above `tol_q`, gathered over members (a candidate at
   `q <= tol_q` is a fixed point already and is not polished further).
3. **Restarts** (`restarts` rounds): new candidates near the points found and on segments between them.
4. **Completion of the saddle set** (`complete`): a random-start search finds attractors easily but
   misses saddles, since nothing flows into them. An index-k saddle of a grid of attractors sits at the
   centre of a k-dimensional face, between two points of index k − 1 on opposite sides of it (an
   index-1 saddle between two attractors). Each round pairs every fixed point with its `neighbours`
   nearest points of the same saddle index, takes the interior local minima of `q` along each segment
   (those not already near a known point), and runs Newton from them; rounds repeat until no new
   point appears (at most `completion_rounds`).

5. **Float64 polish and merge** (on the host side, after each search): every accepted point runs damped
   Newton in float64 (`_float64_newton`, JAX's 64-bit mode in that call only) until its next step is below
   `_POLISH_STEP` of its scale; it is a root when its float64 residual is at most `_ROOT_EPS` epsilons per
   entry (relative to its scale), and roots within `max(dedup_tol, r_i + r_j)` (`r`: `_RADIUS_FACTOR` times
   the next Newton step) are one root: counts are of distinct roots. Slow points run `_SLOW_POLISH_MAX`
   iterations; one that reaches a root adds it, and a slow point with a fixed point within its own slow
   region (`_RADIUS_FACTOR` times its Newton step) is dropped. A limit that cuts a member's search short
   (`max_points`, `completion_rounds`) sets its `capped` flag.

Every search runs for all members and candidates in one jit-compiled function (`vmap` over members and
candidates, `lax.fori_loop` over iterations), compiled once per shape (the second Newton phase: once, in
batches of `_POLISH_BATCH` candidates with a traced iteration count). Matrix products run at
`precision=HIGHEST` (GPUs otherwise run float32 products in TF32).

On the host (NumPy, small arrays): candidates with `q <= tol_q` are (exact) fixed points, those with
`tol_q < q <= slow_tol` slow points; outliers far from the initial states are dropped; duplicates are
merged; each fixed point gets its Jacobian, its eigendecomposition (NumPy LAPACK on the host:
`jnp.linalg.eig` runs only on the CPU backend), its stability and its readout. Slow points up to the
member's *slow threshold* `slow_q` (a task's: `slow_threshold`) are analysed like the fixed points, after
the completion (which never sees them, so the exact points are what they would be without them), unless
within `dedup_tol` of a fixed point, and marked `exact = False`.

**Classification** with the tolerance band `δ = marginal_tol` around the unit circle: a point is *stable*
when every `|λ| <= 1 − δ`, a *saddle of index k* when `k >= 1` eigenvalues have `|λ| > 1 + δ` (`n_unstable`),
*marginal of dimension m* when none does and `m` have `1 − δ < |λ| <= 1 + δ` (`n_marginal`).
"""

import concurrent.futures
import contextlib
import functools
import math
import os
import typing

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from .._checks import check_int, check_key, check_positive
from ..models._base import AbstractRNN
from ..training._ensemble import ensemble_size
from ._config import FixedPointConfig
from ._fixed_point_set import FixedPoints, count_marginal
from ._limits import auto_max_points

try:  # optional: keeps BLAS single-threaded during the host eigendecomposition (see `_blas_limit`)
    from threadpoolctl import threadpool_limits as _threadpool_limits
except ImportError:  # pragma: no cover - depends on the environment
    _threadpool_limits = None

_LINE_SEARCH = 8  # Newton step lengths 1, 1/2, ..., 2^-7
_RESTART_NOISE = 0.05  # norm of the perturbation of found points in restart rounds
_RESTART_TIME = 50.0  # restart candidates run ceil(_RESTART_TIME / a) steps of F
_COMPLETION_NEWTON = 16  # Newton iterations from the completion candidates
_NEWTON_FIRST = 4  # Newton iterations on every candidate; the rest only on those still above tol_q
_POLISH_BATCH = 512  # candidates per call of the second phase (one shape: one compile per state size)
_SEGMENT_MINIMA = 2  # interior local minima of q kept per completion segment
_REACH = 2.0  # completion pairs a point with points up to this many times its nearest-neighbour distance
_POLISH_CHUNK = 4  # float64 Newton iterations per call of the polish
_POLISH_MAX = 64  # float64 Newton iterations at most per candidate fixed point (a cubic root needs ~60)
_SLOW_POLISH_MAX = 8  # ... per slow point (does it run into a root?)
_POLISH_STEP = 1e-12  # a point is polished when its next Newton step is below this times its scale
_POLISH_STALL = 0.25  # ... or when a chunk lowers q less than this factor
_ROOT_EPS = 1e4  # a polished point is a root: residual <= this many float64 epsilons per entry (times scale)
_RADIUS_FACTOR = 4.0  # a root's merge radius (and a slow point's region): this many times its Newton step
_MERGE_FLOOR = 1e-9  # ... and at least this times the point's scale
_SLOW_SAMPLES = 16  # points on the segment from a slow point to a fixed point where q is compared
_SLOW_NEAREST = 4  # a slow point is compared with this many nearest fixed points
_NEWTON_ONLY = 32  # Newton iterations from the Newton-only starts (`newton_starts`)
_NEWTON_BUDGET = 4e10  # default Newton-only starts per call: about this many flops (LU S³/3 per iteration)
_NEWTON_CAP = 4  # ... and at most this many times `n_candidates`


# ----------------------------------------------------------------------------------------------------
# The compiled search (any cell, through the model interface)
# ----------------------------------------------------------------------------------------------------


def _member_search(model, x, h, sim_steps, lrs, *, newton_steps):
    """For the `(C, S)` candidates `h` of one member at input `x`: iterate `F` `sim_steps (C,)` times,
    then Adam on `q`, then damped Newton. Returns `(h, q)`, `(C, S)`, `(C,)`."""
    F = lambda s: model.step(s, x)  # noqa: E731

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

    h = lax.fori_loop(0, newton_steps, lambda _, h: jax.vmap(lambda s: _newton_step(model, x, s))(h), h)
    return h, jax.vmap(q_of)(h)


def _newton_step(model, x, h):
    """One damped Newton iteration on `F(s) − s = 0` from one candidate `h` `(S,)` of `model` at input `x`:
    the Newton step `δ = −(J − I)⁻¹ (F(h) − h)` at the lengths `1, ½, …, 2⁻⁷` and two steepest-descent
    (Cauchy) steps, all evaluated in parallel; the trial of least `q` if it is below `q(h)`, else `h`."""

    def q_of(s):
        r = model.step(s, x) - s
        return 0.5 * jnp.sum(r * r)

    steps = 0.5 ** jnp.arange(_LINE_SEARCH, dtype=h.dtype)
    r, A = model.residual_and_jacobian(h, x)
    delta = jnp.linalg.solve(A, -r)
    g = A.T @ r  # gradient of q
    Ag = A @ g
    cauchy = -(jnp.sum(g * g) / jnp.sum(Ag * Ag)) * g
    trials = jnp.concatenate([h[None] + steps[:, None] * delta[None], (h + cauchy)[None], (h + 0.5 * cauchy)[None]])
    qs = jax.vmap(q_of)(trials)
    q0 = 0.5 * jnp.sum(r * r)
    qs = jnp.where(jnp.isfinite(qs) & jnp.all(jnp.isfinite(trials), axis=1), qs, jnp.inf)
    best = jnp.argmin(qs)
    return jnp.where(qs[best] < q0, trials[best], h)


def _schedule(lr, final_lr, adam_steps, dtype):
    t = jnp.arange(adam_steps, dtype=dtype) / max(adam_steps - 1, 1)
    return lr * (final_lr / lr) ** t


@functools.partial(jax.jit, static_argnames=("adam_steps", "newton_steps"))
def _search(ensemble, inputs, h0, sim_steps, lr, final_lr, *, adam_steps, newton_steps):
    """`_member_search` for every member of a stacked ensemble: `(K, C, S)` candidates, `(K, M)` inputs.
    Its `newton_steps` are the first phase of `_newton_search` (every candidate); `_polish` runs the rest."""
    with jax.default_matmul_precision("highest"):
        lrs = _schedule(lr, final_lr, adam_steps, h0.dtype)
        member = functools.partial(_member_search, lrs=lrs, newton_steps=newton_steps)
        return jax.vmap(member)(ensemble, inputs, h0, sim_steps)


@jax.jit
def _polish(ensemble, inputs, member, h, newton_steps):
    """`newton_steps` (a traced int) Newton iterations (`_newton_step`) from `(P, S)` candidates `h` of the
    members `member` `(P,)` of a stacked ensemble at their `(K, M)` inputs, flat over members (a member with
    few candidates left costs little). Returns `(h, q)`, `(P, S)`, `(P,)`."""
    with jax.default_matmul_precision("highest"):

        def one(k, s):
            model, x = _member(ensemble, k), inputs[k]
            s = lax.fori_loop(0, newton_steps, lambda _, s: _newton_step(model, x, s), s)
            r = model.step(s, x) - s
            return s, 0.5 * jnp.sum(r * r)

        return jax.vmap(one)(member, h)


def _newton_search(params, xs, h0, sim_steps, lr, final_lr, *, adam_steps, newton_steps, tol_q, rows=None):
    """The whole search (`_member_search`) of `(R, C, S)` candidates of the members `rows` (R of them, a list;
    None: all `K` in order) of the stacked ensemble `params` at their inputs `xs` `(K, M)`, in two phases:
    `_search` with the first `_NEWTON_FIRST` Newton iterations on every candidate, then `_polish` with the
    remaining ones on the candidates still above `tol_q` only (flat over members, in batches of
    `_POLISH_BATCH`: one compiled program for every round and member count), scattered back. A candidate at
    `q <= tol_q` is a fixed point already and keeps its place; the others get exactly the iterations of a
    single phase. Returns NumPy `(h, q)`, `(R, C, S)`, `(R, C)`."""
    first = min(newton_steps, _NEWTON_FIRST)
    rows = list(range(xs.shape[0])) if rows is None else rows
    h, q = _search(
        _rows(params, rows), _rows(xs, rows), h0, sim_steps, lr, final_lr, adam_steps=adam_steps, newton_steps=first
    )
    h, q = np.array(h), np.array(q)
    left = _unconverged(q, tol_q) if newton_steps > first else (np.zeros(0, np.int64),) * 2
    steps = jnp.asarray(newton_steps - first, jnp.int32)
    for lo in range(0, len(left[0]), _POLISH_BATCH):
        part = tuple(i[lo : lo + _POLISH_BATCH] for i in left)
        kk, cc = (np.resize(i, _POLISH_BATCH) for i in part)  # padding: repeated candidates, discarded
        member = np.asarray(rows)[kk]  # into the whole ensemble: whatever the rows, one compiled program
        hp, qp = _polish(params, xs, jnp.asarray(member, jnp.int32), jnp.asarray(h[kk, cc]), steps)
        n = len(part[0])
        h[part], q[part] = np.asarray(hp)[:n], np.asarray(qp)[:n]
    return h, q


def _unconverged(q, tol_q):
    """`(member, candidate)` indices of the `(K, C)` speeds `q` above `tol_q` (not NaN: Newton leaves those
    candidates where they are): the candidates of `_newton_search`'s second phase."""
    return np.nonzero(q > tol_q)


@jax.jit
def _readout_speed(ensemble, inputs, h):
    """`(K, C)` the readout's change in one step, `‖z(F(s)) − z(s)‖` with `z = W_out hidden(s) + b_out`, at the
    `(K, C, S)` states `h` of every member at its `(K, M)` input: how fast a slow point moves the answer."""

    def member(model, x, hk):
        def one(s):
            return jnp.linalg.norm(model.readout(model.hidden(model.step(s, x))) - model.readout(model.hidden(s)))

        return jax.vmap(one)(hk)

    with jax.default_matmul_precision("highest"):
        return jax.vmap(member)(ensemble, inputs, h)


def _member(ensemble, k):
    """Member `k` (traced index) of a stacked ensemble."""
    return jax.tree_util.tree_map(lambda a: a[k], ensemble)


@jax.jit
def _linearize(ensemble, inputs, member, points):
    """Jacobians `(P, S, S)` of `F`, input Jacobians `(P, S, M)` (`AbstractRNN.input_jacobian`) and readouts
    `(P, O)` of the hidden part at `points` of `member`s."""
    with jax.default_matmul_precision("highest"):

        def one(k, s):
            model = _member(ensemble, k)
            _, A = model.residual_and_jacobian(s, inputs[k])
            return (
                A + jnp.eye(s.shape[-1], dtype=s.dtype),
                model.input_jacobian(s, inputs[k]),
                model.readout(model.hidden(s)),
            )

        return jax.vmap(one)(member, points)


@functools.partial(jax.jit, static_argnames=("samples", "minima"))
def _segment_minima(ensemble, inputs, a, b, *, samples, minima):
    """For `(K, P, S)` segment ends `a`, `b`: the `minima` interior local minima of `q` of least `q` on each
    segment among `t = 1/(samples+1), ..., samples/(samples+1)`: points `(K, P, minima, S)` and their `q`
    `(K, P, minima)` (inf where a segment has fewer local minima)."""
    t = jnp.arange(1, samples + 1, dtype=a.dtype) / (samples + 1)
    with jax.default_matmul_precision("highest"):

        def member(model, x, a, b):
            pts = t[None, :, None] * a[:, None, :] + (1 - t[None, :, None]) * b[:, None, :]  # (P, T, S)
            r = jax.vmap(jax.vmap(lambda s: model.step(s, x) - s))(pts)
            q = 0.5 * jnp.sum(r * r, axis=-1)  # (P, T)
            # interior local minima only: q also falls towards the points at the ends
            inner = jnp.zeros_like(q, dtype=bool).at[:, 1:-1].set((q[:, 1:-1] < q[:, :-2]) & (q[:, 1:-1] <= q[:, 2:]))
            qm = jnp.where(inner, q, jnp.inf)
            best = jnp.argsort(qm, axis=1)[:, :minima]  # (P, minima)
            return (jnp.take_along_axis(pts, best[:, :, None], axis=1), jnp.take_along_axis(qm, best, axis=1))

        return jax.vmap(member)(ensemble, inputs, a, b)


@jax.jit
def _full_states(ensemble, inputs):
    return jax.vmap(lambda model: jax.vmap(model.full_states)(inputs))(ensemble)


# ----------------------------------------------------------------------------------------------------
# Float64 polish on the host side of the search (after it): positions as accurate as the network allows
# ----------------------------------------------------------------------------------------------------


@jax.jit
def _newton64(ensemble, inputs, member, h, iters):
    """`iters` (traced) damped Newton iterations (`_newton_step`) from `(P, S)` points `h` of the members
    `member` (at the dtype of `ensemble`: float64 when called by `_float64_newton`). Returns `(h, q, step)`:
    the points, their speed `q` and the length of the next Newton step `‖(J − I)⁻¹ (F(h) − h)‖` (the linear
    estimate of the distance to the root; NaN where `J − I` is singular)."""
    with jax.default_matmul_precision("highest"):

        def one(k, s):
            model, x = _member(ensemble, k), inputs[k]
            s = lax.fori_loop(0, iters, lambda _, s: _newton_step(model, x, s), s)
            r, A = model.residual_and_jacobian(s, x)
            return s, 0.5 * jnp.sum(r * r), jnp.linalg.norm(jnp.linalg.solve(A, r))

        return jax.vmap(one)(member, h)


def _float64_newton(ensemble, xs, member, points, max_iter):
    """Damped Newton (`_newton_step`) in float64 from `(P, S)` `points` of the members `member` `(P,)` at their
    inputs `xs` `(K, M)` (NumPy), `_POLISH_CHUNK` iterations at a time, each point until its next Newton step
    is below `_POLISH_STEP` times its scale, it stalls (`q` falls less than `_POLISH_STALL`-fold in a chunk)
    or it has had `max_iter` iterations. In float64 whatever the working precision (JAX's 64-bit mode in this
    call only, through the `jax.enable_x64` context; the caller's setting is unchanged).

    Returns NumPy float64 `(points, q, step)` and `step0`, the Newton step length at the given points: `(P, S)`,
    `(P,)`, `(P,)`, `(P,)` (a step that cannot be computed, `J − I` singular, is `‖r‖`: 0 at an exact zero)."""
    p = points.shape[0]
    h = np.asarray(points, np.float64).copy()
    if p == 0:
        return h, np.zeros(0), np.zeros(0), np.zeros(0)
    member = np.asarray(member, np.int32)
    with jax.enable_x64(True):
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a), jnp.float64), ensemble)
        x64 = jnp.asarray(np.asarray(xs, np.float64))

        def run(active, iters):
            idx = np.resize(active, _pad_pow2(len(active)))  # padding: repeated points, discarded
            hh, qq, ss = _newton64(
                params, x64, jnp.asarray(member[idx]), jnp.asarray(h[idx]), jnp.asarray(iters, jnp.int32)
            )
            n = len(active)
            hh, qq, ss = np.array(hh)[:n], np.array(qq)[:n], np.array(ss)[:n]
            return hh, qq, np.where(np.isfinite(ss), ss, np.sqrt(2 * np.maximum(qq, 0)))

        active = np.arange(p)
        _, q, step = run(active, 0)
        step0 = step.copy()
        done_iter = 0
        while len(active) and done_iter < max_iter:
            before = q[active]
            hh, qq, ss = run(active, _POLISH_CHUNK)
            h[active], q[active], step[active] = hh, qq, ss
            done_iter += _POLISH_CHUNK
            scale = 1.0 + np.max(np.abs(hh), axis=1)
            done = (ss <= _POLISH_STEP * scale) | (qq == 0) | ~np.isfinite(qq) | (qq > _POLISH_STALL * before)
            active = active[~done]
    return h, q, step, step0


@jax.jit
def _segment_max_q(ensemble, inputs, member, a, b):
    """`(P,)` the largest speed `q` on each segment from `a` to `b` (`(P, S)`, of the members `member`), at
    `_SLOW_SAMPLES` points `t = 1/n, ..., 1` (the start `a` left out)."""
    t = jnp.arange(1, _SLOW_SAMPLES + 1, dtype=a.dtype) / _SLOW_SAMPLES
    with jax.default_matmul_precision("highest"):

        def one(k, a, b):
            model, x = _member(ensemble, k), inputs[k]
            pts = a[None] + t[:, None] * (b - a)[None]
            r = jax.vmap(lambda s: model.step(s, x) - s)(pts)
            return jnp.max(0.5 * jnp.sum(r * r, axis=1))

        return jax.vmap(one)(member, a, b)


def _root_tol(points: np.ndarray) -> np.ndarray:
    """`(P,)` the float64 speed below which a polished point is a root: a residual of `_ROOT_EPS` float64
    epsilons per entry, relative to the state's scale `max(1, ‖s‖∞)`."""
    s = points.shape[1]
    scale = np.maximum(1.0, np.max(np.abs(points), axis=1)) if len(points) else np.zeros(0)
    return 0.5 * s * (_ROOT_EPS * np.finfo(np.float64).eps * scale) ** 2


def _merge_radius(points: np.ndarray, step: np.ndarray) -> np.ndarray:
    """`(P,)` how far each polished root may be from the root it approximates: `_RADIUS_FACTOR` times its next
    Newton step (the linear estimate undershoots near a degenerate root: by 3× where `F − s` is cubic), and
    at least `_MERGE_FLOOR` times its scale."""
    scale = 1.0 + (np.max(np.abs(points), axis=1) if len(points) else np.zeros(0))
    return np.maximum(_RADIUS_FACTOR * step, _MERGE_FLOOR * scale)


def _distinct(
    points: np.ndarray, q: np.ndarray, radius: np.ndarray, known: np.ndarray, known_radius: np.ndarray, tol: float
) -> np.ndarray:
    """Indices of the `points` (polished roots of one member) that are distinct roots: not within
    `max(tol, radius_i + radius_j)` of a `known` root or of a kept point of lower `q` (greedy, by increasing
    `q`)."""
    order = np.argsort(q, kind="stable")
    keep = []
    if len(order) == 0:
        return np.zeros(0, np.int64)
    far = np.ones(len(points), bool)
    if len(known):
        d = pairwise_distances(points, known)
        far = np.all(d > np.maximum(tol, radius[:, None] + known_radius[None, :]), axis=1)
    pts = points[order]
    removed = ~far[order]
    for i in range(len(order)):
        if removed[i]:
            continue
        keep.append(order[i])
        d = np.sqrt(np.sum((pts[i:] - pts[i]) ** 2, axis=1))
        removed[i:] |= d <= np.maximum(tol, radius[order[i]] + radius[order[i:]])
    return np.asarray(keep, np.int64)


# ----------------------------------------------------------------------------------------------------
# Host-side helpers
# ----------------------------------------------------------------------------------------------------


def as_ensemble(ensemble: object) -> AbstractRNN:
    """`ensemble` as a stacked ensemble (a single network gets a member axis of 1), after checking that it
    is a network (`AbstractRNN`: CTRNN, GRU, LSTM, UGRNN or a cell of one's own) with a consistent member axis."""
    if not isinstance(ensemble, AbstractRNN):
        raise TypeError(
            f"`ensemble` must be a network (a subclass of AbstractRNN: CTRNN, GRU, LSTM, UGRNN or a cell "
            f"of one's own; a stacked ensemble or a single network), got {type(ensemble).__name__}."
        )
    network: AbstractRNN = ensemble
    if network.W_out.ndim == 2:  # a single network: K = 1
        network = jax.tree_util.tree_map(lambda x: x[None], network)
    ensemble_size(network)
    return network


def matching(ensemble: object, fixed_points: object) -> tuple[AbstractRNN, int, int]:
    """`(ensemble, K, state size)` with `ensemble` stacked, after checking that `fixed_points` is a
    `FixedPoints` of this ensemble's `K` members and state size (a TypeError/ValueError otherwise)."""
    ensemble = as_ensemble(ensemble)
    if not isinstance(fixed_points, FixedPoints):
        raise TypeError(f"`fixed_points` must be a FixedPoints, got {type(fixed_points).__name__}.")
    k, s = ensemble.W_out.shape[0], ensemble.state_size
    if fixed_points.n_members != k or fixed_points.points.shape[1:] != (s,):
        raise ValueError(
            f"`fixed_points` ({fixed_points.n_members} members, points {fixed_points.points.shape}) "
            f"do not belong to this ensemble (K={k}, state size {s})."
        )
    return ensemble, k, s


def member_dt_tau(ensemble: AbstractRNN) -> np.ndarray:
    """`(K,)` float64 `a = dt/tau` of each member of a stacked ensemble (1 for discrete-time cells)."""
    k = ensemble.W_out.shape[0]
    return np.broadcast_to(np.asarray(ensemble.dt_tau, np.float64), (k,)).copy()


def _check_inputs(inputs: object, k: int, m: int) -> np.ndarray:
    x = np.asarray(inputs, dtype=np.float64)
    if x.shape == (m,):
        x = np.broadcast_to(x, (k, m))
    if x.shape != (k, m):
        raise ValueError(
            f"`inputs` must have shape ({m},) (shared) or ({k}, {m}) (one per member), "
            f"got {np.shape(typing.cast(np.ndarray, inputs))}."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("`inputs` contains NaN or inf.")
    return x


def _check_states(initial_states: object, k: int, n: int) -> np.ndarray:
    h0 = np.asarray(initial_states)
    if h0.ndim != 3 or h0.shape[0] != k or h0.shape[2] != n or h0.shape[1] < 1:
        raise ValueError(f"`initial_states` must have shape (K, C, N) = ({k}, C, {n}) with C >= 1, got {h0.shape}.")
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


def _left_vectors(right: np.ndarray) -> np.ndarray:
    """`(P, S, S)` left eigenvectors (rows) of `(P, S, S)` right ones (columns), `L R = I`: `R⁻¹` (the
    pseudo-inverse where `R` is singular: a defective Jacobian)."""
    right = right.astype(np.complex128)
    try:
        return np.linalg.solve(right, np.broadcast_to(np.eye(right.shape[-1]), right.shape))
    except np.linalg.LinAlgError:  # a defective matrix: the pseudo-inverse, the best biorthogonal rows
        return np.linalg.pinv(right)


def _restart_candidates(
    found: list[np.ndarray], h0: np.ndarray, alpha: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
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


class _OutlierRule:
    """Far from member `k`'s initial states: farther from their centroid than `scale` times their mean
    distance to it (no rule when `scale` is None or that mean is 0)."""

    def __init__(self, h0: np.ndarray, scale: float | None):
        self.centroid = h0.mean(axis=1)  # (K, S)
        self.spread = np.linalg.norm(h0 - self.centroid[:, None], axis=2).mean(axis=1)  # (K,)
        self.scale = scale

    def keep(self, k: int, points: np.ndarray) -> np.ndarray:
        if self.scale is None or self.spread[k] == 0:
            return np.ones(len(points), bool)
        dist = np.linalg.norm(points.astype(np.float64) - self.centroid[k], axis=1)
        return dist <= self.scale * self.spread[k]


def _split(h, q, tol_q, slow_q, slow_tol, outliers, fixed, near, slow, speed=None, slow_speed=None) -> None:
    """Append each member's fixed and slow candidates `(points, q)` of one round to `fixed[k]`, `slow[k]`,
    and the slow ones with `q <= slow_q[k]` (`(K,)`) and, when given, a readout speed `speed (K, C)` at most
    `slow_speed[k]` to `near[k]` (when `near` is not None)."""
    finite = np.isfinite(q) & np.all(np.isfinite(h), axis=2)
    for k in range(h.shape[0]):
        ok = finite[k] & outliers.keep(k, h[k])
        # relative to the state's scale: a residual of tol per entry of a state of size 1, more for larger states
        tol = tol_q * np.maximum(1.0, np.max(np.abs(h[k]), axis=1) if h.shape[1] else 1.0) ** 2
        is_fp = ok & (q[k] <= tol)
        is_slow = ok & (q[k] > tol) & (q[k] <= slow_tol)
        fixed[k].append((h[k][is_fp], q[k][is_fp]))
        if slow is not None:
            slow[k].append((h[k][is_slow], q[k][is_slow]))
        if near is not None:
            is_near = is_slow & (q[k] <= slow_q[k])
            if speed is not None:
                is_near &= speed[k] <= slow_speed[k]
            near[k].append((h[k][is_near], q[k][is_near]))


def _merge(per_member, s, dedup_tol) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Deduplicate each member's candidates over rounds: lists (one entry per member) of points `(P_k, S)`
    and `q` `(P_k,)`."""
    pts, qs = [], []
    for rounds in per_member:
        p = np.concatenate([r[0] for r in rounds]).reshape(-1, s) if rounds else np.zeros((0, s))
        v = np.concatenate([r[1] for r in rounds]) if rounds else np.zeros(0)
        idx = _dedup(p, v, dedup_tol)
        pts.append(p[idx])
        qs.append(v[idx])
    return pts, qs


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`(A, B)` Euclidean distances between the rows of `(A, S)` and `(B, S)` arrays, in float64, through their
    Gram matrix (memory `A·B`, not `A·B·S`: the completion compares thousands of candidates with hundreds of
    points)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d2 = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(d2, 0.0))


def _far_from(candidates: np.ndarray, points: np.ndarray, tol: float) -> np.ndarray:
    """Mask of the `candidates` farther than `tol` from every one of `points` (all True without points)."""
    if len(candidates) == 0 or len(points) == 0:
        return np.ones(len(candidates), bool)
    return pairwise_distances(candidates, points).min(axis=1) > tol


def _pad_pow2(n: int) -> int:
    """`n` rounded up to a power of two (at least 8): few compiled shapes."""
    return max(8, 1 << (max(n, 1) - 1).bit_length())


class _Points:
    """The fixed points of each member found so far, with their Jacobians, eigenvalues and readouts
    (each point polished in float64 and linearized once, when it is added), and per member the slow points
    that turned out not to be roots (`demoted`), whether a limit cut the search short (`capped`, with the
    reasons) and how many new roots the last search round found (`new_last`)."""

    def __init__(self, ensemble, params, xs, dt, k, s):
        self.ensemble, self.params, self.xs, self.dt, self.k, self.s = ensemble, params, xs, dt, k, s
        self.points = [np.zeros((0, s)) for _ in range(k)]
        self.q = [np.zeros(0) for _ in range(k)]
        self.radius = [np.zeros(0) for _ in range(k)]
        self.jac = [np.zeros((0, s, s)) for _ in range(k)]
        self.inp = [np.zeros((0, s, ensemble.n_inputs)) for _ in range(k)]
        self.vals = [np.zeros((0, s), np.complex128) for _ in range(k)]
        self.out = [np.zeros((0, ensemble.W_out.shape[1])) for _ in range(k)]
        self.exact = [np.zeros(0, bool) for _ in range(k)]
        self.demoted = [[] for _ in range(k)]  # (points, q): accepted at the working precision, not roots
        self.capped = [set() for _ in range(k)]
        self.new_last = np.full(k, -1, np.int64)

    def _polish(self, points: list[np.ndarray], max_iter: int):
        member = np.concatenate([np.full(len(p), kk, np.int64) for kk, p in enumerate(points)])
        flat = np.concatenate(points).reshape(-1, self.s) if len(member) else np.zeros((0, self.s))
        h, q, step, step0 = _float64_newton(self.ensemble, np.asarray(self.xs, np.float64), member, flat, max_iter)
        return member, flat, h, q, step, step0

    def add(self, points: list[np.ndarray], q: list[np.ndarray], dedup_tol: float = 0.0) -> int:
        """Polish each member's candidate fixed points in float64 (`_float64_newton`) and add those that are
        roots (`_root_tol`) and distinct from the known ones (`_distinct`); the others go to `demoted`. Returns
        how many were added."""
        member, flat, h, q64, step, _ = self._polish(points, _POLISH_MAX)
        root = q64 <= _root_tol(h)
        for kk in range(self.k):
            bad = (member == kk) & ~root
            if np.any(bad):
                self.demoted[kk].append((flat[bad], np.concatenate(q)[bad]))
        return self._add_roots(member[root], h[root], q64[root], step[root], dedup_tol)

    def _add_roots(self, member, h, q, step, dedup_tol) -> int:
        radius = _merge_radius(h, step)
        keep = []
        for kk in range(self.k):
            mine = np.flatnonzero(member == kk)
            if len(mine):
                known = self.exact[kk]
                idx = _distinct(
                    h[mine], q[mine], radius[mine], self.points[kk][known], self.radius[kk][known], dedup_tol
                )
                keep.append(mine[idx])
        kept = np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)
        return self._append(member[kept], h[kept], q[kept], radius[kept], True)

    def _append(self, member, flat, q, radius, exact: bool) -> int:
        """Linearize and append points (already polished and distinct)."""
        if len(member) == 0:
            return 0
        size = _pad_pow2(len(member))
        pad = size - len(member)
        jac, inp, out = _linearize(
            self.params,
            self.xs,
            jnp.asarray(np.pad(member, (0, pad))),
            jnp.asarray(np.pad(flat, ((0, pad), (0, 0))), self.dt),
        )
        jac, inp, out = (np.asarray(a)[: len(member)] for a in (jac, inp, out))
        vals, _ = _eig(jac, False)
        for kk in range(self.k):
            sel = member == kk
            if not np.any(sel):
                continue
            self.points[kk] = np.concatenate([self.points[kk], flat[sel]])
            self.q[kk] = np.concatenate([self.q[kk], q[sel]])
            self.radius[kk] = np.concatenate([self.radius[kk], radius[sel]])
            self.jac[kk] = np.concatenate([self.jac[kk], jac[sel]])
            self.inp[kk] = np.concatenate([self.inp[kk], inp[sel]])
            self.vals[kk] = np.concatenate([self.vals[kk], vals[sel]])
            self.out[kk] = np.concatenate([self.out[kk], out[sel]])
            self.exact[kk] = np.concatenate([self.exact[kk], np.full(int(np.sum(sel)), exact)])
        return len(member)

    def slow_only(self, points: list[np.ndarray], q: list[np.ndarray], dedup_tol: float = 0.0):
        """Of each member's slow points, those that are slow points: each is run `_SLOW_POLISH_MAX` float64
        Newton iterations, and one that reaches a root adds that root (if new); then those with no fixed point
        within their own slow region (`far_only`) are kept, at their own place and speed. Returns `(points, q, radius)`
        lists per member."""
        member, flat, h, q64, step, step0 = self._polish(points, _SLOW_POLISH_MAX)
        root = q64 <= _root_tol(h)
        self._add_roots(member[root], h[root], q64[root], step[root], dedup_tol)
        qs = np.concatenate(q) if len(member) else np.zeros(0)
        radius = np.zeros(len(member))
        keep = [member == kk for kk in range(self.k)]
        return self.far_only([flat[m] for m in keep], [qs[m] for m in keep], [radius[m] for m in keep])

    def far_only(self, points: list[np.ndarray], q: list[np.ndarray], radius: list[np.ndarray]):
        """Of each member's slow points, those with no fixed point in their own slow region: a slow point `s`
        is dropped when the speed on the straight segment from it to one of its `_SLOW_NEAREST` nearest fixed
        points never rises above its own `q(s)` (the point lies on that fixed point's slope, not in a slow
        region of its own). `(points, q, radius)` lists per member (`radius`: the distance to the nearest
        fixed point; inf without one)."""
        mem, src, dst, owner = [], [], [], []
        pts = [points[kk].reshape(-1, self.s) for kk in range(self.k)]
        for kk in range(self.k):
            fixed = self.points[kk][self.exact[kk]]
            if len(pts[kk]) and len(fixed):
                d = pairwise_distances(pts[kk], fixed)
                near = np.argsort(d, axis=1)[:, :_SLOW_NEAREST]
                i = np.repeat(np.arange(len(pts[kk])), near.shape[1])
                mem.append(np.full(len(i), kk))
                src.append(pts[kk][i])
                dst.append(fixed[near.ravel()])
                owner.append(i)
        dropped = [np.zeros(len(p), bool) for p in pts]
        if mem:
            mem, src, dst = np.concatenate(mem), np.concatenate(src), np.concatenate(dst)
            size = _pad_pow2(len(mem))
            pad = size - len(mem)
            qmax = np.asarray(
                _segment_max_q(
                    self.params,
                    self.xs,
                    jnp.asarray(np.pad(mem, (0, pad))),
                    jnp.asarray(np.pad(src, ((0, pad), (0, 0))), self.dt),
                    jnp.asarray(np.pad(dst, ((0, pad), (0, 0))), self.dt),
                ),
                np.float64,
            )[: len(mem)]
            start = 0
            for kk in range(self.k):
                n = int(np.sum(mem == kk))
                if n:
                    i = owner.pop(0)
                    qs = np.asarray(q[kk], np.float64)[i]
                    np.logical_or.at(dropped[kk], i, qmax[start : start + n] <= qs)
                start += n
        out: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
        for kk in range(self.k):
            keep = ~dropped[kk]
            fixed = self.points[kk][self.exact[kk]]
            dist = (
                pairwise_distances(pts[kk][keep], fixed).min(axis=1)
                if len(fixed) and np.any(keep)
                else np.full(int(np.sum(keep)), np.inf)
            )
            for lst, x in zip(out, (pts[kk][keep], np.asarray(q[kk])[keep], dist)):
                lst.append(x)
        return out

    def add_slow(self, points: list[np.ndarray], q: list[np.ndarray], radius: list[np.ndarray]) -> int:
        """Add analysed slow points (`exact = False`; `far_only`'s)."""
        member = np.concatenate([np.full(len(p), kk, np.int64) for kk, p in enumerate(points)])
        return self._append(
            member, np.concatenate(points).reshape(-1, self.s), np.concatenate(q), np.concatenate(radius), False
        )

    def index(self, kk: int) -> np.ndarray:
        return np.sum(np.abs(self.vals[kk]) > 1, axis=1)

    def new_only(
        self, points: list[np.ndarray], q: list[np.ndarray], tol: float
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Of each member's candidate fixed points, those not within `tol` of a known point (deduplicated)."""
        keep_p, keep_q = [], []
        for kk in range(self.k):
            p, v = points[kk], q[kk]
            idx = _dedup(p, v, tol)
            p, v = p[idx], v[idx]
            far = _far_from(p, self.points[kk], tol)
            p, v = p[far], v[far]
            keep_p.append(p)
            keep_q.append(v)
        return keep_p, keep_q


def _working_members(work: list) -> list[int]:
    """The members with work this round (a non-empty entry of `work`, one per member), repeated to a power
    of two count at most `len(work)`: the rows of a round's batch (a member with nothing to do costs
    nothing, and few batch sizes are compiled)."""
    active = [kk for kk, w in enumerate(work) if len(w)]
    if not active:
        return []
    n = min(1 << (len(active) - 1).bit_length(), len(work))
    return active + [active[0]] * (n - len(active))


def _rows(tree, members: list[int]):
    """The `members` rows of a stacked pytree (all of it when they are every member in order)."""
    if members == list(range(len(jax.tree_util.tree_leaves(tree)[0]))):
        return tree
    idx = jnp.asarray(members)
    return jax.tree_util.tree_map(lambda a: a[idx], tree)


def _complete(found: _Points, config: FixedPointConfig, tol_q: float, max_points: int | None = None, log=None) -> None:
    """Completion of the saddle set, in place (see the module docstring): rounds of candidates between
    neighbouring points of equal saddle index (the interior local minima of `q` along each segment, and
    its midpoint), searched like the first candidates, until no pair is left untried (at most
    `completion_rounds`; per member and round at most `max(n_candidates // 2, 4 · points)` pairs, the
    shortest first; none for a member holding `max_points`, default `config.max_points`). Each round
    computes only the members that have pairs left (`_working_members`): a member with many fixed points
    does not make the others search padding.

    Every limit that stops a member's search with work left is recorded in `found.capped[k]`: `max_points`
    (a member at the bound with pairs untried), `completion_rounds` (the last round still found new roots or
    left pairs untried) and `pairs per round` (where the pairs are cut, only if the rounds then run out).
    `found.new_last[k]`: the new roots of the member's last round."""
    k, s, dt = found.k, found.s, found.dt
    max_points = config.max_points if max_points is None else max_points
    tried: list[set] = [set() for _ in range(k)]
    left = np.zeros(k, bool)  # pairs left untried after a member's last round
    for round_ in range(config.completion_rounds):
        pairs = []
        for kk in range(k):
            pts, index = found.points[kk], found.index(kk)
            exact = found.exact[kk]
            mine = [
                group[neighbour_pairs(pts[group], config.neighbours)]
                for group in (np.flatnonzero((index == i) & exact) for i in np.unique(index[exact]))
            ]
            mine = [tuple(p) for p in np.concatenate(mine).tolist()] if mine else []
            mine = [p for p in mine if p not in tried[kk]]
            if max_points is not None and int(np.sum(exact)) >= max_points:
                if mine:
                    found.capped[kk].add("max_points")
                pairs.append(np.zeros((0, 2), np.int64))  # at the bound: this member is done
                left[kk] = False
                continue
            mine.sort(key=lambda p: float(np.sum((pts[p[0]] - pts[p[1]]) ** 2)))
            per_round = max(1, config.n_candidates // 2, 4 * int(np.sum(exact)))
            left[kk] = len(mine) > per_round
            mine = mine[:per_round]
            tried[kk].update(mine)
            pairs.append(np.asarray(mine, np.int64).reshape(-1, 2))
        rows = _working_members(pairs)
        if not rows:
            return
        if log is not None:
            log(
                f"  completion round {round_ + 1}: {sum(len(p) for p in pairs)} segments, "
                f"{sum(int(np.sum(e)) for e in found.exact)} fixed points so far"
            )
        size = _pad_pow2(max(len(p) for p in pairs))
        a, b = np.zeros((len(rows), size, s)), np.zeros((len(rows), size, s))
        for r, kk in enumerate(rows):  # members with fewer pairs repeat theirs (the candidates are deduplicated)
            pp = np.resize(pairs[kk], (size, 2))
            a[r], b[r] = found.points[kk][pp[:, 0]], found.points[kk][pp[:, 1]]
        cand, qc = _segment_minima(
            _rows(found.params, rows),
            _rows(found.xs, rows),
            jnp.asarray(a, dt),
            jnp.asarray(b, dt),
            samples=config.samples,
            minima=_SEGMENT_MINIMA,
        )
        cand, qc = np.asarray(cand, np.float64), np.asarray(qc, np.float64)
        starts = [np.zeros((0, s)) for _ in range(k)]
        for r, kk in enumerate(rows[: len(set(rows))]):
            n = len(pairs[kk])
            c = cand[r, :n].reshape(-1, s)[np.isfinite(qc[r, :n].reshape(-1))]
            # the segment minima, and the midpoints (a saddle need not be near the segment's q minima)
            c = np.concatenate([c, 0.5 * (a[r, :n] + b[r, :n])])
            # not where a known point already is: the search would only find it again
            length = np.linalg.norm(a[r, :n] - b[r, :n], axis=1)
            tol = 0.1 * float(np.median(length)) if n else 0.0
            c = c[_far_from(c, found.points[kk], tol)]
            starts[kk] = c[_dedup(c, np.zeros(len(c)), tol)] if len(c) else c
        rows = _working_members(starts)
        before = np.asarray([int(np.sum(e)) for e in found.exact])
        if rows:
            size = _pad_pow2(max(len(c) for c in starts))
            h0 = np.stack([np.resize(starts[kk], (size, s)) for kk in rows])
            h, q = _newton_search(
                found.params,
                found.xs,
                jnp.asarray(h0, dt),
                jnp.zeros((len(rows), size), jnp.int32),
                jnp.asarray(config.learning_rate, dt),
                jnp.asarray(config.final_learning_rate, dt),
                adam_steps=config.adam_steps,
                newton_steps=_COMPLETION_NEWTON,
                tol_q=tol_q,
                rows=rows,
            )
            found_rows: list[list] = [[] for _ in rows]
            _split(h, q, tol_q, None, np.inf, _OutlierRule(h0, None), found_rows, None, None)
            fixed: list[list] = [[] for _ in range(k)]
            for r, kk in enumerate(rows[: len(set(rows))]):
                fixed[kk] = found_rows[r]
            found.add(*found.new_only(*_merge(fixed, s, config.dedup_tol), config.dedup_tol), config.dedup_tol)
        new = np.asarray([int(np.sum(e)) for e in found.exact]) - before
        worked = np.asarray([len(p) > 0 for p in pairs])
        found.new_last[worked] = new[worked]
        if round_ == config.completion_rounds - 1:  # the last round allowed: is there work left?
            for kk in np.flatnonzero(worked & ((new > 0) | left)):
                found.capped[kk].add("completion_rounds")
                if left[kk]:
                    found.capped[kk].add("pairs per round")


def neighbour_pairs(points: np.ndarray, neighbours: int, reach: float = _REACH) -> np.ndarray:
    """`(Q, 2)` unordered index pairs `(i, j)`, `i < j`, of `(P, S)` points where `j` is within `reach` times
    `i`'s nearest-neighbour distance of `i` and among its `neighbours` nearest (or the other way round).

    On a grid of attractors this pairs each point with the points across every face it lies on (on a
    cube's face, opposite corners are √2 apart, opposite edge midpoints 1, next neighbours 1/√2), whatever
    the grid's size and dimension."""
    p = len(points)
    if p < 2:
        return np.zeros((0, 2), np.int64)
    d = pairwise_distances(points, points)
    np.fill_diagonal(d, np.inf)
    near = np.argsort(d, axis=1, kind="stable")[:, : min(neighbours, p - 1)]
    dist = np.take_along_axis(d, near, axis=1)
    ok = dist <= reach * dist[:, :1]
    pairs = np.stack([np.repeat(np.arange(p), near.shape[1])[ok.ravel()], near.ravel()[ok.ravel()]], axis=1)
    return np.unique(np.sort(pairs, axis=1), axis=0)


# ----------------------------------------------------------------------------------------------------
# Public functions
# ----------------------------------------------------------------------------------------------------


def find_fixed_points(
    ensemble: AbstractRNN,
    inputs,
    initial_states,
    config: FixedPointConfig | None = None,
    *,
    sim_steps=None,
    key: jax.Array | None = None,
    slow_q=None,
    slow_readout=None,
    log=None,
    newton_starts: int = 0,
) -> FixedPoints:
    """Find the fixed points of every member at a constant input from given candidates, complete the
    saddle set and linearize there (steps 1-4 of the module docstring), and analyse the slow points under
    each member's slow threshold.

    **Arguments:**

    - `ensemble`: a stacked ensemble of `K` networks of any cell (or one network, taken as `K = 1`).
    - `inputs`: the constant input, `(M,)` shared by all members or `(K, M)` one per member.
    - `initial_states`: `(K, C, S)` finite candidates per member (flat states, `S = state_size`), e.g.
      from `fixed_point_candidates` or `initial_states_from_trajectories`.
    - `config`: a `FixedPointConfig` (default `FixedPointConfig()`); its search, restart, completion and
      linearization options apply (`n_candidates`, `state_space_fraction`, `n_trials`, `noise_std` are
      for `fixed_point_candidates`).
    - `sim_steps`: `None` or `(K, C)` ints >= 0: run `F` this many steps from each candidate first
      (candidates on trajectories started from them).
    - `key`: a PRNG key for the restart candidates; default `jax.random.key(config.seed)`.
    - `slow_q`: `None` (no slow point analysed), a number or `(K,)` numbers >= 0: slow points with
      `q <= min(slow_q, slow_tol)` are linearized and classified too (`exact = False`).
    - `slow_readout`: `None` or a number or `(K,)` numbers >= 0: of those, only the points whose readout moves
      at most this much per step, `‖z(F(s)) − z(s)‖ <= slow_readout` (`z` the readout), are analysed. A
      task's rule (what `fixed_point_stage` passes): `slow_q = slow_tol`, `slow_readout = tol_readout /
      T_hold`, the readout's own drift over the task's longest hold within its tolerance
      (`slow_threshold(ensemble, task)` is the per-member `q` that guarantees it whatever the direction).
    - `newton_starts`: uniform starts per member (in the box of `initial_states`) searched by damped Newton
      alone (>= 0; `fixed_point_stage` passes `FixedPointConfig.newton_starts`, or its default).
    - `log`: None or a function of one string, told of the search's progress (candidates, completion rounds)
      and of every limit that cut a member's search short.

    **Returns:** a `FixedPoints` with the distinct fixed points (and analysed slow points) of all members
    (a member whose weights or candidates produce non-finite values simply has none).
    """
    ensemble = as_ensemble(ensemble)
    config = FixedPointConfig() if config is None else config
    if not isinstance(config, FixedPointConfig):
        raise TypeError(f"`config` must be a FixedPointConfig, got {type(config).__name__}.")
    k, s, m = ensemble.W_out.shape[0], ensemble.state_size, ensemble.n_inputs
    x = _check_inputs(inputs, k, m)
    h0 = _check_states(initial_states, k, s)
    if sim_steps is None:
        sim_steps = np.zeros(h0.shape[:2], np.int32)
    sim_steps = np.asarray(sim_steps)
    if sim_steps.shape != h0.shape[:2] or not np.issubdtype(sim_steps.dtype, np.integer) or np.any(sim_steps < 0):
        raise ValueError(
            f"`sim_steps` must be None or integers >= 0 of shape {h0.shape[:2]}, got "
            f"{sim_steps.dtype} {sim_steps.shape}."
        )
    key = jax.random.key(config.seed) if key is None else key
    check_key(key)
    slow_q = _check_slow_q(slow_q, k)
    slow_readout = None if slow_readout is None else _check_slow_q(slow_readout, k, "slow_readout")
    dt = config.working_dtype()
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dt), ensemble)
    xs = jnp.asarray(x, dt)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    with _blas_limit():
        return _find(
            ensemble,
            params,
            xs,
            h0,
            sim_steps.astype(np.int32),
            dt,
            config,
            rng,
            slow_q,
            slow_readout,
            max_points=_max_points(config, k, s),
            log=log,
            n_newton=check_int("newton_starts", newton_starts, 0),
        )


def default_newton_starts(config: FixedPointConfig, k: int, s: int) -> int:
    """Newton-only starts per member: `config.newton_starts`, or (None) as many as `_NEWTON_BUDGET` flops of
    `_NEWTON_ONLY` LU iterations allow for `k` members of state size `s`, at most `_NEWTON_CAP · n_candidates`, at
    least 64. Where roots are many and their Newton basins small (a random tanh network, N = 64, gain 2.5), the
    share of them found grows with the starts (`benchmarks/fixed_point_coverage.py`: 1024 starts found 32 of
    52 independent reference roots, 4096 starts 49), and a small ensemble's starts cost seconds."""
    if config.newton_starts is not None:
        return config.newton_starts
    per_start = _NEWTON_ONLY * (s**3 / 3 + 12 * s * s)
    return int(min(_NEWTON_CAP * config.n_candidates, max(64, _NEWTON_BUDGET / (max(k, 1) * per_start))))


def _max_points(config: FixedPointConfig, k: int, s: int) -> int:
    """The completion's bound on a member's fixed points: `config.max_points`, or (None) as many as the memory
    budget holds (`dynamics._limits.auto_max_points`)."""
    if config.max_points is not None:
        return config.max_points
    return auto_max_points(k, s, np.dtype(config.dtype).itemsize)


def _check_slow_q(slow_q, k: int, name: str = "slow_q") -> np.ndarray:
    """`slow_q` (or another per-member threshold `name`) as `(K,)` float64 (zeros for None: no slow point
    analysed)."""
    if slow_q is None:
        return np.zeros(k)
    v = np.asarray(slow_q, np.float64) if not isinstance(slow_q, bool) else None
    if v is None or v.ndim > 1 or (v.ndim == 1 and v.shape != (k,)) or not np.all(np.isfinite(v)) or np.any(v < 0):
        raise ValueError(
            f"`{name}` must be None, a finite number >= 0 or {k} of them (one per member), got {slow_q!r}."
        )
    return np.broadcast_to(v, (k,)).copy()


def _find(
    ensemble,
    params,
    xs,
    h0,
    sim_steps,
    dt,
    config,
    rng,
    slow_q,
    slow_readout=None,
    max_points=None,
    log=None,
    n_newton=0,
) -> FixedPoints:
    """The body of `find_fixed_points`, after the checks."""
    k, s = h0.shape[0], h0.shape[2]
    tol_q = config.default_tol_q(s)
    h0_64 = h0.astype(np.float64)
    outliers = _OutlierRule(h0_64, config.outlier_scale)
    fixed: list[list] = [[] for _ in range(k)]  # per member: a list of (points, q) over rounds
    slow: list[list] = [[] for _ in range(k)]
    near: list[list] = [[] for _ in range(k)]  # the slow ones under the member's slow threshold
    candidates, steps = h0, sim_steps
    lr, final_lr = jnp.asarray(config.learning_rate, dt), jnp.asarray(config.final_learning_rate, dt)
    for round_ in range(config.restarts + 1):
        h, q = _newton_search(
            params,
            xs,
            jnp.asarray(candidates, dt),
            jnp.asarray(steps),
            lr,
            final_lr,
            adam_steps=config.adam_steps,
            newton_steps=config.newton_steps,
            tol_q=tol_q,
        )
        speed = None if slow_readout is None else np.asarray(_readout_speed(params, xs, jnp.asarray(h)), np.float64)
        _split(h, q, tol_q, slow_q, config.slow_tol, outliers, fixed, near, slow, speed, slow_readout)
        if round_ < config.restarts:
            so_far = _merge(fixed, s, config.dedup_tol)[0]
            candidates, steps = _restart_candidates(so_far, h0_64, member_dt_tau(ensemble), rng)
    if n_newton:  # Newton alone from uniform starts: reaches saddles of high index that Adam on q passes by
        lo, hi = h0_64.min(axis=1), h0_64.max(axis=1)
        starts = lo[:, None] + (hi - lo)[:, None] * rng.uniform(size=(k, n_newton, s))
        h, q = _newton_search(
            params,
            xs,
            jnp.asarray(starts, dt),
            jnp.zeros((k, n_newton), jnp.int32),
            lr,
            final_lr,
            adam_steps=0,
            newton_steps=_NEWTON_ONLY,
            tol_q=tol_q,
        )
        speed = None if slow_readout is None else np.asarray(_readout_speed(params, xs, jnp.asarray(h)), np.float64)
        _split(h, q, tol_q, slow_q, config.slow_tol, outliers, fixed, near, slow, speed, slow_readout)
    found = _Points(ensemble, params, xs, dt, k, s)
    merged = _merge(fixed, s, config.dedup_tol)
    if log is not None:
        log(
            f"  search: {h0.shape[1]} candidates per member, {config.restarts + 1} round(s); polishing "
            f"{sum(len(p) for p in merged[0])} candidate fixed points in float64"
        )
    found.add(*merged, config.dedup_tol)
    found.new_last[:] = [int(np.sum(e)) for e in found.exact]
    if config.complete:
        _complete(found, config, tol_q, max_points=max_points, log=log)
    # the slow points, after the completion (which never sees them): those that run into a root in float64 add
    # it; those with a fixed point within their own slow region are that point, not a slow point
    slow_points, slow_qs, slow_r = found.slow_only(*_merge(slow, s, config.dedup_tol), config.dedup_tol)
    near_p, near_q, near_r = found.slow_only(*_merge(near, s, config.dedup_tol), config.dedup_tol)
    if any(found.demoted):  # accepted at the working precision, not roots in float64: slow points at most
        dp, dq, dr = found.slow_only(*_merge(found.demoted, s, config.dedup_tol), config.dedup_tol)
        slow_points, slow_qs, slow_r = (
            [np.concatenate(pair) for pair in zip(*lists)] for lists in ((slow_points, dp), (slow_qs, dq), (slow_r, dr))
        )
    # with every root known: the rule once more (a slow point may have added a root near another)
    slow_points, slow_qs, _ = found.far_only(slow_points, slow_qs, slow_r)
    found.add_slow(*found.far_only(near_p, near_q, near_r))
    result = _result(found, slow_points, slow_qs, member_dt_tau(ensemble), config)
    if log is not None:
        for kk in range(k):
            if found.capped[kk]:
                log(
                    f"  member {kk}: the search was cut short by {', '.join(sorted(found.capped[kk]))} "
                    f"({int(np.sum(found.exact[kk]))} fixed points): the count is a lower bound"
                )
    return result


def _result(found: _Points, slow_points, slow_q, a, config: FixedPointConfig) -> FixedPoints:
    """The `FixedPoints` of everything found: the exact points, then the analysed slow points, each sorted by
    member, saddle index and `q`."""
    k, s, dt = found.k, found.s, found.dt
    member = np.concatenate([np.full(len(p), kk, np.int64) for kk, p in enumerate(found.points)])
    points, q = np.concatenate(found.points), np.concatenate(found.q)
    jac, vals, out = np.concatenate(found.jac), np.concatenate(found.vals), np.concatenate(found.out)
    inp = np.concatenate(found.inp)
    exact = np.concatenate(found.exact)
    vecs = left = None
    if config.eigvecs:
        vals, vecs = _eig(jac, True)
        assert vecs is not None
        left = _left_vectors(vecs)
    modulus = np.abs(vals)
    delta = config.marginal_tol
    n_unstable = np.sum(modulus > 1 + delta, axis=1).astype(np.int64)
    n_marginal = count_marginal(vals, delta)
    is_stable = np.all(modulus < 1, axis=1)
    is_stable_ct = np.all((vals.real - 1) / a[member][:, None] < 0, axis=1)
    order = np.lexsort((q, n_unstable, member, ~exact))
    cdt = np.complex128 if dt == jnp.dtype(jnp.float64) else np.complex64
    slow_member = np.concatenate([np.full(len(p), kk, np.int64) for kk, p in enumerate(slow_points)])
    return FixedPoints(
        n_members=k,
        inputs=np.asarray(found.xs),
        member=member[order],
        points=points.astype(dt)[order],
        q=q.astype(dt)[order],
        jacobians=jac.astype(dt)[order],
        eigvals=vals[order].astype(cdt),
        eigvecs=None if vecs is None else vecs[order].astype(cdt),
        is_stable=is_stable[order],
        left_eigvecs=None if left is None else left[order],
        input_jacobians=inp.astype(dt)[order],
        is_stable_ct=is_stable_ct[order],
        n_unstable=n_unstable[order],
        outputs=out.astype(dt)[order],
        slow_member=slow_member,
        slow_points=np.concatenate(slow_points).reshape(-1, s).astype(dt),
        slow_q=np.concatenate(slow_q).astype(dt),
        exact=exact[order],
        n_marginal=n_marginal[order],
        marginal_tol=float(delta),
        capped=np.asarray([bool(c) for c in found.capped]),
        new_last_round=found.new_last.copy(),
    )


def complete_saddles(
    ensemble, inputs, fixed_points: "FixedPoints", config: FixedPointConfig | None = None
) -> "FixedPoints":
    """Complete the saddle set of fixed points found earlier (step 4 of the module docstring).

    **Arguments:**

    - `ensemble`: the stacked ensemble of `K` members (any cell) that `fixed_points` belongs to.
    - `inputs`: the constant input of `fixed_points`, `(M,)` or `(K, M)`.
    - `fixed_points`: `find_fixed_points`' result.
    - `config`: a `FixedPointConfig` (`neighbours`, `samples`, `completion_rounds`, `tol_q`, `dedup_tol`,
      `dtype`, `eigvecs`, `marginal_tol` apply).

    **Returns:** a `FixedPoints` with every point of `fixed_points` (re-linearized; its analysed slow
    points too, unless a new fixed point is within `dedup_tol`) and the new ones, and the slow points of
    `fixed_points`. The completion pairs the exact points only.
    """
    ensemble, k, s = matching(ensemble, fixed_points)
    config = FixedPointConfig() if config is None else config
    if not isinstance(config, FixedPointConfig):
        raise TypeError(f"`config` must be a FixedPointConfig, got {type(config).__name__}.")
    x = _check_inputs(inputs, k, ensemble.n_inputs)
    dt = config.working_dtype()
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dt), ensemble)
    xs = jnp.asarray(x, dt)
    with _blas_limit():
        found = _Points(ensemble, params, xs, dt, k, s)
        fp = fixed_points

        def part(exact) -> tuple[list[np.ndarray], list[np.ndarray]]:
            sel = [(fp.member == kk) & (fp.exact == exact) for kk in range(k)]
            return [fp.points[m].astype(np.float64) for m in sel], [fp.q[m].astype(np.float64) for m in sel]

        found.add(*part(True), config.dedup_tol)
        _complete(found, config, config.default_tol_q(s), max_points=_max_points(config, k, s))
        found.add_slow(*found.slow_only(*part(False), config.dedup_tol))
        slow = [fp.slow_points[fp.slow_member == kk].astype(np.float64) for kk in range(k)]
        slow_q = [fp.slow_q[fp.slow_member == kk].astype(np.float64) for kk in range(k)]
        slow, slow_q, _ = found.slow_only(slow, slow_q, config.dedup_tol)
        for kk in range(k):  # a limit that cut the earlier search short still holds
            if fp.capped[kk]:
                found.capped[kk].add("earlier search")
        return _result(found, slow, slow_q, member_dt_tau(ensemble), config)


def initial_states_from_trajectories(
    ensemble: AbstractRNN,
    inputs_batch,
    n_candidates: int,
    *,
    key: jax.Array,
    noise_std: float = 0.0,
) -> jax.Array:
    """Candidate initial states sampled from each member's own noise-free trajectories.

    **Arguments:**

    - `ensemble`: a stacked ensemble of `K` members of any cell (or one network, `K = 1`), sampled from
      their whole flat states (`full_states`; for the LSTM `[h, c]`).
    - `inputs_batch`: `(B, T, M)` trials, the same for every member (e.g. the flip-flop test set).
    - `n_candidates`: `C`, states per member, drawn uniformly from the member's `B·T` visited states
      (without replacement when `C <= B·T`), by a NumPy generator seeded with `key`.
    - `key`: a PRNG key (keyword-only).
    - `noise_std`: std of Gaussian noise added to every sampled state (>= 0).

    **Returns:** `(K, C, S)` float array of candidates, for `find_fixed_points`.
    """
    ensemble = as_ensemble(ensemble)
    c = check_int("n_candidates", n_candidates, 1)
    noise_std = check_positive("noise_std", noise_std, allow_zero=True)
    check_key(key)
    x = jnp.asarray(inputs_batch)
    m = ensemble.n_inputs
    if x.ndim != 3 or x.shape[2] != m or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"`inputs_batch` must have shape (B, T, {m}), got {x.shape}.")
    if not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError("`inputs_batch` contains NaN or inf.")
    states = _full_states(ensemble, x)  # (K, B, T, S)
    k, b, t, n = states.shape
    # Indices and noise from a NumPy generator seeded by `key`: cheap, nothing to compile.
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    picks = np.stack([rng.choice(b * t, c, replace=c > b * t) for _ in range(k)])
    chosen = jnp.take_along_axis(states.reshape(k, b * t, n), jnp.asarray(picks)[:, :, None], axis=1)
    if noise_std > 0:
        chosen = chosen + jnp.asarray(noise_std * rng.standard_normal(chosen.shape), chosen.dtype)
    return chosen


__all__ = [
    "complete_saddles",
    "find_fixed_points",
    "initial_states_from_trajectories",
    "neighbour_pairs",
]
