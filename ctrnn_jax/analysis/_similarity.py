"""Similarity measures between networks' activity: the Procrustes shape metric (geometry) and a dynamics
distance in the spirit of Dynamical Similarity Analysis (temporal structure).

- `procrustes_distance`, `pairwise_procrustes_distance`: the angular Procrustes shape metric of Williams,
  Kunz, Kornblith & Linderman (NeurIPS 2021, "Generalized shape metrics on neural representations"),
  `θ(X, Y) = arccos(‖Xᵀ Y‖_* / (‖X‖_F ‖Y‖_F))` of the column-centred activities, without whitening (their
  `α = 1`: orthogonal Procrustes). `‖Xᵀ Y‖_*` (nuclear norm) is the largest `tr(Xᵀ Y Q)` over orthogonal
  `Q`, so `θ` is the angle between the two representations after the best rotation/reflection. It is a
  metric (symmetric, triangle inequality), in [0, π/2], invariant to rotations, reflections, isotropic
  scaling and translation, and networks of different sizes compare by zero-padding the narrower one to
  the wider width (which changes neither norm, so no padding is materialised).
- `hankel_dmd`: the linear operator of Hankel (delay-embedded) DMD, as DSA's reference implementation
  (`mitchellostrow/DSA`, `DSA/dmd.py`) fits it: the delay embedding `[x_t, x_{t−τ}, …, x_{t−(d−1)τ}]` of
  each trial, the top `r` right singular vectors `V` of the stacked embedding (the embedding's time
  courses, whitened), and the least-squares `A` with `v_{t+1} ≈ A v_t` within each trial.
- `dsa_distance`, `pairwise_dsa`: the operators of two systems compared up to an orthogonal similarity,
  `min_C ‖Â − C B̂ Cᵀ‖_F` over orthogonal `C` for the Frobenius-normalised `Â`, `B̂`, reported (DSA's
  default "angular" score) as `arccos tr(Âᵀ C B̂ Cᵀ)` in [0, π]. As in DSA's `SimilarityTransformDist`, the
  minimum is found by Adam on an exponential parametrisation `C = C₀ expm(W − Wᵀ)` (DSA uses the Cayley
  map `(I + S)⁻¹(I − S)`; the exponential, by scaling and squaring, needs only matrix products, which
  batch well; it also reaches rotations by π, which the Cayley map does not) from several starts `C₀` (identity and the
  swap of the first two axes, as DSA; plus two aligned starts, below),
  the best kept; operators of different sizes are zero-padded (DSA's `pad_zeros`).

Defaults and choices (DSA's defaults: `DSA(n_delays=1, rank=None, iters=1500, lr=5e-3, group="O(n)",
score_method="angular")`, `SimilarityTransformDist(iters=200, lr=0.01)`):

- `n_delays = 10`, `rank = 20`: a compact operator, as `compare_ensembles` fits one per member on the test
  set (`rank` <= 30 keeps the `O(n)` search cheap); DSA's `rank=None` (the full `N·d`) would be 640 for
  `N = 64` and ten delays. The rank is capped by the embedding's numerical rank.
- `iters = 200`, `lr = 1e-2`: `SimilarityTransformDist`'s defaults (with the aligned starts below the
  toy systems of the tests converge within 100 steps); every pair and start runs in one compiled `vmap`.
- Two starts besides DSA's: the sign pattern `D` (diagonal ±1) maximising `tr(Âᵀ D B̂ D)`, found by greedy
  single flips (the SVD fixes each `V` column only up to its sign, so a network and a rotated copy of it
  differ by exactly such a `D`), and `E_A D E_Bᵀ` for the eigenvectors `E` of the symmetric parts
  (sorted by eigenvalue) with the same greedy signs. Gradient descent from the identity alone can stall
  far from a sign flip of several axes.
- No centring of the activity before the embedding (as DSA); the trials of one system are stacked.
"""

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._checks import check_int, check_positive
from ._analysis import _check_activity, _member_activities


def _centred(x: np.ndarray) -> np.ndarray:
    return x - x.mean(axis=0)


def _angle(cross_nuclear: float, nx: float, ny: float) -> float:
    if nx == 0 or ny == 0:
        return math.nan
    return float(np.arccos(np.clip(cross_nuclear / (nx * ny), 0.0, 1.0)))


def procrustes_distance(x, y) -> float:
    """Angular Procrustes shape distance (Williams et al. 2021, `α = 1`) between two representations of the
    same `T` samples.

    `θ = arccos(‖Xᵀ Y‖_* / (‖X‖_F ‖Y‖_F))` with `X`, `Y` column-centred; the narrower one is (implicitly)
    zero-padded to the wider width. 0 for representations equal up to a rotation/reflection, an isotropic
    scale and a translation; a metric on such shapes.

    **Arguments:**

    - `x`: `(T, N1)` activity, one row per sample (e.g. a time step of a trial); `y`: `(T, N2)`.

    **Returns:** a float in [0, π/2]; NaN when either has no variance.
    """
    x, y = _check_activity("x", x), _check_activity("y", y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"`x` and `y` must have the same number of rows T, got {x.shape} and {y.shape}.")
    x, y = _centred(x), _centred(y)
    nuclear = np.linalg.svd(x.T @ y, compute_uv=False).sum()
    return _angle(float(nuclear), float(np.linalg.norm(x)), float(np.linalg.norm(y)))


def pairwise_procrustes_distance(states) -> np.ndarray:
    """`procrustes_distance` between every pair of members' activity (not to be confused with
    `pairwise_procrustes`, the disparity of the 8 memory states).

    **Arguments:**

    - `states`: `(K, T, N)` activity, or a list of `K` arrays `(T, N_k)` with the same `T` (networks of
      different sizes or cells).

    **Returns:** `(K, K)` symmetric distances with a zero diagonal (NaN row and column for a member without
    variance).
    """
    xs = [_centred(x) for x in _member_activities(states)]
    # X = Q R (thin QR): ‖Xᵀ Y‖_* = ‖R_xᵀ (Q_xᵀ Q_y) R_y‖_* needs only small matrices per pair
    factors = [np.linalg.qr(x) for x in xs]
    norms = [float(np.linalg.norm(x)) for x in xs]
    n = len(xs)
    out = np.zeros((n, n))
    for i in range(n):
        qi, ri = factors[i]
        for j in range(i + 1, n):
            qj, rj = factors[j]
            nuclear = np.linalg.svd(ri.T @ (qi.T @ qj) @ rj, compute_uv=False).sum()
            out[i, j] = out[j, i] = _angle(float(nuclear), norms[i], norms[j])
        if norms[i] == 0:
            out[i, i] = math.nan
    return out


def _trials(name: str, x: Any) -> np.ndarray:
    """`(T, N)` or `(B, T, N)` trajectories as a float64 `(B, T, N)` array."""
    arr = np.asarray(x, np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] < 2 or arr.shape[2] < 1:
        raise ValueError(f"`{name}` must be (T, N) or (B, T, N) trajectories with T >= 2, got shape {np.shape(x)}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"`{name}` holds non-finite values.")
    return arr


def _check_dmd_options(n_delays, rank, delay_interval) -> tuple[int, int, int]:
    return (
        check_int("n_delays", n_delays, 1),
        check_int("rank", rank, 1),
        check_int("delay_interval", delay_interval, 1),
    )


def _hankel_dmd(x: np.ndarray, n_delays: int, rank: int, delay_interval: int, name: str) -> np.ndarray:
    b, t, n = x.shape
    span = (n_delays - 1) * delay_interval
    if t - span < 2:
        raise ValueError(
            f"`{name}`: T = {t} time steps leave fewer than 2 rows of the delay embedding "
            f"(n_delays = {n_delays}, delay_interval = {delay_interval}: T >= {span + 2} needed)."
        )
    # row t of trial b: [x_t, x_{t−τ}, …, x_{t−(d−1)τ}] (DSA's `embed_signal_torch`), t = span … T−1
    h = np.concatenate([x[:, span - k * delay_interval : t - k * delay_interval] for k in range(n_delays)], axis=2)
    flat = h.reshape(-1, n * n_delays)
    # the top right singular vectors of H from the eigenvectors of Hᵀ H (Nd × Nd: cheaper than H's SVD)
    evals, evecs = np.linalg.eigh(flat.T @ flat)
    evals, evecs = evals[::-1], evecs[:, ::-1]
    s = np.sqrt(np.clip(evals, 0.0, None))
    r = int(min(rank, np.sum(s > s[0] * 1e-6))) if s[0] > 0 else 0  # Gram round-off: ~√ε · s[0]
    if r == 0:
        return np.zeros((0, 0))
    v = (flat @ evecs[:, :r] / s[:r]).reshape(b, t - span, r)
    before, after = v[:, :-1].reshape(-1, r), v[:, 1:].reshape(-1, r)
    return np.linalg.lstsq(before, after, rcond=None)[0].T  # v_{t+1} ≈ A v_t


def hankel_dmd(trajectories, *, n_delays: int = 10, rank: int = 20, delay_interval: int = 1) -> np.ndarray:
    """The Hankel-DMD operator of a system's trajectories (as DSA's `DMD.A_v`).

    Each trial is delay-embedded (rows `[x_t, x_{t−τ}, …, x_{t−(d−1)τ}]`), the trials' embeddings are
    stacked, reduced to their top `rank` right singular vectors `V` (unit-norm time courses), and `A` is
    the least-squares fit of `v_{t+1} ≈ A v_t` over consecutive rows of each trial.

    **Arguments:**

    - `trajectories`: `(B, T, N)` trials (or one `(T, N)` trajectory) of one system.
    - `n_delays`: `d`, the delays per row (>= 1; 1: plain DMD of the states).
    - `rank`: `r`, the singular vectors kept (>= 1; capped by the embedding's numerical rank: singular
      values below 1e-6 of the largest are dropped).
    - `delay_interval`: `τ`, the time steps between delays (>= 1).

    **Returns:** `(r', r')` the operator, `r' = min(rank, numerical rank)` (`(0, 0)` for all-zero data).
    """
    n_delays, rank, delay_interval = _check_dmd_options(n_delays, rank, delay_interval)
    return _hankel_dmd(_trials("trajectories", trajectories), n_delays, rank, delay_interval, "trajectories")


def _expm_skew(w):
    """`expm(w)` by scaling and squaring of a degree-8 Taylor polynomial (matrix products only: cheap under
    `vmap` on every backend; `w / 2^6`, so the truncation error stays below 1e-7 for `‖w‖ <= 20`)."""
    eye = jnp.eye(w.shape[-1], dtype=w.dtype)
    x = w / 64.0
    term, total = eye, eye
    for k in range(1, 9):
        term = term @ x / k
        total = total + term
    for _ in range(6):
        total = total @ total
    return total


@functools.partial(jax.jit, static_argnames=("iters",))
def _align(a, b, starts, lr, *, iters):
    """`(G, S, n, n)` the rotations found for `(G, n, n)` unit-norm `a`, `b` from `(G, S, n, n)` orthogonal
    starts `C₀`: Adam on `C = C₀ expm(W − Wᵀ)` from `W = 0`, maximising `tr(Aᵀ C B Cᵀ)` (i.e. minimising
    `‖A − C B Cᵀ‖_F`)."""
    opt = optax.adam(lr)

    def one(a, b, c0):
        def loss(p):
            c = c0 @ _expm_skew(p - p.T)
            return -jnp.sum(a * (c @ b @ c.T))

        def step(carry, _):
            p, state = carry
            updates, state = opt.update(jax.grad(loss)(p), state)
            return (optax.apply_updates(p, updates), state), None

        p0 = jnp.zeros_like(a)
        (p, _), _ = jax.lax.scan(step, (p0, opt.init(p0)), None, length=iters)
        return c0 @ _expm_skew(p - p.T)

    return jax.vmap(jax.vmap(one, in_axes=(None, None, 0)), in_axes=(0, 0, 0))(a, b, starts)


def _polar(c: np.ndarray) -> np.ndarray:
    """The nearest orthogonal matrices (`U Vᵀ` of the SVD), batched."""
    u, _, vt = np.linalg.svd(c)
    return u @ vt


def _greedy_signs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Diagonal signs `d` (±1) raising `Σ_ij a_ij b_ij d_i d_j` by single flips until none helps."""
    w = a * b
    w = w + w.T
    np.fill_diagonal(w, 0.0)
    d = np.ones(len(a))
    for _ in range(4 * len(a)):
        gain = -d * (w @ d)  # the change of the objective (times 1/2) when d_i flips
        i = int(np.argmax(gain))
        if gain[i] <= 1e-12:
            break
        d[i] = -d[i]
    return d


def _starts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`(4, n, n)` orthogonal starts: greedy signs, the symmetric parts' eigenvectors aligned (greedy
    signs), the identity and the swap of the first two axes (DSA's two starts)."""
    n = len(a)
    eye = np.eye(n)
    swap = eye.copy()
    if n > 1:
        swap[[0, 1]] = swap[[1, 0]]
    ea = np.linalg.eigh(0.5 * (a + a.T))[1]
    eb = np.linalg.eigh(0.5 * (b + b.T))[1]
    d = _greedy_signs(ea.T @ a @ ea, eb.T @ b @ eb)
    return np.stack([np.diag(_greedy_signs(a, b)), ea @ np.diag(d) @ eb.T, eye, swap])


def _pad_normalise(ops: list, n: int) -> np.ndarray:
    out = np.zeros((len(ops), n, n))
    for i, op in enumerate(ops):
        m = op.shape[0]
        norm = np.linalg.norm(op)
        if m and norm > 0:
            out[i, :m, :m] = op / norm
    return out


def _operator_distances(ops: list, pairs: list, iters: int, lr: float) -> np.ndarray:
    """The angular orthogonal-similarity distance for each `(i, j)` of `pairs` (NaN for a zero operator)."""
    if not pairs:
        return np.zeros(0)
    n = max(1, max(op.shape[0] for op in ops))
    unit = _pad_normalise(ops, n)
    a = np.stack([unit[i] for i, _ in pairs])
    b = np.stack([unit[j] for _, j in pairs])
    starts = np.stack([_starts(x, y) for x, y in zip(a, b)])  # (G, S, n, n)
    found = _polar(np.asarray(_align(jnp.asarray(a), jnp.asarray(b), jnp.asarray(starts), lr, iters=iters), np.float64))
    cs = np.concatenate([starts, found], axis=1)  # a start can beat its own descent in float32
    score = np.einsum("gij,gsij->gs", a, cs @ b[:, None] @ np.swapaxes(cs, -1, -2))
    best = score.max(axis=1)
    zero = np.asarray([not np.any(a[k]) or not np.any(b[k]) for k in range(len(pairs))])
    return np.where(zero, math.nan, np.arccos(np.clip(best, -1.0, 1.0)))


def _check_search(iters, lr) -> tuple[int, float]:
    return check_int("iters", iters, 1), check_positive("lr", lr)


def dsa_distance(
    x, y, *, n_delays: int = 10, rank: int = 20, delay_interval: int = 1, iters: int = 200, lr: float = 1e-2
) -> float:
    """Dynamics distance between two systems in the spirit of DSA (Ostrow, Eisen, Kozachkov & Fiete 2023):
    their Hankel-DMD operators (`hankel_dmd`) compared up to an orthogonal similarity.

    `arccos max_C tr(Âᵀ C B̂ Cᵀ)` over orthogonal `C` for the Frobenius-normalised operators (the smaller one
    zero-padded), i.e. the angle left after the best `min_C ‖Â − C B̂ Cᵀ‖_F`; found by Adam on an exponential
    parametrisation from four starts (see the module notes), scored in float64 with the rotation
    projected back onto the orthogonal group. 0 for a system against a rotated (or
    reflected, rescaled) copy of its trajectories; it sees the dynamics (eigenvalues and how the modes
    couple), not the geometry of the condition averages. The two systems need not have the same `N`,
    `B` or `T`.

    **Arguments:**

    - `x`, `y`: `(B, T, N)` trials (or one `(T, N)` trajectory) of each system.
    - `n_delays`, `rank`, `delay_interval`: as in `hankel_dmd`.
    - `iters`, `lr`: Adam steps (>= 1) and learning rate (> 0) of the search over `C`.

    **Returns:** a float in [0, π]; NaN when either system's trajectories are all zero.
    """
    n_delays, rank, delay_interval = _check_dmd_options(n_delays, rank, delay_interval)
    iters, lr = _check_search(iters, lr)
    ops = [_hankel_dmd(_trials(name, v), n_delays, rank, delay_interval, name) for name, v in (("x", x), ("y", y))]
    return float(_operator_distances(ops, [(0, 1)], iters, lr)[0])


def pairwise_dsa(
    trajectories, *, n_delays: int = 10, rank: int = 20, delay_interval: int = 1, iters: int = 200, lr: float = 1e-2
) -> np.ndarray:
    """`dsa_distance` between every pair of systems; one `hankel_dmd` per system, every pair's search in
    one compiled call.

    **Arguments:**

    - `trajectories`: a list of `K` arrays `(B_k, T_k, N_k)` (or `(T_k, N_k)`), one per system (e.g. a
      member's hidden states on the test set, `ensemble_states(...)[k]`).
    - `n_delays`, `rank`, `delay_interval`, `iters`, `lr`: as in `dsa_distance`.

    **Returns:** `(K, K)` symmetric distances with a zero diagonal (NaN row and column for a system whose
    trajectories are all zero).
    """
    n_delays, rank, delay_interval = _check_dmd_options(n_delays, rank, delay_interval)
    iters, lr = _check_search(iters, lr)
    if isinstance(trajectories, (str, bytes)) or not isinstance(trajectories, (list, tuple)) or not trajectories:
        raise ValueError("`trajectories` must be a non-empty list of (B, T, N) arrays.")
    ops = [
        _hankel_dmd(_trials(f"trajectories[{i}]", v), n_delays, rank, delay_interval, f"trajectories[{i}]")
        for i, v in enumerate(trajectories)
    ]
    k = len(ops)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    out = np.zeros((k, k))
    for (i, j), dist in zip(pairs, _operator_distances(ops, pairs, iters, lr)):
        out[i, j] = out[j, i] = dist
    for i, op in enumerate(ops):
        if not op.size or not np.any(op):
            out[i, i] = math.nan
    return out


__all__ = ["dsa_distance", "hankel_dmd", "pairwise_dsa", "pairwise_procrustes_distance", "procrustes_distance"]
