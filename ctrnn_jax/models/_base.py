"""The interface every recurrent network implements: what training, the fixed-point finder and the
analysis need of a cell, so that none of them asks which cell it has.

A network maps a flat state `s` of size `state_size` one step at a constant input `x`:
`s ← F(s, x)` (`step`). Its hidden activity is `h = hidden(s)` (`N = n_units` entries) and its output
`z = readout(h)`. For the CTRNN `s = h`; for the GRU and UGRNN too; for the LSTM `s = [h, c]`.

Fixed points `F(s*, x) = s*` are found with the residual `F(s) − s` and its Jacobian `∂F/∂s − I`
(`residual_and_jacobian`; by `jax.jacfwd` unless a cell has an analytic one, like the CTRNN); their
linearization also uses the input Jacobian `∂F/∂x` (`input_jacobian`).
"""

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


class AbstractRNN(eqx.Module):
    """A recurrent network with a linear readout, acting on one trial (batch and ensemble axes come from
    `vmap`; a stacked ensemble is the same class with a leading member axis on every array).

    Subclasses (`CTRNN`, `GRU`, `LSTM`, `UGRNN`) have the arrays `W_rec` (`(G·N, N)`: `G` gate blocks
    stacked, `G = 1` for the CTRNN), `W_in` (`(G·N, M)`), `b`, `W_out` (`(O, N)`) and `b_out`, and
    implement:

    - `step(state, x)`: the one-step map `F` on the flat state `(S,)` at the input `(M,)`;
    - `full_states(inputs, ...)` / `states(inputs, ...)` / `__call__(inputs, ...)`: the flat states,
      the hidden states and the outputs over a trial `(T, M)` or a batch `(B, T, M)`.

    A cell of one's own subclasses it the same way (see the docs page "Writing a cell"). Its constructor
    must read `Cls(n_inputs, n_units, n_outputs, *, key, **options)` (`M`, `N`, `O`, a PRNG key, then
    keyword options, e.g. `activation`), as the built-in cells' do: `make_ensemble` builds members with it
    and `load_npz` rebuilds the structure from `options()` before filling in the saved arrays.

    **Class variables:**

    - `cell`: the cell's name (`"ctrnn"`, `"gru"`, `"lstm"`, `"ugrnn"`, or a cell's own), as in
      `EnsembleConfig.cell` for the built-in ones.
    - `untrained`: names of array fields that training never changes (the CTRNN's `alpha`).
    - `state_blocks`: `state_size / n_units` (2 for the LSTM's `[h, c]`, else 1).
    """

    cell: ClassVar[str]
    untrained: ClassVar[tuple[str, ...]] = ()
    state_blocks: ClassVar[int] = 1

    W_rec: eqx.AbstractVar[jax.Array]
    W_in: eqx.AbstractVar[jax.Array]
    W_out: eqx.AbstractVar[jax.Array]
    b_out: eqx.AbstractVar[jax.Array]
    activation: eqx.AbstractVar[str]

    @abc.abstractmethod
    def step(self, state: jax.Array, x: jax.Array) -> jax.Array:
        """The one-step map `F(s)` on the flat state `s` of shape `(state_size,)` at the input `x` of
        shape `(M,)`."""

    @abc.abstractmethod
    def full_states(self, inputs: jax.Array, **options) -> jax.Array:
        """The flat states `(T, S)` or `(B, T, S)` over a trial or a batch."""

    @abc.abstractmethod
    def states(self, inputs: jax.Array, **options) -> jax.Array:
        """The hidden states `(T, N)` or `(B, T, N)` over a trial or a batch."""

    def options(self) -> dict:
        """The keyword options of the constructor that set the network's structure, as a JSON-able dict:
        `type(self)(n_inputs, n_units, n_outputs, key=key, **self.options())` has the same fields,
        static values and array shapes (its arrays are then replaced by the saved ones). `load_npz` rebuilds
        a cell of one's own this way. Default `{"activation": self.activation}`; a cell with more static
        fields (a rank, a time constant kept static) overrides it."""
        return {"activation": self.activation}

    @property
    def n_units(self) -> int:
        """`N`, the hidden units."""
        return self.W_rec.shape[-1]

    @property
    def n_inputs(self) -> int:
        """`M`, the inputs."""
        return self.W_in.shape[-1]

    @property
    def n_outputs(self) -> int:
        """`O`, the outputs."""
        return self.W_out.shape[-2]

    @property
    def state_size(self) -> int:
        """`S`, the size of the flat state `step` maps (`N`, or `2N` for the LSTM)."""
        return self.state_blocks * self.n_units

    @property
    def dt_tau(self) -> jax.Array | float:
        """`a = dt/tau`, the step of the flow `ds/dt = (F(s) − s)/a` whose Euler step is `F` (the CTRNN's
        `alpha`; 1 for the discrete-time gated cells). Sets the continuous-time stability and how long
        the finder follows trajectories (`50/a` steps)."""
        return 1.0

    @property
    def recurrent_matrix(self) -> jax.Array | None:
        """The `(N, N)` connectivity `W_rec` whose spectrum the paper studies, or None when the cell's
        `W_rec` stacks gate blocks (the gated cells)."""
        return None

    def hidden(self, state: jax.Array) -> jax.Array:
        """`(..., S)` flat states to `(..., N)` hidden states `h` (the first `N` entries)."""
        return state[..., : self.n_units]

    def readout(self, hs: jax.Array) -> jax.Array:
        """`(..., N)` hidden states to `(..., O)` outputs `W_out h + b_out`."""
        return hs @ jnp.swapaxes(self.W_out, -1, -2) + jnp.reshape(self.b_out, (1,) * (hs.ndim - 1) + (-1,))

    def residual_and_jacobian(self, state: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """`(F(s) − s, ∂F/∂s − I)` at the state `(S,)` and input `(M,)`: `(S,)` and `(S, S)`. By
        `jax.jacfwd` here; a cell with an analytic Jacobian overrides it."""
        r = self.step(state, x) - state
        return r, jax.jacfwd(lambda s: self.step(s, x))(state) - jnp.eye(state.shape[-1], dtype=state.dtype)

    def input_jacobian(self, state: jax.Array, x: jax.Array) -> jax.Array:
        """`∂F/∂x`, `(S, M)`: how one step of the map moves the state per unit of each input, at the state
        `(S,)` and input `(M,)` (the `B` of the linearization `δs' = A δs + B δx`). By `jax.jacfwd` here;
        a cell with an analytic one may override it."""
        return jax.jacfwd(lambda u: self.step(state, u))(x)

    def state_range(self) -> tuple[np.ndarray, np.ndarray]:
        """`(S,)` lower and upper bounds of the states the network can reach (infinite where the
        activation is unbounded), for candidates drawn over the state space: the hidden part lies in
        the range of the activation (tanh `(−1, 1)`, sigmoid `(0, 1)`, relu/softplus `[0, ∞)`); the
        LSTM's cell state `c` is unbounded."""
        from ._activations import activation_range

        lo, hi = activation_range(self.activation)
        n, s = self.n_units, self.state_size
        low = np.full(s, -np.inf)
        high = np.full(s, np.inf)
        low[:n], high[:n] = lo, hi
        return low, high


__all__ = ["AbstractRNN"]
