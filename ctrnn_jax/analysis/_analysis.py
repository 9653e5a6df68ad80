"""Ensemble analyses (paper section 5.1) and comparison of solutions across realizations.

- `success_summary`: success rate and test-MSE statistics of an `evaluate` dict.
- `robustness_sweep`: MSE and success rate of every member as input noise and pulse amplitude vary.
- `size_sweep_summary`: success rate and median MSE per network size, from separately trained ensembles.
- `memory_state_points`, `pairwise_procrustes`: align members' 8 memory states (orthogonal Procrustes
  in each member's top principal components) and report the pairwise disparity.
- `linear_cka`, `pairwise_cka`: a rotation-invariant similarity of activity (Kornblith et al. 2019).
- `svcca_distance`, `pairwise_svcca`: SVCCA (Raghu et al. 2017), 1 − mean canonical correlation of the
  top principal components, for networks of any sizes (Maheswaranathan et al. 2019's geometry measure).
- `compare_realizations`: both matrices for an ensemble, in one call.
"""

import dataclasses
import math
import numbers

import jax
import numpy as np

from .._checks import check_int, check_key
from ..dynamics._cube import _corners, _top_pcs, cube_analysis, procrustes_disparity
from ..dynamics._fixed_point_set import FixedPoints
from ..dynamics._fixed_points import as_ensemble
from ..models._base import AbstractRNN
from ..tasks._flipflop import FlipFlopConfig, flipflop_test_set, sample_flipflop
from ..training._evaluate import ensemble_states, evaluate


def _check_metrics(metrics: object, name: str = "metrics") -> dict:
    if not isinstance(metrics, dict) or "mse" not in metrics or "success" not in metrics:
        raise ValueError(f"`{name}` must be a dict from `evaluate` with keys 'mse' and 'success', got {metrics!r}.")
    mse = np.asarray(metrics["mse"], np.float64).reshape(-1)
    success = np.asarray(metrics["success"], bool).reshape(-1)
    if mse.shape != success.shape or mse.size == 0:
        raise ValueError(
            f"`{name}['mse']` and `{name}['success']` must be non-empty (K,) arrays of the same "
            f"shape, got {mse.shape} and {success.shape}."
        )
    return {"mse": mse, "success": success}


def success_summary(metrics: dict) -> dict:
    """Success rate of an ensemble (paper 5.1) from `evaluate`'s per-member metrics.

    **Arguments:**

    - `metrics`: the dict returned by `evaluate`, with `(K,)` arrays `mse`, `success` (and optionally `norm`).

    **Returns:** a dict with `n_members` (`K`), `n_success`, `success_rate` (in [0, 1]), `median_mse`,
    `min_mse`, `max_mse` (over members), and the per-member lists `mse`, `success` and, if given, `norm`.
    """
    m = _check_metrics(metrics)
    mse, success = m["mse"], m["success"]
    out = {
        "n_members": int(mse.size),
        "n_success": int(success.sum()),
        "success_rate": float(success.mean()),
        "median_mse": float(np.median(mse)),
        "min_mse": float(np.min(mse)),
        "max_mse": float(np.max(mse)),
        "mse": mse.tolist(),
        "success": success.tolist(),
    }
    if "norm" in metrics:
        out["norm"] = np.asarray(metrics["norm"], np.float64).reshape(-1).tolist()
    return out


def _check_levels(name: str, values: object, *, allow_zero: bool) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (tuple, list, np.ndarray)) or len(values) == 0:
        raise ValueError(f"`{name}` must be a non-empty sequence of numbers, got {values!r}.")
    out = []
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"`{name}` must contain finite real numbers, got {v!r}.")
        if v < 0 or (v == 0 and not allow_zero):
            raise ValueError(f"`{name}` must contain numbers {'>= 0' if allow_zero else '> 0'}, got {v!r}.")
        out.append(float(v))
    return tuple(out)


def robustness_sweep(
    ensemble: AbstractRNN,
    *,
    key: jax.Array,
    noise_levels=(0.0, 0.1, 0.2, 0.5, 1.0),
    amplitude_scales=(0.25, 0.5, 0.75, 1.0, 1.5),
    n_trials: int = 64,
    config: FlipFlopConfig = FlipFlopConfig(),
    threshold: float = 0.02,
) -> dict:
    """Robustness of every member to input noise and to pulse amplitude (paper 5.1), on fresh trials.

    All levels use the same `key`, so the trials have the same pulses and the same noise pattern and only
    the level changes: each level's trials are those of `sample_flipflop(key, level_config, n_trials)`.
    Noise sweep: `config` with `noise_std` replaced by each level. Amplitude sweep: `config` (with its own
    `noise_std`) with the pulse amplitude multiplied by each scale; the targets stay ±1. Every member is
    evaluated at once on each level (one compiled evaluation reused for all levels).

    **Arguments:**

    - `ensemble`: a stacked ensemble of `K` members (or one CTRNN) with `M = O = config.n_bits`.
    - `key`: a typed key from `jax.random.key` (keyword-only), for the trials.
    - `noise_levels`: `L` input noise standard deviations, each >= 0.
    - `amplitude_scales`: `A` factors for the pulse amplitude, each > 0.
    - `n_trials`: trials `B` per level, an int >= 1.
    - `config`: the task (`FlipFlopConfig`).
    - `threshold`: a member succeeds at a level when its MSE is below this, > 0.

    **Returns:** a dict of NumPy arrays: `noise_levels (L,)`, `noise_mse (L, K)`, `noise_success (L, K)`,
    `noise_success_rate (L,)`, `amplitude_scales (A,)`, `amplitude_mse (A, K)`, `amplitude_success (A, K)`,
    `amplitude_success_rate (A,)`.
    """
    ensemble = as_ensemble(ensemble)
    if not isinstance(config, FlipFlopConfig):
        raise ValueError(f"`config` must be a FlipFlopConfig, got {config!r}.")
    check_key(key)
    noise_levels = _check_levels("noise_levels", noise_levels, allow_zero=True)
    amplitude_scales = _check_levels("amplitude_scales", amplitude_scales, allow_zero=False)
    if isinstance(n_trials, bool) or not isinstance(n_trials, numbers.Integral) or n_trials < 1:
        raise ValueError(f"`n_trials` must be an integer >= 1, got {n_trials!r}.")
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not threshold > 0:
        raise ValueError(f"`threshold` must be a number > 0, got {threshold!r}.")
    m, o = ensemble.W_in.shape[-1], ensemble.W_out.shape[-2]
    if m != config.n_bits or o != config.n_bits:
        raise ValueError(f"the ensemble takes {m} inputs and gives {o} outputs; `config.n_bits` is {config.n_bits}.")

    # `sample_flipflop`'s inputs are `amplitude * pulses + noise_std * noise` with pulses and noise fixed by
    # the key, so two draws give every level's trials without compiling the sampler once per level.
    unit = dataclasses.replace(config, amplitude=1.0, noise_std=1.0)
    pulses, targets = sample_flipflop(key, dataclasses.replace(unit, noise_std=0.0), int(n_trials))
    noisy, _ = sample_flipflop(key, unit, int(n_trials))
    pulses, noise = np.asarray(pulses), np.asarray(noisy) - np.asarray(pulses)

    def run(amplitude, noise_std):
        inputs = (amplitude * pulses + noise_std * noise).astype(np.float32)
        metrics = evaluate(ensemble, inputs, targets, threshold=threshold)
        return metrics["mse"], metrics["success"]

    noise_runs = [run(config.amplitude, s) for s in noise_levels]
    amplitude_runs = [run(config.amplitude * a, config.noise_std) for a in amplitude_scales]
    noise_mse, noise_success = (np.stack(x) for x in zip(*noise_runs))
    amp_mse, amp_success = (np.stack(x) for x in zip(*amplitude_runs))
    return {
        "noise_levels": np.asarray(noise_levels),
        "noise_mse": noise_mse,
        "noise_success": noise_success,
        "noise_success_rate": noise_success.mean(axis=1),
        "amplitude_scales": np.asarray(amplitude_scales),
        "amplitude_mse": amp_mse,
        "amplitude_success": amp_success,
        "amplitude_success_rate": amp_success.mean(axis=1),
    }


def size_sweep_summary(results: list) -> dict:
    """Success rate per network size (paper 5.1, minimum network size), from ensembles trained elsewhere.

    **Arguments:**

    - `results`: a list of `(N, metrics)` pairs, `metrics` the `evaluate` dict of an ensemble of size-`N`
      networks. Several entries with the same `N` are pooled.

    **Returns:** a dict of NumPy arrays, one entry per distinct size in increasing order: `sizes`,
    `n_members`, `n_success`, `success_rate`, `median_mse`.
    """
    if isinstance(results, (str, bytes, dict)) or not isinstance(results, (list, tuple)) or len(results) == 0:
        raise ValueError(f"`results` must be a non-empty list of (N, metrics) pairs, got {results!r}.")
    pooled: dict[int, list] = {}
    for i, item in enumerate(results):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError(f"`results[{i}]` must be a pair (N, metrics), got {item!r}.")
        n, metrics = item
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"`results[{i}]`: N must be an integer >= 1, got {n!r}.")
        pooled.setdefault(int(n), []).append(_check_metrics(metrics, f"results[{i}][1]"))
    sizes = sorted(pooled)
    mse = [np.concatenate([m["mse"] for m in pooled[n]]) for n in sizes]
    success = [np.concatenate([m["success"] for m in pooled[n]]) for n in sizes]
    return {
        "sizes": np.asarray(sizes),
        "n_members": np.asarray([s.size for s in success]),
        "n_success": np.asarray([int(s.sum()) for s in success]),
        "success_rate": np.asarray([s.mean() for s in success]),
        "median_mse": np.asarray([np.median(e) for e in mse]),
    }


def memory_state_points(fixed_points: FixedPoints, ensemble: AbstractRNN, *, corner_tol: float = 0.5) -> list:
    """Each member's stable fixed point at each readout corner (its memory states), from `cube_analysis`.

    **Arguments:**

    - `fixed_points`: `find_fixed_points`' result for this ensemble.
    - `ensemble`: the stacked ensemble of `K` members (`O` outputs).
    - `corner_tol`: as in `cube_analysis`.

    **Returns:** a list of `K` arrays `(2^O, N)`, row `c` the stable point whose readout is nearest corner `c`
    (corners in `itertools.product((-1, 1), repeat=O)` order), or a row of NaN when the member has none.
    """
    per_member = cube_analysis(fixed_points, ensemble, corner_tol=corner_tol)
    points = []
    for d in per_member:
        idx = np.asarray(d["corner_points"])
        n = ensemble.W_out.shape[-1]  # the hidden part h of a gated cell's flat state (LSTM: [h, c])
        p = np.full((idx.size, n), np.nan)
        p[idx >= 0] = fixed_points.points[idx[idx >= 0], :n]
        points.append(p)
    return points


def pairwise_procrustes(point_sets: list, *, activity: list | np.ndarray | None = None, d: int = 3) -> np.ndarray:
    """Pairwise Procrustes disparity between members' matched point sets (e.g. their 8 memory states).

    Members may have different sizes `N_k`: each member's points are first projected onto its own top-`d`
    principal components (of its `activity` if given, else of the points themselves); the `(P, d)` sets
    are then compared with `procrustes_disparity` (centring, unit scale, best rotation/reflection and
    scale), rows matched by index (by readout corner for `memory_state_points`).

    **Arguments:**

    - `point_sets`: a list of `K` arrays `(P, N_k)` with the same `P >= 2`; a row with NaN marks a missing point.
    - `activity`: `None`, or a list of `K` arrays `(T_k, N_k)` (or `(K, T, N)`), each member's activity
      defining its principal components.
    - `d`: number of principal components kept, an int >= 1.

    **Returns:** `(K, K)` symmetric disparities in [0, 1] with a zero diagonal; NaN in the rows and columns
    of members with a missing point.
    """
    d = check_int("d", d, 1)
    if isinstance(point_sets, np.ndarray) and point_sets.ndim == 3:
        point_sets = list(point_sets)
    if not isinstance(point_sets, (list, tuple)) or len(point_sets) == 0:
        raise ValueError(f"`point_sets` must be a non-empty list of (P, N_k) arrays, got {type(point_sets).__name__}.")
    sets = [np.asarray(p, np.float64) for p in point_sets]
    if any(p.ndim != 2 for p in sets) or len({p.shape[0] for p in sets}) != 1 or sets[0].shape[0] < 2:
        raise ValueError(
            f"`point_sets` must be (P, N_k) arrays with the same P >= 2, got shapes {[p.shape for p in sets]}."
        )
    k = len(sets)
    if activity is not None:
        if isinstance(activity, np.ndarray) or isinstance(activity, jax.Array):
            activity = list(np.asarray(activity))
        acts = [np.asarray(a, np.float64) for a in activity]
        if len(acts) != k or any(a.ndim != 2 or a.shape[1] != p.shape[1] or a.shape[0] < 2 for a, p in zip(acts, sets)):
            raise ValueError(
                f"`activity` must be {k} arrays (T_k, N_k) matching `point_sets`' N_k, got shapes "
                f"{[a.shape for a in acts]}."
            )
    projected: list[np.ndarray | None] = []
    for i, p in enumerate(sets):
        if not np.all(np.isfinite(p)):
            projected.append(None)
            continue
        mean, axes = _top_pcs(acts[i] if activity is not None else p, d)
        projected.append((p - mean) @ axes)
    out = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            pi, pj = projected[i], projected[j]
            if pi is None or pj is None:
                out[i, j] = out[j, i] = np.nan
            else:
                out[i, j] = out[j, i] = procrustes_disparity(pi, pj)
    for i in range(k):
        if projected[i] is None:
            out[i, i] = np.nan
    return out


def _check_activity(name: str, x: object) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"`{name}` must be a (T, N) array with T >= 2, got shape {x.shape}.")
    return x


def _member_activities(states) -> list[np.ndarray]:
    """`(K, T, N)` activity, or a list of `K` arrays `(T, N_k)`, as a checked list of float64 arrays
    with the same `T`."""
    if isinstance(states, (list, tuple)):
        xs = [_check_activity(f"states[{i}]", s) for i, s in enumerate(states)]
    else:
        arr = np.asarray(states, np.float64)
        if arr.ndim != 3:
            raise ValueError(f"`states` must be (K, T, N) or a list of (T, N_k) arrays, got shape {arr.shape}.")
        xs = [_check_activity(f"states[{i}]", s) for i, s in enumerate(arr)]
    if len(xs) == 0 or len({x.shape[0] for x in xs}) != 1:
        raise ValueError(f"`states` must hold K >= 1 members with the same T, got shapes {[x.shape for x in xs]}.")
    return xs


def linear_cka(x, y) -> float:
    """Centred linear CKA (Kornblith et al. 2019) between two representations of the same `T` samples.

    `CKA = ‖Yᵀ X‖²_F / (‖Xᵀ X‖_F ‖Yᵀ Y‖_F)` with columns centred: 1 for representations equal up to a
    rotation/reflection and an isotropic scale, 0 for uncorrelated ones.

    **Arguments:**

    - `x`: `(T, N1)` activity, one row per time step (or sample).
    - `y`: `(T, N2)` activity for the same `T` samples.

    **Returns:** a float in [0, 1]; NaN when either has no variance.
    """
    x, y = _check_activity("x", x), _check_activity("y", y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"`x` and `y` must have the same number of rows T, got {x.shape} and {y.shape}.")
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    nx, ny = np.linalg.norm(x.T @ x), np.linalg.norm(y.T @ y)
    if nx == 0 or ny == 0:
        return math.nan
    return float(np.linalg.norm(y.T @ x) ** 2 / (nx * ny))


def pairwise_cka(states) -> np.ndarray:
    """Linear CKA between every pair of members' activity.

    **Arguments:**

    - `states`: `(K, T, N)` activity (e.g. `ensemble_states` on a test set, batch flattened into `T`), or
      a list of `K` arrays `(T, N_k)` with the same `T`.

    **Returns:** `(K, K)` symmetric CKA with a unit diagonal.
    """
    xs = _member_activities(states)
    k = len(xs)
    out = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            out[i, j] = out[j, i] = linear_cka(xs[i], xs[j])
    return out


def _svcca_basis(x: np.ndarray, k: int | None, variance: float) -> np.ndarray:
    """Orthonormal `(T, k')` basis of the top principal components of centred `(T, N)` activity."""
    x = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    s2 = s * s
    if s2.sum() == 0:
        return u[:, :0]
    rank = int(np.sum(s > s[0] * max(x.shape) * np.finfo(np.float64).eps))
    if k is None:
        k = int(np.searchsorted(np.cumsum(s2) / s2.sum(), variance) + 1)
    return u[:, : min(k, rank)]


def svcca_distance(x, y, *, k: int | None = None, variance: float = 0.99) -> float:
    """SVCCA distance (Raghu et al. 2017): `1 − mean canonical correlation` between the top principal
    components of two representations of the same `T` samples.

    Each of `x`, `y` is centred and reduced by SVD to its top `k` components (or, with `k=None`, as
    many as explain `variance` of its variance); CCA between the two reduced sets gives
    `min(k_x, k_y)` canonical correlations, the singular values of `U_xᵀ U_y` for the orthonormal
    component bases `U`. 0 for representations equal up to an invertible linear map (a rotation and
    rescaling among them); near 1 for unrelated ones (with `T` much larger than the components kept).
    Symmetric. Networks of any sizes compare (`N1 ≠ N2`; for an LSTM pass `h` or `[h, c]`).

    **Arguments:**

    - `x`: `(T, N1)` activity, one row per time step (or sample); `y`: `(T, N2)` for the same samples.
    - `k`: components kept per representation, an int >= 1, or `None` (then `variance` decides).
    - `variance`: the fraction of variance kept when `k` is `None`, in (0, 1].

    **Returns:** a float in [0, 1]; NaN when either has no variance.
    """
    x, y = _check_activity("x", x), _check_activity("y", y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"`x` and `y` must have the same number of rows T, got {x.shape} and {y.shape}.")
    if k is not None:
        k = check_int("k", k, 1)
    if isinstance(variance, bool) or not isinstance(variance, numbers.Real) or not 0 < variance <= 1:
        raise ValueError(f"`variance` must be in (0, 1], got {variance!r}.")
    ux, uy = _svcca_basis(x, k, variance), _svcca_basis(y, k, variance)
    if ux.shape[1] == 0 or uy.shape[1] == 0:
        return math.nan
    rho = np.clip(np.linalg.svd(ux.T @ uy, compute_uv=False), 0.0, 1.0)
    return float(max(0.0, 1.0 - rho.mean()))


def pairwise_svcca(states, *, k: int | None = None, variance: float = 0.99) -> np.ndarray:
    """`svcca_distance` between every pair of members' activity.

    **Arguments:**

    - `states`: `(K, T, N)` activity, or a list of `K` arrays `(T, N_k)` with the same `T`
      (networks of different sizes or cells).
    - `k`, `variance`: as in `svcca_distance`.

    **Returns:** `(K, K)` symmetric distances with a zero diagonal (NaN for a member without variance).
    """
    xs = _member_activities(states)
    if k is not None:
        k = check_int("k", k, 1)
    if isinstance(variance, bool) or not isinstance(variance, numbers.Real) or not 0 < variance <= 1:
        raise ValueError(f"`variance` must be in (0, 1], got {variance!r}.")
    bases = [_svcca_basis(x, k, variance) for x in xs]
    n = len(xs)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            if bases[i].shape[1] == 0 or bases[j].shape[1] == 0:
                out[i, j] = out[j, i] = math.nan
                continue
            rho = np.clip(np.linalg.svd(bases[i].T @ bases[j], compute_uv=False), 0.0, 1.0)
            out[i, j] = out[j, i] = max(0.0, 1.0 - rho.mean())
        if bases[i].shape[1] == 0:
            out[i, i] = math.nan
    return out


def compare_realizations(
    ensemble: AbstractRNN,
    fixed_points: FixedPoints | None = None,
    *,
    inputs=None,
    targets=None,
    d: int = 3,
) -> dict:
    """Compare the solutions of an ensemble's members: memory-state geometry and activity similarity.

    Activity is every member's noise-free hidden state on the test trials (default: the 8-state test set,
    `flipflop_test_set`). Memory states are each member's stable fixed points at the `2^O` readout corners
    (`memory_state_points`) when `fixed_points` is given, else the mean activity over the time steps where
    the target is at each corner (each state's plateau). They are compared with `pairwise_procrustes` in
    each member's top-`d` PCs of its test activity; activity is compared with `pairwise_cka`.

    **Arguments:**

    - `ensemble`: a stacked ensemble of `K` members (or one CTRNN).
    - `fixed_points`: `None`, or `find_fixed_points`' result for this ensemble.
    - `inputs`, `targets`: `(B, T, M)` and `(B, T, O)` test trials; both `None` for the 8-state test set.
    - `d`: principal components for the Procrustes comparison, an int >= 1.

    **Returns:** a dict with `procrustes (K, K)`, `cka (K, K)`, `points` (the list of `K` `(2^O, N)` memory
    states compared) and `source` (`"fixed_points"` or `"activity"`).
    """
    ensemble = as_ensemble(ensemble)
    if (inputs is None) != (targets is None):
        raise ValueError("`inputs` and `targets` must be given together (or both `None` for the 8-state test set).")
    if inputs is None:
        inputs, targets = flipflop_test_set()
    inputs, targets = np.asarray(inputs, np.float32), np.asarray(targets, np.float64)
    k, n = ensemble.W_out.shape[0], ensemble.W_out.shape[-1]
    m, o = ensemble.W_in.shape[-1], ensemble.W_out.shape[-2]
    if (
        inputs.ndim != 3
        or targets.ndim != 3
        or inputs.shape[:2] != targets.shape[:2]
        or inputs.shape[2] != m
        or targets.shape[2] != o
    ):
        raise ValueError(
            f"`inputs` and `targets` must be (B, T, {m}) and (B, T, {o}), got {inputs.shape} and {targets.shape}."
        )
    states = np.asarray(ensemble_states(ensemble, inputs), np.float64).reshape(k, -1, n)  # (K, B*T, N)
    if fixed_points is not None:
        if not isinstance(fixed_points, FixedPoints):
            raise ValueError(f"`fixed_points` must be a FixedPoints or None, got {type(fixed_points).__name__}.")
        points, source = memory_state_points(fixed_points, ensemble), "fixed_points"
    else:
        corners = _corners(o)
        flat_targets = targets.reshape(-1, o)
        masks = [np.all(flat_targets == c, axis=1) for c in corners]
        points = [
            np.stack([s[mask].mean(axis=0) if mask.any() else np.full(n, np.nan) for mask in masks]) for s in states
        ]
        source = "activity"
    return {
        "procrustes": pairwise_procrustes(points, activity=states, d=d),
        "cka": pairwise_cka(states),
        "points": points,
        "source": source,
    }
