"""Completing the saddle set: the saddle between every pair of neighbouring attractors.

A random-start search (`find_fixed_points`) finds attractors easily, since the dynamics flow into them,
but may miss an index-1 saddle: nothing flows into it, and it is found only when some candidate
happens to start close enough for Newton's method. A network whose attractors are joined by saddles
(the flip-flop's 3×3×3 grid of stable points and the 54 index-1 saddles between neighbours) has each of
those saddles near the segment between the two attractors it joins. `complete_saddles` looks there:

1. **Pairs.** For every member, each stable point with its `neighbours` nearest stable points
   (Euclidean distance in state space), as unordered pairs.
2. **Candidates.** On each segment `t·p + (1 − t)·p'`, the interior local minimum of the speed
   `q = ½‖F(h) − h‖²` of smallest `q` among `samples` values of `t` in (0, 1) (one compiled call,
   `vmap` over members, pairs and samples). Interior: `q` also falls towards the attractors at the ends.
3. **Newton.** `find_fixed_points` from those candidates, Newton only (no Adam, which would
   wander off a saddle's flat neighbourhood), with the points already found among the candidates, so
   that the result is the union, deduplicated and linearized as usual.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int
from ._fixed_points import (
    FixedPoints,
    _check_inputs,
    _matching,
    find_fixed_points,
)


@functools.partial(jax.jit, static_argnames=("samples",))
def _segment_minima(ensemble, inputs, a, b, *, samples):
    """For `(K, P, S)` segment ends `a`, `b`: the `(K, P, S)` interior local minimum of the speed `q` of
    least `q` on each segment, among `t = 1/(samples+1), ..., samples/(samples+1)` (the middle sample
    when `q` has no interior local minimum)."""
    t = jnp.arange(1, samples + 1, dtype=a.dtype) / (samples + 1)
    with jax.default_matmul_precision("highest"):
        def member(model, x, a, b):
            pts = t[None, :, None] * a[:, None, :] + (1 - t[None, :, None]) * b[:, None, :]  # (P, T, S)
            r = jax.vmap(jax.vmap(lambda s: model.step(s, x) - s))(pts)
            q = jnp.sum(r * r, axis=-1)  # (P, T)
            # interior local minima only: q also falls towards the two attractors at the ends
            inner = jnp.zeros_like(q, dtype=bool).at[:, 1:-1].set((q[:, 1:-1] < q[:, :-2]) & (q[:, 1:-1] <= q[:, 2:]))
            best = jnp.where(jnp.any(inner, axis=1), jnp.argmin(jnp.where(inner, q, jnp.inf), axis=1), samples // 2)
            return jnp.take_along_axis(pts, best[:, None, None], axis=1)[:, 0]

        return jax.vmap(member)(ensemble, inputs, a, b)


def neighbour_pairs(points: np.ndarray, neighbours: int) -> np.ndarray:
    """`(Q, 2)` unordered index pairs `(i, j)`, `i < j`, of `(P, S)` points where `j` is among the
    `neighbours` nearest of `i` or the other way round."""
    p = len(points)
    if p < 2:
        return np.zeros((0, 2), np.int64)
    d = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
    np.fill_diagonal(d, np.inf)
    near = np.argsort(d, axis=1, kind="stable")[:, :min(neighbours, p - 1)]
    pairs = np.stack([np.repeat(np.arange(p), near.shape[1]), near.ravel()], axis=1)
    return np.unique(np.sort(pairs, axis=1), axis=0)


def complete_saddles(
    ensemble,
    inputs,
    fixed_points: FixedPoints,
    *,
    neighbours: int = 6,
    samples: int = 31,
    newton_steps: int = 16,
    **finder_options,
) -> FixedPoints:
    """Add the saddles between neighbouring stable points to a member's fixed points.

    **Arguments:**

    - `ensemble`: the stacked ensemble of `K` members (any cell) that `fixed_points` belongs to.
    - `inputs`: the constant input of `fixed_points`, `(M,)` or `(K, M)`.
    - `fixed_points`: `find_fixed_points`' result.
    - `neighbours`: each stable point is paired with this many nearest stable points (>= 1; 6 covers
      a 3-D grid's axis neighbours).
    - `samples`: points per segment at which the speed is evaluated (>= 3; odd includes the midpoint).
    - `newton_steps`: Newton iterations from the candidates (>= 1).
    - `finder_options`: further keyword arguments of `find_fixed_points` (`tol_q`, `dedup_tol`,
      `dtype`, `eigvecs`, ...; `adam_steps` is 0 and `restarts` 0).

    **Returns:** a `FixedPoints` with every point of `fixed_points` (re-linearized) and the new ones, and
    the slow points of `fixed_points`. Members with fewer than two stable points keep their points.
    """
    ensemble, k, s = _matching(ensemble, fixed_points)
    neighbours = check_int("neighbours", neighbours, 1)
    samples = check_int("samples", samples, 3)
    newton_steps = check_int("newton_steps", newton_steps, 1)
    for name in ("adam_steps", "restarts", "key"):
        if name in finder_options:
            raise TypeError(f"`{name}` is not an option of `complete_saddles` (Newton only, no restarts).")
    x = _check_inputs(inputs, k, ensemble.W_in.shape[-1])
    points = fixed_points.points.astype(np.float64)
    pairs = []
    for kk in range(k):
        stable = np.flatnonzero((fixed_points.member == kk) & fixed_points.is_stable)
        pairs.append(stable[neighbour_pairs(points[stable], neighbours)])
    n_pairs = max(len(p) for p in pairs)
    own = [np.flatnonzero(fixed_points.member == kk) for kk in range(k)]
    n_own = max(len(o) for o in own)
    if n_pairs == 0:
        return fixed_points
    a = np.zeros((k, n_pairs, s))
    b = np.zeros((k, n_pairs, s))
    for kk, pp in enumerate(pairs):  # members with fewer pairs repeat theirs (duplicates are merged)
        if len(pp):
            pp = np.resize(pp, (n_pairs, 2))
            a[kk], b[kk] = points[pp[:, 0]], points[pp[:, 1]]
    dt = jnp.dtype(finder_options.get("dtype") or ensemble.W_rec.dtype)
    params = jax.tree_util.tree_map(lambda v: jnp.asarray(v, dt), ensemble)
    mid = np.asarray(_segment_minima(params, jnp.asarray(x, dt), jnp.asarray(a, dt), jnp.asarray(b, dt),
                                     samples=samples), np.float64)
    # candidates: the segment minima, then the member's own points (so nothing found is lost)
    h0 = np.zeros((k, n_pairs + max(n_own, 1), s))
    for kk in range(k):
        h0[kk, :n_pairs] = mid[kk] if len(pairs[kk]) else (points[own[kk]][0] if len(own[kk]) else 0.0)
        h0[kk, n_pairs:] = np.resize(points[own[kk]], (h0.shape[1] - n_pairs, s)) if len(own[kk]) else h0[kk, 0]
    finder_options.setdefault("outlier_scale", None)
    result = find_fixed_points(ensemble, x, h0, adam_steps=0, newton_steps=newton_steps, **finder_options)
    # the slow points are those of the search (the Newton run's are unconverged segment candidates)
    return dataclasses.replace(result, slow_member=fixed_points.slow_member, slow_points=fixed_points.slow_points,
                               slow_q=fixed_points.slow_q)


__all__ = ["complete_saddles", "neighbour_pairs"]
