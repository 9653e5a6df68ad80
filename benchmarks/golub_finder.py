"""What Golub & Sussillo's FixedPointFinder (github.com/mattgolub/fixed-point-finder, commit 1a30417) finds
on the networks of `fixed_point_coverage.py` (`CASES`), for comparison with the stage's coverage, in
its TensorFlow version (the original, published algorithm) and its PyTorch port.

Three commands, three environments (the finders need TensorFlow or PyTorch, the networks JAX):

    PYTHONPATH=. python benchmarks/golub_finder.py export          # in the project's venv
    python benchmarks/golub_finder.py run-tf [--src DIR] [--rw-src DIR] [--seeds 3]
                                     # in a venv with tensorflow(-cpu) + numpy + matplotlib (TF 2.21 used)
    python benchmarks/golub_finder.py run [--src DIR] [--seeds 3]  # in a venv with torch + numpy

`export` builds each network with `make_network` and writes what its one-step map at zero input needs
(`W_rec`, the drive `W_in·0 + b`, `alpha` for the CTRNN, `b_n` for the GRU) to
`benchmarks/_golub_weights.npz`, keys prefixed `case{i}_`, with `F(h)` of 5 random states by `model.step`
in float64 as a check value.

`run-tf` rebuilds the maps in float32 as RNN cells for `FixedPointFinderTF` (graph mode, TF1 session: the
finder disables eager execution; `output, h_next = cell(inputs (B, M), h (B, N))`, `state_size`), checks
them against the exported values (1e-5, else it fails), and runs the finder (checkout `--src`, default
/work/golub-src; its `AdaptiveLearningRate` and `AdaptiveGradNormClip` from mattgolub/recurrent-whisperer,
`--rw-src`, default /work/golub-rw-src) with the FlipFlop example's hyper-parameters (`max_iters` 10000,
initial rate 1 — `alr_hps={'initial_rate': 1}`, the TF finder's form of `lr_init` —, `outlier_distance_scale`
10; the rest defaults: `tol_q` 1e-12, `tol_dq` 1e-20, `tol_unique` 1e-3, joint Adam (epsilon 0.01) with the
adaptive learning rate and adaptive gradient-norm clipping, Jacobians and their eigendecomposition).
It writes `benchmarks/golub_points_tf.npz`. The maps ignore the (zero) input, so the input Jacobians the
finder also computes come out zero; they are not used here.

`run` does the same with `FixedPointFinderTorch` and float32 `torch.nn.Module`s (called like a
`batch_first` `torch.nn.RNN`: `_, h_next = rnn(inputs (B, 1, M), h (1, B, N))`), writing
`benchmarks/golub_points.npz`. Finding: the PyTorch port hard-codes `ReduceLROnPlateau(factor=0.95,
patience=2)` and ignores its `lr_patience`/`lr_factor`, so its learning rate collapses and it finds almost
nothing (0-2 points per case and seed), hence the TF run as the fair baseline.

Both: 1024 initial states drawn by `fpf.sample_states` from 128 trajectories (uniform [-1, 1]^N starts,
50 steps at zero input, the states after each step) plus Gaussian noise 0.5, zero input. Per seed
(`random_seed` of the finder and of the trajectory starts) they keep the finder's unique points (its own
deduplication and distance-outlier exclusion) with `qstar = ½‖h − F(h)‖² < tol_q` (the finder itself
returns non-converged points too; those are counted as `unique_all`; the table also counts `q < 1e-10`),
stability from the finder's Jacobian eigenvalues (`is_stable`). Keys: `case{i}_seed{j}` (P, N) float64
points, `..._qstar`, `..._stable`, `..._seconds` (wall time of `find_fixed_points`), `..._iters`
(optimization iterations), `..._all_qstar` / `..._all_stable` (every unique point returned; their states
are not stored), and `case{i}` the union over seeds (merged when every coordinate differs by < tol_unique).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "_golub_weights.npz"
POINTS = HERE / "golub_points.npz"
POINTS_TF = HERE / "golub_points_tf.npz"
N_CHECK = 5
FPF_HPS = {
    "max_iters": 10000,
    "lr_init": 1.0,
    "outlier_distance_scale": 10.0,
    "verbose": False,
    "super_verbose": False,
}  # the FlipFlop example's (run_FlipFlop.py), less its printing
NOISE_SCALE = 0.5  # the example's
N_INITS = 1024  # the example's
N_TRAJ, T_TRAJ = 128, 50


def export():
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))
    from fixed_point_coverage import CASES, make_network

    out = {}
    for i, (name, cell, n, gain, seed) in enumerate(CASES):
        model = make_network(cell, n, gain, seed)
        if model.activation != "tanh":
            raise ValueError(f"case {i}: activation {model.activation!r}, expected tanh")
        x = jnp.zeros(model.n_inputs, jnp.float32)
        p = f"case{i}_"
        out[p + "name"] = np.array(name)
        out[p + "cell"] = np.array(cell)
        out[p + "W_rec"] = np.asarray(model.W_rec, np.float32)
        out[p + "drive"] = np.asarray(model.W_in @ x + model.b, np.float32)
        out[p + "n_inputs"] = np.array(model.n_inputs)
        if cell == "tanh":
            out[p + "alpha"] = np.asarray(model.alpha, np.float32)
        else:
            out[p + "b_n"] = np.asarray(model.b_n, np.float32)
        h = np.random.default_rng(100 + i).uniform(-1, 1, (N_CHECK, n))
        with jax.enable_x64(True):
            m64 = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a), jnp.float64), model)
            F = jax.vmap(lambda s: m64.step(s, jnp.zeros(m64.n_inputs, jnp.float64)))
            out[p + "check_h"] = h
            out[p + "check_F"] = np.asarray(F(jnp.asarray(h)))
        print(f"case {i}: {name}: exported, |b| = {np.abs(np.asarray(model.b)).max():.3g}")
    out["n_cases"] = np.array(len(CASES))
    np.savez(WEIGHTS, **out)
    print(f"wrote {WEIGHTS}")


def make_module(w, i):
    """The case's one-step map at zero input as a `batch_first` `torch.nn.RNN`-like module."""
    import torch

    p = f"case{i}_"
    cell = str(w[p + "cell"])

    class Step(torch.nn.Module):
        batch_first = True

        def __init__(self):
            super().__init__()

            def par(k):
                return torch.nn.Parameter(torch.tensor(w[p + k], dtype=torch.float32), requires_grad=False)

            self.W_rec = par("W_rec")
            self.drive = par("drive")
            if cell == "tanh":
                self.alpha = par("alpha")
            else:
                self.b_n = par("b_n")
            self.n = self.W_rec.shape[1]

        def step(self, h):
            v = h @ self.W_rec.T
            if cell == "tanh":  # (1-a) h + a tanh(W_rec h + W_in x + b)
                return (1 - self.alpha) * h + self.alpha * torch.tanh(v + self.drive)
            n, u = self.n, self.drive  # ctrnn_jax GRU._next
            r = torch.sigmoid(u[:n] + v[..., :n])
            z = torch.sigmoid(u[n : 2 * n] + v[..., n : 2 * n])
            cand = torch.tanh(u[2 * n :] + r * (v[..., 2 * n :] + self.b_n))
            return cand + z * (h - cand)

        def forward(self, inputs, hidden):
            # inputs (B, 1, M) (ignored: zero, its drive is in `drive`), hidden (1, B, N)
            if torch.any(inputs != 0):
                raise ValueError("only zero input is exported")
            h = self.step(hidden)
            return h.transpose(0, 1), h

    return Step()


def run(src, n_seeds):
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(src))
    from FixedPointFinderTorch import FixedPointFinderTorch

    w = np.load(WEIGHTS)
    out = {}
    rows = []
    for i in range(int(w["n_cases"])):
        p = f"case{i}_"
        name = str(w[p + "name"])
        rnn = make_module(w, i)
        n, m = rnn.n, int(w[p + "n_inputs"])
        with torch.no_grad():
            got = rnn.step(torch.tensor(w[p + "check_h"], dtype=torch.float32)).double().numpy()
        err = np.abs(got - w[p + "check_F"]).max()
        if not err < 1e-5:
            raise SystemExit(f"case {i}: torch step differs from model.step by {err:.3g} (> 1e-5)")
        print(f"case {i}: {name}: torch step matches model.step to {err:.2g}")
        union = np.zeros((0, n))
        for j in range(n_seeds):
            fpf = FixedPointFinderTorch(rnn, random_seed=j, **FPF_HPS)
            rng = np.random.default_rng(1000 * i + j)
            h = torch.tensor(rng.uniform(-1, 1, (N_TRAJ, n)), dtype=torch.float32)
            traj = []
            with torch.no_grad():
                for _ in range(T_TRAJ):
                    h = rnn.step(h)
                    traj.append(h.numpy().copy())
            traj = np.stack(traj, axis=1)  # (B, T, N)
            x0 = fpf.sample_states(traj, n_inits=N_INITS, noise_scale=NOISE_SCALE)
            t0 = time.perf_counter()
            unique_fps, _ = fpf.find_fixed_points(x0, np.zeros((1, m)))
            secs = time.perf_counter() - t0
            union = _record(out, rows, union, i, name, j, fpf, unique_fps, secs, n)
        out[f"case{i}"] = union
        rows.append((i, name, "union", len(union), "", "", "", "", "", "", ""))
    _finish(out, rows, POINTS, f"FixedPointFinderTorch, hps {FPF_HPS} (others default)")


def _record(out, rows, union, i, name, j, fpf, unique_fps, secs, n):
    """Stores one seed's result under `case{i}_seed{j}`, prints it, and returns `union` with its points added."""
    q = np.asarray(unique_fps.qstar, np.float64).reshape(-1)
    stable_all = np.asarray(unique_fps.is_stable, bool).reshape(-1) if unique_fps.n else np.zeros(0, bool)
    keep = q < fpf.tol_q
    pts = np.asarray(unique_fps.xstar, np.float64).reshape(-1, n)
    k = f"case{i}_seed{j}"
    out[k] = pts[keep]
    out[k + "_qstar"] = q[keep]
    out[k + "_stable"] = stable_all[keep]
    out[k + "_seconds"] = np.array(secs)
    iters = int(np.max(unique_fps.n_iters)) if unique_fps.n else 0  # joint optimization: one count for all
    out[k + "_iters"] = np.array(iters)
    out[k + "_all_qstar"] = q  # every unique point returned (their states are not kept: too big)
    out[k + "_all_stable"] = stable_all
    for pt in pts[keep]:
        if not np.any(np.all(np.abs(union - pt) < fpf.tol_unique, axis=1)):
            union = np.vstack([union, pt])
    n10 = int((q < 1e-10).sum())
    rows.append(
        (
            i,
            name,
            j,
            int(keep.sum()),
            int(stable_all[keep].sum()),
            n10,
            len(q),
            int(stable_all.sum()),
            float(np.median(q)) if len(q) else float("nan"),
            iters,
            secs,
        )
    )
    print(
        f"  seed {j}: {keep.sum()} points (q < {fpf.tol_q:.0e}), {stable_all[keep].sum()} stable; {n10} with "
        f"q < 1e-10; {len(q)} unique returned; {iters} iterations; {secs:.1f} s",
        flush=True,
    )
    return union


def _finish(out, rows, path, title):
    np.savez(path, **out)
    print(f"\n{title}, {N_INITS} inits, noise {NOISE_SCALE}")
    print(
        f"{'case':<22}{'seed':>6}{'points':>8}{'stable':>8}{'q<1e-10':>9}{'unique_all':>12}{'stable_all':>12}"
        f"{'median_q_all':>14}{'iters':>7}{'seconds':>9}"
    )
    for i, name, j, P, S, P10, U, SU, mq, it, s in rows:
        mq = f"{mq:.1e}" if mq != "" else ""
        s = f"{s:.1f}" if s != "" else ""
        print(f"{name:<22}{j!s:>6}{P:>8}{S!s:>8}{P10!s:>9}{U!s:>12}{SU!s:>12}{mq:>14}{it!s:>7}{s:>9}")
    print(f"wrote {path}")


def make_tf_cell(w, i):
    """The case's one-step map at zero input as an RNN cell `FixedPointFinderTF` accepts: `state_size` and
    `output, h_next = cell(inputs (B, M), h (B, N))` (graph mode; the equations of `make_module`)."""
    import tensorflow as tf

    p = f"case{i}_"
    cell = str(w[p + "cell"])
    W_rec = tf.constant(w[p + "W_rec"], tf.float32)
    drive = tf.constant(w[p + "drive"], tf.float32)
    alpha = tf.constant(w[p + "alpha"], tf.float32) if cell == "tanh" else None
    b_n = tf.constant(w[p + "b_n"], tf.float32) if cell != "tanh" else None
    n, m = int(w[p + "W_rec"].shape[1]), int(w[p + "n_inputs"])

    class Cell:
        state_size = n

        def step(self, h):
            v = tf.matmul(h, W_rec, transpose_b=True)
            if cell == "tanh":  # (1-a) h + a tanh(W_rec h + W_in x + b)
                return (1 - alpha) * h + alpha * tf.tanh(v + drive)
            u = drive  # ctrnn_jax GRU._next
            r = tf.sigmoid(u[:n] + v[:, :n])
            z = tf.sigmoid(u[n : 2 * n] + v[:, n : 2 * n])
            cand = tf.tanh(u[2 * n :] + r * (v[:, 2 * n :] + b_n))
            return cand + z * (h - cand)

        def __call__(self, inputs, state):
            h = self.step(state)
            if isinstance(inputs, tf.Variable):  # `_compute_input_jacobians`: W_in is not exported, so
                h = h + tf.matmul(inputs, tf.zeros((m, n)))  # dF/du comes out 0 (as in the torch mode)
            elif np.any(tf.get_static_value(inputs) != 0):  # the optimization passes a tf.constant
                raise ValueError("only zero input is exported")
            return h, h

    return Cell()


def run_tf(src, rw_src, n_seeds):
    import tensorflow as tf

    sys.path.insert(0, str(rw_src))
    sys.path.insert(0, str(src))
    from FixedPointFinderTF import FixedPointFinderTF  # disables eager execution: TF1 graph + session

    tf1 = tf.compat.v1
    config = tf1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    hps = {k: v for k, v in FPF_HPS.items() if k != "lr_init"}
    hps["alr_hps"] = {"initial_rate": FPF_HPS["lr_init"]}  # AdaptiveLearningRate, its other defaults
    w = np.load(WEIGHTS)
    out = {}
    rows = []
    for i in range(int(w["n_cases"])):
        p = f"case{i}_"
        name = str(w[p + "name"])
        n, m = int(w[p + "W_rec"].shape[1]), int(w[p + "n_inputs"])
        union = np.zeros((0, n))
        for j in range(n_seeds):
            with tf1.Graph().as_default(), tf1.Session(config=config) as sess:
                cell = make_tf_cell(w, i)
                h_ph = tf1.placeholder(tf.float32, (None, n))
                F_op = cell.step(h_ph)
                got = sess.run(F_op, {h_ph: w[p + "check_h"].astype(np.float32)}).astype(np.float64)
                err = np.abs(got - w[p + "check_F"]).max()
                if not err < 1e-5:
                    raise SystemExit(f"case {i}: TF step differs from model.step by {err:.3g} (> 1e-5)")
                if j == 0:
                    print(f"case {i}: {name}: TF step matches model.step to {err:.2g}")
                fpf = FixedPointFinderTF(cell, sess, random_seed=j, **hps)
                rng = np.random.default_rng(1000 * i + j)  # the torch mode's trajectory starts
                h = rng.uniform(-1, 1, (N_TRAJ, n)).astype(np.float32)
                traj = []
                for _ in range(T_TRAJ):
                    h = sess.run(F_op, {h_ph: h})
                    traj.append(h.copy())
                traj = np.stack(traj, axis=1)  # (B, T, N)
                x0 = fpf.sample_states(traj, n_inits=N_INITS, noise_scale=NOISE_SCALE)
                t0 = time.perf_counter()
                unique_fps, _ = fpf.find_fixed_points(x0, np.zeros((1, m)))
                secs = time.perf_counter() - t0
            union = _record(out, rows, union, i, name, j, fpf, unique_fps, secs, n)
        out[f"case{i}"] = union
        rows.append((i, name, "union", len(union), "", "", "", "", "", "", ""))
    _finish(out, rows, POINTS_TF, f"FixedPointFinderTF (TF {tf.__version__}), hps {hps} (others default)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["export", "run", "run-tf"])
    parser.add_argument(
        "--src", type=Path, default=Path("/work/golub-src"), help="checkout of mattgolub/fixed-point-finder"
    )
    parser.add_argument(
        "--rw-src",
        type=Path,
        default=Path("/work/golub-rw-src"),
        help="checkout of mattgolub/recurrent-whisperer (AdaptiveLearningRate, AdaptiveGradNormClip)",
    )
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    if args.mode == "export":
        export()
    elif args.mode == "run":
        run(args.src, args.seeds)
    else:
        run_tf(args.src, args.rw_src, args.seeds)


if __name__ == "__main__":
    main()
