import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from ctrnn_jax import CTRNN, EnsembleConfig, ensemble_outputs, evaluate, get_member, make_ensemble

NUMPY_ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda u: np.maximum(u, 0.0),
    "softplus": lambda u: np.logaddexp(0.0, u),
    "sigmoid": lambda u: 1.0 / (1.0 + np.exp(-u)),
    "linear": lambda u: u,
}


def random_model(key, *, m=3, n=5, o=2, alpha=1.0, activation="tanh", dtype=jnp.float32):
    """A CTRNN whose every array (biases too) is random."""
    k_model, k_rec, k_b, k_bout = jax.random.split(key, 4)
    model = CTRNN(m, n, o, key=k_model, alpha=alpha, activation=activation)
    model = eqx.tree_at(
        lambda mod: (mod.W_rec, mod.b, mod.b_out),
        model,
        (
            0.9 * jax.random.normal(k_rec, (n, n)) / np.sqrt(n),
            0.3 * jax.random.normal(k_b, (n,)),
            0.3 * jax.random.normal(k_bout, (o,)),
        ),
    )
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), model)


def numpy_forward(model, inputs, h0=None):
    """Euler loop in NumPy (float64): states `(T, N)` and outputs `(T, O)`."""
    W_rec, W_in, b, W_out, b_out, a = (
        np.asarray(x, np.float64) for x in (model.W_rec, model.W_in, model.b, model.W_out, model.b_out, model.alpha)
    )
    sigma = NUMPY_ACTIVATIONS[model.activation]
    h = np.zeros(W_rec.shape[0]) if h0 is None else np.asarray(h0, np.float64)
    hs = []
    for x in np.asarray(inputs, np.float64):
        h = (1 - a) * h + a * sigma(W_rec @ h + W_in @ x + b)
        hs.append(h)
    hs = np.stack(hs)
    return hs, hs @ W_out.T + b_out


def keras_simplernn_forward(model, inputs):
    """Keras `SimpleRNN(return_sequences=True)` then `Dense`: h_t = σ(x_t K + h_{t-1} R + b), z = h V + c,
    with Keras' `(in, out)` kernels K = W_in.T, R = W_rec.T, V = W_out.T."""
    K, R, b, V, c = (
        np.asarray(x, np.float64) for x in (model.W_in.T, model.W_rec.T, model.b, model.W_out.T, model.b_out)
    )
    sigma = NUMPY_ACTIVATIONS[model.activation]
    h = np.zeros(R.shape[0])
    hs = []
    for x in np.asarray(inputs, np.float64):
        h = sigma(x @ K + h @ R + b)
        hs.append(h)
    hs = np.stack(hs)
    return hs, hs @ V + c


@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus", "sigmoid", "linear"])
def test_alpha_one_is_keras_simplernn(activation, getkey):
    model = random_model(getkey(), activation=activation)
    inputs = jax.random.normal(getkey(), (12, 3))
    hs, zs = keras_simplernn_forward(model, inputs)
    np.testing.assert_allclose(model.states(inputs), hs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model(inputs), zs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus", "sigmoid", "linear"])
def test_alpha_below_one_is_euler_loop(activation, getkey):
    model = random_model(getkey(), alpha=0.3, activation=activation)
    inputs = jax.random.normal(getkey(), (12, 3))
    h0 = jax.random.normal(getkey(), (5,))
    hs, zs = numpy_forward(model, inputs, h0)
    np.testing.assert_allclose(model.states(inputs, h0=h0), hs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model(inputs, h0=h0), zs, rtol=1e-5, atol=1e-5)


def test_step_is_one_euler_step(getkey):
    model = random_model(getkey(), alpha=0.4)
    h, x = jax.random.normal(getkey(), (5,)), jax.random.normal(getkey(), (3,))
    expected, _ = numpy_forward(model, x[None], h)
    np.testing.assert_allclose(model.step(h, x), expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.states(x[None], h0=h)[0], model.step(h, x), rtol=1e-6, atol=1e-7)


def test_unroll_does_not_change_result(getkey):
    model = random_model(getkey(), alpha=0.5)
    inputs = jax.random.normal(getkey(), (10, 3))
    expected = model(inputs)
    for unroll in (2, 3, 10):
        np.testing.assert_allclose(model(inputs, unroll=unroll), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_bptt_gradient_matches_finite_differences(alpha, getkey):
    with jax.enable_x64(True):
        model = random_model(getkey(), m=2, n=3, o=2, alpha=alpha, dtype=jnp.float64)
        inputs = jax.random.normal(getkey(), (6, 2), jnp.float64)
        targets = jax.random.normal(getkey(), (6, 2), jnp.float64)
        trained = lambda m: (m.W_rec, m.W_in, m.b, m.W_out, m.b_out)  # noqa: E731

        @jax.jit
        def loss(params):
            return jnp.mean((eqx.tree_at(trained, model, params)(inputs) - targets) ** 2)

        params = trained(model)
        grads = jax.grad(loss)(params)
        flat, unflatten = jax.flatten_util.ravel_pytree(params)
        assert flat.dtype == jnp.float64 and flat.size == 3 * 3 + 3 * 2 + 3 + 2 * 3 + 2
        eps = 1e-6
        fd = np.array(
            [
                (loss(unflatten(flat.at[i].add(eps))) - loss(unflatten(flat.at[i].add(-eps)))) / (2 * eps)
                for i in range(flat.size)
            ]
        )
        analytic = np.asarray(jax.flatten_util.ravel_pytree(grads)[0])
    assert np.max(np.abs(analytic)) > 1e-3
    np.testing.assert_allclose(analytic, fd, rtol=1e-6, atol=1e-9)


def linear_open_loop(key, alpha):
    """Linear activation, W_rec = 0: noise-free h[t+1] = (1-a) h[t] + a (W_in x + b)."""
    model = CTRNN(2, 50, 1, key=key, alpha=alpha, activation="linear")
    return eqx.tree_at(lambda m: m.W_rec, model, jnp.zeros((50, 50)))


def test_recurrent_noise_is_added_after_the_update(getkey):
    model = linear_open_loop(getkey(), alpha=1.0)
    inputs = jax.random.normal(getkey(), (400, 2))
    key = getkey()
    clean = model.states(inputs)
    eps = model.states(inputs, key=key, noise_std=0.3) - clean
    # With W_rec = 0 and a = 1 the noise of one step cannot carry over to the next: h[t+1] - clean = eps[t].
    z = np.asarray(eps, np.float64).ravel() / 0.3
    assert abs(z.mean()) < 0.03
    assert abs(z.std() - 1.0) < 0.03
    lag_corr = np.corrcoef(np.asarray(eps[1:]).ravel(), np.asarray(eps[:-1]).ravel())[0, 1]
    assert abs(lag_corr) < 0.03


def test_recurrent_noise_is_leaky_integrated(getkey):
    model = linear_open_loop(getkey(), alpha=0.5)
    inputs = jax.random.normal(getkey(), (400, 2))
    diff = np.asarray(model.states(inputs, key=getkey(), noise_std=0.2) - model.states(inputs), np.float64)
    # diff[t+1] = (1 - a) diff[t] + eps[t], diff[0] = eps[0]
    eps = np.concatenate([diff[:1], diff[1:] - 0.5 * diff[:-1]])
    assert abs(eps.std() / 0.2 - 1.0) < 0.03
    assert abs(np.corrcoef(eps[1:].ravel(), eps[:-1].ravel())[0, 1]) < 0.03


def test_recurrent_noise_scales_and_is_reproducible(getkey):
    model = linear_open_loop(getkey(), alpha=0.5)
    inputs = jax.random.normal(getkey(), (30, 2))
    key = getkey()
    clean = model.states(inputs)
    d1 = model.states(inputs, key=key, noise_std=0.1) - clean
    d2 = model.states(inputs, key=key, noise_std=0.2) - clean
    np.testing.assert_allclose(d2, 2 * d1, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(
        model.states(inputs, key=key, noise_std=0.1), model.states(inputs, key=key, noise_std=0.1)
    )
    assert not np.allclose(model.states(inputs, key=getkey(), noise_std=0.1), clean + d1)
    np.testing.assert_array_equal(model.states(inputs, key=key, noise_std=0.0), clean)


def test_ensemble_members_are_single_networks(getkey):
    config = EnsembleConfig(members=3, units=5, inputs=3, outputs=3, alpha=(1.0, 0.5, 0.2), gain=(1.0, 0.5, 2.0))
    key = getkey()
    ensemble = make_ensemble(config, key=key)
    assert ensemble.W_rec.shape == (3, 5, 5) and ensemble.W_out.shape == (3, 3, 5)
    for k, key_k in enumerate(jax.random.split(key, 3)):
        single = CTRNN(3, 5, 3, key=key_k, alpha=config.alphas()[k], gain=config.gains()[k])
        member = get_member(ensemble, k)
        for name in ("W_rec", "W_in", "b", "W_out", "b_out", "alpha"):
            np.testing.assert_allclose(getattr(member, name), getattr(single, name), rtol=1e-6, atol=1e-7)
        # orthogonal initialization scaled by the gain
        np.testing.assert_allclose(member.W_rec.T @ member.W_rec, config.gains()[k] ** 2 * np.eye(5), atol=1e-5)


def test_ensemble_outputs_are_each_members_outputs(getkey):
    ensemble = make_ensemble(EnsembleConfig(members=3, units=5, alpha=(1.0, 0.5, 0.2)), key=getkey())
    inputs = jax.random.normal(getkey(), (3, 7, 3))
    outputs = ensemble_outputs(ensemble, inputs)
    assert outputs.shape == (3, 3, 7, 3)
    for k in range(3):
        for b in range(3):
            _, zs = numpy_forward(get_member(ensemble, k), inputs[b])
            np.testing.assert_allclose(outputs[k, b], zs, rtol=1e-5, atol=1e-5)


def test_evaluate_metrics(getkey):
    ensemble = make_ensemble(EnsembleConfig(members=3, units=5, alpha=(1.0, 0.5, 0.2)), key=getkey())
    inputs = jax.random.normal(getkey(), (3, 7, 3))
    outputs = np.asarray(ensemble_outputs(ensemble, inputs), np.float64)
    targets = outputs[0] + 0.01  # member 0 is off by 0.01 everywhere
    metrics = evaluate(ensemble, inputs, targets, threshold=0.02)
    np.testing.assert_allclose(metrics["mse"][0], 1e-4, rtol=1e-3)
    np.testing.assert_allclose(metrics["mse"][1], np.mean((outputs[1] - targets) ** 2), rtol=1e-5)
    np.testing.assert_allclose(metrics["norm"], np.sqrt(metrics["mse"] * 3 * 7 * 3), rtol=1e-6)
    assert metrics["success"][0] and metrics["success"][1] == (metrics["mse"][1] < 0.02)
    # a mask keeps only its entries: the error on the masked-out steps does not count
    bad = targets.copy()
    bad[:, :2] += 5.0  # far off on the first 2 steps of every trial
    mask = np.ones_like(bad)
    mask[:, :2] = 0.0
    masked = evaluate(ensemble, inputs, bad, threshold=0.02, mask=mask)
    keep = mask.astype(bool)
    for k in range(3):
        np.testing.assert_allclose(masked["mse"][k], np.mean((outputs[k] - bad)[keep] ** 2), rtol=1e-6)
    np.testing.assert_allclose(masked["mse"][0], 1e-4, rtol=1e-3)
    np.testing.assert_allclose(
        evaluate(ensemble, inputs, targets, mask=np.ones_like(targets))["mse"], metrics["mse"], rtol=1e-12
    )
    with pytest.raises(ValueError, match="mask"):
        evaluate(ensemble, inputs, targets, mask=np.zeros_like(targets))
    with pytest.raises(ValueError, match="mask"):
        evaluate(ensemble, inputs, targets, mask=mask[:, :3])


def test_evaluate_rejects_mismatched_shapes(getkey):
    ensemble = make_ensemble(EnsembleConfig(members=3, units=5), key=getkey())
    x = np.zeros((2, 5, 3), np.float32)
    with pytest.raises(ValueError, match="same B and T"):
        evaluate(ensemble, x, np.zeros((2, 6, 3), np.float32))
    with pytest.raises(ValueError, match="3 inputs"):
        evaluate(ensemble, np.zeros((2, 5, 4), np.float32), x)
    with pytest.raises(ValueError, match="threshold"):
        evaluate(ensemble, x, x, threshold=0.0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n_units=0), ValueError, "n_units"),
        (dict(n_inputs=0), ValueError, "n_inputs"),
        (dict(n_outputs=2.5), TypeError, "n_outputs"),
        (dict(alpha=1.5), ValueError, r"`alpha`.*\(0, 1\]"),
        (dict(alpha=0.0), ValueError, "alpha"),
        (dict(activation="foo"), ValueError, "activation.*linear, relu, sigmoid, softplus, tanh"),
        (dict(recurrent_init="foo"), ValueError, "recurrent_init.*orthogonal"),
        (dict(readout_init="foo"), ValueError, "readout_init.*glorot_uniform"),
    ],
)
def test_ctrnn_rejects_bad_arguments(kwargs, error, match):
    args = dict(n_inputs=3, n_units=4, n_outputs=3)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        CTRNN(args.pop("n_inputs"), args.pop("n_units"), args.pop("n_outputs"), key=jax.random.key(0), **args)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(members=0), ValueError, "members"),
        (dict(members=True), TypeError, "members"),
        (dict(units=0), ValueError, "units"),
        (dict(alpha=1.5), ValueError, "alpha"),
        (dict(alpha=0.0), ValueError, "alpha"),
        (dict(alpha=(0.5, 0.5, 0.5)), ValueError, "alpha.*length 2"),
        (dict(alpha="1"), TypeError, "alpha"),
        (dict(gain=-1.0), ValueError, "gain"),
        (dict(gain=(1.0,)), ValueError, "gain"),
        (dict(activation="foo"), ValueError, "activation.*linear, relu, sigmoid, softplus, tanh"),
    ],
)
def test_ensemble_config_rejects_bad_values(kwargs, error, match):
    with pytest.raises(error, match=match):
        EnsembleConfig(**{"members": 2, **kwargs})
