"""The Euler time loop over a batch of trials, and three ways to backpropagate through it.

    h[t+1] = (1 - a) h[t] + a σ(h[t] W_recᵀ + u[t]) + ε[t]      (rows of `h` are trials)

`u = W_in x + b` is computed outside the loop (one large matmul), as is the readout.

- `"autodiff"`: `jax.grad` through `lax.scan`. Reverse mode stores what every step's backward
  pass needs: several `(T, B, N)` arrays per member.
- `"checkpoint"`: the same with `jax.checkpoint` around each step, so only the carry `h` is saved
  and the step is recomputed in the backward pass.
- `"custom"`: a hand-written VJP (`jax.custom_vjp`) that saves only the states `h` (which are the
  output anyway). σ'(pre) is recovered from the states themselves: `r[t] = σ(pre[t]) =
  (h[t+1] - (1-a) h[t] - ε[t]) / a`, and every activation's derivative is a function of its
  output (`tanh: 1 - r²`, ...), so the backward loop does one matmul per step (`g W_rec`) and the
  weight gradient `Σ_t dpreᵀ h` is one large matmul after the loop. (For `relu`, whose derivative
  jumps at 0, the pre-activation is recomputed from the kept drive instead.)

All three compute the same function and the same gradients (to float rounding; tested).
`precision` selects the matmul precision: `"default"` (TF32 on NVIDIA GPUs, exact float32 on
CPUs) or `"highest"` (full float32 everywhere).
"""

import functools
from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp
from jax import lax

from ._activations import get_activation

BACKPROPS = ("autodiff", "checkpoint", "custom")
PRECISIONS = ("default", "highest")

# σ'(pre) as a function of r = σ(pre), for the custom backward pass (except those in _RECOMPUTE).
_RECOMPUTE = ("relu",)
_DERIVATIVE_FROM_OUTPUT = {
    "tanh": lambda r: 1.0 - r * r,
    "relu": lambda r: (r > 0).astype(r.dtype),
    "softplus": lambda r: -jnp.expm1(-r),  # σ' = sigmoid(x) = 1 - exp(-softplus(x))
    "sigmoid": lambda r: r * (1.0 - r),
    "linear": lambda r: jnp.ones_like(r),
}


def check_backprop(value: object) -> str:
    if value not in BACKPROPS:
        raise ValueError(f"`backprop` must be one of {', '.join(BACKPROPS)}; got {value!r}.")
    return cast(str, value)  # one of the names


def check_precision(value: object) -> str:
    if value not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {', '.join(PRECISIONS)}; got {value!r}.")
    return cast(str, value)  # one of the names


def _lax_precision(precision: str):
    return lax.Precision.HIGHEST if precision == "highest" else None


def euler_scan(
    W_rec,
    drive,
    h0,
    alpha,
    noise=None,
    *,
    activation: str = "tanh",
    backprop: str = "autodiff",
    precision: str = "default",
    unroll: int = 1,
) -> jax.Array:
    """Run the Euler loop over a batch of trials (time-major).

    **Arguments:**

    - `W_rec`: `(N, N)` recurrent weights, `W_rec[post, pre]`.
    - `drive`: `(T, B, N)` external drive `W_in x + b` at each step.
    - `h0`: `(B, N)` initial states.
    - `alpha`: scalar `a = dt/tau`.
    - `noise`: `(T, B, N)` noise `ε` added to the state after each step, or None.
    - `activation`: name of σ; `backprop`: `"autodiff"`, `"checkpoint"` or `"custom"`;
      `precision`: `"default"` or `"highest"`; `unroll`: `lax.scan` unroll.

    **Returns:** `(T, B, N)` states `h[1..T]`.
    """
    check_backprop(backprop)
    check_precision(precision)
    if backprop == "custom":
        return _custom_scan(activation, precision, unroll, W_rec, drive, h0, alpha, noise)
    return _forward(activation, precision, unroll, W_rec, drive, h0, alpha, noise, remat=backprop == "checkpoint")


def _euler_step(activation, precision, W_rec, alpha, h, u, eps=None):
    sigma = get_activation(activation)
    h = (1 - alpha) * h + alpha * sigma(jnp.matmul(h, W_rec.T, precision=precision) + u)
    return h if eps is None else h + eps


def _forward(activation, precision, unroll, W_rec, drive, h0, alpha, noise, *, remat: bool = False):
    """The Euler loop `h[1..T]`; with `remat`, each step is `jax.checkpoint`ed."""
    step: Callable[..., Any] = functools.partial(_euler_step, activation, _lax_precision(precision))
    if remat:
        step = jax.checkpoint(step)

    def body(h, xs):
        h = step(W_rec, alpha, h, *xs)
        return h, h

    xs = (drive,) if noise is None else (drive, noise)
    return lax.scan(body, h0, xs, unroll=unroll)[1]


def _previous_state(hs, h0, t):
    """`h[t]` (`h0` at t = 0, else `hs[t-1]`), read in place from the saved states (no shifted copy)."""
    return jnp.where(t > 0, lax.dynamic_index_in_dim(hs, jnp.maximum(t - 1, 0), keepdims=False), h0)


def _step_cotangents(activation, g, alpha, h_new, h_old, eps, pre):
    """One backward Euler step: the cotangent of the pre-activation, `dpre = g·a·σ'(pre)`, and
    `r = σ(pre)`. `r` is recovered from the states, `(h[t+1] − (1−a) h[t] − ε) / a`, and σ'
    from `r`; for the activations in `_RECOMPUTE`, `pre()` recomputes the pre-activation instead."""
    if activation in _RECOMPUTE:
        p = pre()
        sigma = get_activation(activation)
        return g * alpha * jax.vmap(jax.vmap(jax.grad(sigma)))(p), sigma(p)
    core = h_new - (1 - alpha) * h_old
    if eps is not None:
        core = core - eps
    r = core / alpha
    return g * alpha * _DERIVATIVE_FROM_OUTPUT[activation](r), r


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _custom_scan(activation, precision, unroll, W_rec, drive, h0, alpha, noise):
    return _forward(activation, precision, unroll, W_rec, drive, h0, alpha, noise)


def _custom_fwd(activation, precision, unroll, W_rec, drive, h0, alpha, noise):
    hs = _forward(activation, precision, unroll, W_rec, drive, h0, alpha, noise)
    # relu' jumps at 0, where a recovered r may be off by rounding: recompute its pre-activation
    # from the drive instead (one more matmul per step, and the drive is kept).
    kept_drive = drive if activation in _RECOMPUTE else None
    return hs, (W_rec, h0, alpha, noise, hs, kept_drive)


def _custom_bwd(activation, precision, unroll, residuals, ct_hs):
    W_rec, h0, alpha, noise, hs, drive = residuals
    prec = _lax_precision(precision)
    n_steps = hs.shape[0]

    def body(g_next, xs):
        t, ct, h_new = xs[:3]
        h_old = _previous_state(hs, h0, t)
        g = g_next + ct  # total cotangent of h[t+1]
        dpre, r = _step_cotangents(
            activation,
            g,
            alpha,
            h_new,
            h_old,
            None if noise is None else xs[3],
            lambda: jnp.matmul(h_old, W_rec.T, precision=prec) + xs[-1],
        )
        g_prev = (1 - alpha) * g + jnp.matmul(dpre, W_rec, precision=prec)
        d_alpha = jnp.sum(g * (r - h_old))
        return g_prev, ((dpre, g, d_alpha) if noise is not None else (dpre, d_alpha))

    ts = jnp.arange(n_steps)
    xs = (ts, ct_hs, hs) if noise is None else (ts, ct_hs, hs, noise)
    if drive is not None:
        xs = xs + (drive,)
    g0, outs = lax.scan(body, jnp.zeros_like(h0), xs, reverse=True, unroll=unroll)
    if noise is None:
        dpre, d_alpha = outs
        d_noise = None
    else:
        dpre, d_noise, d_alpha = outs
    # Σ_t dpre[t]ᵀ h[t], with h[0] = h0 and h[t] = hs[t-1]: one large matmul plus one small one
    d_W = jnp.einsum("tbi,tbj->ij", dpre[1:], hs[:-1], precision=prec) + jnp.matmul(dpre[0].T, h0, precision=prec)
    d_alpha = jnp.sum(d_alpha).astype(jnp.result_type(alpha)).reshape(jnp.shape(alpha))
    return d_W, dpre, g0, d_alpha, d_noise


_custom_scan.defvjp(_custom_fwd, _custom_bwd)


def euler_readout_scan(
    W_rec,
    W_in,
    b,
    W_out,
    b_out,
    alpha,
    x,
    h0,
    noise=None,
    *,
    activation: str = "tanh",
    precision: str = "default",
    unroll: int = 1,
) -> jax.Array:
    """The whole network, inputs to outputs, with a hand-written VJP that stores only the states.

    Same function as `euler_scan` on `u = x W_inᵀ + b` followed by the readout, but the input
    drive and the readout are computed inside the loop (they are small: `M, O << N`), and the
    backward loop accumulates every weight gradient in its carry. Nothing of size `(T, B, N)` is
    kept but the states `h` (and `noise`, an input): the least memory of all variants.

    **Arguments:**

    - `W_rec (N, N)`, `W_in (N, M)`, `b (N,)`, `W_out (O, N)`, `b_out (O,)`, `alpha` (scalar).
    - `x`: `(T, B, M)` inputs, time-major; `h0`: `(B, N)`; `noise`: `(T, B, N)` or None.

    **Returns:** `(T, B, O)` outputs `z[t] = W_out h[t+1] + b_out`.
    """
    check_precision(precision)
    return _fused(activation, precision, unroll, W_rec, W_in, b, W_out, b_out, alpha, x, h0, noise)


def _fused_forward(activation, precision, unroll, W_rec, W_in, b, W_out, b_out, alpha, x, h0, noise):
    prec = _lax_precision(precision)

    def body(h, xs):
        u = jnp.matmul(xs[0], W_in.T, precision=prec) + b[None]
        h = _euler_step(activation, prec, W_rec, alpha, h, u, *xs[1:])
        return h, (h, jnp.matmul(h, W_out.T, precision=prec) + b_out[None])

    xs = (x,) if noise is None else (x, noise)
    return lax.scan(body, h0, xs, unroll=unroll)[1]


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _fused(activation, precision, unroll, W_rec, W_in, b, W_out, b_out, alpha, x, h0, noise):
    return _fused_forward(activation, precision, unroll, W_rec, W_in, b, W_out, b_out, alpha, x, h0, noise)[1]


def _fused_fwd(activation, precision, unroll, W_rec, W_in, b, W_out, b_out, alpha, x, h0, noise):
    hs, z = _fused_forward(activation, precision, unroll, W_rec, W_in, b, W_out, b_out, alpha, x, h0, noise)
    return z, (W_rec, W_in, b, W_out, alpha, x, h0, noise, hs)


def _fused_bwd(activation, precision, unroll, residuals, dz):
    W_rec, W_in, b, W_out, alpha, x, h0, noise, hs = residuals
    prec = _lax_precision(precision)
    mm = functools.partial(jnp.matmul, precision=prec)

    def body(carry, xs):
        g_next, dW_rec, dW_in, db, dW_out, db_out, d_alpha = carry
        t, x_t, dz_t, h_new = xs[:4]
        h_old = _previous_state(hs, h0, t)
        g = g_next + mm(dz_t, W_out)  # total cotangent of h[t+1]
        dpre, r = _step_cotangents(
            activation,
            g,
            alpha,
            h_new,
            h_old,
            None if noise is None else xs[4],
            lambda: mm(h_old, W_rec.T) + mm(x_t, W_in.T) + b[None],
        )
        carry = (
            (1 - alpha) * g + mm(dpre, W_rec),
            dW_rec + mm(dpre.T, h_old),
            dW_in + mm(dpre.T, x_t),
            db + jnp.sum(dpre, axis=0),
            dW_out + mm(dz_t.T, h_new),
            db_out + jnp.sum(dz_t, axis=0),
            d_alpha + jnp.sum(g * (r - h_old)),
        )
        dx_t = mm(dpre, W_in)
        return carry, ((dx_t, g) if noise is not None else (dx_t,))

    n_steps = hs.shape[0]
    zeros = jnp.zeros_like
    init = (
        zeros(h0),
        zeros(W_rec),
        zeros(W_in),
        zeros(b),
        zeros(W_out),
        jnp.zeros(W_out.shape[:1], W_out.dtype),
        jnp.zeros((), hs.dtype),
    )
    xs = (jnp.arange(n_steps), x, dz, hs) + (() if noise is None else (noise,))
    carry, outs = lax.scan(body, init, xs, reverse=True, unroll=unroll)
    g0, dW_rec, dW_in, db, dW_out, db_out, d_alpha = carry
    d_alpha = d_alpha.astype(jnp.result_type(alpha)).reshape(jnp.shape(alpha))
    d_noise = outs[1] if noise is not None else None
    return dW_rec, dW_in, db, dW_out, db_out, d_alpha, outs[0], g0, d_noise


_fused.defvjp(_fused_fwd, _fused_bwd)
