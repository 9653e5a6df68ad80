"""The UGRNN (Collins, Sohl-Dickstein & Sussillo 2017) against a NumPy reference of its equations, an
analytic fixed point, and the trainer, run folder and fixed-point finder it shares with the other cells."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctrnn_jax import (
    UGRNN,
    EnsembleConfig,
    EnsembleTrainer,
    FixedPointConfig,
    FlipFlopConfig,
    TrainConfig,
    find_fixed_points,
    initial_states_from_trajectories,
    load_npz,
    make_ensemble,
    save_npz,
)

M, N, OUT, T = 2, 4, 3, 10


def random_ugrnn(seed, *, rec_scale=0.7, activation="tanh"):
    """A UGRNN with every array drawn from N(0, 0.7²) (biases included), `W_rec` scaled by `rec_scale`."""
    shapes = eqx.filter_eval_shape(UGRNN, M, N, OUT, key=jax.random.key(0), activation=activation)
    rng = np.random.default_rng(seed)
    model = jax.tree_util.tree_map(lambda a: jnp.asarray(0.7 * rng.standard_normal(a.shape), jnp.float32), shapes)
    return eqx.tree_at(lambda m: m.W_rec, model, model.W_rec * rec_scale / 0.7)


def reference_step(model, h, x):
    """The paper's equations in float64 NumPy: g = sigmoid(.), c = tanh(.), h' = g h + (1 − g) c."""
    W_rec, W_in, b = (np.asarray(a, np.float64) for a in (model.W_rec, model.W_in, model.b))
    pre = W_in @ x + W_rec @ h + b
    g = 1 / (1 + np.exp(-pre[:N]))
    c = np.tanh(pre[N:])
    return g * h + (1 - g) * c


def test_fields_and_initialization(getkey):
    model = UGRNN(M, N, OUT, key=getkey())
    assert model.cell == "ugrnn" and model.state_size == N
    assert model.W_rec.shape == (2 * N, N) and model.W_in.shape == (2 * N, M) and model.b.shape == (2 * N,)
    assert model.W_out.shape == (OUT, N) and model.b_out.shape == (OUT,)
    np.testing.assert_allclose(model.W_rec.T @ model.W_rec, np.eye(N), atol=1e-5)
    np.testing.assert_array_equal(model.b, np.r_[np.ones(N), np.zeros(N)])  # gate bias 1 (TF forget_bias)


def test_states_match_reference_equations():
    model = random_ugrnn(0)
    x = np.random.default_rng(1).standard_normal((T, M))
    h, ref = np.zeros(N), []
    for t in range(T):
        h = reference_step(model, h, x[t])
        ref.append(h)
    ref = np.stack(ref)
    np.testing.assert_allclose(model.states(jnp.asarray(x, jnp.float32)), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        model(jnp.asarray(x, jnp.float32)),
        ref @ np.asarray(model.W_out, np.float64).T + np.asarray(model.b_out),
        atol=1e-5,
    )
    s = jnp.asarray(ref[3], jnp.float32)
    np.testing.assert_allclose(model.step(s, jnp.asarray(x[4], jnp.float32)), ref[4], rtol=1e-5, atol=1e-5)


def test_analytic_fixed_point_found():
    """With `W_rec = 0` at zero input, `h* = tanh(b_c)` whatever the gate, and `J = diag(sigmoid(b_g))`."""
    models = [eqx.tree_at(lambda m: m.W_rec, random_ugrnn(s), jnp.zeros((2 * N, N))) for s in (2, 3)]
    ens = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *models)
    inputs = np.random.default_rng(4).standard_normal((2, 15, M))
    h0 = initial_states_from_trajectories(ens, inputs, 16, key=jax.random.key(5), noise_std=0.3)
    fp = find_fixed_points(ens, jnp.zeros(M), h0, FixedPointConfig(restarts=0, complete=False, eigvecs=True))
    for k, model in enumerate(models):
        sel = fp.select(k)
        b = np.asarray(model.b, np.float64)
        assert sel.points.shape == (1, N) and sel.is_stable.all()
        np.testing.assert_allclose(sel.points[0], np.tanh(b[N:]), atol=1e-5)
        np.testing.assert_allclose(np.sort(sel.eigvals[0].real), np.sort(1 / (1 + np.exp(-b[:N]))), atol=1e-5)


def test_trains_and_round_trips(tmp_path, tree_allclose):
    task = FlipFlopConfig(length=30, first_onset=(1, 5), gaps=(5, 5), gap_jitter=3, width=3, delay=2)
    ens = EnsembleConfig(members=2, units=8, cell="ugrnn")
    trainer = EnsembleTrainer(ens, TrainConfig(steps=30, batch_size=8, steps_per_call=30, learning_rate=2e-2), task)
    state, losses = trainer.run_steps(trainer.init(), 30)
    losses = np.asarray(losses)
    assert isinstance(state.model, UGRNN)
    assert np.all(np.isfinite(losses)) and np.all(losses[-5:].mean(axis=0) < losses[:5].mean(axis=0))
    save_npz(state.model, tmp_path / "ensemble.npz")
    assert tree_allclose(load_npz(tmp_path / "ensemble.npz"), state.model, exact=True)
    assert isinstance(make_ensemble(ens, key=jax.random.key(0)), UGRNN)


def test_bad_arguments(getkey):
    with pytest.raises(ValueError, match="n_units"):
        UGRNN(M, 0, OUT, key=getkey())
    with pytest.raises(ValueError, match="activation"):
        UGRNN(M, N, OUT, key=getkey(), activation="foo")
    with pytest.raises(ValueError, match="state"):
        UGRNN(M, N, OUT, key=getkey()).step(jnp.zeros(N + 1), jnp.zeros(M))
