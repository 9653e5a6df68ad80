"""Unit-level analyses of multitask networks (Yang, Joglekar, Song, Newsome & Wang 2019, Nature Neuroscience
22:297): task variance, clusters of units, lesions, psychometric curves; per member and across members.

**Task variance** (`task_variance`). For member `k`, unit `n` and component task `i` of a `MultitaskConfig`:
each trial's activity `h_n(t)` is averaged over the trial's own *epoch* (by default its response epoch, the
steps where the mask is on and a target is non-zero; a trial without such steps uses its scored steps), and
the task variance is the variance (over trials, `ddof = 0`) of that time average across the task's trials
(its stimulus conditions and noise). This is Yang's "variance across stimulus conditions" taken of the
time-averaged activity (Yang's code averages over time the variance across conditions at each step; the two
agree for activity that is constant within the epoch, as in the response epoch of a decision). Trials are
the multitask's test set (every component's test set) or, with a `key`, `sample_with_tasks(key, batch)`.

The **normalised task variance** of a unit is its row `(n_tasks,)` divided by its largest entry. Units whose
total variance (summed over tasks) is below `min_variance` times the largest total of their member (default
`1e-3`), or zero, are *inactive*: dropped from the normalisation and the clustering (Yang drops units with a
summed variance below 1e-3, an absolute threshold for his softplus rates; a relative one is scale-free).

**Clusters** (`cluster_units`): per member, k-means (k-means++ seeding, `n_init` restarts, Lloyd iterations;
our own NumPy code, deterministic given `seed`) of the active units' normalised task variances for every `k`
of `k_range` with `2 <= k < active units` and at most the number of distinct rows; the chosen `k` has the
largest mean silhouette score (Euclidean; a unit alone in its cluster scores 0; ties: the smaller `k`).
Clusters are numbered by the task of their profile's peak, then by decreasing peak. Per member: labels, `k`,
silhouette, the cluster-by-task map (the mean normalised variance of each cluster's units per task) and the
fraction of active units per cluster. Across members: the distribution of `k` and of cluster sizes, and a
consistency score: each member's clusters are matched to member 0's by their task profiles (a minimum-cost
assignment, the Hungarian algorithm, on minus the Pearson correlation of the profiles; with different `k`
the smaller set is matched) and the score is the mean correlation of the matched pairs (1 for identical
members; member 0 against itself is 1).

**Lesions** (`lesion`, `lesion_effects`): a lesioned unit's outgoing weights are zeroed, its column of the
recurrent weights `W_rec[:, n]` (every gate block of a gated cell) and of the readout `W_out[:, n]`: it still
has activity, but nothing reads it, so it is silent in effect. `lesion_effects` gives, per member, unit set
(a cluster, or any given set) and component task, the change of that task's own metric (`LABEL/metric` of
`task.score_tasks`, e.g. a decision task's accuracy) when the set is lesioned.

**Psychometric curves** (`psychometric`) of the decision tasks (`PerceptualDMConfig`, `ContextDMConfig`, alone
or as a multitask component): on the task's test set, whose documented trial order gives each trial's signed
coherence (of the cued stream for the context task), the fraction of positive choices (the sign of the mean
output over the response window, as `decision_score`) per signed coherence, and a logistic fit per member,
`P(choice > 0) = 1 / (1 + exp(-(slope · c + bias)))`, by Newton's method on the trials' choices with a small
ridge penalty (`ridge · (slope² + bias²)`, default 1e-3) that keeps the fit finite when the choices separate
perfectly (a step: the slope is then large and set by the penalty).
"""

import dataclasses
import functools
from collections.abc import Sequence
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int, check_key, check_positive
from .._results import Result
from ..dynamics._fixed_points import as_ensemble
from ..models._base import AbstractRNN
from ..tasks._decision import ContextDMConfig, PerceptualDMConfig
from ..tasks._multitask import MultitaskConfig
from ..training._evaluate import ensemble_outputs

EPOCHS = ("response", "scored", "trial")
MIN_VARIANCE = 1e-3  # inactive units: total task variance below this fraction of the member's largest
RIDGE = 1e-3  # the psychometric fit's penalty


def _fmt(v) -> str:
    return "–" if not np.isfinite(v) else f"{v:.3g}"


def _num(a) -> list:
    """A float array as nested lists, NaN and infinities as None (JSON)."""
    a = np.asarray(a, np.float64)
    if a.ndim == 0:
        return None if not np.isfinite(a) else float(a)  # type: ignore[return-value]
    return [_num(x) for x in a]


def _check_multitask(task: object) -> MultitaskConfig:
    if not isinstance(task, MultitaskConfig):
        raise TypeError(f"`task` must be a MultitaskConfig, got {type(task).__name__}.")
    return task


def _trials(task: MultitaskConfig, key, batch: int):
    """`(inputs, targets, mask, task_index)` on the host: the test set, or `batch` sampled trials."""
    trials: tuple
    if key is None:
        trials = (*task.test_set(), task.test_task_index())
    else:
        check_key(key)
        trials = task.sample_with_tasks(key, check_int("batch", batch, 1))
    inputs, targets, mask, index = (np.asarray(a) for a in trials)
    return inputs, targets, mask, index


# ------------------------------------------------------------------------------------------ task variance


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class TaskVariance(Result):
    _max_rows: ClassVar[int] = 64

    """Task variance per member, unit and component task (module docstring).

    **Fields:**

    - `variance`: `(K, N, n_tasks)` the task variance (NaN for a task with fewer than 2 trials).
    - `normalized`: `(K, N, n_tasks)` each active unit's row divided by its largest entry; NaN for inactive units.
    - `active`: `(K, N)` bool, the units kept (total variance at least `min_variance` times the member's largest).
    - `labels`: the component tasks' labels.
    - `n_trials`: `(n_tasks,)` int, the trials of each task.
    - `epoch`: the steps averaged over (`response`, `scored` or `trial`).
    - `min_variance`: the relative threshold of inactive units.
    """

    variance: np.ndarray
    normalized: np.ndarray
    active: np.ndarray
    labels: tuple[str, ...]
    n_trials: np.ndarray
    epoch: str
    min_variance: float

    def _table(self) -> tuple[str, list[str], list[list[str]]]:
        header = ["member", "active units"] + [f"{lab} mean var" for lab in self.labels]
        body = []
        for k in range(self.variance.shape[0]):
            mean = np.nanmean(np.where(self.active[k][:, None], self.variance[k], np.nan), axis=0)
            body.append([str(k), f"{int(self.active[k].sum())}/{self.active.shape[1]}"] + [_fmt(v) for v in mean])
        return f"TaskVariance: {self.epoch} epoch, mean task variance of the active units", header, body

    def to_dict(self) -> dict:
        return {
            "labels": list(self.labels),
            "epoch": self.epoch,
            "min_variance": self.min_variance,
            "n_trials": self.n_trials.tolist(),
            "active": self.active.tolist(),
            "variance": _num(self.variance),
            "normalized": _num(self.normalized),
        }


@functools.partial(jax.jit, static_argnums=())
def _epoch_means(ensemble, inputs, weights):
    """`(K, B, N)`: each member's hidden activity averaged over each trial's weighted steps."""
    states = jax.vmap(lambda m: jax.vmap(m.states)(inputs))(ensemble)  # (K, B, T, N)
    total = jnp.maximum(weights.sum(axis=1), 1.0)
    return jnp.einsum("kbtn,bt->kbn", states, weights) / total[None, :, None]


def _epoch_weights(task: MultitaskConfig, targets, mask, index, epoch: str) -> np.ndarray:
    """`(B, T)` 0/1: the steps of each trial that its time average takes."""
    scored = np.any(mask > 0, axis=2)
    if epoch == "scored":
        return scored.astype(np.float32)
    if epoch == "trial":
        lengths = np.asarray([s.sizes[2] for s in task._slots])[index]
        return (np.arange(targets.shape[1])[None] < lengths[:, None]).astype(np.float32)
    response = np.any((mask > 0) & (targets != 0), axis=2)
    empty = ~response.any(axis=1)
    response[empty] = scored[empty]
    return response.astype(np.float32)


def _means(ensemble: AbstractRNN, inputs: np.ndarray, weights: np.ndarray, chunk: int) -> np.ndarray:
    """`_epoch_means` over chunks of `chunk` trials (the last one padded: one compilation)."""
    b = inputs.shape[0]
    chunk = min(chunk, b)
    out = []
    for start in range(0, b, chunk):  # chunks of trials (the states of a chunk are held at once), not time steps
        x, w = inputs[start : start + chunk], weights[start : start + chunk]
        pad = chunk - x.shape[0]
        if pad:
            x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
            w = np.concatenate([w, np.zeros((pad, *w.shape[1:]), w.dtype)])
        out.append(np.asarray(_epoch_means(ensemble, jnp.asarray(x), jnp.asarray(w)))[:, : chunk - pad])
    return np.concatenate(out, axis=1).astype(np.float64)


def task_variance(
    ensemble,
    task: MultitaskConfig,
    *,
    key: jax.Array | None = None,
    batch: int = 1024,
    epoch: str = "response",
    min_variance: float = MIN_VARIANCE,
    chunk: int = 256,
) -> TaskVariance:
    """The task variance of every member's units in every component task (module docstring).

    **Arguments:**

    - `ensemble`: a stacked ensemble (any cell) or a single network, of the multitask's input size.
    - `task`: a `MultitaskConfig`.
    - `key`: None (the task's test set) or a PRNG key: `batch` trials from `task.sample_with_tasks(key, batch)`.
    - `epoch`: the steps of a trial averaged over: `"response"` (mask on and a target non-zero; a trial
      without such steps uses its scored steps), `"scored"` (mask on) or `"trial"` (the component's own length).
    - `min_variance`: units whose total variance is below this fraction of their member's largest are inactive.
    - `chunk`: trials run at once (memory: `K · chunk · T · N` states).

    **Returns:** a `TaskVariance`.
    """
    ensemble = as_ensemble(ensemble)
    task = _check_multitask(task)
    if epoch not in EPOCHS:
        raise ValueError(f"`epoch` must be one of {', '.join(EPOCHS)}, got {epoch!r}.")
    min_variance = check_positive("min_variance", min_variance, allow_zero=True)
    if min_variance >= 1:
        raise ValueError(f"`min_variance` must be in [0, 1), got {min_variance}.")
    chunk = check_int("chunk", chunk, 1)
    if ensemble.n_inputs != task.n_inputs:
        raise ValueError(f"the ensemble takes {ensemble.n_inputs} inputs; the task gives {task.n_inputs}.")
    inputs, targets, mask, index = _trials(task, key, batch)
    weights = _epoch_weights(task, targets, mask, index, epoch)
    means = _means(ensemble, inputs, weights, chunk)  # (K, B, N)
    n_tasks = len(task.tasks)
    k, n = means.shape[0], means.shape[2]
    variance = np.full((k, n, n_tasks), np.nan)
    n_trials = np.zeros(n_tasks, int)
    valid = weights.sum(axis=1) > 0
    for i in range(n_tasks):  # the components (a handful), not time steps
        sel = (index == i) & valid
        n_trials[i] = int(sel.sum())
        if n_trials[i] >= 2:
            variance[:, :, i] = means[:, sel].var(axis=1)
    total = np.nansum(variance, axis=2)  # (K, N)
    largest = total.max(axis=1, keepdims=True)
    active = (total > 0) & (total >= min_variance * largest)
    peak = np.nanmax(np.where(active[..., None], variance, np.nan), axis=2, initial=-np.inf, keepdims=True)
    normalized = np.where(active[..., None] & (peak > 0), variance / np.where(peak > 0, peak, 1.0), np.nan)
    return TaskVariance(
        variance=variance,
        normalized=normalized,
        active=active,
        labels=task.labels,
        n_trials=n_trials,
        epoch=epoch,
        min_variance=min_variance,
    )


# ------------------------------------------------------------------------------------------ k-means, silhouette


def kmeans(x, k: int, *, seed: int = 0, n_init: int = 10, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray, float]:
    """k-means of the rows of `x (n, d)`: k-means++ seeding, `n_init` restarts, Lloyd iterations until the
    labels stop changing (or `max_iter`); the restart with the smallest inertia wins. Deterministic given `seed`.

    **Returns:** `(labels (n,) int, centres (k, d), inertia)`. Raises `ValueError` unless `1 <= k <= n`.
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"`x` must be an array of shape (n, d) with n >= 1, got shape {x.shape}.")
    n = x.shape[0]
    k = check_int("k", k, 1, n)
    n_init = check_int("n_init", n_init, 1)
    max_iter = check_int("max_iter", max_iter, 1)
    rng = np.random.default_rng(check_int("seed", seed, 0))
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    for _ in range(n_init):
        centres = _kmeans_pp(x, k, rng)
        labels = np.full(n, -1)
        for _ in range(max_iter):
            d2 = ((x[:, None, :] - centres[None]) ** 2).sum(axis=2)
            new = d2.argmin(axis=1)
            if np.array_equal(new, labels):
                break
            labels = new
            for c in range(k):
                members = labels == c
                if members.any():
                    centres[c] = x[members].mean(axis=0)
                else:  # an empty cluster takes the point farthest from its centre
                    far = int(d2[np.arange(n), labels].argmax())
                    centres[c] = x[far]
        inertia = float(((x - centres[labels]) ** 2).sum())
        if best is None or inertia < best[2] - 1e-12:
            best = (labels.copy(), centres.copy(), inertia)
    assert best is not None
    return best


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeds: the first uniformly, each next with probability proportional to its squared distance
    to the nearest seed (uniformly among the points not yet chosen when every distance is 0)."""
    n = x.shape[0]
    chosen = [int(rng.integers(n))]
    d2 = ((x - x[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(1, k):
        if d2.sum() > 0:
            nxt = int(rng.choice(n, p=d2 / d2.sum()))
        else:
            nxt = int(rng.choice(np.setdiff1d(np.arange(n), chosen)))
        chosen.append(nxt)
        d2 = np.minimum(d2, ((x - x[nxt]) ** 2).sum(axis=1))
    return x[chosen].copy()


def silhouette_score(x, labels) -> float:
    """The mean silhouette `(b − a) / max(a, b)` of the rows of `x (n, d)` under `labels (n,)` (Euclidean;
    `a` the mean distance to the rest of its cluster, `b` the smallest mean distance to another cluster; a point
    alone in its cluster scores 0). Raises `ValueError` unless there are 2 to n − 1 clusters."""
    x = np.asarray(x, np.float64)
    labels = np.asarray(labels)
    if x.ndim != 2 or labels.shape != (x.shape[0],):
        raise ValueError(f"`x` must be (n, d) and `labels` (n,), got {x.shape} and {labels.shape}.")
    names, lab = np.unique(labels, return_inverse=True)
    n, c = x.shape[0], names.size
    if not 2 <= c <= n - 1:
        raise ValueError(f"`labels` must name 2 to n − 1 = {n - 1} clusters, got {c}.")
    dist = np.sqrt(np.maximum(((x[:, None, :] - x[None]) ** 2).sum(axis=2), 0.0))
    onehot = np.eye(c)[lab]  # (n, c)
    sums = dist @ onehot  # (n, c): summed distance to each cluster
    sizes = onehot.sum(axis=0)
    own = sizes[lab]
    a = sums[np.arange(n), lab] / np.maximum(own - 1, 1)
    other = np.where(onehot > 0, np.inf, sums / sizes[None])
    b = other.min(axis=1)
    s = np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(s.mean())


def assignment(cost) -> tuple[np.ndarray, np.ndarray]:
    """The minimum-cost assignment of a rectangular `cost (n, m)` (the Hungarian algorithm, O(n²m)): rows
    `r` and columns `c` (each `min(n, m)` long, `r` increasing) minimising `cost[r, c].sum()`."""
    cost = np.asarray(cost, np.float64)
    if cost.ndim != 2 or not np.all(np.isfinite(cost)):
        raise ValueError(f"`cost` must be a finite 2-D array, got shape {cost.shape}.")
    if cost.shape[0] > cost.shape[1]:
        c, r = assignment(cost.T)
        order = np.argsort(r)
        return r[order], c[order]
    n, m = cost.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    p = np.zeros(m + 1, int)  # p[j]: the row (1-based) assigned to column j
    way = np.zeros(m + 1, int)
    for i in range(1, n + 1):
        p[0], j0 = i, 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            cur = cost[i0 - 1] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], np.inf)
            j1 = int(cand.argmin()) + 1
            delta = cand[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    cols = np.flatnonzero(p[1:])
    rows = p[1:][cols] - 1
    order = np.argsort(rows)
    return rows[order], cols[order]


def _profile_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`(p, q)` Pearson correlations of the rows of `a (p, T)` and `b (q, T)`; a pair with a constant row
    scores 1 if the rows are equal, else 0."""
    za, zb = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
    na, nb = np.linalg.norm(za, axis=1), np.linalg.norm(zb, axis=1)
    ok = (na[:, None] > 1e-12) & (nb[None] > 1e-12)
    corr = (za @ zb.T) / np.where(ok, na[:, None] * nb[None], 1.0)
    equal = np.all(np.abs(a[:, None] - b[None]) < 1e-9, axis=2).astype(float)
    return np.where(ok, corr, equal)


# ------------------------------------------------------------------------------------------ clusters


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class UnitClusters(Result):
    _max_rows: ClassVar[int] = 64

    """Clusters of units by their normalised task variance, per member, and their consistency across members
    (module docstring).

    **Fields** (`C` = the largest `k` over members; cluster rows past a member's `k` are NaN):

    - `labels`: `(K, N)` int, each unit's cluster (`-1`: an inactive unit).
    - `k`: `(K,)` int, the chosen number of clusters (1 when no `k` of `k_range` could be tried, 0 without
      active units).
    - `silhouette`: `(K,)` the chosen clustering's mean silhouette (NaN when none was tried).
    - `k_range`: the `k` tried; `silhouette_by_k`: `(K, len(k_range))` their silhouettes (NaN: not tried).
    - `profiles`: `(K, C, n_tasks)` the cluster-by-task map, the mean normalised task variance of each cluster's
      units per task.
    - `fraction`: `(K, C)` the fraction of the member's active units in each cluster.
    - `match`: `(K, C)` int, the cluster of member 0 that each cluster is matched to (`-1`: unmatched).
    - `consistency`: `(K,)` the mean profile correlation of a member's matched clusters with member 0's.
    - `labels_tasks`: the component tasks' labels.
    """

    labels: np.ndarray
    k: np.ndarray
    silhouette: np.ndarray
    k_range: tuple[int, ...]
    silhouette_by_k: np.ndarray
    profiles: np.ndarray
    fraction: np.ndarray
    match: np.ndarray
    consistency: np.ndarray
    labels_tasks: tuple[str, ...]

    def k_distribution(self) -> dict[int, int]:
        """How many members chose each `k`."""
        values, counts = np.unique(self.k, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}

    def cluster_sizes(self) -> np.ndarray:
        """The fractions of active units of every cluster of every member, pooled (the size distribution)."""
        return self.fraction[np.isfinite(self.fraction)]

    def members_units(self, member: int, cluster: int) -> np.ndarray:
        """`(N,)` bool: the units of `cluster` in `member`."""
        return np.asarray(self.labels[member] == cluster)

    def _table(self) -> tuple[str, list[str], list[list[str]]]:
        header = ["member", "k", "silhouette", "consistency"] + [
            f"clusters peaking on {lab}" for lab in self.labels_tasks
        ]
        body = []
        for m in range(self.k.shape[0]):
            km = int(self.k[m])
            peaks = np.argmax(np.nan_to_num(self.profiles[m, :km], nan=-1.0), axis=1) if km else np.zeros(0, int)
            counts = [str(int((peaks == i).sum())) for i in range(len(self.labels_tasks))]
            body.append([str(m), str(km), _fmt(self.silhouette[m]), _fmt(self.consistency[m])] + counts)
        dist = ", ".join(f"k={k}: {c}" for k, c in self.k_distribution().items())
        return f"UnitClusters: by normalised task variance ({dist})", header, body

    def to_dict(self) -> dict:
        return {
            "labels_tasks": list(self.labels_tasks),
            "k_range": list(self.k_range),
            "labels": self.labels.tolist(),
            "k": self.k.tolist(),
            "silhouette": _num(self.silhouette),
            "silhouette_by_k": _num(self.silhouette_by_k),
            "profiles": _num(self.profiles),
            "fraction": _num(self.fraction),
            "match": self.match.tolist(),
            "consistency": _num(self.consistency),
        }


def _check_k_range(k_range: object) -> tuple[int, ...]:
    if isinstance(k_range, (str, bytes)) or not isinstance(k_range, (range, Sequence, np.ndarray)):
        raise TypeError(f"`k_range` must be a range or a sequence of integers, got {k_range!r}.")
    values = tuple(check_int(f"k_range[{i}]", v, 2) for i, v in enumerate(k_range))
    if not values:
        raise ValueError("`k_range` must hold at least one k >= 2.")
    return tuple(sorted(set(values)))


def _cluster_member(x: np.ndarray, ks: tuple[int, ...], seed: int, n_init: int, member: int):
    """`(labels, k, silhouette, silhouettes per k)` of one member's active rows `x (n, T)`."""
    n = x.shape[0]
    scores = np.full(len(ks), np.nan)
    if n == 0:
        return np.zeros(0, int), 0, np.nan, scores
    distinct = np.unique(np.round(x, 12), axis=0).shape[0]
    best: tuple[np.ndarray, int, float] = (np.zeros(n, int), 1, np.nan)
    for j, k in enumerate(ks):
        if not 2 <= k <= min(n - 1, distinct):
            continue
        labels, _, _ = kmeans(
            x, k, seed=int(np.random.SeedSequence([seed, member, k]).generate_state(1)[0]), n_init=n_init
        )
        if np.unique(labels).size < 2:
            continue
        scores[j] = silhouette_score(x, labels)
        if not np.isfinite(best[2]) or scores[j] > best[2] + 1e-9:
            best = (labels, k, scores[j])
    return best[0], best[1], best[2], scores


def cluster_units(
    tv: TaskVariance, *, k_range: Sequence[int] = range(3, 21), seed: int = 0, n_init: int = 10
) -> UnitClusters:
    """Cluster every member's active units by their normalised task variance (module docstring).

    **Arguments:**

    - `tv`: a `TaskVariance` (`task_variance`).
    - `k_range`: the numbers of clusters tried (integers >= 2); the one with the largest silhouette is kept.
    - `seed`: the seed of k-means++ (each member and `k` gets its own stream from it); `n_init`: restarts.

    **Returns:** `UnitClusters`.
    """
    if not isinstance(tv, TaskVariance):
        raise TypeError(f"`tv` must be a TaskVariance (from task_variance), got {type(tv).__name__}.")
    ks = _check_k_range(k_range)
    seed = check_int("seed", seed, 0)
    n_init = check_int("n_init", n_init, 1)
    n_members, n_units, n_tasks = tv.variance.shape
    results = []
    for m in range(n_members):  # members (the clustering is host code), not time steps
        x = tv.normalized[m, tv.active[m]]
        labels, k, sil, scores = _cluster_member(x, ks, seed, n_init, m)
        profiles = np.stack([x[labels == c].mean(axis=0) for c in range(k)]) if k else np.zeros((0, n_tasks))
        # canonical order: by the task of the peak, then by decreasing peak, then by decreasing size
        sizes = np.bincount(labels, minlength=k) if k else np.zeros(0, int)
        order = np.lexsort((-sizes, -profiles.max(axis=1), profiles.argmax(axis=1))) if k else np.zeros(0, int)
        rank = np.empty(k, int)
        rank[order] = np.arange(k)
        full = np.full(n_units, -1)
        full[tv.active[m]] = rank[labels] if k else labels
        results.append((full, k, sil, scores, profiles[order], sizes[order] / max(x.shape[0], 1)))
    c_max = max(1, max(r[1] for r in results))
    profiles = np.full((n_members, c_max, n_tasks), np.nan)
    fraction = np.full((n_members, c_max), np.nan)
    for m, r in enumerate(results):
        profiles[m, : r[1]] = r[4]
        fraction[m, : r[1]] = r[5]
    match = np.full((n_members, c_max), -1)
    consistency = np.full(n_members, np.nan)
    k0 = results[0][1]
    for m, r in enumerate(results):
        if k0 and r[1]:
            corr = _profile_correlation(r[4], results[0][4])  # (k_m, k_0)
            rows, cols = assignment(-corr)
            match[m, rows] = cols
            consistency[m] = float(corr[rows, cols].mean())
    return UnitClusters(
        labels=np.stack([r[0] for r in results]),
        k=np.asarray([r[1] for r in results], int),
        silhouette=np.asarray([r[2] for r in results], float),
        k_range=ks,
        silhouette_by_k=np.stack([r[3] for r in results]),
        profiles=profiles,
        fraction=fraction,
        match=match,
        consistency=consistency,
        labels_tasks=tv.labels,
    )


# ------------------------------------------------------------------------------------------ lesions


def _units_mask(units: object, k: int, n: int, name: str = "units") -> np.ndarray:
    a = np.asarray(units)
    if a.dtype != bool:
        raise TypeError(f"`{name}` must be a boolean array (True: lesioned), got dtype {a.dtype}.")
    if a.shape == (n,):
        a = np.broadcast_to(a, (k, n))
    if a.shape != (k, n):
        raise ValueError(f"`{name}` must have shape ({k}, {n}) or ({n},), got {a.shape}.")
    return a


def lesion(ensemble, units) -> AbstractRNN:
    """The ensemble with `units` lesioned: their outgoing weights, the columns `W_rec[:, n]` (every gate block)
    and `W_out[:, n]`, set to 0, so that nothing reads them (they are silent in effect).

    **Arguments:**

    - `ensemble`: a stacked ensemble of `K` members (any cell whose units act only through `W_rec` and
      `W_out`, as the built-in ones) or a single network (returned with a member axis of 1).
    - `units`: `(K, N)` or `(N,)` (the same units in every member) bool, True for a lesioned unit.

    **Returns:** the lesioned ensemble (the input is unchanged).
    """
    ensemble = as_ensemble(ensemble)
    k, n = ensemble.W_out.shape[0], ensemble.n_units
    keep = jnp.asarray(~_units_mask(units, k, n), ensemble.W_out.dtype)  # (K, N)
    return eqx.tree_at(
        lambda e: (e.W_rec, e.W_out),
        ensemble,
        (ensemble.W_rec * keep[:, None, :], ensemble.W_out * keep[:, None, :]),
    )


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class LesionEffects(Result):
    _max_rows: ClassVar[int] = 64

    """The per-task effect of lesioning unit sets (module docstring).

    **Fields** (`S` unit sets):

    - `labels`: the component tasks' labels; `sets`: the sets' names (`cluster c`, or `set s`).
    - `n_units`: `(K, S)` int, the units lesioned in each member (0: nothing lesioned, scores NaN).
    - `intact`: `(K, n_tasks)` each task's own metric (`LABEL/metric`) of the intact members.
    - `lesioned`: `(K, S, n_tasks)` the same with the set lesioned (NaN for an empty set).
    - `change`: `(K, S, n_tasks)` `lesioned − intact`.
    """

    labels: tuple[str, ...]
    sets: tuple[str, ...]
    n_units: np.ndarray
    intact: np.ndarray
    lesioned: np.ndarray
    change: np.ndarray

    def _table(self) -> tuple[str, list[str], list[list[str]]]:
        header = ["member", "set", "units"] + [f"Δ {lab}" for lab in self.labels]
        body = []
        for k in range(self.n_units.shape[0]):
            for s, name in enumerate(self.sets):
                if self.n_units[k, s]:
                    body.append([str(k), name, str(int(self.n_units[k, s]))] + [_fmt(v) for v in self.change[k, s]])
        return "LesionEffects: change of each task's own metric", header, body

    def to_dict(self) -> dict:
        return {
            "labels": list(self.labels),
            "sets": list(self.sets),
            "n_units": self.n_units.tolist(),
            "intact": _num(self.intact),
            "lesioned": _num(self.lesioned),
            "change": _num(self.change),
        }


def _task_metrics(task: MultitaskConfig, outputs, targets, mask, index) -> np.ndarray:
    scores = task.score_tasks(outputs, targets, mask, index)
    return np.stack([np.asarray(scores[f"{lab}/metric"], np.float64) for lab in task.labels], axis=1)


def lesion_effects(
    ensemble, task: MultitaskConfig, units, *, key: jax.Array | None = None, batch: int = 1024
) -> LesionEffects:
    """The change of every component task's own metric when each unit set is lesioned (`lesion`).

    **Arguments:**

    - `ensemble`: a stacked ensemble (or one network); `task`: its `MultitaskConfig`.
    - `units`: `UnitClusters` (each cluster index is a set: member `k`'s cluster `c`), or bool `(K, N)` (one
      set) or `(S, K, N)` (`S` sets), True for a lesioned unit.
    - `key`: None (the test set) or a PRNG key: `batch` trials of `task.sample_with_tasks(key, batch)`.

    **Returns:** `LesionEffects`.
    """
    ensemble = as_ensemble(ensemble)
    task = _check_multitask(task)
    k, n = ensemble.W_out.shape[0], ensemble.n_units
    if isinstance(units, UnitClusters):
        if units.labels.shape != (k, n):
            raise ValueError(f"`units` clusters {units.labels.shape} units; the ensemble has ({k}, {n}).")
        c_max = int(units.k.max(initial=0))
        sets = np.stack([units.labels == c for c in range(c_max)]) if c_max else np.zeros((0, k, n), bool)
        names = tuple(f"cluster {c}" for c in range(c_max))
    else:
        a = np.asarray(units)
        if a.dtype != bool:
            raise TypeError(
                f"`units` must be UnitClusters or a boolean array (K, N) or (S, K, N), got {type(units).__name__}"
                f" of dtype {a.dtype}."
            )
        if a.ndim == 2:
            a = a[None]
        if a.ndim != 3 or a.shape[1:] != (k, n):
            raise ValueError(f"`units` must have shape ({k}, {n}) or (S, {k}, {n}), got {np.shape(units)}.")
        sets, names = a, tuple(f"set {s}" for s in range(a.shape[0]))
    inputs, targets, mask, index = _trials(task, key, batch)
    intact = _task_metrics(task, ensemble_outputs(ensemble, inputs), targets, mask, index)
    lesioned = np.full((k, len(names), len(task.tasks)), np.nan)
    for s in range(len(names)):  # unit sets (each a whole vmapped forward pass), not time steps
        if not sets[s].any():
            continue
        out = ensemble_outputs(lesion(ensemble, sets[s]), inputs)
        lesioned[:, s] = _task_metrics(task, out, targets, mask, index)
    n_units = sets.sum(axis=2).T.astype(int)  # (K, S)
    lesioned[n_units == 0] = np.nan
    return LesionEffects(
        labels=task.labels,
        sets=names,
        n_units=n_units,
        intact=intact,
        lesioned=lesioned,
        change=lesioned - intact[:, None, :],
    )


# ------------------------------------------------------------------------------------------ psychometric


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Psychometric(Result):
    _max_rows: ClassVar[int] = 64

    """Psychometric curves and their logistic fits, per member (module docstring).

    **Fields:**

    - `coherence`: `(L,)` the signed coherences, increasing (of the cued stream for the context task).
    - `p_positive`: `(K, L)` the fraction of positive choices at each.
    - `n_trials`: `(L,)` int, the test trials at each.
    - `slope`, `bias`: `(K,)` the fit `P(choice > 0) = 1 / (1 + exp(-(slope · c + bias)))`.
    - `threshold`: `(K,)` `−bias / slope`, the coherence of indifference (the point of subjective equality).
    - `task`: what was measured (the task's name or the component's label); `ridge`: the fit's penalty.
    """

    coherence: np.ndarray
    p_positive: np.ndarray
    n_trials: np.ndarray
    slope: np.ndarray
    bias: np.ndarray
    threshold: np.ndarray
    task: str
    ridge: float

    def predict(self, coherence) -> np.ndarray:
        """`(K, ...)` the fitted probability of a positive choice at `coherence`."""
        c = np.asarray(coherence, np.float64)
        z = self.slope.reshape((-1,) + (1,) * c.ndim) * c[None] + self.bias.reshape((-1,) + (1,) * c.ndim)
        return 1.0 / (1.0 + np.exp(-z))

    def _table(self) -> tuple[str, list[str], list[list[str]]]:
        header = ["member", "slope", "bias", "threshold"] + [f"P(+) at {c:+.3g}" for c in self.coherence]
        body = [
            [str(k), _fmt(self.slope[k]), _fmt(self.bias[k]), _fmt(self.threshold[k])]
            + [_fmt(v) for v in self.p_positive[k]]
            for k in range(self.slope.shape[0])
        ]
        return f"Psychometric: curves of {self.task} (logistic fits)", header, body

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "ridge": self.ridge,
            "coherence": self.coherence.tolist(),
            "n_trials": self.n_trials.tolist(),
            "p_positive": _num(self.p_positive),
            "slope": _num(self.slope),
            "bias": _num(self.bias),
            "threshold": _num(self.threshold),
        }


def _test_coherences(task: PerceptualDMConfig | ContextDMConfig) -> np.ndarray:
    """Each test trial's signed coherence (of the cued stream), from the test sets' documented order."""
    levels = np.asarray(task.coherences, np.float32)
    signed = np.concatenate([levels, -levels])
    if isinstance(task, ContextDMConfig):
        context, motion, colour = (g.ravel() for g in np.meshgrid(np.arange(2), signed, signed, indexing="ij"))
        return np.tile(np.where(context == 0, motion, colour), task.test_repeats)
    return np.tile(signed, task.test_repeats)


def _logistic_fit(c: np.ndarray, y: np.ndarray, ridge: float) -> tuple[float, float]:
    """`(slope, bias)` maximising the penalised log-likelihood of choices `y (B,)` in {0, 1} at `c (B,)`."""
    x = np.stack([c, np.ones_like(c)], axis=1)
    w = np.zeros(2)
    for _ in range(100):  # Newton's method on a concave objective: a few iterations
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (y - p) - 2 * ridge * w
        hess = -(x.T * (p * (1 - p))) @ x - 2 * ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w = w - step
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(w[0]), float(w[1])


def psychometric(ensemble, task, *, component: str | None = None, ridge: float = RIDGE) -> Psychometric:
    """The psychometric curve of a decision task and its logistic fit, per member (module docstring).

    **Arguments:**

    - `ensemble`: a stacked ensemble (or one network) of the task's input size.
    - `task`: a `PerceptualDMConfig` or `ContextDMConfig`, or a `MultitaskConfig` with `component`, the label of
      such a component (its test trials, in the shared layout).
    - `ridge`: the fit's penalty (> 0).

    **Returns:** `Psychometric`.
    """
    ensemble = as_ensemble(ensemble)
    ridge = check_positive("ridge", ridge)
    if isinstance(task, MultitaskConfig):
        if component not in task.labels:
            raise ValueError(f"`component` must be one of the multitask's labels {task.labels}, got {component!r}.")
        i = task.labels.index(component)
        inner = task._slots[i].task
        rows = task.test_task_index() == i
        inputs, targets, mask = (np.asarray(a)[rows] for a in task.test_set())
        name = str(component)
    else:
        if component is not None:
            raise ValueError("`component` names a multitask's component; `task` is not a MultitaskConfig.")
        inner = task
        rows = None
        name = str(getattr(task, "name", type(task).__name__))
    if not isinstance(inner, (PerceptualDMConfig, ContextDMConfig)):
        raise TypeError(
            f"`task` must be a decision task (PerceptualDMConfig or ContextDMConfig, or a multitask component of "
            f"one), got {type(inner).__name__}."
        )
    if rows is None:
        inputs, targets, mask = (np.asarray(a) for a in inner.test_set())
    if ensemble.n_inputs != inputs.shape[2]:
        raise ValueError(f"the ensemble takes {ensemble.n_inputs} inputs; the task gives {inputs.shape[2]}.")
    coherence = _test_coherences(inner)
    window = (mask > 0) & (targets != 0)  # (B, T, O): the scored response window
    answer = np.sign(np.sum(targets * window, axis=(1, 2)))
    if coherence.shape != answer.shape or not np.array_equal(np.sign(coherence), answer):
        raise ValueError("the test set's order is not the documented one (its answers are not the coherences' signs).")
    outputs = np.asarray(ensemble_outputs(ensemble, inputs), np.float64)
    choice = (np.sum(outputs * window[None], axis=(2, 3)) > 0).astype(np.float64)  # (K, B)
    levels, inverse = np.unique(coherence, return_inverse=True)
    counts = np.bincount(inverse, minlength=levels.size)
    p_positive = np.stack([np.bincount(inverse, weights=ch, minlength=levels.size) / counts for ch in choice])
    fits = np.asarray([_logistic_fit(coherence.astype(np.float64), ch, ridge) for ch in choice])
    slope, bias = fits[:, 0], fits[:, 1]
    threshold = np.where(slope != 0, -bias / np.where(slope != 0, slope, 1.0), np.nan)
    return Psychometric(
        coherence=levels.astype(np.float64),
        p_positive=p_positive,
        n_trials=counts,
        slope=slope,
        bias=bias,
        threshold=threshold,
        task=name,
        ridge=ridge,
    )


__all__ = [
    "EPOCHS",
    "MIN_VARIANCE",
    "LesionEffects",
    "Psychometric",
    "TaskVariance",
    "UnitClusters",
    "assignment",
    "cluster_units",
    "kmeans",
    "lesion",
    "lesion_effects",
    "psychometric",
    "silhouette_score",
    "task_variance",
]
