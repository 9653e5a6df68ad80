"""The paper's N = 400 network (Jarne's 3-bit flip-flop, `ff_3b_weights-20.hdf5`): the fixed-point stage's
wall time, and its counts checked independently (issue #31).

Every reported exact point is polished by Newton in float64 NumPy (`F(h) = tanh(W_rec h + W_in x + b)`,
a = 1) and the polished points are merged (distance < 1e-7): reported exact points vs distinct roots, per
saddle index; every slow point is polished too and matched against the fixed points.

    git --git-dir=<mirror of katejarne/3-bit-FF-tutorial> show \\
        HEAD:paper/matrix_weight_example/weights_ff_20_N_400_gap_9/ff_3b_weights-20.hdf5 > /tmp/ff.hdf5
    ctrnn-jax import-keras /tmp/ff.hdf5 --out /tmp/paper.npz
    ctrnn-jax fixed-points /tmp/paper.npz --out /tmp/paper_fp.npz       # timed by the caller
    python benchmarks/paper_network_fixed_points.py /tmp/paper.npz /tmp/paper_fp.npz [--json out.json]
"""

import argparse
import json

import numpy as np


def polish(W, c, points, iters=20):
    """Float64 Newton on `tanh(W h + c) − h` from each of `points`; returns the points and their residuals."""
    h = np.asarray(points, np.float64).copy()
    eye = np.eye(W.shape[0])
    for _ in range(iters):
        t = np.tanh(h @ W.T + c)
        r = t - h
        A = (1 - t**2)[:, :, None] * W[None] - eye
        try:
            d = np.linalg.solve(A, -r[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            break
        new = h + d
        better = np.sum((np.tanh(new @ W.T + c) - new) ** 2, axis=1) < np.sum(r * r, axis=1)
        h = np.where(better[:, None], new, h)
    return h, np.max(np.abs(np.tanh(h @ W.T + c) - h), axis=1)


def distinct(points, tol=1e-7):
    keep = []
    for i, p in enumerate(points):
        if all(np.linalg.norm(p - points[j]) > tol for j in keep):
            keep.append(i)
    return np.asarray(keep, np.int64)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("ensemble")
    parser.add_argument("fixed_points")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    with np.load(args.ensemble) as z:
        names = z.files
        W = np.asarray(z["W_rec"], np.float64).reshape(-1, *z["W_rec"].shape[-2:])[0]
        W_in = np.asarray(z["W_in"], np.float64).reshape(-1, *z["W_in"].shape[-2:])[0]
        b = np.asarray(z["b"], np.float64).reshape(-1, z["b"].shape[-1])[0] if "b" in names else 0.0
    with np.load(args.fixed_points) as z:
        fp = {k: z[k] for k in z.files}
    x = np.asarray(fp["inputs"], np.float64)[0]
    c = W_in @ x + b
    exact = fp["exact"] if "exact" in fp else np.ones(len(fp["member"]), bool)
    pts, index = fp["points"][exact], fp["n_unstable"][exact]
    polished, res = polish(W, c, pts)
    keep = distinct(polished)
    eig = np.abs(np.linalg.eigvals((1 - np.tanh(polished[keep] @ W.T + c) ** 2)[:, :, None] * W[None]))
    polished_index = np.sum(eig > 1 + 1e-3, axis=1)
    stable = int(np.sum(np.all(eig <= 1 - 1e-3, axis=1)))
    slow, _ = polish(W, c, fp["slow_points"]) if len(fp["slow_points"]) else (np.zeros((0, W.shape[0])), None)
    d_slow = (
        np.linalg.norm(slow[:, None] - polished[keep][None], axis=2).min(axis=1)
        if len(slow) and len(keep)
        else np.zeros(0)
    )
    out = {
        "reported_exact": int(len(pts)),
        "distinct_roots_after_float64_polish": int(len(keep)),
        "max_residual_after_polish": float(res.max()) if len(res) else 0.0,
        "reported_stable": int(np.sum((fp["n_unstable"][exact] == 0) & (fp["n_marginal"][exact] == 0)))
        if "n_marginal" in fp
        else int(np.sum(fp["is_stable"][exact])),
        "distinct_stable": stable,
        "reported_by_index": {int(i): int(np.sum(index == i)) for i in np.unique(index)},
        "distinct_by_index": {int(i): int(np.sum(polished_index == i)) for i in np.unique(polished_index)},
        "slow_points": int(len(fp["slow_points"])),
        "slow_points_polishing_onto_a_fixed_point": int(np.sum(d_slow < 1e-6)),
        "capped": fp["capped"].tolist() if "capped" in fp else None,
    }
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
