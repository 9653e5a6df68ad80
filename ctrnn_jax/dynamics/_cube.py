"""The flip-flop cube: do a member's fixed points form the 8 memory states and their saddles?

A network solving the 3-bit flip-flop ideally has 8 stable fixed points whose readouts are the
corners of {−1, +1}³, connected through 12 index-1 saddles (edges), 6 index-2 saddles (faces) and
1 index-3 saddle (centre) (Sussillo & Barak 2013). `cube_analysis` reports what each member has,
without assuming that picture; `ensemble_summary` and `format_cube_table` summarise an ensemble.
Everything here works for `O` output bits in general (`2^O` corners); the flip-flop has `O = 3`.
"""

import itertools
import math
import numbers

import numpy as np

from ..tasks._flipflop import FlipFlopConfig
from ..tasks._task import has_memory_states
from ..training._evaluate import ensemble_states
from ._config import FixedPointConfig
from ._fixed_point_set import FixedPoints
from ._fixed_points import as_ensemble
from ._memory_states import memory_states
from ._stage import fixed_point_stage


def _corners(n_bits: int) -> np.ndarray:
    """`(2^n_bits, n_bits)` the corners of {−1, +1}^n_bits, in `itertools.product` order."""
    return np.asarray(list(itertools.product((-1.0, 1.0), repeat=n_bits)))


def procrustes_disparity(points: np.ndarray, reference: np.ndarray) -> float:
    """Procrustes disparity between two `(P, D)` point sets with matched rows.

    Both are centred and scaled to unit Frobenius norm; `points` is then rotated (orthogonal,
    reflections allowed) and scaled to best fit `reference`. Returns the remaining sum of squared
    differences, in [0, 1]: 0 for the same shape. (The same number as `scipy.spatial.procrustes`.)
    NaN when either set has no spread.
    """
    a = np.asarray(reference, np.float64)
    b = np.asarray(points, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(
            f"`points` and `reference` must be (P, D) arrays of the same shape, got {b.shape} and {a.shape}."
        )
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0 or not (np.isfinite(na) and np.isfinite(nb)):
        return math.nan
    s = np.linalg.svd((a / na).T @ (b / nb), compute_uv=False)
    return float(max(0.0, 1.0 - np.sum(s) ** 2))


def _top_pcs(states: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean `(N,)` and the top-`d` principal axes `(N, d)` of `(T, N)` states (zero-padded if fewer)."""
    mean = states.mean(axis=0)
    _, _, vt = np.linalg.svd(states - mean, full_matrices=False)
    axes = vt[:d].T
    if axes.shape[1] < d:
        axes = np.pad(axes, ((0, 0), (0, d - axes.shape[1])))
    return mean, axes


def cube_analysis(
    fixed_points: FixedPoints,
    ensemble,
    test_states=None,
    *,
    corner_tol: float = 0.5,
    readouts=None,
) -> list[dict]:
    """Per-member analysis of the flip-flop's memory states and saddles.

    **Arguments:**

    - `fixed_points`: the result of `find_fixed_points` for this ensemble (`O` outputs).
    - `ensemble`: the stacked ensemble of `K` members (or one network; any cell), used to check sizes.
      For a gated cell the points are flat states; the cube-ness score uses their hidden part `h`
      (the LSTM's first `N` entries of `[h, c]`).
    - `test_states`: `(K, T, N)` (or `(K, B, T, N)`) each member's activity on the test set, whose
      top-`O` principal components define the space of the cube-ness score; `None` uses the PCs of
      the member's fixed points.
    - `corner_tol`: a stable point recovers corner `c` when its readout is within `corner_tol` of `c`
      in max-norm; in (0, 1), so a readout is near at most one corner.
    - `readouts`: `(C, O)` the readouts of the memory states (a task's `memory_readouts()`); `None` for
      the corners of {−1, +1}^O, the flip-flop's.

    Only the exact fixed points (`fixed_points.exact`) are counted and matched to corners: the analysed slow
    points are in the memory states (`memory_states`, what `memory_state_analysis` adds).

    **Returns:** a list of `K` dicts, one per member, with keys:

    - `member`: the index `k`; `n_fixed_points`, `n_stable`, `n_slow_points`: counts.
    - `n_saddles`: `{index: count}` of the unstable points by saddle index (`n_unstable >= 1`).
    - `n_marginal`: points with no `|λ| > 1` but some `|λ| = 1` (neither stable nor saddle).
    - `corners_recovered`: how many of the `2^O` corners have a stable point (0..8 for `O = 3`).
    - `all_corners`: every corner recovered; `one_to_one`: also no other stable point (exactly one
      stable point per corner, like a perfect flip-flop); `n_stable_off_corner`: stable points near no corner.
    - `corner_points`: for each corner (in `itertools.product((-1, 1), repeat=O)` order), the index into
      `fixed_points`' arrays of its stable point (the nearest readout if several), or -1.
    - `cube_disparity`: Procrustes disparity (`procrustes_disparity`) between the `2^O` corner points
      projected onto the top-`O` PCs and the cube's vertices, matched through their readout corners;
      0 is a perfect (rotated, scaled) cube. NaN unless `all_corners`.
    - `perfect_cube`: `one_to_one` and, for `O = 3`, exactly 12, 6, 1 saddles of index 1, 2, 3 and no others.
    """
    if not isinstance(fixed_points, FixedPoints):
        raise TypeError(f"`fixed_points` must be a FixedPoints, got {type(fixed_points).__name__}.")
    ensemble = as_ensemble(ensemble)
    k, n = ensemble.W_out.shape[0], ensemble.W_out.shape[-1]
    o = ensemble.W_out.shape[1]
    s = ensemble.state_size  # N, or 2N for the LSTM's [h, c]: the memory states are compared on h
    if fixed_points.n_members != k or fixed_points.points.shape[1:] != (s,) or fixed_points.outputs.shape[1:] != (o,):
        raise ValueError(
            f"`fixed_points` ({fixed_points.n_members} members, points {fixed_points.points.shape}, "
            f"outputs {fixed_points.outputs.shape}) do not belong to this ensemble "
            f"(K={k}, N={n}, state size {s}, O={o})."
        )
    if o > 10:
        raise ValueError(f"the cube analysis needs at most 10 outputs (2^O corners), the ensemble has O={o}.")
    if isinstance(corner_tol, bool) or not isinstance(corner_tol, numbers.Real) or not 0 < corner_tol < 1:
        raise ValueError(f"`corner_tol` must be in (0, 1), got {corner_tol!r}.")
    if test_states is not None:
        test_states = np.asarray(test_states, np.float64)
        if test_states.ndim == 4:
            test_states = test_states.reshape(test_states.shape[0], -1, test_states.shape[-1])
        if test_states.ndim != 3 or test_states.shape[0] != k or test_states.shape[2] != n or test_states.shape[1] < 1:
            raise ValueError(
                f"`test_states` must have shape (K, T, N) = ({k}, T, {n}) or (K, B, T, N), got {np.shape(test_states)}."
            )
    corners = _corners(o) if readouts is None else np.asarray(readouts, np.float64)
    if corners.ndim != 2 or corners.shape[1] != o:
        raise ValueError(f"`readouts` must have shape (C, {o}), got {corners.shape}.")
    results = []
    for kk in range(k):
        idx = np.flatnonzero((fixed_points.member == kk) & fixed_points.exact)
        stable = idx[fixed_points.is_stable[idx]]
        unstable = fixed_points.n_unstable[idx]
        saddles = {int(i): int(np.sum(unstable == i)) for i in np.unique(unstable[unstable > 0])}
        out = fixed_points.outputs[stable].astype(np.float64)
        dist = np.max(np.abs(out[:, None, :] - corners[None]), axis=2) if len(stable) else np.zeros((0, len(corners)))
        near = dist <= corner_tol  # (S, 2^O); at most one True per row since corner_tol < 1
        corner_points = []
        for c in range(len(corners)):
            hits = np.flatnonzero(near[:, c])
            corner_points.append(int(stable[hits[np.argmin(dist[hits, c])]]) if len(hits) else -1)
        recovered = sum(p >= 0 for p in corner_points)
        all_corners = recovered == len(corners)
        one_to_one = all_corners and len(stable) == len(corners)
        disparity = math.nan
        if all_corners:
            pts = fixed_points.points[corner_points, :n].astype(np.float64)
            basis = test_states[kk] if test_states is not None else fixed_points.points[idx, :n].astype(np.float64)
            mean, axes = _top_pcs(basis, o)
            disparity = procrustes_disparity((pts - mean) @ axes, corners)
        n_marginal = int(np.sum(~fixed_points.is_stable[idx] & (unstable == 0)))
        results.append(
            {
                "member": kk,
                "n_fixed_points": int(len(idx)),
                "n_stable": int(len(stable)),
                "n_saddles": saddles,
                "n_marginal": n_marginal,
                "n_slow_points": int(np.sum(fixed_points.slow_member == kk)),
                "corners_recovered": int(recovered),
                "all_corners": bool(all_corners),
                "one_to_one": bool(one_to_one),
                "n_stable_off_corner": int(np.sum(~near.any(axis=1))),
                "corner_points": corner_points,
                "cube_disparity": float(disparity),
                "perfect_cube": bool(one_to_one and (o != 3 or (saddles == {1: 12, 2: 6, 3: 1} and n_marginal == 0))),
            }
        )
    return results


def ensemble_summary(per_member: list[dict]) -> dict:
    """Summary over members of `cube_analysis`'s list.

    **Returns:** a dict with `n_members`; `n_all_corners`, `n_one_to_one`, `n_perfect_cube` (members
    with all memory states, with exactly one stable point per corner, with the full 8/12/6/1 cube) and
    `members_all_corners` (their indices); `mean_fixed_points`, `mean_stable`, `mean_corners_recovered`;
    `mean_saddles_by_index` `{index: mean count over all members}`; `cube_disparity_mean` and
    `cube_disparity_median` over the members where it is defined (NaN if none); with the memory states
    (`memory_state_analysis`), `mean_memory_states` and `memory_mechanisms` `{mechanism: count over members}`.
    """
    if not isinstance(per_member, (list, tuple)) or not all(isinstance(d, dict) for d in per_member):
        raise TypeError("`per_member` must be the list of dicts returned by `cube_analysis`.")
    k = len(per_member)
    indices = sorted({i for d in per_member for i in d["n_saddles"]})
    disparities = np.asarray([d["cube_disparity"] for d in per_member], np.float64)
    defined = disparities[np.isfinite(disparities)]

    def mean(key):
        return float(np.mean([d[key] for d in per_member])) if k else math.nan

    extra = {}
    if per_member and all("n_memory_states" in d for d in per_member):
        mechanisms: dict[str, int] = {}
        for d in per_member:
            for name, count in d["memory_mechanisms"].items():
                mechanisms[name] = mechanisms.get(name, 0) + count
        extra = {"mean_memory_states": mean("n_memory_states"), "memory_mechanisms": dict(sorted(mechanisms.items()))}
    return {
        **extra,
        "n_members": k,
        "n_all_corners": int(sum(d["all_corners"] for d in per_member)),
        "n_one_to_one": int(sum(d["one_to_one"] for d in per_member)),
        "n_perfect_cube": int(sum(d["perfect_cube"] for d in per_member)),
        "members_all_corners": [d["member"] for d in per_member if d["all_corners"]],
        "mean_fixed_points": mean("n_fixed_points"),
        "mean_stable": mean("n_stable"),
        "mean_corners_recovered": mean("corners_recovered"),
        "mean_saddles_by_index": {i: float(np.mean([d["n_saddles"].get(i, 0) for d in per_member])) for i in indices},
        "cube_disparity_mean": float(np.mean(defined)) if len(defined) else math.nan,
        "cube_disparity_median": float(np.median(defined)) if len(defined) else math.nan,
    }


def format_cube_table(per_member: list[dict]) -> str:
    """A plain-text table, one row per member: fixed points, stable points, corners recovered
    (`*` marks one-to-one), saddles of index 1, 2, 3 and higher, slow points, cube disparity, and (from
    `memory_state_analysis`) the memory states: how many, and how many of them are marginal manifolds."""
    if not isinstance(per_member, (list, tuple)) or not all(isinstance(d, dict) for d in per_member):
        raise TypeError("`per_member` must be the list of dicts returned by `cube_analysis`.")
    n_corners = len(per_member[0]["corner_points"]) if per_member else 8
    states = bool(per_member) and all("n_memory_states" in d for d in per_member)
    header = (
        f"{'member':>6} {'points':>6} {'stable':>6} {'corners':>8} {'idx1':>5} {'idx2':>5} {'idx3':>5} "
        f"{'idx>3':>5} {'slow':>5} {'disparity':>10}" + (f" {'memory':>6} {'marginal':>8}" if states else "")
    )
    lines = [header]
    for d in per_member:
        s = d["n_saddles"]
        higher = sum(c for i, c in s.items() if i > 3)
        corners = f"{d['corners_recovered']}/{n_corners}{'*' if d['one_to_one'] else ' '}"
        disp = "-" if not math.isfinite(d["cube_disparity"]) else f"{d['cube_disparity']:.4f}"
        lines.append(
            f"{d['member']:>6} {d['n_fixed_points']:>6} {d['n_stable']:>6} {corners:>8} {s.get(1, 0):>5} "
            f"{s.get(2, 0):>5} {s.get(3, 0):>5} {higher:>5} {d['n_slow_points']:>5} {disp:>10}"
            + (
                f" {d['n_memory_states']:>6} {d['n_memory_states'] - d['memory_mechanisms'].get('attractor', 0):>8}"
                if states
                else ""
            )
        )
    lines.append(
        "(* = exactly one stable point per corner; disparity: Procrustes, 0 = perfect cube"
        + ("; memory: memory states, marginal: those on a marginal manifold)" if states else ")")
    )
    return "\n".join(lines)


def memory_state_analysis(
    ensemble, task, fixed_points: FixedPoints, *, corner_tol: float = 0.5
) -> tuple[list[dict], dict]:
    """`cube_analysis` of `fixed_points` against the task's memory states, in the top PCs of each member's
    activity on the task's test set, with the member's memory states (`memory_states` labelled by the
    task's `memory_readouts()`: keys `n_memory_states` and `memory_mechanisms` `{mechanism: count}`), and
    its `ensemble_summary`:
    `(per_member, summary)`. A ValueError for a task without memory states."""
    if not has_memory_states(task):
        raise ValueError(
            f"the {'network without a task' if task is None else task.name + ' task'} has no memory "
            "states (only a task "
            "with `memory_readouts`, e.g. the flip-flop, has a memory-state analysis)."
        )
    states = np.asarray(ensemble_states(ensemble, task.test_set()[0]))  # (K, B, T, N)
    readouts = task.memory_readouts()
    per_member = cube_analysis(fixed_points, ensemble, states, corner_tol=corner_tol, readouts=readouts)
    memory = memory_states(fixed_points, readouts=readouts).to_dict()["members"]
    for d, m in zip(per_member, memory):
        d.update(n_memory_states=m["n_states"], memory_mechanisms=m["by_mechanism"])
    return per_member, ensemble_summary(per_member)


def analyze_fixed_points(
    ensemble,
    task=None,
    *,
    config: FixedPointConfig | None = None,
    inputs=None,
    corner_tol: float = 0.5,
) -> tuple[FixedPoints, list[dict], dict]:
    """The fixed-point stage (`fixed_point_stage`) and the memory-state analysis (`cube_analysis`) of an
    ensemble on a task that has memory states (`task.memory_readouts()`, e.g. the flip-flop), in one call.

    **Arguments:**

    - `ensemble`: a stacked ensemble (or one network), any cell.
    - `task`: the task; default the flip-flop with `n_bits = M` (when `M = O`).
    - `config`: a `FixedPointConfig` (default `FixedPointConfig()`).
    - `inputs`: the constant input, `(M,)`; `None` for the task's (zeros for the flip-flop).
    - `corner_tol`: as in `cube_analysis`.

    **Returns:** `(fixed_points, per_member, summary)`: a `FixedPoints`, the list of `cube_analysis` dicts
    (in the top PCs of each member's test-set activity) and the `ensemble_summary` dict.
    """
    ensemble = as_ensemble(ensemble)
    m, o = ensemble.n_inputs, ensemble.n_outputs
    if task is None:
        if m != o:
            raise ValueError(f"`task` is needed: the default flip-flop has M = O, the ensemble has M = {m}, O = {o}.")
        task = FlipFlopConfig(n_bits=m)
    if not has_memory_states(task):
        raise ValueError(f"the {task.name} task has no memory states (`memory_readouts`).")
    if inputs is not None and np.ndim(inputs) != 1:
        raise ValueError(f"`inputs` must be one constant input of shape ({m},), got shape {np.shape(inputs)}.")
    fixed_points = fixed_point_stage(ensemble, task, inputs=inputs, config=config)[0]
    return (fixed_points, *memory_state_analysis(ensemble, task, fixed_points, corner_tol=corner_tol))


sharded_analyze_fixed_points = analyze_fixed_points  # the stage is distributed itself


__all__ = [
    "analyze_fixed_points",
    "cube_analysis",
    "ensemble_summary",
    "format_cube_table",
    "has_memory_states",
    "memory_state_analysis",
    "procrustes_disparity",
    "sharded_analyze_fixed_points",
]
