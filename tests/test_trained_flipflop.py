"""A trained flip-flop ensemble (members 0 and 2 of the default `ctrnn-jax flipflop` run, seed 0,
stored in `tests/data/flipflop_n64_k2.npz`) solves the task and has its 8 memory states at the
corners of a cube."""

from pathlib import Path

import jax
import numpy as np
import pytest

import ctrnn_jax as cj

DATA = Path(__file__).parent / "data" / "flipflop_n64_k2.npz"


@pytest.fixture(scope="module")
def ensemble():
    return cj.load_npz(DATA)


def test_trained_members_solve_the_8_state_test_set(ensemble):
    metrics = cj.evaluate(ensemble, *cj.flipflop_test_set())
    assert metrics["success"].all(), metrics["mse"]
    assert np.all(metrics["mse"] < 0.02)


def test_fixed_points_recover_the_8_corners(ensemble):
    config = cj.FixedPointConfig(n_candidates=256, restarts=2, eigvecs=False)
    fp, per_member, summary = cj.analyze_fixed_points(ensemble, config=config)
    for d in per_member:
        assert d["corners_recovered"] == 8, d
        assert d["all_corners"]
        assert d["n_stable"] >= 8
        # a cube: the 8 corner states in the top-3 PCs are a rotated, scaled cube
        assert d["cube_disparity"] < 0.05
    # stable points really are stable, saddles have unstable directions, and all are fixed points
    assert np.all(np.abs(fp.eigvals[fp.is_stable]) < 1)
    assert np.all(fp.n_unstable[~fp.is_stable] >= 1)
    k0 = fp.select(0)
    model = cj.get_member(ensemble, 0)
    residual = jax.vmap(lambda h: model.step(h, np.zeros(3, np.float32)) - h)(k0.points)
    assert np.max(np.abs(np.asarray(residual))) < 1e-4
