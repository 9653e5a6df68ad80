"""Analytic fixed points shared by the fixed-point and topology tests: decoupled bistable tanh units
`h = tanh(w h)` with the weights `W_DIAG` have their stable points at `±H_STAR` (and a saddle at 0)."""

import math

import numpy as np

W_DIAG = (1.5, 2.0, 3.0)


def tanh_root(w):
    """The positive root of tanh(w h) = h (w > 1), by bisection."""
    lo, hi = 1e-6, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if math.tanh(w * mid) > mid else (lo, mid)
    return 0.5 * (lo + hi)


H_STAR = np.asarray([tanh_root(w) for w in W_DIAG])


def line_attractor_network():
    """`LineAttractorCTRNN` with N = 4, M = O = 3, a = 1: units 0-2 bistable (`W_DIAG`), unit 3 linear
    with self-weight exactly 1 (a line attractor), readout `h_i / H_STAR[i]` of the bistable units. Its
    stable states are 8 lines `(±h1*, ±h2*, ±h3*, t)`, every point with one eigenvalue exactly 1."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    model = LineAttractorCTRNN(3, 4, 3, key=jax.random.key(0), alpha=1.0)
    w_out = np.zeros((3, 4))
    w_out[np.arange(3), np.arange(3)] = 1 / H_STAR
    return eqx.tree_at(
        lambda m: (m.W_rec, m.W_in, m.b, m.W_out, m.b_out),
        model,
        (
            jnp.asarray(np.diag([*W_DIAG, 1.0]), jnp.float32),
            jnp.zeros((4, 3)),
            jnp.zeros(4),
            jnp.asarray(w_out, jnp.float32),
            jnp.zeros(3),
        ),
    )


def _line_attractor_class():
    import jax
    import jax.numpy as jnp

    from ctrnn_jax import CTRNN

    class LineAttractorCTRNN(CTRNN):
        """A test-only CTRNN whose last unit is linear (σ = identity) and the others tanh."""

        def _sigma(self, u):
            return jnp.concatenate([jnp.tanh(u[:-1]), u[-1:]])

        def euler(self, h, drive):
            return (1 - self.alpha) * h + self.alpha * self._sigma(self.W_rec @ h + drive)

        def residual_and_jacobian(self, state, x):
            u = self.W_rec @ state + self.W_in @ x + self.b
            s, ds = jax.jvp(self._sigma, (u,), (jnp.ones_like(u),))
            r = (1 - self.alpha) * state + self.alpha * s - state
            return r, self.alpha * (ds[:, None] * self.W_rec - jnp.eye(state.shape[-1], dtype=state.dtype))

        def states(self, inputs, **options):
            inputs = jnp.asarray(inputs)

            def run(xs):
                def body(h, x):
                    h = self.step(h, x)
                    return h, h

                return jax.lax.scan(body, jnp.zeros(self.n_units, xs.dtype), xs)[1]

            return run(inputs) if inputs.ndim == 2 else jax.vmap(run)(inputs)

    return LineAttractorCTRNN


LineAttractorCTRNN = _line_attractor_class()
