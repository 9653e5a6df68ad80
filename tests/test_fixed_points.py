"""Fixed points against closed-form ground truth.

Every search here uses K = 2 members, C = 256 candidates, N = 5 units and M = 2 inputs, so the
compiled search is shared by all tests (and by the module-scoped fixtures). Most searches use `PLAIN`:
the search and linearization alone (no restart, no completion of the saddle set), with eigenvectors."""

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _analytic import H_STAR, W_DIAG  # tests/_analytic.py

from ctrnn_jax import CTRNN, FixedPointConfig, ensemble_states, stack_members
from ctrnn_jax.dynamics import _fixed_points as fixed_points_module
from ctrnn_jax.dynamics._cube import (
    analyze_fixed_points,
    cube_analysis,
    ensemble_summary,
    format_cube_table,
    procrustes_disparity,
)
from ctrnn_jax.dynamics._fixed_point_set import FixedPoints
from ctrnn_jax.dynamics._fixed_points import (
    _newton_search,
    _polish,
    _search,
    find_fixed_points,
    initial_states_from_trajectories,
)
from ctrnn_jax.models._gated import GRU, LSTM

K, C, N, M = 2, 256, 5, 2
PLAIN = FixedPointConfig(restarts=0, complete=False, eigvecs=True)  # search, deduplicate, linearize


def plain(**changes):
    return dataclasses.replace(PLAIN, **changes)


def network(W_rec, *, alpha=1.0, W_in=None, b=None, W_out=None):
    model = CTRNN(M, N, 3, key=jax.random.key(0), alpha=alpha)
    W_in = jnp.zeros((N, M)) if W_in is None else W_in
    b = jnp.zeros(N) if b is None else b
    W_out = model.W_out if W_out is None else W_out
    return eqx.tree_at(
        lambda m: (m.W_rec, m.W_in, m.b, m.W_out, m.b_out),
        model,
        (
            jnp.asarray(W_rec, jnp.float32),
            jnp.asarray(W_in, jnp.float32),
            jnp.asarray(b, jnp.float32),
            jnp.asarray(W_out, jnp.float32),
            jnp.zeros(3),
        ),
    )


def diag_network():
    """W_rec = diag(1.5, 2, 3, 0, 0), a = 1, no input or bias; readout h_i / h_i* of the 3 active units,
    so that the stable points read out exactly the corners of the cube."""
    W_out = np.zeros((3, N))
    W_out[np.arange(3), np.arange(3)] = 1 / H_STAR
    return network(np.diag([*W_DIAG, 0.0, 0.0]), W_out=W_out)


def analytic_points():
    """The 27 fixed points of `diag_network`, `(27, N)`: each active unit at 0 or ±h_i*."""
    grid = np.stack(np.meshgrid(*[[-h, 0.0, h] for h in H_STAR], indexing="ij"), axis=-1).reshape(-1, 3)
    return np.concatenate([grid, np.zeros((27, N - 3))], axis=1)


def uniform_states(key, low=-1.2, high=1.2):
    return jax.random.uniform(key, (K, C, N), minval=low, maxval=high)


def match(found, expected, atol):
    """For each expected row, the index of the found row within `atol` (max-norm); -1 if none."""
    d = np.max(np.abs(found[None, :, :] - expected[:, None, :]), axis=2)
    return np.where(d.min(axis=1) <= atol, d.argmin(axis=1), -1)


@pytest.fixture(scope="module")
def diag_result():
    """Member 0: the diagonal network; member 1: the same with an inf weight (its search fails)."""
    good = diag_network()
    bad = eqx.tree_at(lambda m: m.W_rec, good, good.W_rec.at[0, 1].set(jnp.inf))
    ensemble = stack_members([good, bad])
    states = uniform_states(jax.random.key(1))
    # one restart round (from segment midpoints and perturbed points) makes a miss very unlikely
    # whatever the seed: over 40 member-searches, 0 misses with it, 1 without
    return ensemble, find_fixed_points(ensemble, jnp.zeros(M), states, plain(restarts=1), key=jax.random.key(12))


def contracting_network(alpha, key=jax.random.key(2)):
    k_rec, k_in, k_b = jax.random.split(key, 3)
    W = jax.random.normal(k_rec, (N, N))
    W = 0.9 * W / np.linalg.norm(np.asarray(W), 2)  # ||W_rec||_2 = 0.9 < 1
    return network(W, alpha=alpha, W_in=jax.random.normal(k_in, (N, M)), b=0.5 * jax.random.normal(k_b, (N,)))


X_CONST = np.asarray([0.7, -0.4])


def damped_iteration(model, x, steps=3000, beta=0.5):
    W, W_in, b = (np.asarray(v, np.float64) for v in (model.W_rec, model.W_in, model.b))
    h = np.zeros(N)
    for _ in range(steps):
        h = (1 - beta) * h + beta * np.tanh(W @ h + W_in @ x + b)
    return h


@pytest.fixture(scope="module")
def contracting_result():
    """Member 0: a contracting network with a = 1; member 1: the same weights with a = 0.3."""
    ensemble = stack_members([contracting_network(1.0), contracting_network(0.3)])
    return ensemble, find_fixed_points(ensemble, X_CONST, uniform_states(jax.random.key(3), -1.0, 1.0), PLAIN)


# ---------------------------------------------------------------------------------------------------


def test_diag_finds_all_27(diag_result):
    _, fp = diag_result
    pts = fp.member_points(0)
    assert pts.shape == (27, N)
    idx = match(pts, analytic_points(), atol=1e-5)
    assert np.all(idx >= 0) and len(set(idx.tolist())) == 27
    assert np.all(fp.q < 1e-11)


def test_diag_stability_and_saddle_index(diag_result):
    _, fp = diag_result
    sel = fp.select(0)
    assert int(np.sum(sel.is_stable)) == 8
    assert np.bincount(sel.n_unstable).tolist() == [8, 12, 6, 1]
    # index = number of active units sitting at 0
    n_zero = np.sum(np.abs(sel.points[:, :3]) < 0.1, axis=1)
    np.testing.assert_array_equal(sel.n_unstable, n_zero)
    np.testing.assert_array_equal(sel.is_stable, sel.is_stable_ct)  # real eigenvalues in (0, w): the same


def test_diag_eigenvalues_match_analytic(diag_result):
    _, fp = diag_result
    sel = fp.select(0)
    h = sel.points[:, :3].astype(np.float64)
    at_zero = np.abs(h) < 0.1
    lam = np.where(at_zero, np.asarray(W_DIAG), np.asarray(W_DIAG) * (1 - np.asarray(H_STAR) ** 2))
    expected = np.concatenate([lam, np.zeros((len(h), N - 3))], axis=1)
    expected = -np.sort(-expected, axis=1)  # by decreasing modulus (all real, >= 0)
    np.testing.assert_allclose(sel.eigvals.real, expected, atol=1e-5)
    np.testing.assert_allclose(sel.eigvals.imag, 0, atol=1e-6)
    # the Jacobian and its eigenvectors are consistent: J v = λ v
    J = sel.jacobians.astype(np.complex128)
    np.testing.assert_allclose(J @ sel.eigvecs, sel.eigvecs * sel.eigvals[:, None, :], atol=1e-5)


def test_failed_member_has_no_points(diag_result):
    _, fp = diag_result
    assert fp.n_members == 2
    assert np.all(fp.member == 0)
    assert fp.member_points(1).shape == (0, N) and len(fp.select(1)) == 0


def test_contracting_network_single_fixed_point(contracting_result):
    ensemble, fp = contracting_result
    assert np.bincount(fp.member, minlength=2).tolist() == [1, 1]
    expected = damped_iteration(jax.tree_util.tree_map(lambda v: v[0], ensemble), X_CONST)
    np.testing.assert_allclose(fp.member_points(0)[0], expected, atol=1e-5)
    assert fp.is_stable.all() and fp.is_stable_ct.all() and (fp.n_unstable == 0).all()
    out = np.asarray(ensemble.W_out[0]) @ expected + np.asarray(ensemble.b_out[0])
    np.testing.assert_allclose(fp.select(0).outputs[0], out, atol=1e-5)


def test_alpha_keeps_points_and_maps_eigenvalues(contracting_result):
    _, fp = contracting_result
    np.testing.assert_allclose(fp.member_points(1), fp.member_points(0), atol=1e-5)
    lam1 = fp.select(0).eigvals[0].astype(np.complex128)
    lam_a = fp.select(1).eigvals[0].astype(np.complex128)
    mapped = (1 - 0.3) + 0.3 * lam1
    d = np.abs(mapped[:, None] - lam_a[None, :])
    assert d.min(axis=1).max() < 1e-5 and d.min(axis=0).max() < 1e-5


def test_discrete_and_continuous_time_stability():
    """W_rec = diag(-1.5, -0.5, 0, 0, 0): the origin is the only fixed point. At a = 1, λ = -1.5: the map
    is unstable (period-2 flip) while the flow, μ = λ - 1 = -2.5, is stable. At a = 0.5, λ = -0.25: both."""
    W = np.diag([-1.5, -0.5, 0.0, 0.0, 0.0])
    ens = stack_members([network(W, alpha=1.0), network(W, alpha=0.5)])
    fp = find_fixed_points(ens, jnp.zeros(M), uniform_states(jax.random.key(13), -1.0, 1.0), PLAIN)
    assert fp.member.tolist() == [0, 1]
    np.testing.assert_allclose(fp.points, 0, atol=1e-6)
    # λ = (1 - a) + a·(-1.5, -0.5, 0, 0, 0)
    np.testing.assert_allclose(
        np.sort(fp.eigvals.real, axis=1), [[-1.5, -0.5, 0, 0, 0], [-0.25, 0.25, 0.5, 0.5, 0.5]], atol=1e-6
    )
    assert fp.is_stable.tolist() == [False, True] and fp.n_unstable.tolist() == [1, 0]
    assert fp.is_stable_ct.tolist() == [True, True]


def test_duplicates_are_merged(contracting_result):
    ensemble, fp = contracting_result
    # the C candidates of each member all converge to the one point, merged into one
    assert len(fp) == 2
    # repeated candidates of the diagonal network: as many points as distinct basins reached
    ens = stack_members([diag_network(), diag_network()])
    corners = np.asarray(
        [[sx * H_STAR[0], sy * H_STAR[1], sz * H_STAR[2], 0, 0] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]
    )
    states = np.broadcast_to(np.tile(corners, (C // 8, 1)), (K, C, N)) + 0.01
    fp = find_fixed_points(ens, jnp.zeros(M), states, PLAIN)
    assert np.bincount(fp.member).tolist() == [8, 8] and fp.is_stable.all()


def test_restarts_find_saddles_between_attractors():
    """From candidates near the 8 stable points only, one restart round (segment midpoints) finds
    the 19 saddles too; so does the completion of the saddle set without a restart."""
    ens = stack_members([diag_network(), diag_network()])
    corners = analytic_points()[np.all(np.abs(analytic_points()[:, :3]) > 0.1, axis=1)]
    states = np.tile(corners, (C // 8, 1))[None] + 0.05 * np.asarray(jax.random.normal(jax.random.key(4), (K, C, N)))
    alone = find_fixed_points(ens, jnp.zeros(M), states, PLAIN)
    assert np.sum(alone.n_unstable > 0) < 2 * 19
    fp = find_fixed_points(ens, jnp.zeros(M), states, plain(restarts=1), key=jax.random.key(5))
    for k in range(K):
        assert np.bincount(fp.select(k).n_unstable).tolist() == [8, 12, 6, 1]
    completed = find_fixed_points(ens, jnp.zeros(M), states, plain(complete=True))
    for k in range(K):
        sel = completed.select(k)
        assert np.bincount(sel.n_unstable).tolist() == [8, 12, 6, 1]
        assert np.all(match(sel.points, analytic_points(), atol=1e-5) >= 0)


def test_float64_option():
    ens = stack_members([contracting_network(1.0), contracting_network(0.5)])
    states = uniform_states(jax.random.key(6), -1.0, 1.0)
    with pytest.raises(ValueError, match="jax_enable_x64"):
        find_fixed_points(ens, X_CONST, states, plain(dtype="float64"))
    with jax.enable_x64(True):
        fp = find_fixed_points(ens, X_CONST, np.asarray(states, np.float64), plain(dtype="float64", adam_steps=50))
    assert fp.points.dtype == np.float64 and len(fp) == 2
    expected = damped_iteration(jax.tree_util.tree_map(lambda v: v[0], ens), X_CONST)
    np.testing.assert_allclose(fp.member_points(0)[0], expected, atol=1e-12)  # same float32 weights
    assert np.all(fp.q < 1e-26)


def test_npz_roundtrip_and_missing_key(diag_result, tmp_path):
    _, fp = diag_result
    path = tmp_path / "fp.npz"
    fp.to_npz(path)
    back = FixedPoints.from_npz(path)
    assert back.n_members == fp.n_members and len(back) == len(fp)
    for name in (
        "member",
        "points",
        "q",
        "jacobians",
        "eigvals",
        "eigvecs",
        "is_stable",
        "is_stable_ct",
        "n_unstable",
        "outputs",
        "slow_member",
        "slow_points",
        "slow_q",
        "inputs",
    ):
        np.testing.assert_array_equal(getattr(back, name), getattr(fp, name))
    with np.load(path) as z:
        arrays = {name: z[name] for name in z.files if name != "q"}
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match=r"bad\.npz.*missing.*\bq\b"):
        FixedPoints.from_npz(bad)


def test_bad_arguments(diag_result):
    ensemble, _ = diag_result
    good = np.zeros((K, C, N))
    with pytest.raises(ValueError, match="initial_states"):
        find_fixed_points(ensemble, jnp.zeros(M), np.zeros((K, C, N + 1)))
    with pytest.raises(ValueError, match="initial_states"):
        find_fixed_points(ensemble, jnp.zeros(M), np.zeros((K + 1, C, N)))
    with pytest.raises(ValueError, match="initial_states.*NaN"):
        find_fixed_points(ensemble, jnp.zeros(M), np.where(np.arange(N) == 0, np.nan, good))
    with pytest.raises(ValueError, match="inputs"):
        find_fixed_points(ensemble, jnp.zeros(M + 1), good)
    with pytest.raises(ValueError, match="inputs"):
        find_fixed_points(ensemble, jnp.zeros((K + 1, M)), good)
    with pytest.raises(TypeError, match="ensemble"):
        find_fixed_points({"W_rec": 1}, jnp.zeros(M), good)
    with pytest.raises(TypeError, match="key"):
        find_fixed_points(ensemble, jnp.zeros(M), good, plain(restarts=1), key=12)
    with pytest.raises(TypeError, match="config"):
        find_fixed_points(ensemble, jnp.zeros(M), good, {"restarts": 1})
    with pytest.raises(TypeError, match="restarts"):  # the options are the config's, not keywords
        find_fixed_points(ensemble, jnp.zeros(M), good, restarts=1)
    with pytest.raises(ValueError, match="sim_steps"):
        find_fixed_points(ensemble, jnp.zeros(M), good, PLAIN, sim_steps=-np.ones((K, C), np.int32))
    # bad option values are refused when the config is built
    with pytest.raises(ValueError, match="tol_q"):
        FixedPointConfig(tol_q=-1.0)
    with pytest.raises(ValueError, match="dtype"):
        FixedPointConfig(dtype="int32")


def test_single_network_is_one_member():
    # a single (unstacked) CTRNN is taken as K = 1
    with pytest.raises(ValueError, match=r"\(1, C, 5\)"):
        find_fixed_points(diag_network(), jnp.zeros(M), np.zeros((K, C, N)))


def test_initial_states_from_trajectories():
    ens = stack_members([contracting_network(1.0), contracting_network(0.5, key=jax.random.key(9))])
    inputs = jax.random.normal(jax.random.key(7), (3, 10, M))
    h0 = initial_states_from_trajectories(ens, inputs, 16, key=jax.random.key(8))
    assert h0.shape == (K, 16, N)
    states = np.asarray(ensemble_states(ens, inputs)).reshape(K, -1, N)
    for k in range(K):  # every candidate is a state of the member's own trajectories
        d = np.abs(np.asarray(h0[k])[:, None, :] - states[k][None]).max(axis=2)
        assert d.min(axis=1).max() < 1e-6
    noisy = initial_states_from_trajectories(ens, inputs, 16, key=jax.random.key(8), noise_std=0.1)
    assert 0.01 < float(jnp.std(noisy - h0)) < 0.2
    with pytest.raises(ValueError, match="inputs_batch"):
        initial_states_from_trajectories(ens, inputs[0], 16, key=jax.random.key(8))
    with pytest.raises(ValueError, match="n_candidates"):
        initial_states_from_trajectories(ens, inputs, 0, key=jax.random.key(8))


# ---------------------------------------------------------------------------------------------------
# Cube analysis


def test_cube_analysis_of_diag_network(diag_result):
    ensemble, fp = diag_result
    per_member = cube_analysis(fp, ensemble)
    d0, d1 = per_member
    assert d0["n_stable"] == 8 and d0["n_saddles"] == {1: 12, 2: 6, 3: 1}
    assert d0["corners_recovered"] == 8 and d0["all_corners"] and d0["one_to_one"] and d0["perfect_cube"]
    # the stable points form a box with half-sides h_i*: disparity 1 - (Σh)² / (3 Σh²)
    expected = 1 - np.sum(H_STAR) ** 2 / (3 * np.sum(H_STAR**2))
    assert d0["cube_disparity"] == pytest.approx(expected, abs=1e-6)
    assert d1["n_fixed_points"] == 0 and d1["corners_recovered"] == 0 and not d1["all_corners"]
    assert math.isnan(d1["cube_disparity"])
    summary = ensemble_summary(per_member)
    assert summary["n_all_corners"] == 1 and summary["members_all_corners"] == [0]
    assert summary["mean_saddles_by_index"] == {1: 6.0, 2: 3.0, 3: 0.5}
    table = format_cube_table(per_member)
    assert len(table.splitlines()) == 4 and "8/8*" in table


def test_cube_corner_tolerance(diag_result):
    ensemble, fp = diag_result
    # with the readout scaled by 0.7, readouts sit 0.3 from the corners
    scaled = FixedPoints(**{**fp.__dict__, "outputs": 0.7 * fp.outputs})
    assert cube_analysis(scaled, ensemble, corner_tol=0.35)[0]["corners_recovered"] == 8
    assert cube_analysis(scaled, ensemble, corner_tol=0.25)[0]["corners_recovered"] == 0
    with pytest.raises(ValueError, match="corner_tol"):
        cube_analysis(fp, ensemble, corner_tol=1.5)
    with pytest.raises(ValueError, match="test_states"):
        cube_analysis(fp, ensemble, np.zeros((K, 10, N + 1)))


def test_procrustes_matches_scipy():
    scipy_spatial = pytest.importorskip("scipy.spatial")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
    assert procrustes_disparity(b, a) == pytest.approx(scipy_spatial.procrustes(a, b)[2], abs=1e-12)
    rot = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    assert procrustes_disparity(2.5 * a @ rot + 1.0, a) == pytest.approx(0.0, abs=1e-12)


def test_analyze_fixed_points_smoke():
    model = CTRNN(3, 6, 3, key=jax.random.key(10), alpha=0.5)
    ens = stack_members([model, model])
    config = FixedPointConfig(n_candidates=16, n_trials=1, restarts=0, adam_steps=20, newton_steps=3, seed=11)
    fp, per_member, summary = analyze_fixed_points(ens, config=config)
    assert fp.n_members == 2 and len(per_member) == 2 and summary["n_members"] == 2
    # an untrained orthogonal network at zero input has the origin as a fixed point
    assert np.any(np.all(np.abs(fp.member_points(0)) < 1e-5, axis=1))


# ---------------------------------------------------------------------------------------------------
# Gated cells: the search runs on the flat state through `step`

GATED = {"gru": GRU, "lstm": LSTM}
GN, GC = 3, 64  # units and candidates of the gated searches
RANDOM_MEMBER = {"gru": (21, 4.0), "lstm": (26, 2.5)}  # (seed, rec_scale): 9 points (indices 0-2); a saddle


def gated_network(cell, seed, rec_scale):
    """A GRU/LSTM (M inputs, GN units, 2 outputs) with N(0, 1) weights and biases, `W_rec` scaled."""
    shapes = eqx.filter_eval_shape(GATED[cell], M, GN, 2, key=jax.random.key(0))
    rng = np.random.default_rng(seed)
    model = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.standard_normal(a.shape), jnp.float32), shapes)
    return eqx.tree_at(lambda m: m.W_rec, model, rec_scale * model.W_rec)


def gated_analytic(model):
    """The unique fixed point at zero input of a cell with `W_rec = 0`, and its Jacobian's eigenvalues."""
    b = np.asarray(model.b, np.float64)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    if isinstance(model, GRU):  # F(h) = n + z ⊙ (h − n) with constant r, z, n: h* = n, J = diag(z)
        r, z = sig(b[:GN]), sig(b[GN : 2 * GN])
        return np.tanh(b[2 * GN :] + r * np.asarray(model.b_n, np.float64)), z
    i, f, g, o = sig(b[:GN]), sig(b[GN : 2 * GN]), np.tanh(b[2 * GN : 3 * GN]), sig(b[3 * GN :])
    c = i * g / (1 - f)  # c = f c + i g;  J = [[0, diag(o σ'(c) f)], [0, diag(f)]]: eigenvalues f and 0
    return np.concatenate([o * np.tanh(c), c]), np.concatenate([f, np.zeros(GN)])


@pytest.fixture(scope="module", params=["gru", "lstm"])
def gated_result(request):
    """Member 0: `W_rec = 0` (one fixed point, known); member 1: strong random recurrence."""
    ens = stack_members(
        [gated_network(request.param, 20, 0.0), gated_network(request.param, *RANDOM_MEMBER[request.param])]
    )
    inputs = np.random.default_rng(22).standard_normal((4, 20, M))
    states = initial_states_from_trajectories(ens, inputs, GC, key=jax.random.key(23), noise_std=0.2)
    return ens, inputs, states, find_fixed_points(ens, jnp.zeros(M), states, PLAIN)


def test_gated_known_fixed_point(gated_result):
    ens, _, _, fp = gated_result
    model = jax.tree_util.tree_map(lambda a: a[0], ens)
    point, lam = gated_analytic(model)
    sel = fp.select(0)
    assert sel.points.shape == (1, model.state_size)
    np.testing.assert_allclose(sel.points[0], point, atol=1e-5)
    np.testing.assert_allclose(sel.eigvals[0].real, -np.sort(-lam), atol=1e-5)
    np.testing.assert_allclose(sel.eigvals[0].imag, 0, atol=1e-6)
    assert sel.is_stable.all() and sel.is_stable_ct.all() and sel.n_unstable.tolist() == [0]
    h = point[:GN]
    np.testing.assert_allclose(sel.outputs[0], np.asarray(model.W_out) @ h + np.asarray(model.b_out), atol=1e-5)


def test_gated_points_are_fixed_and_linearized(gated_result):
    ens, _, _, fp = gated_result
    assert len(fp) >= 2 and fp.points.shape[1] == ens.state_size and np.any(fp.n_unstable > 0)
    for p in range(len(fp)):
        model = jax.tree_util.tree_map(lambda a: a[fp.member[p]], ens)
        s = jnp.asarray(fp.points[p])
        step = lambda s: model.step(s, jnp.zeros(M))  # noqa: E731
        assert float(jnp.max(jnp.abs(step(s) - s))) < 1e-5
        jac = np.asarray(jax.jacfwd(step)(s), np.float64)
        np.testing.assert_allclose(fp.jacobians[p], jac, atol=1e-5)
        expected = np.linalg.eigvals(jac)
        d = np.abs(fp.eigvals[p][:, None] - expected[None, :])
        assert d.min(axis=1).max() < 1e-4 and d.min(axis=0).max() < 1e-4
    modulus = np.abs(fp.eigvals)
    np.testing.assert_array_equal(fp.is_stable, np.all(modulus < 1, axis=1))
    # the saddle index counts |λ| > 1 + δ; eigenvalues within δ of the unit circle are marginal
    np.testing.assert_array_equal(fp.n_unstable, np.sum(modulus > 1 + fp.marginal_tol, axis=1))
    band = (modulus > 1 - fp.marginal_tol) & (modulus <= 1 + fp.marginal_tol)
    np.testing.assert_array_equal(fp.n_marginal, np.sum(band, axis=1))
    np.testing.assert_array_equal(fp.is_stable_ct, np.all(fp.eigvals.real < 1, axis=1))  # a = 1


def test_gated_initial_states_are_full_states(gated_result):
    ens, inputs, _, _ = gated_result
    h0 = initial_states_from_trajectories(ens, inputs, 16, key=jax.random.key(8))
    assert h0.shape == (K, 16, ens.state_size)
    for k in range(K):  # every candidate is a whole flat state (LSTM: [h, c]) of the member's own trajectories
        full = np.asarray(jax.tree_util.tree_map(lambda a: a[k], ens).full_states(inputs)).reshape(-1, ens.state_size)
        d = np.abs(np.asarray(h0[k])[:, None, :] - full[None]).max(axis=2)
        assert d.min(axis=1).max() < 1e-6


def test_gated_single_network_and_shapes(gated_result):
    ens, _, states, _ = gated_result
    single = jax.tree_util.tree_map(lambda a: a[0], ens)
    with pytest.raises(ValueError, match=rf"\(1, C, {ens.state_size}\)"):
        find_fixed_points(single, jnp.zeros(M), states)
    with pytest.raises(ValueError, match="initial_states"):
        find_fixed_points(ens, jnp.zeros(M), states[:, :, : GN - 1])


def test_gated_search_runs_at_highest_precision(gated_result):
    """Every matrix product of the compiled search (one `_search` for every cell), the cell's own
    included, is full float32 (GPUs would otherwise use TF32, and Newton could not reach `tol_q`): for
    the gated ensemble and for a CTRNN ensemble."""
    ens, _, states, _ = gated_result
    ctrnn = stack_members([contracting_network(1.0), contracting_network(0.3)])
    for e, h0 in ((ens, states[:, :4]), (ctrnn, uniform_states(jax.random.key(3))[:, :4])):
        args = (jnp.zeros((K, M)), h0, jnp.zeros((K, 4), jnp.int32), 0.1, 1e-3)
        text = str(jax.make_jaxpr(lambda e: _search(e, *args, adam_steps=3, newton_steps=2))(e))
        assert text.count("dot_general[") == text.count("precision=(Precision.HIGHEST, Precision.HIGHEST)") > 0
        # and the second Newton phase (`_polish`), on flat candidates of several members
        member = jnp.asarray([1, 0, 1, 1], jnp.int32)
        text = str(jax.make_jaxpr(lambda e: _polish(e, jnp.zeros((K, M)), member, h0[1], 2))(e))
        assert text.count("dot_general[") == text.count("precision=(Precision.HIGHEST, Precision.HIGHEST)") > 0


def test_two_phase_newton_matches_one_phase(monkeypatch):
    """The compacting Newton (`_newton_search`: `_NEWTON_FIRST` iterations on every candidate, the rest only
    on those still above `tol_q`) ends where running every iteration on every candidate does, within 1e-5,
    and finds the same fixed points; the second phase sees exactly the candidates above `tol_q`."""
    ens = stack_members([diag_network(), contracting_network(1.0)])
    h0 = uniform_states(jax.random.key(5), -2.0, 2.0)  # no Adam: many candidates need more than 4 iterations
    x, steps = jnp.zeros((K, M)), jnp.zeros((K, C), jnp.int32)
    tol_q = PLAIN.default_tol_q(N)
    first = fixed_points_module._NEWTON_FIRST
    h_first, q_first = (np.asarray(a) for a in _search(ens, x, h0, steps, 0.1, 1e-3, adam_steps=0, newton_steps=first))
    above = q_first > tol_q
    assert 0 < above.sum() < above.size and above[0].sum() != above[1].sum()  # both phases do work

    seen = []

    def spy(ensemble, inputs, member, h, newton_steps):
        seen.append((np.asarray(member), np.asarray(h), int(newton_steps)))
        return _polish(ensemble, inputs, member, h, newton_steps)

    monkeypatch.setattr(fixed_points_module, "_polish", spy)
    h2, q2 = _newton_search(ens, x, h0, steps, 0.1, 1e-3, adam_steps=0, newton_steps=first + 4, tol_q=tol_q)
    ((member, hp, rest),) = seen
    n = int(above.sum())
    assert rest == 4 and len(member) == fixed_points_module._POLISH_BATCH > n  # one shape: padded
    kk, cc = np.nonzero(above)
    np.testing.assert_array_equal(member[:n], kk)  # only the unconverged ones, with their members
    np.testing.assert_array_equal(hp[:n], h_first[kk, cc])

    h1, q1 = _search(ens, x, h0, steps, 0.1, 1e-3, adam_steps=0, newton_steps=first + 4)  # one phase
    h1, q1 = np.asarray(h1), np.asarray(q1)
    np.testing.assert_array_equal(q1 <= tol_q, q2 <= tol_q)
    np.testing.assert_allclose(h2, h1, atol=1e-5)
    np.testing.assert_array_equal(h2[~above], h_first[~above])  # the converged ones keep their places

    # the same distinct fixed points (as `_find` merges them) per member
    for k in range(K):
        a, b = (h[k][q[k] <= tol_q] for h, q in ((h1, q1), (h2, q2)))
        a, b = (p[fixed_points_module._dedup(p, np.zeros(len(p)), PLAIN.dedup_tol)] for p in (a, b))
        assert len(a) == len(b) > 0
        assert np.all(match(b, a, atol=1e-5) >= 0)
