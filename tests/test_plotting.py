from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ctrnn_jax
import ctrnn_jax.analysis as plotting

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T, N = 40, 6


def check_written(paths, stem):
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stem == stem.name for p in paths)
    for p in paths:
        assert p.is_file() and p.stat().st_size > 0
    assert paths[0].read_bytes()[:8] == PNG_MAGIC
    assert paths[1].read_bytes()[:5] == b"%PDF-"


@pytest.fixture(scope="module")
def fixed_points():
    """W_rec = diag(1.5, 2, 0, 0), a = 1, no input or bias: 9 fixed points (4 stable, 4 index-1 saddles,
    1 index-2 saddle at the origin), with eigenvectors."""
    model = ctrnn_jax.CTRNN(3, 4, 3, key=jax.random.key(0), alpha=1.0)
    model = eqx.tree_at(lambda m: (m.W_rec, m.W_in, m.b), model,
                        (jnp.diag(jnp.asarray([1.5, 2.0, 0.0, 0.0])), jnp.zeros((4, 3)), jnp.zeros(4)))
    grid = np.stack(np.meshgrid(*[np.linspace(-1.0, 1.0, 5)] * 2, indexing="ij"), axis=-1).reshape(-1, 2)
    h0 = np.concatenate([grid, np.zeros((25, 2))], axis=1)[None].astype(np.float32)
    fp = ctrnn_jax.find_fixed_points(model, jnp.zeros(3), jnp.asarray(h0), eigvecs=True)
    assert len(fp) == 9
    return fp


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def flipflop_targets():
    """(T, 3) targets with a few steps at 0 and several sign patterns."""
    t = np.arange(T)
    targets = np.stack([np.sign(np.sin(t / 3.0)), np.sign(np.cos(t / 5.0)), np.sign(np.sin(t / 7.0 + 0.5))], 1)
    targets[:3] = 0.0
    return targets


def test_task_samples(tmp_path, rng):
    paths = plotting.plot_task_samples(rng.normal(size=(4, T, 3)), rng.normal(size=(4, T, 3)), tmp_path / "task")
    check_written(paths, tmp_path / "task")
    with pytest.raises(ValueError, match="`inputs`"):
        plotting.plot_task_samples(rng.normal(size=(T, 3)), rng.normal(size=(4, T, 3)), tmp_path / "bad")
    with pytest.raises(ValueError, match="`targets`"):
        plotting.plot_task_samples(rng.normal(size=(4, T, 3)), rng.normal(size=(4, T + 1, 3)), tmp_path / "bad")


def test_connectivity_and_no_mutation(tmp_path, rng):
    W = rng.normal(size=(N, N)).astype(np.float32)
    before = W.copy()
    paths = plotting.plot_connectivity(W, tmp_path / "conn.png")  # a .png suffix is accepted
    check_written(paths, tmp_path / "conn")
    np.testing.assert_array_equal(W, before)
    plotting.plot_connectivity(jnp.asarray(W), tmp_path / "conn_jax")  # jax arrays work too
    with pytest.raises(ValueError, match="`W_rec`"):
        plotting.plot_connectivity(rng.normal(size=(N, N + 1)), tmp_path / "bad")


def test_eigenvalues(tmp_path, rng):
    W, W0 = rng.normal(size=(N, N)), rng.normal(size=(N, N))
    check_written(plotting.plot_eigenvalues(W, tmp_path / "eig"), tmp_path / "eig")
    check_written(plotting.plot_eigenvalues(W, tmp_path / "eig2", W_rec_initial=W0), tmp_path / "eig2")
    with pytest.raises(ValueError, match="`W_rec`"):
        plotting.plot_eigenvalues(rng.normal(size=(N,)), tmp_path / "bad")
    with pytest.raises(ValueError, match="`W_rec_initial`"):
        plotting.plot_eigenvalues(W, tmp_path / "bad", W_rec_initial=rng.normal(size=(N + 1, N + 1)))


def test_spectra_grid(tmp_path, rng):
    paths = plotting.plot_spectra_grid(rng.normal(size=(5, N, N)), tmp_path / "grid", max_members=4)
    check_written(paths, tmp_path / "grid")
    with pytest.raises(ValueError, match="`W_recs`"):
        plotting.plot_spectra_grid(rng.normal(size=(N, N)), tmp_path / "bad")


def test_test_set(tmp_path, rng):
    x, y = rng.normal(size=(T, 3)), rng.normal(size=(T, 3))
    check_written(plotting.plot_test_set(x, y, flipflop_targets(), tmp_path / "test"), tmp_path / "test")
    with pytest.raises(ValueError, match="`outputs`"):
        plotting.plot_test_set(x, y[:-1], flipflop_targets(), tmp_path / "bad")


def test_state_space(tmp_path, rng, fixed_points):
    states = rng.normal(size=(T, 4))
    W_out = rng.normal(size=(3, 4))
    paths = plotting.plot_state_space(states, flipflop_targets(), tmp_path / "ss", fixed_points=fixed_points.select(0),
                                      W_out=W_out)
    check_written(paths, tmp_path / "ss")
    with pytest.raises(ValueError, match="`states`"):
        plotting.plot_state_space(states[:-1], flipflop_targets(), tmp_path / "bad")
    with pytest.raises(ValueError, match="`fixed_points`"):
        plotting.plot_state_space(rng.normal(size=(T, 5)), flipflop_targets(), tmp_path / "bad",
                                  fixed_points=fixed_points)


def test_state_space_without_eigvecs(tmp_path, rng, fixed_points):
    import dataclasses

    fp = dataclasses.replace(fixed_points, eigvecs=None)
    paths = plotting.plot_state_space(rng.normal(size=(T, 4)), flipflop_targets(), tmp_path / "ss", fixed_points=fp)
    check_written(paths, tmp_path / "ss")


def test_realizations(tmp_path, rng, fixed_points):
    states = [rng.normal(size=(T, 4)), rng.normal(size=(T, 4)), rng.normal(size=(T, 4))]
    paths = plotting.plot_realizations(states, flipflop_targets(), tmp_path / "real",
                                       fixed_points_list=[fixed_points, None, fixed_points], max_members=2)
    check_written(paths, tmp_path / "real")
    with pytest.raises(ValueError, match=r"`states_list\[1\]`"):
        plotting.plot_realizations([states[0], states[1][:-2]], flipflop_targets(), tmp_path / "bad")
    with pytest.raises(ValueError, match="`fixed_points_list`"):
        plotting.plot_realizations(states, flipflop_targets(), tmp_path / "bad", fixed_points_list=[fixed_points])


def test_training_curves(tmp_path, rng):
    losses = np.exp(-np.linspace(0, 3, 20))[:, None] * rng.uniform(0.5, 1.5, (20, 3))
    losses[15:, 1] = np.nan  # a member that stopped logging
    check_written(plotting.plot_training_curves(losses, tmp_path / "loss"), tmp_path / "loss")
    with pytest.raises(ValueError, match="`losses`"):
        plotting.plot_training_curves(losses[:, 0], tmp_path / "bad")
    with pytest.raises(ValueError, match="`steps`"):
        plotting.plot_training_curves(losses, tmp_path / "bad", steps=np.arange(5))


def test_fixed_point_spectra(tmp_path, fixed_points):
    paths = plotting.plot_fixed_point_spectra(fixed_points.select(0), tmp_path / "fps")
    check_written(paths, tmp_path / "fps")
    with pytest.raises(ValueError, match="`fixed_points`"):
        plotting.plot_fixed_point_spectra(np.zeros((3, 4)), tmp_path / "bad")


def test_ensemble_overview(tmp_path, rng):
    mse = np.asarray([0.01, 0.015, 0.9, 0.012])
    paths = plotting.plot_ensemble_overview(mse, np.asarray([8, 9, 1, 8]), np.asarray([0.01, 0.002, np.nan, 0.05]),
                                            np.asarray([3, 4, 10, 3]), tmp_path / "overview")
    check_written(paths, tmp_path / "overview")
    with pytest.raises(ValueError, match="`n_stable`"):
        plotting.plot_ensemble_overview(mse, np.zeros(3), mse, mse, tmp_path / "bad")
    with pytest.raises(ValueError, match="`test_mse`"):
        plotting.plot_ensemble_overview(mse[:, None], mse, mse, mse, tmp_path / "bad")


def test_pca_projection(rng):
    # Anisotropic Gaussian cloud along a known rotated axis set: variances 25, 4, 1, 0.01, 0.01.
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    x = (rng.normal(size=(2000, 5)) * np.asarray([5.0, 2.0, 1.0, 0.1, 0.1])) @ q.T + 3.0
    mean, comps = plotting.pca_projection(x, d=3)
    assert mean.shape == (5,) and comps.shape == (3, 5)
    np.testing.assert_allclose(comps @ comps.T, np.eye(3), atol=1e-10)
    np.testing.assert_allclose(mean, x.mean(axis=0))
    var = np.var((x - mean) @ comps.T, axis=0)
    assert var[0] > var[1] > var[2]
    assert abs(comps[0] @ q[:, 0]) > 0.99  # the known principal axis, up to sign
    with pytest.raises(ValueError, match="`d`"):
        plotting.pca_projection(x, d=6)
    with pytest.raises(ValueError, match="`states`"):
        plotting.pca_projection(x[0])


def test_robustness_and_similarity_figures(tmp_path):
    rng = np.random.default_rng(0)
    sweep = {"noise_levels": np.array([0.0, 0.5, 1.0]), "noise_mse": rng.uniform(0.01, 1, (3, 4)),
             "noise_success_rate": np.array([1.0, 0.5, 0.0]), "amplitude_scales": np.array([0.5, 1.0]),
             "amplitude_mse": rng.uniform(0.01, 1, (2, 4)), "amplitude_success_rate": np.array([0.0, 1.0])}
    for p in plotting.plot_robustness(sweep, tmp_path / "robust"):
        assert Path(p).stat().st_size > 0
    m = rng.uniform(size=(4, 4))
    for p in plotting.plot_similarity_matrices(m, m, tmp_path / "sim"):
        assert Path(p).stat().st_size > 0
    with pytest.raises(ValueError, match="noise_mse"):
        plotting.plot_robustness({**sweep, "noise_mse": np.zeros((2, 4))}, tmp_path / "bad")
    with pytest.raises(ValueError, match="procrustes"):
        plotting.plot_similarity_matrices(np.zeros((3, 4)), m, tmp_path / "bad")
