"""Numbers a researcher can quote (issue #31): distinct roots, no phantom points, no silent limits, legends
that count what the table counts, on networks with closed-form fixed points."""

import math
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _analytic import tanh_root  # tests/_analytic.py

import ctrnn_jax as cj
from ctrnn_jax.dynamics import FixedPointConfig, fixed_point_stage

SMALL = FixedPointConfig(n_candidates=256, adam_steps=100)


def network(W, m=1):
    """`h ← tanh(W h)`, a = 1, no input drive, no bias."""
    n = W.shape[0]
    model = cj.CTRNN(m, n, 1, key=jax.random.key(0), alpha=1.0)
    return eqx.tree_at(
        lambda mdl: (mdl.W_rec, mdl.W_in), model, (jnp.asarray(W, jnp.float32), jnp.zeros((n, m), jnp.float32))
    )


def test_rank_two_plane_has_one_marginal_point_not_hundreds():
    # W = U Uᵀ with U orthonormal (Hadamard columns: exact in float32): the origin is the only root, with two
    # eigenvalues exactly 1 (around it F(h) − h is cubic, so float32 accepts a whole disc of "fixed points")
    n = 16
    U = 0.25 * np.stack([np.ones(n), np.r_[np.ones(n // 2), -np.ones(n // 2)]], axis=1)
    W = U @ U.T
    fp = fixed_point_stage(cj.stack_members([network(W)]), config=SMALL)[0]
    assert len(fp) == 1 and fp.exact.all() and len(fp.slow_q) == 0
    assert fp.kind.tolist() == ["marginal"] and fp.n_marginal.tolist() == [2]
    assert np.max(np.abs(fp.points)) < 1e-8  # polished onto the origin
    assert fp.counts()[0]["points"] == 1 and fp.counts()[0]["marginal"] == 1


@pytest.fixture(scope="module")
def near_singular():
    """Two bistable units (w = 2, 3) and a unit of self-weight 1 − 1e-4 (a near-singular direction: J − I has
    an eigenvalue −1e-4 there, so float32 candidates of one root lie ~1e-2 apart along it): 9 roots, h3 = 0."""
    W = np.diag([2.0, 3.0, 1.0 - 1e-4])
    fp = fixed_point_stage(cj.stack_members([network(W)]), config=SMALL)[0]
    return W, fp


def test_points_of_one_root_are_one_point(near_singular):
    W, fp = near_singular
    levels = [(-tanh_root(2.0), 0.0, tanh_root(2.0)), (-tanh_root(3.0), 0.0, tanh_root(3.0)), (0.0,)]
    roots = np.asarray(np.meshgrid(*levels, indexing="ij")).reshape(3, -1).T  # the 9 analytic roots
    assert fp.exact.all() and len(fp) == 9
    d = np.linalg.norm(fp.points[:, None, :].astype(np.float64) - roots[None], axis=2)
    assert sorted(np.argmin(d, axis=1).tolist()) == list(range(9))  # one reported point per root
    assert np.max(np.min(d, axis=1)) < 1e-6  # each at its root (to the float32 the points are stored in)
    # the 4 attractors of the bistable pair have |λ3| = 0.9999, within the band δ = 1e-3: marginal
    assert sum(r["points"] for r in fp.counts()) == 9 and fp.counts()[0]["marginal"] == 4


def test_slow_points_lie_outside_their_slow_region(near_singular):
    # 2 bistable units and a ghost (unit 3: tanh(2h + b) just past its saddle-node): 9 roots, and slow points
    # (with a task-free search, listed) only where no fixed point is downhill along a straight segment
    W = np.diag([2.0, 3.0, 2.0])
    model = eqx.tree_at(lambda m: m.b, network(W), jnp.asarray([0.0, 0.0, 0.5328 + 8e-3], jnp.float32))
    fp = fixed_point_stage(cj.stack_members([model]), config=SMALL.__class__(**{**SMALL.to_dict(), "slow_tol": 1e-4}))[
        0
    ]
    assert len(fp) == 9 and fp.exact.all()
    b = np.asarray([0.0, 0.0, 0.5328 + 8e-3], np.float32).astype(np.float64)
    Wb = W.astype(np.float32).astype(np.float64)
    q = lambda h: 0.5 * np.sum((np.tanh(Wb @ h + b) - h) ** 2)  # noqa: E731
    assert len(fp.slow_points) > 0  # the ghosts of the 4 corners
    for s, qs in zip(fp.slow_points.astype(np.float64), fp.slow_q):
        for p in fp.points.astype(np.float64):  # every fixed point has a barrier above q(s) on the way
            t = np.arange(1, 65)[:, None] / 64
            assert max(q(h) for h in s[None] + t * (p - s)[None]) > qs
    _, near = near_singular
    assert len(near.slow_points) == 0  # the near-singular network has no slow region of its own


def bistable(n, w):
    return cj.stack_members([network(np.diag(np.full(n, w)))])


def test_a_search_cut_short_says_so(tmp_path):
    logged = []
    fp = fixed_point_stage(
        bistable(7, 2.0), config=SMALL.__class__(**{**SMALL.to_dict(), "max_points": 200}), log=logged.append
    )[0]
    assert len(fp) < 3**7 and fp.capped.tolist() == [True]  # 2187 roots; the completion stopped at the bound
    assert fp.counts()[0]["capped"] is True and "CAPPED" in repr(fp)
    assert re.search(r"member 0: the search was cut short by max_points", "\n".join(logged))
    fp.to_npz(tmp_path / "fp.npz")
    again = cj.FixedPoints.from_npz(tmp_path / "fp.npz")
    assert again.capped.tolist() == [True] and again.new_last_round.tolist() == fp.new_last_round.tolist()
    # a file written before the flag: not capped, last round unknown
    with np.load(tmp_path / "fp.npz") as z:
        old = {k: z[k] for k in z.files if k not in ("capped", "new_last_round")}
    np.savez(tmp_path / "old.npz", **old)
    old_fp = cj.FixedPoints.from_npz(tmp_path / "old.npz")
    assert old_fp.capped.tolist() == [False] and old_fp.new_last_round.tolist() == [-1]


def test_a_complete_search_finds_every_root_uncapped():
    # 5 decoupled bistable units: 3^5 = 243 roots, (5 choose k)·2^(5−k) of index k
    fp = fixed_point_stage(bistable(5, 2.0), config=SMALL)[0]
    index = np.bincount(fp.n_unstable[fp.exact], minlength=6).tolist()
    assert index == [math.comb(5, k) * 2 ** (5 - k) for k in range(6)]
    assert fp.capped.tolist() == [False] and fp.new_last_round.tolist() == [0]


def test_spectra_legend_counts_the_table(near_singular, tmp_path):
    from ctrnn_jax.analysis import plot_fixed_point_spectra

    W = np.diag([2.0, 1.0, 0.5])  # unit 1: a marginal direction at every root
    fp = fixed_point_stage(cj.stack_members([network(W)]), config=SMALL)[0]
    row = fp.counts()[0]
    fig = plot_fixed_point_spectra(fp.select(0))
    labels = {
        re.sub(r" \(\d+ points\)", "", t.get_text()): int(re.search(r"\((\d+) points\)", t.get_text())[1])
        for leg in fig.legends
        for t in leg.get_texts()
    }
    assert labels.get("stable", 0) == row["stable"] and labels.get("marginal", 0) == row["marginal"]
    assert {int(k.split()[-1]): v for k, v in labels.items() if k.startswith("saddles")} == row["saddles"]


def test_random_network_covers_a_float64_reference():
    # a random tanh network h ← tanh(W h), N = 12, gain 4 (11 roots): every root a many-start float64 Newton finds
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from fixed_point_coverage import make_network, reference_roots

    model = make_network("tanh", 12, 4.0, 0)
    ref, _ = reference_roots(model, 600, np.random.default_rng(2), iters=40)
    fp = fixed_point_stage(cj.stack_members([model]), config=SMALL)[0]
    d = np.linalg.norm(ref[:, None] - fp.points[fp.exact][None].astype(np.float64), axis=2)
    assert len(ref) >= 3 and np.all(d.min(axis=1) < 1e-5)  # every reference root is among the reported points
