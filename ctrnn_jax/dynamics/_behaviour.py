"""A behavioural check of every member's memory that uses only the network's own dynamics (never the
fixed-point finder): do the memory states the network reaches on its test set hold, for how long (their
lifetimes), and do small perturbations of them shrink (an attractor), persist (a marginal, e.g. line or plane,
attractor) or grow?

1. **The memory states reached on the test set.** Every member runs the task's test set
   (`task.test_set()`). A *hold* is a maximal stretch of steps at which the input equals the task's
   resting input `x* = task.fixed_point_inputs()[0]` (within 1e-6: test sets are noise-free) whose last
   `min_hold` steps have one constant target; its memory state is the flat state at its last step (just
   before the next input, or at the end of the trial) and its label that target. Stretches whose target
   changes in their last `min_hold` steps are not holds (the flip-flop's target switches `delay` steps
   after a pulse ends, inside the input's rest). A task with memory states (`memory_readouts()`, e.g. the
   flip-flop) keeps only the holds whose target is one of its readouts (the flip-flop's 0 before the first
   pulse is not a memory), labelled in the order of `memory_readouts()`; any other task keeps every
   distinct target, in sorted order. Each label is represented by one state per member: the end of its
   longest hold (the latest of equally long ones; the flip-flop's 8-state test visits every corner twice).
2. **The horizon.** From each memory state `s` the member runs at `x*` for `H = horizon × T` steps (`T`
   the test trial's length; `horizon = 10` gives 11 900 steps on the flip-flop test), once unperturbed
   and from `n_perturbations` states `s + ε u` with random unit directions `u` in the full state space
   (`state_size`: the LSTM's `[h, c]`) and `ε = scale × ` the mean norm of the member's memory states.
   Every member, state and perturbation runs at once (`vmap`), the time loop is one `lax.scan`.
3. **Does the readout hold, and for how long?** `drift` is the largest deviation `max_t max_o |z_o(t) −
   z_o(0)|` of the unperturbed readout over the horizon; the state *holds* when it is below the tolerance
   `τ = sqrt(threshold)` (0.141 for the flip-flop's MSE threshold 0.02: a readout off by that much on every
   output for a whole trial alone reaches the success threshold). The memory's **lifetime** is the first step
   `t` at which `max_o |z_o(t) − z_o(0)| >= τ` (the readout has left the tolerance: the memory is lost), in
   steps and in test-trial lengths `T`; a state that holds has lifetime `H`, *censored* at the horizon (its
   true lifetime is at least that). A linear unit `h(t+1) = λ h(t)` read out as `z = h` from `z(0) = z0 > τ`
   has the lifetime `ceil(ln(1 − τ/z0) / ln λ)`.
4. **Do perturbations shrink, persist or grow?** With `d(t)` the distance between the perturbed and the
   unperturbed trajectories, `d(0) = ε`:

   - the *late ratio* `ρ = d(H) / max(d(H/2), ν ε)` with `ν = 1e-2`. The first half of the horizon lets
     the fast components of the random perturbation die out, so `ρ` measures the slowest mode whatever
     share of the random direction lies along it (a random direction in `S` dimensions has only about
     `sqrt(m/S)` of its norm in an `m`-dimensional marginal manifold, so the plain `d(H)/d(0)` would call
     a line attractor in 64 units an attractor). For a mode of multiplier `λ`, `ρ = |λ|^W` over the late
     window `W = H − H/2`. The floor `ν ε` counts a perturbation that is already below 1 % of its size at
     mid-horizon as shrunk (it also keeps the float32 round-off of two converged trajectories, ~1e-7 of
     the state, from reading as a ratio);
   - the *growth* `r = d(H) / d(0)`, which catches a perturbation that grew and saturated (left for
     another attractor) before mid-horizon, where `ρ` alone would read about 1.

   Each perturbation **grows** when `ρ > 2` or `r > 2`, else **shrinks** when `ρ < 0.5`, else
   **persists**; a state takes the worst of its perturbations (grow > persist > shrink), and the reported
   `ratio` and `growth` are the largest over them. The bands are a factor 2 over the late window:
   persisting means `|λ|` of the slowest mode within `band = ln 2 / W` of 1 (1.2e-4 on the flip-flop test
   at `horizon = 10`; the result's `band`). A mode at `|λ| = 1 − δ` changes by `exp(−δ W)` over the
   window, so a slowly decaying mode that the test's holds cannot tell from a marginal one (`δ = 1e-3`
   loses 7 % over a 70-step hold) shrinks here by `e^{−6}`: comparing with a linear classification of
   band `δ`, choose `horizon ≈ 2 ln 2 / (δ T)` to make the two bands equal.
5. **A member's verdict** follows from its lifetimes, in three bands: every memory state held for the whole
   horizon (the lifetime censored at `H`, 10 trials by default): an attractor, qualified by the
   perturbations, `"unstable"` when one grows, else `"marginal"` when one persists, else `"attractors"`;
   some state lost within the horizon but every one held for at least one test trial (`T <= lifetime < H`):
   `"long-lived"`; some state lost within one trial (`lifetime < T`): `"short-lived"`. The count of memories
   *held for at least one trial* (`held_for_a_trial`) takes the states whose readout at the start is nearest
   their own label (`reached`) and whose lifetime is at least `T`.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._checks import check_int, check_key, check_positive
from .._results import Result
from ..tasks._task import check_task
from ._fixed_points import _full_states, as_ensemble

RESPONSES = ("shrink", "persist", "grow")
VERDICTS = ("attractors", "marginal", "unstable", "long-lived", "short-lived", "drifts")  # drifts: before #31
_FLOOR = 1e-2  # ν: a perturbation below ν·ε at mid-horizon has shrunk
_SHRINK, _GROW = 0.5, 2.0  # the bands of the late ratio (and of the growth, for GROW)
_AT_REST = 1e-6  # |input − x*| at which a test step is at rest


def _trials(steps: float, trial_steps: int | None, censored: bool = False) -> str:
    """A lifetime in test-trial lengths as a table cell: `0.42`, `>10` (censored at the horizon), `–`."""
    if trial_steps is None or not math.isfinite(steps):
        return "–"
    return (">" if censored else "") + f"{steps / trial_steps:.3g}"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class MemoryCheck(Result):
    """The result of `memory_check` for `K` members and `L` memory states (labels), as NumPy arrays.

    **Fields:**

    - `labels`: `(L, O)` the target readout of each memory state.
    - `states`: `(K, L, S)` each member's memory state per label (the flat state, `S = state_size`).
    - `start_error`: `(K, L)` `max_o |z_o(0) − label_o|`: how far the readout at the memory state is from
      its label (large for a member that never reached that memory).
    - `drift`: `(K, L)` the largest deviation of the unperturbed readout from its start over the horizon,
      `max_t max_o |z_o(t) − z_o(0)|` (inf when the trajectory is not finite).
    - `holds`: `(K, L)` bool: the readout stays within the tolerance for the whole horizon (`drift <
      tolerance`; the lifetime is censored at the horizon).
    - `ratio`: `(K, L)` the late ratio `d(H) / max(d(H/2), ν ε)`, largest over the perturbations.
    - `growth`: `(K, L)` `d(H) / d(0)`, largest over the perturbations.
    - `response`: `(K, L)` str, `"shrink"`, `"persist"` or `"grow"` (the worst over the perturbations).
    - `verdict`: `(K,)` str, `"attractors"`, `"marginal"`, `"unstable"`, `"long-lived"` or `"short-lived"`
      (module docstring; `"drifts"` in a check written before the lifetimes).
    - `epsilon`: `(K,)` the perturbation size of each member.
    - `inputs`: `(M,)` the resting input `x*` the horizon runs at.
    - `tolerance`, `horizon_steps` (`H`), `n_perturbations`: the settings used.
    - `lifetime`: `(K, L)` int, the memory's lifetime in steps: the first step `t` of the horizon at which
      `max_o |z_o(t) − z_o(0)| >= tolerance`, or `H` where it never is (censored: `holds`). None in a check
      written before the lifetimes.
    - `trial_steps`: `T`, the test trial's length in steps (the unit of `lifetime_trials`), or None.
    - `reached`: `(K, L)` bool, the readout at the memory state is nearer its own label than any other (the
      member reached that memory on the test set), or None.
    """

    labels: np.ndarray
    states: np.ndarray
    start_error: np.ndarray
    drift: np.ndarray
    holds: np.ndarray
    ratio: np.ndarray
    growth: np.ndarray
    response: np.ndarray
    verdict: np.ndarray
    epsilon: np.ndarray
    inputs: np.ndarray
    tolerance: float
    horizon_steps: int
    n_perturbations: int
    lifetime: np.ndarray | None = None
    trial_steps: int | None = None
    reached: np.ndarray | None = None

    @property
    def n_members(self) -> int:
        return int(self.states.shape[0])

    @property
    def band(self) -> float:
        """`ln 2 / W`: perturbations persist when the slowest mode's `|λ|` is within this of 1 (`W` the late
        window, the second half of the horizon)."""
        return math.log(2.0) / (self.horizon_steps - self.horizon_steps // 2)

    @property
    def lifetime_trials(self) -> np.ndarray | None:
        """`(K, L)` the lifetimes in test-trial lengths (`lifetime / T`; at least `H / T` where censored)."""
        if self.lifetime is None or self.trial_steps is None:
            return None
        return np.asarray(self.lifetime, np.float64) / self.trial_steps

    def held_for_a_trial(self) -> np.ndarray | None:
        """`(K,)` per member, the task's memories it reached and holds for at least one test trial (`lifetime
        >= T`), or None for a check without lifetimes."""
        if self.lifetime is None or self.trial_steps is None:
            return None
        reached = np.ones_like(self.holds) if self.reached is None else self.reached
        return np.sum(reached & (np.asarray(self.lifetime) >= self.trial_steps), axis=1)

    def rows(self) -> list[dict]:
        """Per member: `{"member", "verdict", "hold", "held >= 1 trial", "lifetime min", "lifetime median",
        "shrink", "persist", "grow", "max drift", "max ratio"}` (counts of memory states; `hold` as
        `"held/L"`: held for the whole horizon; lifetimes in test-trial lengths, `>` where censored at the
        horizon)."""
        out = []
        held_trial = self.held_for_a_trial()
        for k in range(self.n_members):
            row = {
                "member": k,
                "verdict": str(self.verdict[k]),
                "hold": f"{int(np.sum(self.holds[k]))}/{self.holds.shape[1]}",
            }
            if held_trial is not None:
                assert self.lifetime is not None  # with `held_for_a_trial`
                life = np.asarray(self.lifetime[k], np.float64)
                order = np.argsort(life, kind="stable")
                lo, mid = order[0], order[(len(order) - 1) // 2]  # the lower median: a lifetime that occurs
                row["held >= 1 trial"] = f"{int(held_trial[k])}/{self.holds.shape[1]}"
                row["lifetime min"] = _trials(life[lo], self.trial_steps, bool(self.holds[k][lo]))
                row["lifetime median"] = _trials(life[mid], self.trial_steps, bool(self.holds[k][mid]))
            row.update({r: int(np.sum(self.response[k] == r)) for r in RESPONSES})
            row["max drift"] = float(np.max(self.drift[k]))
            row["max ratio"] = float(np.max(self.ratio[k]))
            out.append(row)
        return out

    def to_dict(self) -> dict:
        """JSON-able: the settings, the labels and the per-member arrays as lists (inf as None)."""

        def plain(a):
            a = np.asarray(a)
            if a.dtype.kind == "f":
                return np.where(np.isfinite(a), a, None).tolist()
            return a.tolist()

        out = {
            "tolerance": self.tolerance,
            "horizon_steps": self.horizon_steps,
            "n_perturbations": self.n_perturbations,
            "band": self.band,
            "inputs": plain(self.inputs),
            "labels": plain(self.labels),
            "epsilon": plain(self.epsilon),
            "verdict": plain(self.verdict),
            "holds": plain(self.holds),
            "response": plain(self.response),
            "drift": plain(self.drift),
            "ratio": plain(self.ratio),
            "growth": plain(self.growth),
            "start_error": plain(self.start_error),
        }
        if self.lifetime is not None:
            out.update(
                {
                    "lifetime": plain(np.asarray(self.lifetime, np.int64)),
                    "trial_steps": self.trial_steps,
                    "lifetime_trials": plain(self.lifetime_trials),
                    "held_for_a_trial": plain(self.held_for_a_trial()),
                }
            )
        if self.reached is not None:
            out["reached"] = plain(self.reached)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "MemoryCheck":
        """The `MemoryCheck` of a `to_dict()` (e.g. read back from `analysis.json`'s `memory_check`). The
        dict has no memory states: `states` reads back as an empty `(K, L, 0)` array. A `None` (an infinite
        value) reads back as `inf`. A dict written before the lifetimes reads back with `lifetime`,
        `trial_steps` and `reached` None (and its verdicts as written). Raises `ValueError` naming a missing
        key."""

        def floats(a, none=math.inf):
            return np.asarray(np.where(np.equal(np.asarray(a, object), None), none, np.asarray(a, object)), np.float64)

        try:
            verdict = np.asarray(d["verdict"], str)
            k = verdict.shape[0]
            labels = floats(d["labels"], math.nan)
            labels = labels.reshape(len(d["labels"]), -1) if labels.size else labels.reshape(0, 0)
            shape = (k, labels.shape[0])
            per = {name: floats(d[name]).reshape(shape) for name in ("start_error", "drift", "ratio", "growth")}
            lifetime = None if d.get("lifetime") is None else np.asarray(d["lifetime"], np.int64).reshape(shape)
            reached = None if d.get("reached") is None else np.asarray(d["reached"], bool).reshape(shape)
            trial_steps = None if d.get("trial_steps") is None else int(d["trial_steps"])
            return cls(
                labels=labels,
                states=np.zeros((k, labels.shape[0], 0)),
                holds=np.asarray(d["holds"], bool).reshape(shape),
                response=np.asarray(d["response"], str).reshape(shape),
                verdict=verdict,
                epsilon=floats(d["epsilon"], math.nan),
                inputs=floats(d["inputs"], math.nan),
                tolerance=float(d["tolerance"]),
                horizon_steps=int(d["horizon_steps"]),
                n_perturbations=int(d["n_perturbations"]),
                lifetime=lifetime,
                trial_steps=trial_steps,
                reached=reached,
                **per,
            )
        except KeyError as e:
            raise ValueError(f"not a MemoryCheck dict (no {e}).") from None

    def _table(self) -> tuple[str, list[str], list[list[str]]]:
        rows = self.rows()
        header = list(rows[0]) if rows else ["member"]

        def fmt(v):
            return f"{v:.3g}" if isinstance(v, float) else str(v)

        return f"MemoryCheck: {self._title()}", header, [[fmt(r[h]) for h in header] for r in rows]

    def _title(self) -> str:
        counts = ", ".join(f"{int(np.sum(self.verdict == v))} {v}" for v in VERDICTS if np.any(self.verdict == v))
        trial = (
            ""
            if self.trial_steps is None
            else f" ({self.horizon_steps / self.trial_steps:.3g} trials of {self.trial_steps} steps)"
        )
        return (
            f"{self.n_members} member(s), {self.labels.shape[0]} memory states, {self.horizon_steps}-step "
            f"horizon{trial}, readout tolerance {self.tolerance:.3g}: {counts}"
        )


def hold_ends(inputs, targets, rest, *, min_hold: int = 10, readouts=None) -> tuple[np.ndarray, ...]:
    """The holds of a test set (the rule in the module docstring).

    **Arguments:**

    - `inputs`: `(B, T, M)`; `targets`: `(B, T, O)`; `rest`: `(M,)` the resting input.
    - `min_hold`: steps of constant target a hold ends with, >= 1.
    - `readouts`: `(C, O)` the task's memory readouts, or None (every distinct target is a label).

    **Returns:** `(trial, step, length, label, labels)`: for every hold its trial, its last step, the length
    of its resting stretch and its label index, each `(H,)`; and the labels `(L, O)` (the readouts, or the
    distinct targets of the holds, sorted).
    """
    inputs, targets = np.asarray(inputs, np.float64), np.asarray(targets, np.float64)
    rest_now = np.all(np.abs(inputs - np.asarray(rest, np.float64)) <= _AT_REST, axis=-1)  # (B, T)
    ends = rest_now & ~np.pad(rest_now[:, 1:], ((0, 0), (0, 1)))  # the last step of a resting stretch
    holds = []
    for b, t in zip(*np.nonzero(ends)):  # a few holds per trial: a host loop
        before = np.flatnonzero(~rest_now[b, : t + 1])
        length = t + 1 - (before[-1] + 1 if len(before) else 0)
        if length >= min_hold and np.all(targets[b, t - min_hold + 1 : t + 1] == targets[b, t]):
            holds.append((b, t, length))
    trial, step, length = (np.asarray(v, int).reshape(-1) for v in zip(*holds)) if holds else (np.zeros(0, int),) * 3
    last = targets[trial, step]  # (H, O)
    if readouts is not None:
        labels = np.asarray(readouts, np.float64)
        match = np.all(np.abs(last[:, None, :] - labels[None]) <= 1e-6, axis=-1)  # (H, C)
        found = np.any(match, axis=1)
        return trial[found], step[found], length[found], np.argmax(match[found], axis=1), labels
    labels, label = np.unique(last, axis=0, return_inverse=True)
    return trial, step, length, np.asarray(label).reshape(-1), labels


@functools.partial(jax.jit, static_argnames=("n_steps",))
def _run(ensemble, x, s, z0, drift, exit_step, t0, tolerance, *, n_steps):
    """`n_steps` steps at the input `x (M,)` from the states `s (K, L, 1+P, S)` of every member; `drift (K, L)`
    carries the largest `max_o |z_o(t) − z0_o|` of the unperturbed trajectories (index 0 of axis 2) from the
    readouts `z0 (K, L, O)`, and `exit_step (K, L)` the first step `t` (counted from the start of the horizon,
    the steps before this call `t0`) at which that deviation is not below `tolerance` (−1: not yet). Returns the
    final states, the drift and the exit steps."""
    with jax.default_matmul_precision("highest"):

        def member(model, s, z0, drift, exit_step):
            step = jax.vmap(jax.vmap(lambda v: model.step(v, x)))

            def body(carry, _):
                s, drift, exit_step, t = carry
                s, t = step(s), t + 1
                z = model.readout(model.hidden(s[:, 0]))
                dev = jnp.max(jnp.abs(z - z0), axis=-1)
                out = ~(dev < tolerance)  # NaN is out
                exit_step = jnp.where((exit_step < 0) & out, t, exit_step)
                return (s, jnp.maximum(drift, jnp.where(jnp.isfinite(dev), dev, jnp.inf)), exit_step, t), None

            (s, drift, exit_step, _), _ = lax.scan(body, (s, drift, exit_step, t0), None, length=n_steps, unroll=1)
            return s, drift, exit_step

        return jax.vmap(member)(ensemble, s, z0, drift, exit_step)


def memory_check(
    ensemble,
    task,
    *,
    horizon: float = 10.0,
    n_perturbations: int = 4,
    scale: float = 1e-3,
    threshold: float = 0.02,
    min_hold: int = 10,
    key: jax.Array | None = None,
) -> MemoryCheck:
    """Check every member's memory with its own dynamics: from each memory state it reaches on the task's
    test set, run the horizon at the resting input, unperturbed and perturbed (the rule, tolerance and
    bands are in the module docstring, `ctrnn_jax.dynamics._behaviour`).

    **Arguments:**

    - `ensemble`: a stacked ensemble of `K` networks (any cell), or one network.
    - `task`: its task (an `AbstractTask`); the resting input is `task.fixed_point_inputs()[0]`.
    - `horizon`: the horizon in test-trial lengths, > 0 (`H = ceil(horizon · T / 2) · 2` steps).
    - `n_perturbations`: random perturbations per memory state, >= 1.
    - `scale`: the perturbation size relative to the mean norm of the member's memory states, > 0.
    - `threshold`: the task's success threshold on the test MSE; the readout tolerance is its square root.
    - `min_hold`: steps of constant target at rest that end a hold, >= 1.
    - `key`: a PRNG key for the perturbation directions (default `jax.random.key(0)`).

    **Returns:** a `MemoryCheck`. Raises `ValueError` when the test set has no hold.
    """
    ensemble = as_ensemble(ensemble)
    check_task(task)
    horizon = check_positive("horizon", horizon)
    n_perturbations = check_int("n_perturbations", n_perturbations, 1)
    scale = check_positive("scale", scale)
    threshold = check_positive("threshold", threshold)
    min_hold = check_int("min_hold", min_hold, 1)
    key = jax.random.key(0) if key is None else key
    check_key(key)
    if (task.n_inputs, task.n_outputs) != (ensemble.n_inputs, ensemble.n_outputs):
        raise ValueError(
            f"the {task.name} task has {task.n_inputs} input(s) and {task.n_outputs} output(s); the "
            f"ensemble has M = {ensemble.n_inputs} and O = {ensemble.n_outputs}."
        )
    inputs, targets, _ = (np.asarray(a) for a in task.test_set())
    rest = np.asarray(task.fixed_point_inputs(), np.float32)[0]
    readouts = task.memory_readouts()
    trial, step, length, label, labels = hold_ends(inputs, targets, rest, min_hold=min_hold, readouts=readouts)
    present = np.unique(label)
    if len(present) == 0:
        raise ValueError(
            f"the {task.name} task's test set has no hold: no stretch at the resting input "
            f"{rest.tolist()} ending with {min_hold} steps of constant target"
            + (" equal to a memory readout" if readouts is not None else "")
            + "."
        )
    labels = np.asarray(labels, np.float64)[present]
    # one hold per label: the longest, the latest of equally long ones
    chosen = [max(np.flatnonzero(label == c), key=lambda i: (length[i], trial[i], step[i])) for c in present]
    trial, step = trial[chosen], step[chosen]

    full = np.asarray(_full_states(ensemble, jnp.asarray(inputs)))  # (K, B, T, S)
    s0 = full[:, trial, step]  # (K, L, S)
    k, n_labels, size = s0.shape
    norms = np.linalg.norm(s0.astype(np.float64), axis=-1).mean(axis=1)  # (K,)
    epsilon = scale * np.where(norms > 0, norms, 1.0)
    u = np.asarray(jax.random.normal(key, (k, n_labels, n_perturbations, size)), np.float64)
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    start = np.concatenate([s0[:, :, None], s0[:, :, None] + epsilon[:, None, None, None] * u], axis=2)
    start = jnp.asarray(start, ensemble.W_out.dtype)  # (K, L, 1+P, S)
    z0 = jax.vmap(lambda m, s: m.readout(m.hidden(s)))(ensemble, start[:, :, 0])  # (K, L, O)

    half = max(1, math.ceil(horizon * inputs.shape[1] / 2))
    x = jnp.asarray(rest, ensemble.W_out.dtype)
    drift: jax.Array | np.ndarray = jnp.zeros((k, n_labels), z0.dtype)
    tol = jnp.asarray(math.sqrt(threshold), z0.dtype)
    exit_step: jax.Array | np.ndarray = jnp.full((k, n_labels), -1, jnp.int32)
    mid, drift, exit_step = _run(ensemble, x, start, z0, drift, exit_step, jnp.int32(0), tol, n_steps=half)
    end, drift, exit_step = _run(ensemble, x, mid, z0, drift, exit_step, jnp.int32(half), tol, n_steps=half)

    def distance(s):
        s = np.asarray(s, np.float64)
        d = np.linalg.norm(s[:, :, 1:] - s[:, :, :1], axis=-1)  # (K, L, P)
        return np.where(np.isfinite(d), d, np.inf)

    d0 = epsilon[:, None, None] * np.ones((1, n_labels, n_perturbations))
    d_mid, d_end = distance(mid), distance(end)
    with np.errstate(invalid="ignore"):
        ratio = d_end / np.maximum(d_mid, _FLOOR * d0)
        ratio = np.where(np.isnan(ratio), np.inf, ratio)  # inf / inf: not finite, grown
    growth = d_end / d0
    grows = (ratio > _GROW) | (growth > _GROW)
    shrinks = ~grows & (ratio < _SHRINK)
    level = np.where(grows, 2, np.where(shrinks, 0, 1)).max(axis=2)  # (K, L)
    response = np.asarray(RESPONSES)[level]
    drift = np.asarray(drift, np.float64)
    tolerance = math.sqrt(threshold)
    exit_step = np.asarray(exit_step, np.int64)
    holds = exit_step < 0  # the readout stayed within the tolerance for the whole horizon (censored)
    horizon_steps, trial_steps = 2 * half, int(inputs.shape[1])
    lifetime = np.where(holds, horizon_steps, exit_step)
    verdict = np.where(
        np.all(holds, axis=1),
        np.where(
            np.any(level == 2, axis=1), "unstable", np.where(np.any(level == 1, axis=1), "marginal", "attractors")
        ),
        np.where(np.all(lifetime >= trial_steps, axis=1), "long-lived", "short-lived"),
    )
    z0 = np.asarray(z0, np.float64)
    start_error = np.max(np.abs(z0 - labels[None]), axis=-1)
    nearest = np.argmin(np.linalg.norm(z0[:, :, None, :] - labels[None, None], axis=-1), axis=-1)  # (K, L)
    reached = nearest == np.arange(n_labels)[None]
    return MemoryCheck(
        labels=labels,
        states=s0,
        start_error=start_error,
        drift=drift,
        holds=holds,
        ratio=ratio.max(axis=2),
        growth=growth.max(axis=2),
        response=response,
        verdict=np.asarray(verdict),
        epsilon=epsilon,
        inputs=rest,
        tolerance=tolerance,
        horizon_steps=horizon_steps,
        n_perturbations=n_perturbations,
        lifetime=lifetime,
        trial_steps=trial_steps,
        reached=reached,
    )


__all__ = ["MemoryCheck", "memory_check"]
