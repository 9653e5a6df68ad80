"""GRU and LSTM against equinox's cells, and the CTRNN interface they share."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctrnn_jax.models._gated import GRU, LSTM

M, N, OUT, T, B = 2, 4, 3, 12, 3
CELLS = {"gru": GRU, "lstm": LSTM}


def normal(seed, *shape, scale=1.0):
    """Gaussian float32 test data from NumPy (no JAX random kernels to compile for every shape)."""
    return jnp.asarray(scale * np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def make(cell, seed, activation="tanh"):
    """A model with every array drawn from N(0, 0.7²) (non-zero biases included)."""
    shapes = eqx.filter_eval_shape(CELLS[cell], M, N, OUT, key=jax.random.key(0), activation=activation)
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda a: jnp.asarray(0.7 * rng.standard_normal(a.shape), jnp.float32), shapes)


def equinox_cell(model):
    """The `eqx.nn.GRUCell` / `eqx.nn.LSTMCell` with the weights of `model`."""
    if isinstance(model, GRU):
        ref = eqx.filter_eval_shape(eqx.nn.GRUCell, M, N, key=jax.random.key(0))
        return eqx.tree_at(
            lambda c: (c.weight_ih, c.weight_hh, c.bias, c.bias_n), ref, (model.W_in, model.W_rec, model.b, model.b_n)
        )
    ref = eqx.filter_eval_shape(eqx.nn.LSTMCell, M, N, key=jax.random.key(0))
    return eqx.tree_at(lambda c: (c.weight_ih, c.weight_hh, c.bias), ref, (model.W_in, model.W_rec, model.b))


def mse(model, x, y, backprop="autodiff"):
    return jnp.mean((model(x, backprop=backprop) - y) ** 2)


grad_of = eqx.filter_jit(jax.grad(mse))  # shared by the tests: one compile per cell and backprop


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_fields_and_initialization(cell, getkey):
    model = CELLS[cell](M, N, OUT, key=getkey())
    g = {"gru": 3, "lstm": 4}[cell]
    assert model.cell == cell and (model.n_inputs, model.n_units, model.n_outputs) == (M, N, OUT)
    assert model.state_size == N * (2 if cell == "lstm" else 1)
    assert model.W_rec.shape == (g * N, N) and model.W_in.shape == (g * N, M) and model.b.shape == (g * N,)
    assert model.W_out.shape == (OUT, N) and model.b_out.shape == (OUT,)
    assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(model))
    np.testing.assert_allclose(model.W_rec.T @ model.W_rec, np.eye(N), atol=1e-5)  # Keras' orthogonal
    expected_b = np.zeros(g * N)
    if cell == "lstm":
        expected_b[N : 2 * N] = 1.0  # unit forget bias
    else:
        np.testing.assert_array_equal(model.b_n, np.zeros(N))
    np.testing.assert_array_equal(model.b, expected_b)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_states_match_equinox_cell(cell):
    model = make(cell, 0)
    x = normal(1, T, M)
    ref, state = equinox_cell(model), (jnp.zeros(N) if cell == "gru" else (jnp.zeros(N), jnp.zeros(N)))
    hs, full = [], []
    for t in range(T):
        state = ref(x[t], state)
        hs.append(state if cell == "gru" else state[0])
        full.append(state if cell == "gru" else jnp.concatenate(state))
    np.testing.assert_allclose(model.states(x), jnp.stack(hs), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.full_states(x), jnp.stack(full), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model(x), jnp.stack(hs) @ model.W_out.T + model.b_out[None], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.readout(model.states(x)), model(x), rtol=1e-6, atol=1e-6)


def test_activation_replaces_tanh():
    """With `activation="linear"`, the LSTM's `h = o ⊙ c` (textbook equations with σ = identity)."""
    model = make("lstm", 2, activation="linear")
    x, s = normal(3, M), normal(4, 2 * N)
    pre = np.asarray(model.W_in @ x + model.W_rec @ s[:N] + model.b, np.float64)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, f, g, o = np.split(pre, 4)
    c = sig(f) * np.asarray(s[N:]) + sig(i) * g
    np.testing.assert_allclose(model.step(s, x), np.concatenate([sig(o) * c, c]), rtol=1e-5, atol=1e-6)


def test_batch_equals_trial_by_trial(getkey):
    """(The time loop, noise and `h0` handling are shared by both cells: the LSTM, whose state is `[h, c]`.)"""
    model = make("lstm", 5)
    x = normal(6, B, T, M)
    s0 = normal(7, B, model.state_size, scale=0.5)
    key = getkey()
    keys = jax.random.split(key, B)
    batch = model.states(x, h0=s0, key=key, noise_std=0.2)
    assert batch.shape == (B, T, N)
    for i in range(B):
        np.testing.assert_allclose(
            batch[i], model.states(x[i], h0=s0[i], key=keys[i], noise_std=0.2), rtol=1e-5, atol=1e-6
        )
    # the same key gives the same noise; noise changes the states
    np.testing.assert_array_equal(batch, model.states(x, h0=s0, key=key, noise_std=0.2))
    assert not np.allclose(batch, model.states(x, h0=s0))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_step_reproduces_states_at_constant_input(cell):
    model = make(cell, 8)
    x = normal(9, M)
    s, full = jnp.zeros(model.state_size), []
    for _ in range(T):
        s = model.step(s, x)
        full.append(s)
    full = jnp.stack(full)
    np.testing.assert_allclose(model.full_states(jnp.tile(x[None], (T, 1))), full, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.hidden(full), full[:, :N])


def test_backprop_variants_agree():
    """(For the LSTM, `test_grad_through_stacked_members` compares "custom" = "checkpoint" with "autodiff".)"""
    model = make("gru", 10)
    x, y = normal(11, B, T, M), normal(12, B, T, OUT)
    ref = grad_of(model, x, y)
    assert eqx.tree_equal(grad_of(model, x, y, "checkpoint"), ref, rtol=1e-5, atol=1e-6)
    assert all(float(jnp.max(jnp.abs(g))) > 0 for g in jax.tree_util.tree_leaves(ref))
    # "custom" (the CTRNN's hand-written VJP) is "checkpoint" for gated cells: the same program
    jaxpr = lambda backprop: str(jax.make_jaxpr(jax.grad(mse), static_argnums=3)(model, x, y, backprop))  # noqa: E731
    assert jaxpr("custom") == jaxpr("checkpoint") != jaxpr("autodiff")
    np.testing.assert_allclose(model(x, precision="highest"), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_grad_through_stacked_members(cell, getkey):
    keys = jax.random.split(getkey(), 2)
    ensemble = eqx.filter_vmap(lambda k: CELLS[cell](M, N, OUT, key=k))(keys)
    assert ensemble.W_rec.shape[0] == 2 and ensemble.cell == cell
    x, y = normal(13, B, T, M), normal(14, B, T, OUT)

    @jax.jit
    def loss(ens):
        outs = eqx.filter_vmap(lambda m: m(x, backprop="custom"))(ens)  # (K, B, T, O), checkpointed
        return jnp.sum(jnp.mean((outs - y[None]) ** 2, axis=(1, 2, 3)))  # members' losses, summed

    grads = jax.grad(loss)(ensemble)
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(ensemble)
    for g in jax.tree_util.tree_leaves(grads):  # every array is trained, in every member
        assert np.all(np.isfinite(g)) and np.all(np.max(np.abs(g.reshape(2, -1)), axis=1) > 0)
    single = grad_of(jax.tree_util.tree_map(lambda a: a[1], ensemble), x, y)  # plain autodiff
    assert eqx.tree_equal(jax.tree_util.tree_map(lambda a: a[1], grads), single, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_bad_arguments(cell, getkey):
    cls = CELLS[cell]
    with pytest.raises(ValueError, match="n_units"):
        cls(M, 0, OUT, key=getkey())
    with pytest.raises(TypeError, match="n_inputs"):
        cls(1.5, N, OUT, key=getkey())
    with pytest.raises(ValueError, match="activation"):
        cls(M, N, OUT, key=getkey(), activation="foo")
    model = cls(M, N, OUT, key=getkey())
    x = jnp.zeros((T, M))
    with pytest.raises(ValueError, match="backprop"):
        model.states(x, backprop="foo")
    with pytest.raises(ValueError, match="precision"):
        model(x, precision="low")
    with pytest.raises(ValueError, match="inputs"):
        model.states(jnp.zeros((T, M + 1)))
    with pytest.raises(ValueError, match="h0"):
        model.states(x, h0=jnp.zeros(model.state_size + 1))
    with pytest.raises(ValueError, match="key"):
        model.states(x, noise_std=0.1)
    with pytest.raises(ValueError, match="state"):
        model.step(jnp.zeros(N + model.state_size), jnp.zeros(M))
