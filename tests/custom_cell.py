"""A cell written outside the package, as a user would: a rank-2 CTRNN (`tests/test_custom_cell.py`).

    h[t+1] = (1 - a) h[t] + a σ(U Vᵀ h[t] / N + W_in x[t] + b) + noise[t]
    z[t]   = W_out h[t+1] + b_out

Only the public interface is used: `ctrnn_jax.AbstractRNN` and its documented options.
"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax

from ctrnn_jax import AbstractRNN
from ctrnn_jax.models import ACTIVATIONS

RANK = 2


class LowRank(AbstractRNN):
    """A rank-2 continuous-time RNN: `W_rec = U Vᵀ / N`.

    **Fields** (`N` units, `M` inputs, `O` outputs): `U`, `V` `(N, 2)`; `W_in` `(N, M)`; `b` `(N,)`;
    `W_out` `(O, N)`; `b_out` `(O,)`; `activation` and `alpha` (= dt/tau) static.
    """

    cell: ClassVar[str] = "lowrank"

    U: jax.Array
    V: jax.Array
    W_in: jax.Array
    b: jax.Array
    W_out: jax.Array
    b_out: jax.Array
    activation: str = eqx.field(static=True)
    alpha: float = eqx.field(static=True)

    def __init__(
        self,
        n_inputs: int,
        n_units: int,
        n_outputs: int,
        *,
        key: jax.Array,
        activation: str = "tanh",
        alpha: float = 1.0,
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {', '.join(ACTIVATIONS)}, got {activation!r}.")
        if not 0 < alpha <= 1:
            raise ValueError(f"`alpha` must be in (0, 1], got {alpha!r}.")
        ku, kv, ki, ko = jax.random.split(key, 4)
        self.U = jax.random.normal(ku, (n_units, RANK))
        self.V = jax.random.normal(kv, (n_units, RANK))
        self.W_in = jax.random.normal(ki, (n_units, n_inputs)) / jnp.sqrt(n_inputs)
        self.b = jnp.zeros(n_units)
        self.W_out = jax.random.normal(ko, (n_outputs, n_units)) / jnp.sqrt(n_units)
        self.b_out = jnp.zeros(n_outputs)
        self.activation = activation
        self.alpha = float(alpha)

    def options(self) -> dict:
        return {"activation": self.activation, "alpha": self.alpha}

    @property
    def W_rec(self) -> jax.Array:
        """`(N, N)` = `U Vᵀ / N` (with a member axis in a stacked ensemble)."""
        return self.U @ jnp.swapaxes(self.V, -1, -2) / self.U.shape[-2]

    @property
    def recurrent_matrix(self) -> jax.Array:
        return self.W_rec

    @property
    def dt_tau(self) -> float:
        return self.alpha

    def step(self, h: jax.Array, x: jax.Array) -> jax.Array:
        sigma = ACTIVATIONS[self.activation]
        return (1 - self.alpha) * h + self.alpha * sigma(self.W_rec @ h + self.W_in @ x + self.b)

    def full_states(
        self, inputs, *, h0=None, key=None, noise_std=0.0, unroll=1, backprop="autodiff", precision="default"
    ):
        """`(T, N)` or `(B, T, N)` states for inputs `(T, M)` or `(B, T, M)`; the trainer's options."""
        if inputs.ndim == 3:  # a batch: trial i gets the noise of jax.random.split(key, B)[i]
            keys = None if key is None else jax.random.split(key, inputs.shape[0])
            h0s = None if h0 is None else jnp.broadcast_to(h0, (inputs.shape[0], self.n_units))

            def one(x, h, k):
                return self.full_states(
                    x, h0=h, key=k, noise_std=noise_std, unroll=unroll, backprop=backprop, precision=precision
                )

            return jax.vmap(one, in_axes=(0, None if h0s is None else 0, None if keys is None else 0))(
                inputs, h0s, keys
            )
        prec = lax.Precision.HIGHEST if precision == "highest" else None
        sigma = ACTIVATIONS[self.activation]
        n = self.n_units
        drive = jnp.matmul(inputs, self.W_in.T, precision=prec) + self.b[None, :]  # (T, N)
        noise = jnp.zeros_like(drive) if key is None else noise_std * jax.random.normal(key, drive.shape)

        def body(h, u_eps):
            u, eps = u_eps
            rec = jnp.matmul(self.U, jnp.matmul(self.V.T, h, precision=prec), precision=prec) / n
            h = (1 - self.alpha) * h + self.alpha * sigma(rec + u) + eps
            return h, h

        if backprop != "autodiff":  # "checkpoint", or "custom" (no hand-written VJP here): recompute each step
            body = jax.checkpoint(body)
        h = jnp.zeros(n, drive.dtype) if h0 is None else jnp.asarray(h0, drive.dtype)
        return lax.scan(body, h, (drive, noise), unroll=unroll)[1]

    def states(self, inputs, **options):
        return self.full_states(inputs, **options)

    def __call__(self, inputs, **options):
        return self.readout(self.states(inputs, **options))
