"""Time the fixed-point finder per ensemble size K: find (Adam), refine (Newton), deduplicate, classify.

Benchmark sizes (issue #3): N = 100 units, 1024 initial states per member, float32, the default
`FixedPointConfig` search settings (`--adam-steps`, `--newton-steps`). Networks (`--network`):

- `diag` (default): `W_rec = diag(1.5, 2, 3, 0, ...)` on a random permutation of the units per member,
  a = 1, zero input and bias: exactly 27 fixed points (8 stable, 12/6/1 saddles of index 1/2/3), so
  the table also says whether any was missed. Initial states uniform in [-1.2, 1.2]^N.
- `random`: `make_ensemble` with recurrent gain `--gain` (orthogonal, a = `--alpha`); initial states
  from each member's trajectories on the flip-flop test set plus noise 0.1.
- `--ensemble FILE.npz`: a trained ensemble in the interchange format (its first K members), states
  as for `random`.

Stages are timed warm (after one compiled call): `find` = Adam, `refine` = Newton (both in the same
compiled function `_search` in `find_fixed_points`; timed here as two calls), `dedup` = host filtering
and deduplication, `classify` = Jacobians (`residual_and_jacobian`) + host eigendecomposition (with
eigenvectors) + stability. `total` is a warm end-to-end `find_fixed_points` call with
`FixedPointConfig(restarts=0, complete=False, eigvecs=True)` (search and linearization only),
`compile` the first call's extra time. `restart` is the end-to-end time with `restarts=1`, `completed`
with the completion of the saddle set instead (`restarts=0, complete=True`).

    python benchmarks/fixed_points.py --members 1 8 --json benchmarks/cpu_fixed_points.json
"""

import argparse
import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import ctrnn_jax as cj
from _common import emit  # benchmarks/_common.py (the script's folder is on sys.path)
from ctrnn_jax.dynamics._fixed_points import (
    _merge,
    _OutlierRule,
    _Points,
    _result,
    _search,
    _split,
    find_fixed_points,
    initial_states_from_trajectories,
    member_dt_tau,
)
from ctrnn_jax.io._serialisation import load_npz

W_DIAG = (1.5, 2.0, 3.0)


def diag_ensemble(k: int, n: int, key) -> cj.CTRNN:
    base = cj.make_ensemble(cj.EnsembleConfig(members=k, units=n, alpha=1.0), key=key)
    rng = np.random.default_rng(0)
    W = np.zeros((k, n, n), np.float32)
    for kk in range(k):
        units = rng.permutation(n)[:3]
        W[kk, units, units] = W_DIAG
    return eqx.tree_at(lambda e: (e.W_rec, e.b), base, (jnp.asarray(W), jnp.zeros((k, n))))


def build(args, k: int):
    key = jax.random.key(args.seed)
    if args.ensemble:
        ens = load_npz(args.ensemble)
        if cj.ensemble_size(ens) < k:
            raise SystemExit(f"{args.ensemble} has {cj.ensemble_size(ens)} members, fewer than K={k}.")
        ens = jax.tree_util.tree_map(lambda x: x[:k], ens)
    elif args.network == "diag":
        ens = diag_ensemble(k, args.units, key)
        h0 = jax.random.uniform(
            jax.random.key(args.seed + 1), (k, args.candidates, args.units), minval=-1.2, maxval=1.2
        )
        return ens, h0
    else:
        ens = cj.make_ensemble(
            cj.EnsembleConfig(members=k, units=args.units, alpha=args.alpha, gain=args.gain), key=key
        )
    test_inputs, _ = cj.flipflop_test_set()
    h0 = initial_states_from_trajectories(
        ens, test_inputs, args.candidates, key=jax.random.key(args.seed + 1), noise_std=0.1
    )
    return ens, h0


def timed(fn):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - t0


def run(args, k: int) -> dict:
    ens, h0 = build(args, k)
    m = ens.W_in.shape[-1]
    x = jnp.zeros((k, m))
    config = cj.FixedPointConfig(
        restarts=0, complete=False, eigvecs=True, adam_steps=args.adam_steps, newton_steps=args.newton_steps, seed=1
    )

    def end_to_end(config):
        """(result, warm seconds, cold seconds) of `find_fixed_points` with `config`."""
        fp, cold = timed(lambda: find_fixed_points(ens, x, h0, config))
        fp, warm = timed(lambda: find_fixed_points(ens, x, h0, config))
        return fp, warm, cold

    fp, total, first = end_to_end(config)
    fp_r, restart, _ = end_to_end(dataclasses.replace(config, restarts=1))
    fp_c, completed, _ = end_to_end(dataclasses.replace(config, complete=True))

    # Stage by stage, warm.
    dt = config.working_dtype()
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dt), ens)
    xs = jnp.asarray(x, dt)
    zeros = jnp.zeros(h0.shape[:2], jnp.int32)
    lr, final_lr = jnp.asarray(config.learning_rate, dt), jnp.asarray(config.final_learning_rate, dt)

    def search(h, adam, newton):
        return _search(params, xs, jnp.asarray(h, dt), zeros, lr, final_lr, adam_steps=adam, newton_steps=newton)

    for _ in range(2):  # the second round is warm
        (h_adam, _), t_find = timed(lambda: search(h0, args.adam_steps, 0))
        (h, q), t_refine = timed(lambda: search(h_adam, 0, args.newton_steps))
    n = h0.shape[-1]
    t0 = time.perf_counter()
    fixed, slow = [[] for _ in range(k)], [[] for _ in range(k)]
    _split(
        np.asarray(h),
        np.asarray(q),
        config.default_tol_q(n),
        None,
        config.slow_tol,
        _OutlierRule(np.asarray(h0, np.float64), config.outlier_scale),
        fixed,
        None,
        slow,
    )
    points, qv = _merge(fixed, n, config.dedup_tol)
    s_points, s_q = _merge(slow, n, config.dedup_tol)
    t_dedup = time.perf_counter() - t0

    def classify():
        found = _Points(ens, params, xs, dt, k, n)
        found.add(points, qv)
        return _result(found, s_points, s_q, member_dt_tau(ens), dataclasses.replace(config, eigvecs=True))

    t_classify = min(timed(classify)[1] for _ in range(2))

    def index_counts(found):
        return [np.bincount(found.n_unstable[found.member == kk], minlength=4).tolist() for kk in range(k)]

    counts, counts_r, counts_c = index_counts(fp), index_counts(fp_r), index_counts(fp_c)
    row = {
        "members": k,
        "candidates": args.candidates,
        "units": n,
        "find_s": t_find,
        "refine_s": t_refine,
        "dedup_s": t_dedup,
        "classify_s": t_classify,
        "total_s": total,
        "compile_s": max(first - total, 0.0),
        "restart_total_s": restart,
        "completed_total_s": completed,
        "points": len(fp),
        "points_with_restart": len(fp_r),
        "points_completed": len(fp_c),
        "index_counts": counts,
        "index_counts_with_restart": counts_r,
        "index_counts_completed": counts_c,
    }
    if args.network == "diag" and not args.ensemble:
        row["members_with_all_27"] = sum(c == [8, 12, 6, 1] for c in counts)
        row["members_with_all_27_restart"] = sum(c == [8, 12, 6, 1] for c in counts_r)
        row["members_with_all_27_completed"] = sum(c == [8, 12, 6, 1] for c in counts_c)
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, nargs="+", default=[1, 8])
    p.add_argument("--units", type=int, default=100)
    p.add_argument("--candidates", type=int, default=1024)
    p.add_argument("--network", choices=("diag", "random"), default="diag")
    p.add_argument("--ensemble", default=None, help="a trained ensemble.npz instead of --network")
    p.add_argument("--gain", type=float, default=1.5)
    p.add_argument("--alpha", type=float, default=0.25)
    p.add_argument("--adam-steps", type=int, default=300)
    p.add_argument("--newton-steps", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    dev = jax.devices()[0]
    rows = [run(args, k) for k in args.members]
    network = args.ensemble or args.network
    print(
        f"device: {dev.platform} ({dev.device_kind}); network {network}, N={rows[0]['units']}, "
        f"{args.candidates} initial states per member; adam {args.adam_steps}, newton {args.newton_steps}"
    )
    print(
        f"{'K':>4} {'find s':>8} {'refine s':>9} {'dedup s':>8} {'classify s':>11} {'total s':>8} "
        f"{'compile s':>10} {'restart s':>10} {'completed s':>12} {'points':>7} {'all 27':>7} {'w/ restart':>10} "
        f"{'completed':>10}"
    )

    def all_27(r, suffix):
        name = "members_with_all_27" + suffix
        return f"{r[name]}/{r['members']}" if name in r else "-"

    for r in rows:
        print(
            f"{r['members']:>4} {r['find_s']:>8.2f} {r['refine_s']:>9.2f} {r['dedup_s']:>8.3f} "
            f"{r['classify_s']:>11.2f} {r['total_s']:>8.2f} {r['compile_s']:>10.2f} {r['restart_total_s']:>10.2f} "
            f"{r['completed_total_s']:>12.2f} {r['points']:>7} {all_27(r, ''):>7} {all_27(r, '_restart'):>10} "
            f"{all_27(r, '_completed'):>10}"
        )
    emit(rows, args)


if __name__ == "__main__":
    main()
