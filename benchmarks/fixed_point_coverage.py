"""Coverage of the fixed-point stage against an independent float64 reference (issue #31).

Random tanh networks `h ← tanh(W h)` (a = 1, no input, `W ~ gain/√N` Gaussian) and a random GRU: the
reference is a many-start damped Newton in NumPy float64 (`reference_roots`), its roots deduplicated after
polishing; the stage runs with default settings. `union` counts the roots either found. Where
`benchmarks/golub_points.npz` (Golub's finder, PyTorch) or `golub_points_tf.npz` (TensorFlow) exist
(`benchmarks/golub_finder.py` writes them), the roots Golub's finder found on the same networks are matched
against the same reference too (`golub_<version>_of_reference`, its union over seeds). A point matches a
root within `MATCH` (Euclidean).
Prints a table and writes `benchmarks/fixed_point_coverage.json`.

    PYTHONPATH=. python benchmarks/fixed_point_coverage.py [--starts 10000]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

MATCH = 1e-3
CASES = [
    ("tanh N=64 gain 2.5", "tanh", 64, 2.5, 0),
    ("tanh N=32 gain 4", "tanh", 32, 4.0, 0),
    ("GRU N=32 W_rec x3", "gru", 32, 3.0, 0),
    # a GRU with several roots and attractors (seed and gain picked from 24 networks by a 1000-start reference)
    ("GRU N=32 W_rec x6 seed 6", "gru", 32, 6.0, 6),
]


def make_network(cell, n, gain, seed):
    """A tanh CTRNN `h ← tanh(W h)` (a = 1, `W ~ gain/√N` Gaussian, no input, no bias) or a GRU (Keras init,
    key `seed`, `W_rec` scaled by `gain`), both with one input (zero) and one output."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import ctrnn_jax as cj

    if cell == "tanh":
        rng = np.random.default_rng(seed)
        W = gain / np.sqrt(n) * rng.standard_normal((n, n))
        model = cj.CTRNN(1, n, 1, key=jax.random.key(seed), alpha=1.0)
        return eqx.tree_at(
            lambda m: (m.W_rec, m.W_in), model, (jnp.asarray(W, jnp.float32), jnp.zeros((n, 1), jnp.float32))
        )
    model = cj.GRU(1, n, 1, key=jax.random.key(seed))
    return eqx.tree_at(lambda m: m.W_rec, model, model.W_rec * gain)


def reference_roots(model, starts, rng, iters=60):
    """Distinct float64 roots of `F(s) − s` (the model's one-step map at zero input, evaluated by JAX in 64-bit
    mode; the solver is NumPy): damped Newton (step lengths 1, ½, ¼, ⅛) from `starts` uniform states in
    [-1, 1]^S, half of them first run 50 steps of the map; roots merged at 1e-7 after polishing."""
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        m64 = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a), jnp.float64), model)
        x = jnp.zeros(m64.n_inputs, jnp.float64)
        F = jax.jit(jax.vmap(lambda s: m64.step(s, x)))
        J = jax.jit(jax.vmap(jax.jacfwd(lambda s: m64.step(s, x))))
        n = m64.state_size
        h = rng.uniform(-1, 1, (starts, n))
        for _ in range(50):
            h[: starts // 2] = np.asarray(F(h[: starts // 2]))
        eye = np.eye(n)
        for _ in range(iters):
            r = np.asarray(F(h)) - h
            A = np.asarray(J(h)) - eye
            try:
                delta = np.linalg.solve(A, -r[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                delta = -r
            best, best_q = h, np.sum(r * r, axis=1)
            for t in (1.0, 0.5, 0.25, 0.125):
                trial = h + t * delta
                qt = np.sum((np.asarray(F(trial)) - trial) ** 2, axis=1)
                better = np.isfinite(qt) & (qt < best_q)
                best = np.where(better[:, None], trial, best)
                best_q = np.where(better, qt, best_q)
            h = best
        q = np.sum((np.asarray(F(h)) - h) ** 2, axis=1)
        roots = h[q < 1e-24]
        stable = []
        keep = []
        for p in roots[np.argsort(np.abs(roots).sum(axis=1))]:
            if all(np.linalg.norm(p - k) > 1e-7 for k in keep):
                keep.append(p)
        keep = np.asarray(keep).reshape(-1, n)
        if len(keep):
            stable = np.all(np.abs(np.linalg.eigvals(np.asarray(J(keep)))) < 1, axis=1)
    return keep, np.asarray(stable, bool)


def stage_roots(model):
    import ctrnn_jax as cj
    from ctrnn_jax.dynamics import fixed_point_stage

    t0 = time.perf_counter()
    fp = fixed_point_stage(cj.stack_members([model]))[0]
    return fp, time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=10000)
    parser.add_argument("--cases", type=int, nargs="*", default=None, help="indices into CASES (default: all)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("fixed_point_coverage.json"))
    args = parser.parse_args()
    golub = {}
    for version, file in (("torch", "golub_points.npz"), ("tf", "golub_points_tf.npz")):
        path = Path(__file__).with_name(file)
        if path.exists():
            golub[version] = dict(np.load(path))
    rows = []
    for case, (name, cell, n, gain, seed) in enumerate(CASES):
        if args.cases is not None and case not in args.cases:
            continue
        model = make_network(cell, n, gain, seed)
        t0 = time.perf_counter()
        ref, ref_stable = reference_roots(model, args.starts, np.random.default_rng(seed + 1))
        t_ref = time.perf_counter() - t0
        fp, t_stage = stage_roots(model)
        pts = fp.points[fp.exact].astype(np.float64)
        d = np.linalg.norm(ref[:, None] - pts[None], axis=2) if len(pts) and len(ref) else np.zeros((len(ref), 0))
        hit = d.min(axis=1) < MATCH if d.size else np.zeros(len(ref), bool)
        extra = int(np.sum(d.min(axis=0) >= MATCH)) if d.size else len(pts)
        rows.append(
            {
                "case": name,
                "N": n,
                "gain": gain,
                "seed": seed,
                "reference_roots": len(ref),
                "reference_starts": args.starts,
                "reference_attractors": int(np.sum(ref_stable)),
                "stage_points": len(pts),
                "stage_found_of_reference": int(np.sum(hit)),
                "stage_attractors_of_reference": int(np.sum(hit & ref_stable)),
                "stage_not_in_reference": extra,
                "union": len(ref) + extra,
                "capped": bool(fp.capped[0]),
                "new_last_round": int(fp.new_last_round[0]),
                "stage_s": round(t_stage, 1),
                "reference_s": round(t_ref, 1),
            }
        )
        for version, points in golub.items():
            seeds = sorted(key for key in points if key.startswith(f"case{case}_seed") and key.count("_") == 1)
            for label, keys in (("", [f"case{case}"]), ("_per_seed", seeds)):
                found, hits = [], []
                for key in keys:
                    g = points.get(key, np.zeros((0, n))).reshape(-1, n)
                    dg = (
                        np.linalg.norm(ref[:, None] - g[None], axis=2)
                        if len(g) and len(ref)
                        else np.zeros((len(ref), 0))
                    )
                    found.append(len(g))
                    hits.append(int(np.sum(dg.min(axis=1) < MATCH)) if dg.size else 0)
                rows[-1][f"golub_{version}_points{label}"] = found if label else found[0]
                rows[-1][f"golub_{version}_of_reference{label}"] = hits if label else hits[0]
        print(rows[-1], flush=True)
    header = list(rows[0])
    print("  ".join(header))
    for r in rows:
        print("  ".join(str(r[h]) for h in header))
    if args.cases is not None and args.out.exists():  # a subset: the other cases' rows stay as they were
        done = {r["case"] for r in rows}
        kept = [r for r in json.loads(args.out.read_text()) if r["case"] not in done]
        order = [name for name, *_ in CASES]
        rows = sorted(kept + rows, key=lambda r: order.index(r["case"]) if r["case"] in order else len(order))
    args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
