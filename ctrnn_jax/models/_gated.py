"""Gated recurrent cells (GRU, LSTM, UGRNN) with a linear readout, acting on one trial, usable wherever a CTRNN is.

The equations are those of `equinox.nn.GRUCell` / `equinox.nn.LSTMCell` (PyTorch's; Keras' `GRU` with
`reset_after=True` and Keras' `LSTM`), with the activation `σ` selectable as in Keras (`tanh` by default):

    GRU:   r = sigmoid(W_r x + U_r h + b_r)            (reset)
           z = sigmoid(W_z x + U_z h + b_z)            (update)
           n = σ(W_n x + b_n' + r ⊙ (U_n h + b_n))     (candidate)
           h ← n + z ⊙ (h − n)

    LSTM:  i, f, g, o = W x + U h + b                  (input, forget, cell, output blocks)
           c ← sigmoid(f) ⊙ c + sigmoid(i) ⊙ σ(g)
           h ← sigmoid(o) ⊙ σ(c)

    UGRNN: g = sigmoid(W_g x + U_g h + b_g)            (update gate; Collins et al. 2017)
           c = σ(W_c x + U_c h + b_c)                  (candidate)
           h ← c + g ⊙ (h − c)

    z[t] = W_out h[t+1] + b_out

Weights are stored `W[post, pre]` with the gate blocks stacked along the first axis in the order
above: `W_in = [W_r; W_z; W_n]`, `W_rec = [U_r; U_z; U_n]` for the GRU, `[W_i; W_f; W_g; W_o]` for the
LSTM (equinox's order; Keras' GRU stores `z, r, n` instead), `[W_g; W_c]` for the UGRNN.

The state is a flat vector of size `state_size`: `h` (`N`) for the GRU and UGRNN, `[h, c]` (`2N`) for the LSTM.
`step` maps it one step at a constant input, for fixed-point analysis; `states` returns `h` only and
`full_states` the whole state.
"""

import abc
from typing import TYPE_CHECKING, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._checks import check_int
from ._activations import check_activation, get_activation
from ._base import AbstractRNN
from ._initializers import glorot_uniform
from ._model import batch_time_major, linear_readout
from ._scan import check_backprop, check_precision


def _orthogonal_columns(key: jax.Array, rows: int, cols: int) -> jax.Array:
    """`(rows, cols)` with orthonormal columns (`rows >= cols`): Keras' `orthogonal` on the transposed
    `(cols, rows)` recurrent kernel."""
    q, r = jnp.linalg.qr(jax.random.normal(key, (rows, cols), jnp.float32))
    return q * jnp.sign(jnp.diagonal(r))[None, :]


class _GatedRNN(AbstractRNN):
    """What `GRU`, `LSTM` and `UGRNN` share: the time loop, noise, readout and argument checks."""

    if TYPE_CHECKING:  # a field of every subclass (a field here would change their fields' order)
        b: jax.Array

    @abc.abstractmethod
    def _next(self, state: jax.Array, u: jax.Array, precision) -> jax.Array:
        """The next flat state of one trial given the input drive `u = W_in x + b`."""

    def step(self, state: jax.Array, x: jax.Array) -> jax.Array:
        """The one-step map `F(s)` on the flat state `s` of shape `(state_size,)`, for an input `x`
        of shape `(M,)`. Fixed points of the network at constant input `x` satisfy `F(s) = s`."""
        if jnp.shape(state) != (self.state_size,) or jnp.shape(x) != (self.n_inputs,):
            raise ValueError(
                f"`state` and `x` must have shapes ({self.state_size},) and ({self.n_inputs},), "
                f"got {jnp.shape(state)} and {jnp.shape(x)}."
            )
        return self._next(state, self.W_in @ x + self.b, None)

    def full_states(  # type: ignore[override]  # the base takes **options; each cell names the keywords it takes
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
        """As `states`, but the whole flat state: `(T, state_size)` or `(B, T, state_size)` (for the
        LSTM `[h, c]`; what `initial_states_from_trajectories` samples fixed-point candidates from)."""
        x, s0, noise, single = self._prepare(inputs, h0, key, noise_std, backprop, precision)
        prec = None if precision == "default" else lax.Precision.HIGHEST
        # hoisted out of the time loop: one (T·B, M) × (M, G·N) matmul, time-major (T, B, G·N)
        u = jnp.einsum("tbm,gm->tbg", x, self.W_in, precision=prec) + self.b[None, None, :]
        step = jax.vmap(lambda model, s, u_t: model._next(s, u_t, prec), in_axes=(None, 0, 0))
        if backprop != "autodiff":
            step = jax.checkpoint(step)

        def body(s, xs):
            s = step(self, s, xs[0])
            s = s if noise is None else s + xs[1]
            return s, s

        ss = lax.scan(body, s0, (u,) if noise is None else (u, noise), unroll=unroll)[1]
        return ss[:, 0] if single else jnp.swapaxes(ss, 0, 1)

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
        - `h0`: `(state_size,)` or `(B, state_size)` initial flat state (for the LSTM `[h, c]`);
          zeros if omitted.
        - `key`: PRNG key for recurrent noise; required when `noise_std` is non-zero. In a batch,
          trial `i` gets the noise that `jax.random.split(key, B)[i]` gives it alone.
        - `noise_std`: standard deviation of the Gaussian noise added to the whole flat state (for
          the LSTM both `h` and `c`) after every step.
        - `unroll`: how many steps `lax.scan` unrolls per iteration.
        - `backprop`: `"autodiff"` (plain reverse mode) or `"checkpoint"` (`jax.checkpoint` around
          each step: the step is recomputed in the backward pass). `"custom"`, the CTRNN's
          hand-written VJP, does not exist for gated cells and means `"checkpoint"` here (the least
          memory available), so that a trainer configured for it runs any cell.
        - `precision`: matmul precision, `"default"` (TF32 on NVIDIA GPUs) or `"highest"`.

        **Returns:** `(T, N)` or `(B, T, N)` hidden states `h`, `hs[..., t, :]` = `h` after reading
        `inputs[..., t, :]` (for the LSTM without `c`; see `full_states`).
        """
        return self.hidden(
            self.full_states(
                inputs, h0=h0, key=key, noise_std=noise_std, unroll=unroll, backprop=backprop, precision=precision
            )
        )

    def _prepare(self, inputs, h0, key, noise_std, backprop, precision):
        """Check the arguments; inputs `(T, B, M)`, `s0 (B, S)`, noise `(T, B, S)` or None, time-major."""
        check_backprop(backprop)
        check_precision(precision)
        if key is None and not isinstance(noise_std, jax.core.Tracer) and np.any(np.asarray(noise_std) != 0):
            raise ValueError(f"`key` is required when `noise_std` is non-zero (got {noise_std!r}).")
        # h0 is the flat state (for the LSTM [h, c])
        return batch_time_major(
            inputs, h0, key, noise_std, n_inputs=self.n_inputs, state_size=self.state_size, dtype=self.W_rec.dtype
        )

    def readout(self, hs: jax.Array) -> jax.Array:
        """`(..., N)` hidden states to `(..., O)` outputs `W_out h + b_out`."""
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
        """Outputs `(T, O)` for inputs `(T, M)` (or `(B, T, O)` for `(B, T, M)`); arguments as in `states`."""
        hs = self.states(
            inputs, h0=h0, key=key, noise_std=noise_std, unroll=unroll, backprop=backprop, precision=precision
        )
        prec = None if precision == "default" else lax.Precision.HIGHEST
        z = jnp.einsum("...n,on->...o", hs, self.W_out, precision=prec)
        return z + jnp.reshape(self.b_out, (1,) * (z.ndim - 1) + (-1,))


def _check_sizes(n_inputs, n_units, n_outputs, activation):
    return (
        check_int("n_inputs", n_inputs, 1),
        check_int("n_units", n_units, 1),
        check_int("n_outputs", n_outputs, 1),
        check_activation(activation),
    )


class GRU(_GatedRNN):
    """Gated recurrent unit (`equinox.nn.GRUCell`'s equations) with a linear readout.

    **Fields** (`N` units, `M` inputs, `O` outputs; every array is trained):

    - `W_rec`: `(3N, N)` recurrent weights `[U_r; U_z; U_n]` (reset, update, candidate).
    - `W_in`: `(3N, M)` input weights `[W_r; W_z; W_n]`.
    - `b`: `(3N,)` biases added to the gates' input drive (`b_r`, `b_z`, `b_n'`).
    - `b_n`: `(N,)` recurrent bias of the candidate, inside the reset product `r ⊙ (U_n h + b_n)`.
    - `W_out`: `(O, N)` readout weights; `b_out`: `(O,)` readout bias.
    - `activation`: name of σ, the candidate's nonlinearity (`tanh` as in Keras and equinox).

    The state is `h`: `state_size = N`, `hidden` is the identity. Class attribute `cell = "gru"`.
    """

    cell: ClassVar[str] = "gru"
    state_blocks: ClassVar[int] = 1

    W_rec: jax.Array
    W_in: jax.Array
    b: jax.Array
    b_n: jax.Array
    W_out: jax.Array
    b_out: jax.Array
    activation: str = eqx.field(static=True)

    def __init__(self, n_inputs: int, n_units: int, n_outputs: int, *, key: jax.Array, activation: str = "tanh"):
        """**Arguments:**

        - `n_inputs`, `n_units`, `n_outputs`: `M`, `N`, `O` (integers >= 1).
        - `key`: a PRNG key (keyword-only).
        - `activation`: name of σ (`tanh`, `relu`, `softplus`, `sigmoid`, `linear`).

        Keras' `GRU` initialization: `W_in` `glorot_uniform`, `W_rec` `orthogonal` (orthonormal
        columns), biases zero; the readout `W_out` `glorot_uniform` (Keras `Dense`).
        """
        m, n, o, self.activation = _check_sizes(n_inputs, n_units, n_outputs, activation)
        k_rec, k_in, k_out = jax.random.split(key, 3)
        self.W_rec = _orthogonal_columns(k_rec, 3 * n, n)
        self.W_in = glorot_uniform(k_in, (3 * n, m)).astype(jnp.float32)
        self.b = jnp.zeros(3 * n, jnp.float32)
        self.b_n = jnp.zeros(n, jnp.float32)
        self.W_out = glorot_uniform(k_out, (o, n)).astype(jnp.float32)
        self.b_out = jnp.zeros(o, jnp.float32)

    def _next(self, h, u, precision):
        n = self.n_units
        sigma = get_activation(self.activation)
        v = jnp.matmul(self.W_rec, h, precision=precision)
        r = jax.nn.sigmoid(u[:n] + v[:n])
        z = jax.nn.sigmoid(u[n : 2 * n] + v[n : 2 * n])
        cand = sigma(u[2 * n :] + r * (v[2 * n :] + self.b_n))
        return cand + z * (h - cand)


class LSTM(_GatedRNN):
    """Long short-term memory (`equinox.nn.LSTMCell`'s equations) with a linear readout.

    **Fields** (`N` units, `M` inputs, `O` outputs; every array is trained):

    - `W_rec`: `(4N, N)` recurrent weights `[U_i; U_f; U_g; U_o]` (input, forget, cell, output).
    - `W_in`: `(4N, M)` input weights `[W_i; W_f; W_g; W_o]`.
    - `b`: `(4N,)` biases `[b_i; b_f; b_g; b_o]`.
    - `W_out`: `(O, N)` readout weights (of `h`); `b_out`: `(O,)` readout bias.
    - `activation`: name of σ, applied to the cell candidate `g` and to `c` (`tanh` as in Keras).

    The state is `[h, c]`: `state_size = 2N`, `hidden(s) = s[..., :N]`. Class attribute `cell = "lstm"`.
    """

    cell: ClassVar[str] = "lstm"
    state_blocks: ClassVar[int] = 2

    W_rec: jax.Array
    W_in: jax.Array
    b: jax.Array
    W_out: jax.Array
    b_out: jax.Array
    activation: str = eqx.field(static=True)

    def __init__(self, n_inputs: int, n_units: int, n_outputs: int, *, key: jax.Array, activation: str = "tanh"):
        """**Arguments:**

        - `n_inputs`, `n_units`, `n_outputs`: `M`, `N`, `O` (integers >= 1).
        - `key`: a PRNG key (keyword-only).
        - `activation`: name of σ (`tanh`, `relu`, `softplus`, `sigmoid`, `linear`).

        Keras' `LSTM` initialization: `W_in` `glorot_uniform`, `W_rec` `orthogonal` (orthonormal
        columns), biases zero except the forget gate's, 1 (`unit_forget_bias`); the readout `W_out`
        `glorot_uniform` (Keras `Dense`).
        """
        m, n, o, self.activation = _check_sizes(n_inputs, n_units, n_outputs, activation)
        k_rec, k_in, k_out = jax.random.split(key, 3)
        self.W_rec = _orthogonal_columns(k_rec, 4 * n, n)
        self.W_in = glorot_uniform(k_in, (4 * n, m)).astype(jnp.float32)
        self.b = jnp.zeros(4 * n, jnp.float32).at[n : 2 * n].set(1.0)
        self.W_out = glorot_uniform(k_out, (o, n)).astype(jnp.float32)
        self.b_out = jnp.zeros(o, jnp.float32)

    def _next(self, state, u, precision):
        n = self.n_units
        sigma = get_activation(self.activation)
        h, c = state[:n], state[n:]
        pre = u + jnp.matmul(self.W_rec, h, precision=precision)
        i, f, g, o = (pre[j * n : (j + 1) * n] for j in range(4))
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * sigma(g)
        h = jax.nn.sigmoid(o) * sigma(c)
        return jnp.concatenate([h, c])


class UGRNN(_GatedRNN):
    """Update-gate RNN (Collins, Sohl-Dickstein & Sussillo 2017) with a linear readout.

        g = sigmoid(W_g x + U_g h + b_g)            (update gate)
        c = σ(W_c x + U_c h + b_c)                  (candidate)
        h ← g ⊙ h + (1 − g) ⊙ c

    (TensorFlow's `UGRNNCell`, whose `forget_bias` of 1 is here the initial value of `b_g`.)

    **Fields** (`N` units, `M` inputs, `O` outputs; every array is trained):

    - `W_rec`: `(2N, N)` recurrent weights `[U_g; U_c]` (gate, candidate).
    - `W_in`: `(2N, M)` input weights `[W_g; W_c]`.
    - `b`: `(2N,)` biases `[b_g; b_c]`.
    - `W_out`: `(O, N)` readout weights; `b_out`: `(O,)` readout bias.
    - `activation`: name of σ, the candidate's nonlinearity (`tanh` by default).

    The state is `h`: `state_size = N`, `hidden` is the identity. Class attribute `cell = "ugrnn"`.
    """

    cell: ClassVar[str] = "ugrnn"
    state_blocks: ClassVar[int] = 1

    W_rec: jax.Array
    W_in: jax.Array
    b: jax.Array
    W_out: jax.Array
    b_out: jax.Array
    activation: str = eqx.field(static=True)

    def __init__(self, n_inputs: int, n_units: int, n_outputs: int, *, key: jax.Array, activation: str = "tanh"):
        """**Arguments:**

        - `n_inputs`, `n_units`, `n_outputs`: `M`, `N`, `O` (integers >= 1).
        - `key`: a PRNG key (keyword-only).
        - `activation`: name of σ (`tanh`, `relu`, `softplus`, `sigmoid`, `linear`).

        Initialization as the GRU's: `W_in` `glorot_uniform`, `W_rec` `orthogonal` (orthonormal
        columns), `b_c = 0` and the gate bias `b_g = 1` (TensorFlow's `forget_bias`: the gate starts
        mostly closed, `h` mostly kept); the readout `W_out` `glorot_uniform`.
        """
        m, n, o, self.activation = _check_sizes(n_inputs, n_units, n_outputs, activation)
        k_rec, k_in, k_out = jax.random.split(key, 3)
        self.W_rec = _orthogonal_columns(k_rec, 2 * n, n)
        self.W_in = glorot_uniform(k_in, (2 * n, m)).astype(jnp.float32)
        self.b = jnp.zeros(2 * n, jnp.float32).at[:n].set(1.0)
        self.W_out = glorot_uniform(k_out, (o, n)).astype(jnp.float32)
        self.b_out = jnp.zeros(o, jnp.float32)

    def _next(self, h, u, precision):
        n = self.n_units
        sigma = get_activation(self.activation)
        pre = u + jnp.matmul(self.W_rec, h, precision=precision)
        g = jax.nn.sigmoid(pre[:n])
        c = sigma(pre[n:])
        return c + g * (h - c)


__all__ = ["GRU", "LSTM", "UGRNN"]
