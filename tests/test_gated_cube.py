"""Gated cells on the flip-flop get the cube analysis: a GRU and an LSTM built to be three decoupled
bistable units (gates pinned open or shut by large biases), whose fixed points are known, go through
`analyze_fixed_points` / `cube_analysis` and `ctrnn-jax analyze`'s flip-flop report."""

import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctrnn_jax import (
    GRU,
    LSTM,
    FixedPointConfig,
    analyze_fixed_points,
    procrustes_disparity,
    save_npz,
    stack_members,
)
from ctrnn_jax.analysis import analyze_run

N = 3
W = (2.0, 2.5, 3.0)
BIG = 30.0  # sigmoid(±30) is 1 or ~1e-13: the gates are constants


def root(f):
    """The positive root of f(h) = h on (0, 1], by bisection."""
    lo, hi = 1e-6, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) > mid else (lo, mid)
    return 0.5 * (lo + hi)


H_STAR = {
    "gru": np.asarray([root(lambda h, w=w: math.tanh(w * h)) for w in W]),
    "lstm": np.asarray([root(lambda h, w=w: math.tanh(math.tanh(w * h))) for w in W]),
}


def bistable(cell):
    """GRU: r = 1, z = 0, so h ← tanh(diag(W) h + 2 x). LSTM: f = 0, i = o = 1, so c ← tanh(diag(W) h + 2 x),
    h ← tanh(c). Readout h_i / h_i*: the stable points read out the corners of the cube."""
    if cell == "gru":
        model = GRU(3, N, 3, key=jax.random.key(0))
        W_rec = np.zeros((3 * N, N))
        W_rec[2 * N :] = np.diag(W)
        W_in = np.zeros((3 * N, 3))
        W_in[2 * N :] = 2 * np.eye(3)
        b = np.r_[np.full(N, BIG), np.full(N, -BIG), np.zeros(N)]
        model = eqx.tree_at(lambda m: m.b_n, model, jnp.zeros(N))
    else:
        model = LSTM(3, N, 3, key=jax.random.key(0))
        W_rec = np.zeros((4 * N, N))
        W_rec[2 * N : 3 * N] = np.diag(W)
        W_in = np.zeros((4 * N, 3))
        W_in[2 * N : 3 * N] = 2 * np.eye(3)
        b = np.r_[np.full(N, BIG), np.full(N, -BIG), np.zeros(N), np.full(N, BIG)]
    W_out = np.diag(1 / H_STAR[cell])
    return eqx.tree_at(
        lambda m: (m.W_rec, m.W_in, m.b, m.W_out, m.b_out),
        model,
        tuple(jnp.asarray(a, jnp.float32) for a in (W_rec, W_in, b, W_out, np.zeros(3))),
    )


# the options of the report's fixed-point stage below (one compiled search for both tests)
OPTIONS = {"n_candidates": 64, "n_trials": 4, "noise_std": 0.3}


def test_gated_cells_get_the_cube():
    """The LSTM (the flat state [h, c] differs from h); the GRU's and UGRNN's state is h, as the CTRNN's."""
    ens = stack_members([bistable("lstm"), bistable("lstm")])
    config = FixedPointConfig(eigvecs=True, **OPTIONS)
    fp, per_member, summary = analyze_fixed_points(ens, config=config)
    assert fp.points.shape[1] == ens.state_size == 2 * N
    # the memory states h are the corners of the box (±h1*, ±h2*, ±h3*), compared with a cube
    box = np.asarray(list(itertools.product(*[(-h, h) for h in H_STAR["lstm"]])))
    for d in per_member:
        assert d["corners_recovered"] == 8 and d["one_to_one"] and d["n_saddles"] == {1: 12, 2: 6, 3: 1}
        assert d["perfect_cube"]
        assert d["cube_disparity"] == pytest.approx(procrustes_disparity(box, np.sign(box)), abs=1e-6)
    assert summary["n_perfect_cube"] == 2


def test_lstm_flipflop_report_has_the_cube_tables(tmp_path):
    save_npz(stack_members([bistable("lstm"), bistable("lstm")]), tmp_path / "lstm.npz")
    report = analyze_run(tmp_path / "lstm.npz", log=lambda m: None, fp_config=FixedPointConfig(**OPTIONS))
    text = report.read_text()
    assert "| 0 | " in text and "| 12/6/1 |" in text and "| 8/8 |" in text  # saddles by index, memory states
    assert "every memory state at a stable fixed point: 2 of 2" in text
    assert (report.parent / "figures" / "state_space.png").is_file()
    assert not (report.parent / "figures" / "connectivity.png").exists()  # W_rec stacks the gates
