"""The three ways through the time loop compute the same states and the same gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctrnn_jax import CTRNN
from ctrnn_jax.models._scan import euler_readout_scan, euler_scan

T, B, N, M = 12, 3, 5, 2


def _problem(key, activation="tanh", alpha=0.3, noise=True):
    kw, kd, kh, kn, kc = jax.random.split(key, 5)
    W = 1.2 * jax.random.normal(kw, (N, N)) / np.sqrt(N)
    drive = jax.random.normal(kd, (T, B, N))
    h0 = 0.5 * jax.random.normal(kh, (B, N))
    eps = 0.1 * jax.random.normal(kn, (T, B, N)) if noise else None
    if activation in ("relu", "softplus", "sigmoid"):
        W = 0.5 * W  # keep the states bounded
    ct = jax.random.normal(kc, (T, B, N))  # a random cotangent: tests the whole VJP, not one loss
    return (W, drive, h0, jnp.asarray(alpha), eps), ct


def _vjp(backprop, activation, args, ct):
    def f(W, drive, h0, alpha, eps):
        return euler_scan(W, drive, h0, alpha, eps, activation=activation, backprop=backprop, precision="highest")

    hs, pullback = jax.vjp(f, *args)
    return hs, pullback(ct)


@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus", "sigmoid", "linear"])
@pytest.mark.parametrize("alpha,noise", [(1.0, False), (0.3, True)])
def test_backprops_agree(getkey, activation, alpha, noise):
    args, ct = _problem(getkey(), activation, alpha, noise)
    ref_hs, ref_grads = _vjp("autodiff", activation, args, ct)
    for backprop in ("checkpoint", "custom"):
        hs, grads = _vjp(backprop, activation, args, ct)
        np.testing.assert_allclose(np.asarray(hs), np.asarray(ref_hs), atol=1e-6)  # same forward, up to fusion
        names = ("W_rec", "drive", "h0", "alpha", "noise")
        for name, g, r in zip(names, grads, ref_grads):
            if r is None:
                assert g is None
                continue
            scale = float(jnp.max(jnp.abs(r))) + 1e-6
            np.testing.assert_allclose(
                np.asarray(g), np.asarray(r), atol=2e-5 * scale, rtol=1e-4, err_msg=f"{backprop}: d{name}"
            )


def test_custom_gradient_matches_finite_differences(getkey):
    """The custom VJP against central differences in float64 (an independent check of the formulas)."""
    with jax.enable_x64(True):
        args, ct = _problem(getkey(), "tanh", 0.4, True)
        args = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), args)
        ct = jnp.asarray(ct, jnp.float64)
        loss = lambda *a: jnp.sum(ct * euler_scan(*a, backprop="custom"))  # noqa: E731
        grads = jax.grad(loss, argnums=(0, 3))(*args)
        W, rest = args[0], args[1:]
        d = jax.random.normal(getkey(), W.shape, jnp.float64)
        h = 1e-6
        fd = (loss(W + h * d, *rest) - loss(W - h * d, *rest)) / (2 * h)
        np.testing.assert_allclose(float(jnp.sum(grads[0] * d)), float(fd), rtol=1e-7)
        a = args[3]
        fd_a = (loss(W, args[1], args[2], a + h, args[4]) - loss(W, args[1], args[2], a - h, args[4])) / (2 * h)
        np.testing.assert_allclose(float(grads[1]), float(fd_a), rtol=1e-7)


def test_model_batch_equals_trial_by_trial(getkey):
    model = CTRNN(M, N, 2, key=getkey(), alpha=0.5)
    x = jax.random.normal(getkey(), (B, T, M))
    key = getkey()
    batched = model.states(x, key=key, noise_std=0.2, backprop="custom")
    one_by_one = jax.vmap(lambda xi, k: model.states(xi, key=k, noise_std=0.2))(x, jax.random.split(key, B))
    np.testing.assert_allclose(np.asarray(batched), np.asarray(one_by_one), atol=1e-6)
    assert model(x).shape == (B, T, 2)


def test_model_gradients_agree_for_every_backprop(getkey):
    model = CTRNN(M, N, 2, key=getkey(), alpha=0.25)
    x = jax.random.normal(getkey(), (B, T, M))
    y = jax.random.normal(getkey(), (B, T, 2))

    def grads(backprop):
        loss = lambda m: jnp.mean((m(x, backprop=backprop, precision="highest") - y) ** 2)  # noqa: E731
        return jax.grad(loss)(model)

    ref = grads("autodiff")
    for backprop in ("checkpoint", "custom"):
        g = grads(backprop)
        for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(ref)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-7)


def test_bad_backprop_and_precision_are_rejected(getkey):
    model = CTRNN(M, N, 2, key=getkey())
    x = jnp.zeros((T, M))
    with pytest.raises(ValueError, match="`backprop` must be one of autodiff, checkpoint, custom"):
        model.states(x, backprop="fast")
    with pytest.raises(ValueError, match="`precision` must be one of default, highest"):
        model.states(x, precision="tf32")
    with pytest.raises(ValueError, match="`inputs` must be"):
        model.states(jnp.zeros((T, M + 1)))


@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus", "sigmoid", "linear"])
@pytest.mark.parametrize("alpha,noise", [(1.0, False), (0.3, True)])
def test_fused_readout_vjp_matches_autodiff(getkey, activation, alpha, noise):
    """`euler_readout_scan` (custom VJP, readout and drive inside the loop) against plain autodiff
    of the same network: outputs and the cotangent of every argument, for a random output cotangent."""
    (W, _, h0, a, eps), _ = _problem(getkey(), activation, alpha, noise)
    OUT = 2
    W_in, b = jax.random.normal(getkey(), (N, M)), 0.1 * jax.random.normal(getkey(), (N,))
    W_out, b_out = jax.random.normal(getkey(), (OUT, N)), jax.random.normal(getkey(), (OUT,))
    x = jax.random.normal(getkey(), (T, B, M))
    ct = jax.random.normal(getkey(), (T, B, OUT))
    args = (W, W_in, b, W_out, b_out, a, x, h0, eps)

    def reference(W, W_in, b, W_out, b_out, a, x, h0, eps):
        drive = jnp.einsum("tbm,nm->tbn", x, W_in, precision="highest") + b[None, None]
        hs = euler_scan(W, drive, h0, a, eps, activation=activation, precision="highest")
        return jnp.einsum("tbn,on->tbo", hs, W_out, precision="highest") + b_out[None, None]

    def fused(*args):
        return euler_readout_scan(*args, activation=activation, precision="highest")

    z_ref, pb_ref = jax.vjp(reference, *args)
    z, pb = jax.vjp(fused, *args)
    np.testing.assert_allclose(np.asarray(z), np.asarray(z_ref), atol=1e-5)
    names = ("W_rec", "W_in", "b", "W_out", "b_out", "alpha", "x", "h0", "noise")
    for name, g, r in zip(names, pb(ct), pb_ref(ct)):
        if r is None:
            assert g is None
            continue
        scale = float(jnp.max(jnp.abs(r))) + 1e-6
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), atol=3e-5 * scale, rtol=1e-4, err_msg=f"d{name}")
