"""Coverage of the fixed-point stage against an independent float64 reference (issue #31).

Random tanh networks `h ← tanh(W h)` (a = 1, no input, `W ~ gain/√N` Gaussian): the reference is a
many-start damped Newton in NumPy float64 (starts uniform in [-1, 1]^N and on the network's own
trajectories from them), its roots deduplicated after polishing; the stage runs with default settings.
Prints a table and writes `benchmarks/fixed_point_coverage.json`.

    PYTHONPATH=. python benchmarks/fixed_point_coverage.py [--starts 4000]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

CASES = [("tanh N=64 gain 2.5", 64, 2.5, 0), ("tanh N=32 gain 4", 32, 4.0, 0)]


def reference_roots(W, starts, rng, iters=60):
    """Distinct float64 roots of `tanh(W h) − h` by damped Newton from `starts` random states (vectorised over
    starts), half of them first run 50 steps of the map."""
    n = W.shape[0]
    h = rng.uniform(-1, 1, (starts, n))
    for _ in range(50):
        h[: starts // 2] = np.tanh(h[: starts // 2] @ W.T)
    eye = np.eye(n)
    for _ in range(iters):
        r = np.tanh(h @ W.T) - h
        A = (1 - np.tanh(h @ W.T) ** 2)[:, :, None] * W[None] - eye
        try:
            delta = np.linalg.solve(A, -r[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            delta = -r
        q0 = np.sum(r * r, axis=1)
        best, best_q = h, q0
        for t in (1.0, 0.5, 0.25, 0.125):
            trial = h + t * delta
            qt = np.sum((np.tanh(trial @ W.T) - trial) ** 2, axis=1)
            better = np.isfinite(qt) & (qt < best_q)
            best = np.where(better[:, None], trial, best)
            best_q = np.where(better, qt, best_q)
        h = best
    q = np.sum((np.tanh(h @ W.T) - h) ** 2, axis=1)
    roots = h[q < 1e-24]
    keep = []
    for p in roots[np.argsort(np.abs(roots).sum(axis=1))]:
        if all(np.linalg.norm(p - k) > 1e-7 for k in keep):
            keep.append(p)
    return np.asarray(keep).reshape(-1, n)


def stage_roots(W):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import ctrnn_jax as cj
    from ctrnn_jax.dynamics import fixed_point_stage
    n = W.shape[0]
    model = cj.CTRNN(1, n, 1, key=jax.random.key(0), alpha=1.0)
    model = eqx.tree_at(lambda m: (m.W_rec, m.W_in), model, (jnp.asarray(W, jnp.float32), jnp.zeros((n, 1))))
    t0 = time.perf_counter()
    fp = fixed_point_stage(cj.stack_members([model]))[0]
    return fp, time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("fixed_point_coverage.json"))
    args = parser.parse_args()
    rows = []
    for name, n, gain, seed in CASES:
        rng = np.random.default_rng(seed)
        W = (gain / np.sqrt(n) * rng.standard_normal((n, n))).astype(np.float32).astype(np.float64)
        t0 = time.perf_counter()
        ref = reference_roots(W, args.starts, rng)
        t_ref = time.perf_counter() - t0
        fp, t_stage = stage_roots(W)
        pts = fp.points[fp.exact].astype(np.float64)
        d = np.linalg.norm(ref[:, None] - pts[None], axis=2) if len(pts) and len(ref) else np.zeros((len(ref), 0))
        matched = int(np.sum(d.min(axis=1) < 1e-4)) if d.size else 0
        extra = int(np.sum(d.min(axis=0) >= 1e-4)) if d.size else len(pts)
        rows.append({"case": name, "N": n, "gain": gain, "seed": seed, "reference_roots": len(ref),
                     "reference_starts": args.starts, "stage_points": len(pts), "stage_found_of_reference": matched,
                     "stage_not_in_reference": extra, "capped": bool(fp.capped[0]),
                     "new_last_round": int(fp.new_last_round[0]), "stage_s": round(t_stage, 1),
                     "reference_s": round(t_ref, 1)})
        print(rows[-1], flush=True)
    header = list(rows[0])
    print("  ".join(header))
    for r in rows:
        print("  ".join(str(r[h]) for h in header))
    args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
