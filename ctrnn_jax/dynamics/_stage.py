"""The fixed-point stage: one entry point for every network, task and cell.

`fixed_point_stage(ensemble, task, inputs=..., config=FixedPointConfig(...))` finds every member's fixed
points at each constant input, from candidates that cover

- **the trajectories**: states the network visits on its task's test trials and on `n_trials` random
  training trials (without a task: on *probe trials*, the constant input plus noise for half of each
  trial, then the input alone, so that the network relaxes towards its attractors), and
- **the state space**: a share `state_space_fraction` of uniform points in the range of the states
  (`AbstractRNN.state_range`: the activation's range for the hidden units, and the visited range,
  widened, where that is unbounded), half of them first run forward a random number of steps at the
  constant input (states on trajectories started from them), so that a network that does not move
  without input is searched everywhere, not only around the origin;

then searches, restarts, completes the saddle set and linearizes (`find_fixed_points`). In a distributed
run every process searches the members on its devices and the results are gathered.

**Slow points.** With a task, the slow points (`q <= slow_tol`) whose readout would move less than the
task's readout tolerance over its longest hold are analysed too: a point `s` whose readout changes by
`‖z(F(s)) − z(s)‖` per step (`z` the readout),

    T_hold · ‖z(F(s)) − z(s)‖ <= tol_readout,

(`T_hold = task_hold_steps(task)`, `tol_readout = task_readout_tolerance(task)`), is as good as a fixed
point for the task: the network can hold a memory there. Every point with `q <= slow_threshold` (per
member, `q_slow = ½ (tol_readout / (‖W_out‖₂ T_hold))²`) passes, whatever the direction it drifts in;
points that drift along directions the readout hardly sees (a marginal manifold of a gated cell) pass
at larger `q`.
"""

import dataclasses

import jax
import numpy as np

from .._checks import check_int, check_key, check_positive
from ..tasks._task import check_task, task_hold_steps, task_readout_tolerance
from ..training._distributed import is_distributed, local_members
from ..training._sharding import member_mesh
from ._config import FixedPointConfig
from ._fixed_point_set import FixedPoints
from ._fixed_points import (
    _full_states,
    as_ensemble,
    default_newton_starts,
    find_fixed_points,
    member_dt_tau,
)
from ._limits import auto_max_points, check_fixed_point_memory

_PROBE_LENGTH = 200  # steps of the probe trials of a network without a task


def probe_trials(constant, *, key: jax.Array, batch: int = 32, length: int = 200, noise_std: float = 1.0) -> np.ndarray:
    """Trials `(B, T, M)` that explore a network's state space near its attractors at the constant
    input `constant (M,)`: `constant` plus Gaussian noise of std `noise_std` for the first `T // 2`
    steps, then `constant` alone."""
    check_int("batch", batch, 1)
    check_int("length", length, 2)
    check_positive("noise_std", noise_std, allow_zero=True)
    check_key(key)
    constant = np.asarray(constant, np.float32).reshape(-1)
    noise = noise_std * np.asarray(jax.random.normal(key, (batch, length, constant.shape[0])), np.float32)
    noise[:, length // 2 :] = 0.0
    return constant[None, None, :] + noise


def slow_threshold(ensemble, task) -> np.ndarray:
    """`(K,)` each member's slow threshold on a task: `q_slow = ½ (tol_readout / (‖W_out‖₂ T_hold))²`, the
    largest speed `q = ½‖F(s) − s‖²` at which drifting for the task's longest hold `T_hold`
    (`task_hold_steps`) moves the readout less than `tol_readout` (`task_readout_tolerance`; `‖W_out‖₂` is the
    spectral norm of the member's readout matrix; `inf` where it is zero), whatever direction the point
    drifts in. `fixed_point_stage` tests each point's own readout drift, which every point under this
    threshold passes."""
    ensemble = as_ensemble(ensemble)
    check_task(task)
    w = np.asarray(ensemble.W_out, np.float64)  # (K, O, N)
    norm = np.linalg.norm(w, ord=2, axis=(1, 2)) * task_hold_steps(task)
    with np.errstate(divide="ignore"):
        return 0.5 * (task_readout_tolerance(task) / norm) ** 2


def constant_inputs(ensemble, task=None, inputs=None) -> np.ndarray:
    """`(P, M)` the constant inputs of the fixed points: `inputs` (`(M,)` or `(P, M)`) if given, else the
    task's `fixed_point_inputs()`, else zeros."""
    m = ensemble.W_in.shape[-1]
    if inputs is None:
        u = np.asarray(task.fixed_point_inputs(), np.float32) if task is not None else np.zeros((1, m), np.float32)
    else:
        u = np.asarray(inputs, np.float32)
    if u.ndim not in (1, 2) or u.shape[-1] != m or u.size == 0 or not np.all(np.isfinite(u)):
        raise ValueError(
            f"`inputs` must be {m} finite number(s) per constant input (the ensemble has M = {m} "
            f"inputs), got shape {u.shape}."
        )
    return u.reshape(-1, m)


def fixed_point_candidates(
    ensemble, trials: list, config: FixedPointConfig, *, key: jax.Array
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates `(K, C, S)` and the steps `(K, C)` to run `F` from each before the search
    (`C = config.n_candidates`; see the module docstring).

    **Arguments:**

    - `ensemble`: a stacked ensemble of `K` networks (any cell).
    - `trials`: a list of `(B, T, M)` trial inputs whose visited states are candidates (their share split
      evenly between them).
    - `config`: the `FixedPointConfig` (`n_candidates`, `state_space_fraction`, `noise_std`).
    - `key`: a PRNG key.

    The steps run `F` at the search's constant input (`find_fixed_points(..., sim_steps=steps)`).
    """
    ensemble = as_ensemble(ensemble)
    k, s = ensemble.W_out.shape[0], ensemble.state_size
    c = config.n_candidates
    n_space = int(round(config.state_space_fraction * c))
    n_traj = c - n_space
    # one generator each for the picks, the noise and the state space: an option changes only its own part
    seeds = np.random.SeedSequence(np.asarray(jax.random.key_data(key)).ravel().tolist()).spawn(3)
    rng, rng_noise, rng_space = (np.random.default_rng(seed) for seed in seeds)
    parts, visited = [], []
    for i, x in enumerate(trials):
        states = np.asarray(_full_states(ensemble, jax.numpy.asarray(x)), np.float64)  # (K, B, T, S)
        flat = states.reshape(k, -1, s)
        visited.append(flat)
        share = n_traj // len(trials) + (1 if i < n_traj % len(trials) else 0)
        if share:
            picks = np.stack([rng.choice(flat.shape[1], share, replace=share > flat.shape[1]) for _ in range(k)])
            parts.append(np.take_along_axis(flat, picks[:, :, None], axis=1))
    traj = np.concatenate(parts, axis=1) if parts else np.zeros((k, 0, s))
    if config.noise_std > 0 and traj.shape[1]:
        traj = traj + config.noise_std * rng_noise.standard_normal(traj.shape)
    if n_space:
        seen = np.concatenate(visited, axis=1)
        lo, hi = ensemble.state_range()
        low = np.broadcast_to(lo, (k, s)).copy()
        high = np.broadcast_to(hi, (k, s)).copy()
        v_lo, v_hi = seen.min(axis=1), seen.max(axis=1)  # (K, S): where the range is unbounded, the
        span = np.maximum(v_hi - v_lo, 1.0)  # visited range, widened by half its span
        low = np.where(np.isfinite(low), low, v_lo - 0.5 * span)
        high = np.where(np.isfinite(high), high, v_hi + 0.5 * span)
        space = low[:, None] + (high - low)[:, None] * rng_space.uniform(size=(k, n_space, s))
    else:
        space = np.zeros((k, 0, s))
    h0 = np.concatenate([traj, space], axis=1)
    steps = np.zeros((k, c), np.int32)
    longest = np.ceil(50.0 / member_dt_tau(ensemble)).astype(int)
    for kk in range(k):  # half of the state-space points follow their trajectory first
        run = n_traj + np.arange(n_space // 2)
        steps[kk, run] = rng_space.integers(1, longest[kk] + 1, len(run))
    return h0, steps


def fixed_point_stage(
    ensemble, task=None, *, inputs=None, config: FixedPointConfig | None = None, log=None
) -> list[FixedPoints]:
    """Every member's fixed points at each constant input, for any network, task and cell.

    **Arguments:**

    - `ensemble`: a stacked ensemble of `K` networks (any cell), or one network.
    - `task`: a task (the trajectories of its test and training trials are candidates) or None (a
      network without a task: probe trials at each constant input).
    - `inputs`: `None` (the task's `fixed_point_inputs()`, or zeros without a task), `(M,)` or `(P, M)`.
    - `config`: a `FixedPointConfig` (default `FixedPointConfig()`).
    - `log`: None or a function of one string, told what is being done.

    With a task, the slow points (`q <= config.slow_tol`) whose readout drifts less than the task's
    tolerance over its longest hold are analysed too (`exact = False`; module docstring); without one,
    none is.

    **Returns:** a list of `FixedPoints`, one per constant input (its `inputs` field), for all `K` members.
    """
    ensemble = as_ensemble(ensemble)
    config = FixedPointConfig() if config is None else config
    if not isinstance(config, FixedPointConfig):
        raise TypeError(f"`config` must be a FixedPointConfig, got {type(config).__name__}.")
    if task is not None:
        check_task(task)
        if (task.n_inputs, task.n_outputs) != (ensemble.n_inputs, ensemble.n_outputs):
            raise ValueError(
                f"the {task.name} task has {task.n_inputs} input(s) and {task.n_outputs} output(s); the "
                f"ensemble has M = {ensemble.n_inputs} and O = {ensemble.n_outputs}."
            )
    constants = constant_inputs(ensemble, task, inputs)
    config.working_dtype()  # float64 without 64-bit JAX: refused before any work
    k = ensemble.W_out.shape[0]
    lo, hi = local_members(member_mesh(k), k) if is_distributed() else (0, k)
    local = jax.tree_util.tree_map(lambda a: a[lo:hi], ensemble) if (lo, hi) != (0, k) else ensemble
    check_fixed_point_memory(
        hi - lo,
        ensemble.state_size,
        config,
        trials=config.n_trials,  # before any work
        length=_PROBE_LENGTH if task is None else task.length,
    )
    key = jax.random.key(config.seed)
    # the task's rule: a slow point whose readout drifts less than the tolerance over the longest hold
    slow_q = None if task is None else config.slow_tol
    slow_readout = None if task is None else task_readout_tolerance(task) / task_hold_steps(task)
    results = []
    for i, u in enumerate(constants):
        k_trials, k_cand, k_find = jax.random.split(jax.random.fold_in(key, i), 3)
        if task is not None:
            trials = [np.asarray(task.test_set()[0]), np.asarray(task.sample(k_trials, config.n_trials)[0])]
        else:
            trials = [probe_trials(u, key=k_trials, batch=config.n_trials, length=_PROBE_LENGTH)]
        if lo:  # another process's members: its own draws
            k_cand, k_find = jax.random.fold_in(k_cand, lo), jax.random.fold_in(k_find, lo)
        if log is not None:
            bound = (
                config.max_points
                if config.max_points is not None
                else auto_max_points(hi - lo, ensemble.state_size, np.dtype(config.dtype).itemsize)
            )
            log(
                f"fixed points at input {np.round(np.asarray(u, np.float64), 4).tolist()}: {hi - lo} member(s), "
                f"{config.n_candidates} candidates each, at most {bound} points per member "
                f"({'max_points' if config.max_points is not None else 'max_points=None: the memory budget'}) ..."
            )
        h0, steps = fixed_point_candidates(local, trials, config, key=k_cand)
        found = find_fixed_points(
            local,
            u,
            h0,
            config,
            sim_steps=steps,
            key=k_find,
            slow_q=slow_q,
            slow_readout=slow_readout,
            log=log,
            newton_starts=default_newton_starts(config, hi - lo, ensemble.state_size),
        )
        if is_distributed():
            from ._sharded import gather_fixed_points

            found = gather_fixed_points(found, lo, k)
        results.append(dataclasses.replace(found, found_with=found_with(config, task, u)))
    return results


def found_with(config: FixedPointConfig, task, constant) -> dict:
    """What fixed points are found with, as JSON (`FixedPoints.found_with`): the `FixedPointConfig`, the constant
    input `(M,)` and the task (its registry name or import string, and its `to_dict()`; None without one)."""
    import json

    from ..tasks._tasks import task_spec

    record = {
        "config": config.to_dict(),
        "input": np.asarray(constant, np.float64).reshape(-1).tolist(),
        "task": None if task is None else {"name": task_spec(task), "config": task.to_dict()},
    }
    return json.loads(json.dumps(record))  # plain JSON types, as a file gives them back


__all__ = ["constant_inputs", "fixed_point_candidates", "fixed_point_stage", "probe_trials", "slow_threshold"]
