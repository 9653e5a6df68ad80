"""The continuous-time RNN, Euler-discretized, acting on one trial.

    h[t+1] = (1 - a) h[t] + a σ(W_rec h[t] + W_in x[t] + b) + noise[t]
    z[t]   = W_out h[t+1] + b_out,        a = dt / tau in (0, 1]

With `a = 1` and `b = 0` this is Keras' `SimpleRNN` followed by `Dense`, the paper's model.
Weights are stored `W[post, pre]`: `W_rec @ h`, `W_in @ x`, `W_out @ h`.
Batch and ensemble axes come from `vmap` at the edges (see `make_ensemble`).
"""

import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax

from ._activations import check_activation, get_activation
from . import _initializers as inits


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value}.")
    return int(value)


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {', '.join(allowed)}; got {value!r}.")
    return value  # type: ignore[return-value]


def check_alpha(alpha: object) -> None:
    """Raise unless every value of `alpha` is in (0, 1] (skipped for traced values)."""
    if isinstance(alpha, jax.core.Tracer):
        return
    a = jnp.asarray(alpha)
    if not jnp.issubdtype(a.dtype, jnp.number) or not bool(jnp.all((a > 0) & (a <= 1))):
        raise ValueError(f"`alpha` (= dt/tau) must be in (0, 1], got {alpha!r}.")


class CTRNN(eqx.Module):
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
        m = _check_int("n_inputs", n_inputs, 1)
        n = _check_int("n_units", n_units, 1)
        o = _check_int("n_outputs", n_outputs, 1)
        check_alpha(alpha)
        _check_choice("recurrent_init", recurrent_init, inits.RECURRENT_INITS)
        _check_choice("readout_init", readout_init, inits.READOUT_INITS)
        k_rec, k_in, k_out = jax.random.split(key, 3)
        self.W_rec = inits.recurrent_init(recurrent_init, k_rec, n, gain)
        self.W_in = inits.glorot_uniform(k_in, (n, m))
        self.b = jnp.zeros(n)
        self.W_out = inits.readout_init(readout_init, k_out, (o, n))
        self.b_out = jnp.zeros(o)
        self.alpha = jnp.asarray(alpha, dtype=self.W_rec.dtype)
        self.activation = check_activation(activation)

    @property
    def n_units(self) -> int:
        return self.W_rec.shape[-1]

    @property
    def n_inputs(self) -> int:
        return self.W_in.shape[-1]

    @property
    def n_outputs(self) -> int:
        return self.W_out.shape[-2]

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

    def states(
        self,
        inputs: jax.Array,
        *,
        h0: jax.Array | None = None,
        key: jax.Array | None = None,
        noise_std: float | jax.Array = 0.0,
        unroll: int = 1,
    ) -> jax.Array:
        """Run the network over one trial.

        **Arguments:**

        - `inputs`: `(T, M)`, the input at each time step.
        - `h0`: `(N,)` initial state; zeros if omitted.
        - `key`: PRNG key for recurrent noise; required when `noise_std` may be non-zero.
        - `noise_std`: standard deviation of the Gaussian noise added to `h` at every step.
        - `unroll`: how many Euler steps `lax.scan` unrolls per iteration.

        **Returns:** `(T, N)`, `hs[t]` = the state after reading `inputs[t]`.
        """
        n = self.n_units
        if h0 is None:
            h0 = jnp.zeros(n, dtype=self.W_rec.dtype)
        drive = inputs @ self.W_in.T + self.b[None, :]  # hoisted out of the scan: (T, N)
        if key is not None:
            drive_noise = noise_std * jax.random.normal(key, drive.shape, drive.dtype)
        else:
            drive_noise = None

        def body(h, xs):
            u, eps = xs
            h = self.euler(h, u)
            if eps is not None:
                h = h + eps
            return h, h

        _, hs = lax.scan(body, h0, (drive, drive_noise), unroll=unroll)
        return hs

    def readout(self, hs: jax.Array) -> jax.Array:
        """`(..., N)` states to `(..., O)` outputs `W_out h + b_out`."""
        return hs @ self.W_out.T + jnp.reshape(self.b_out, (1,) * (hs.ndim - 1) + (-1,))

    def __call__(
        self,
        inputs: jax.Array,
        *,
        h0: jax.Array | None = None,
        key: jax.Array | None = None,
        noise_std: float | jax.Array = 0.0,
        unroll: int = 1,
    ) -> jax.Array:
        """Outputs `(T, O)` for inputs `(T, M)`; arguments as in `states`."""
        return self.readout(self.states(inputs, h0=h0, key=key, noise_std=noise_std, unroll=unroll))

