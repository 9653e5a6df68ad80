"""The continuous-time RNN, Euler-discretized, acting on one trial.

    h[t+1] = (1 - a) h[t] + a σ(W_rec h[t] + W_in x[t] + b) + noise[t]
    z[t]   = W_out h[t+1] + b_out,        a = dt / tau in (0, 1]

With `a = 1` and `b = 0` this is Keras' `SimpleRNN` followed by `Dense`, the paper's model.
Weights are stored `W[post, pre]`: `W_rec @ h`, `W_in @ x`, `W_out @ h`.
Batch and ensemble axes come from `vmap` at the edges (see `make_ensemble`).
"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._checks import check_choice, check_int
from . import _initializers as inits
from ._activations import check_activation, get_activation
from ._base import AbstractRNN
from ._scan import check_backprop, check_precision, euler_readout_scan, euler_scan


def batch_time_major(inputs, h0, key, noise_std, *, n_inputs: int, state_size: int, dtype):
    """What every network's time loop starts from: inputs `(T, M)` or `(B, T, M)` checked and made
    time-major `(T, B, M)`, the initial state `(B, S)` (zeros, or `h0` of shape `(S,)` / `(B, S)`),
    and the state noise `(T, B, S)` (None without `key`; trial `i` of a batch gets the noise that
    `jax.random.split(key, B)[i]` gives it alone). Returns `(x, s0, noise, single)`."""
    inputs = jnp.asarray(inputs)
    if inputs.ndim not in (2, 3) or inputs.shape[-1] != n_inputs:
        raise ValueError(f"`inputs` must be (T, {n_inputs}) or (B, T, {n_inputs}), got {inputs.shape}.")
    single = inputs.ndim == 2
    x = inputs[:, None] if single else jnp.swapaxes(inputs, 0, 1)  # small: M channels
    length, b = x.shape[0], x.shape[1]
    if h0 is None:
        s0 = jnp.zeros((b, state_size), dtype=dtype)
    else:
        expected = (state_size,) if single else (b, state_size)
        if jnp.shape(h0) != expected:
            raise ValueError(f"`h0` must have shape {expected}, got {jnp.shape(h0)}.")
        s0 = jnp.asarray(h0, dtype)
        s0 = s0[None] if single else s0
    if key is None:
        return x, s0, None, single
    keys = key[None] if single else jax.random.split(key, b)

    def draw(k):
        return jax.random.normal(k, (length, state_size), dtype)

    noise = noise_std * jnp.swapaxes(jax.vmap(draw)(keys), 0, 1)
    return x, s0, noise.astype(dtype), single


def linear_readout(hs: jax.Array, W_out: jax.Array, b_out: jax.Array) -> jax.Array:
    """`(..., N)` states to `(..., O)` outputs `W_out h + b_out`."""
    return hs @ W_out.T + jnp.reshape(b_out, (1,) * (hs.ndim - 1) + (-1,))


def check_alpha(alpha: object) -> None:
    """Raise unless every value of `alpha` is in (0, 1] (skipped for traced values)."""
    if isinstance(alpha, jax.core.Tracer):
        return
    a = np.asarray(alpha)  # a host check (no JAX operation: it runs under `eval_shape` too)
    if not np.issubdtype(a.dtype, np.number) or not bool(np.all((a > 0) & (a <= 1))):
        raise ValueError(f"`alpha` (= dt/tau) must be in (0, 1], got {alpha!r}.")


class CTRNN(AbstractRNN):
    """Euler-discretized continuous-time RNN with a linear readout.

    **Fields** (`N` units, `M` inputs, `O` outputs):

    - `W_rec`: `(N, N)` recurrent weights, `W_rec[post, pre]`.
    - `W_in`: `(N, M)` input weights.
    - `b`: `(N,)` recurrent bias.
    - `W_out`: `(O, N)` readout weights.
    - `b_out`: `(O,)` readout bias.
    - `alpha`: scalar `a = dt/tau` in (0, 1]; not trained.
    - `activation`: name of σ (`tanh`, `relu`, `softplus`, `sigmoid`, `linear`).
    """

    cell: ClassVar[str] = "ctrnn"
    untrained: ClassVar[tuple[str, ...]] = ("alpha",)

    W_rec: jax.Array
    W_in: jax.Array
    b: jax.Array
    W_out: jax.Array
    b_out: jax.Array
    alpha: jax.Array
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        n_inputs: int,
        n_units: int,
        n_outputs: int,
        *,
        key: jax.Array,
        alpha: float | jax.Array = 1.0,
        activation: str = "tanh",
        gain: float | jax.Array = 1.0,
        recurrent_init: str = "orthogonal",
        readout_init: str = "glorot_uniform",
    ):
        """**Arguments:**

        - `n_inputs`, `n_units`, `n_outputs`: `M`, `N`, `O` (integers >= 1).
        - `key`: a PRNG key (keyword-only).
        - `alpha`: `dt/tau` in (0, 1]; 1 is the paper's (Keras `SimpleRNN`) case.
        - `activation`: name of the nonlinearity σ.
        - `gain`: `g`; scales the orthogonal matrix, or sets the variance `g²/N` of `normal`.
        - `recurrent_init`: `orthogonal` (Keras default, the paper's) or `normal`.
        - `readout_init`: `glorot_uniform` (Keras `Dense` default), `normal` or `zeros`.

        Input weights are `glorot_uniform`; biases start at zero.
        """
        m = check_int("n_inputs", n_inputs, 1)
        n = check_int("n_units", n_units, 1)
        o = check_int("n_outputs", n_outputs, 1)
        check_alpha(alpha)
        check_choice("recurrent_init", recurrent_init, inits.RECURRENT_INITS)
        check_choice("readout_init", readout_init, inits.READOUT_INITS)
        k_rec, k_in, k_out = jax.random.split(key, 3)
        self.W_rec = inits.recurrent_init(recurrent_init, k_rec, n, gain)
        self.W_in = inits.glorot_uniform(k_in, (n, m))
        self.b = jnp.zeros(n)
        self.W_out = inits.readout_init(readout_init, k_out, (o, n))
        self.b_out = jnp.zeros(o)
        self.alpha = jnp.asarray(alpha, dtype=self.W_rec.dtype)
        self.activation = check_activation(activation)

    @property
    def dt_tau(self) -> jax.Array:
        """`a = dt/tau`, the field `alpha`."""
        return self.alpha

    @property
    def recurrent_matrix(self) -> jax.Array:
        """`W_rec`, `(N, N)`."""
        return self.W_rec

    def residual_and_jacobian(self, state: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """`(F(h) − h, J_F − I)` with the analytic `J_F = (1-a) I + a diag(σ'(u)) W_rec`, `u = W_rec h + W_in x
        + b` (σ acts elementwise)."""
        sigma = get_activation(self.activation)
        u = self.W_rec @ state + self.W_in @ x + self.b
        s, ds = jax.jvp(sigma, (u,), (jnp.ones_like(u),))
        r = (1 - self.alpha) * state + self.alpha * s - state
        return r, self.alpha * (ds[:, None] * self.W_rec - jnp.eye(state.shape[-1], dtype=state.dtype))

    def euler(self, h: jax.Array, drive: jax.Array) -> jax.Array:
        """One Euler step given the external drive `u = W_in x + b`.

        **Arguments:**

        - `h`: `(N,)` state.
        - `drive`: `(N,)` external drive `W_in x + b` (plus nothing else).

        **Returns:** `(N,)` the next state `(1-a) h + a σ(W_rec h + u)`.
        """
        sigma = get_activation(self.activation)
        return (1 - self.alpha) * h + self.alpha * sigma(self.W_rec @ h + drive)

    def step(self, h: jax.Array, x: jax.Array) -> jax.Array:
        """The one-step map `F(h) = (1-a) h + a σ(W_rec h + W_in x + b)`, for input `x` of shape `(M,)`.

        Fixed points of the network at constant input `x` satisfy `F(h) = h`.
        """
        return self.euler(h, self.W_in @ x + self.b)

    def states(  # type: ignore[override]  # the base takes **options; each cell names the keywords it takes
        self,
        inputs: jax.Array,
        *,
        h0: jax.Array | None = None,
        key: jax.Array | None = None,
        noise_std: float | jax.Array = 0.0,
        unroll: int = 1,
        backprop: str = "autodiff",
        precision: str = "default",
    ) -> jax.Array:
        """Run the network over one trial `(T, M)` or a batch of trials `(B, T, M)`.

        **Arguments:**

        - `inputs`: `(T, M)` or `(B, T, M)`, the input at each time step.
        - `h0`: `(N,)` or `(B, N)` initial state; zeros if omitted.
        - `key`: PRNG key for recurrent noise; required when `noise_std` may be non-zero. In a
          batch, trial `i` gets the noise that `jax.random.split(key, B)[i]` gives it alone.
        - `noise_std`: standard deviation of the Gaussian noise added to `h` at every step.
        - `unroll`: how many Euler steps `lax.scan` unrolls per iteration.
        - `backprop`: how gradients flow through the time loop: `"autodiff"` (plain reverse mode),
          `"checkpoint"` (recompute each step) or `"custom"` (hand-written VJP saving only the
          states; least memory). Same values and gradients; see `ctrnn_jax.models._scan`.
        - `precision`: matmul precision, `"default"` (TF32 on NVIDIA GPUs) or `"highest"`.

        **Returns:** `(T, N)` or `(B, T, N)`, `hs[..., t, :]` = the state after reading `inputs[..., t, :]`.
        """
        x, h0, noise, single = self._prepare(inputs, h0, key, noise_std, backprop, precision)
        prec = None if precision == "default" else lax.Precision.HIGHEST
        # hoisted out of the time loop: one (T·B, M) × (M, N) matmul, time-major (T, B, N)
        drive = jnp.einsum("tbm,nm->tbn", x, self.W_in, precision=prec) + self.b[None, None, :]
        hs = euler_scan(
            self.W_rec,
            drive,
            h0,
            self.alpha,
            noise,
            activation=self.activation,
            backprop=backprop,
            precision=precision,
            unroll=unroll,
        )
        return hs[:, 0] if single else jnp.swapaxes(hs, 0, 1)

    def full_states(self, inputs: jax.Array, **options) -> jax.Array:
        """The flat states: for the CTRNN the hidden states themselves (`states`)."""
        return self.states(inputs, **options)

    def _prepare(self, inputs, h0, key, noise_std, backprop, precision):
        check_backprop(backprop)
        check_precision(precision)
        return batch_time_major(
            inputs, h0, key, noise_std, n_inputs=self.n_inputs, state_size=self.n_units, dtype=self.W_rec.dtype
        )

    def readout(self, hs: jax.Array) -> jax.Array:
        """`(..., N)` states to `(..., O)` outputs `W_out h + b_out`."""
        return linear_readout(hs, self.W_out, self.b_out)

    def __call__(
        self,
        inputs: jax.Array,
        *,
        h0: jax.Array | None = None,
        key: jax.Array | None = None,
        noise_std: float | jax.Array = 0.0,
        unroll: int = 1,
        backprop: str = "autodiff",
        precision: str = "default",
    ) -> jax.Array:
        """Outputs `(T, O)` for inputs `(T, M)` (or `(B, T, O)` for `(B, T, M)`); arguments as in
        `states`. With `backprop="custom"` the readout is inside the hand-written VJP
        (`euler_readout_scan`): only the states are stored for the backward pass."""
        x, h0, noise, single = self._prepare(inputs, h0, key, noise_std, backprop, precision)
        if backprop == "custom":
            z = euler_readout_scan(
                self.W_rec,
                self.W_in,
                self.b,
                self.W_out,
                self.b_out,
                self.alpha,
                x,
                h0,
                noise,
                activation=self.activation,
                precision=precision,
                unroll=unroll,
            )
        else:
            prec = None if precision == "default" else lax.Precision.HIGHEST
            drive = jnp.einsum("tbm,nm->tbn", x, self.W_in, precision=prec) + self.b[None, None, :]
            hs = euler_scan(
                self.W_rec,
                drive,
                h0,
                self.alpha,
                noise,
                activation=self.activation,
                backprop=backprop,
                precision=precision,
                unroll=unroll,
            )
            z = jnp.einsum("tbn,on->tbo", hs, self.W_out, precision=prec) + self.b_out[None, None, :]
        return z[:, 0] if single else jnp.swapaxes(z, 0, 1)
