"""Weight initializers of the paper (Keras names), for matrices in `W[post, pre]` orientation."""

import jax
import jax.numpy as jnp

RECURRENT_INITS = ("orthogonal", "normal")
READOUT_INITS = ("glorot_uniform", "normal", "zeros")


def orthogonal(key: jax.Array, n: int, gain: float | jax.Array = 1.0) -> jax.Array:
    """A random `(n, n)` orthogonal matrix (Haar measure) times `gain`, as Keras' `orthogonal`."""
    a = jax.random.normal(key, (n, n))
    q, r = jnp.linalg.qr(a)
    q = q * jnp.sign(jnp.diagonal(r))[None, :]
    return gain * q


def normal(key: jax.Array, shape: tuple[int, int], gain: float | jax.Array = 1.0) -> jax.Array:
    """Gaussian entries with zero mean and variance `gain**2 / fan_in` (`fan_in = shape[1]`)."""
    return gain * jax.random.normal(key, shape) / jnp.sqrt(shape[1])


def glorot_uniform(key: jax.Array, shape: tuple[int, int]) -> jax.Array:
    """Uniform in `±sqrt(6 / (fan_in + fan_out))`, as Keras' `glorot_uniform`."""
    limit = jnp.sqrt(6.0 / (shape[0] + shape[1]))
    return jax.random.uniform(key, shape, minval=-limit, maxval=limit)


def recurrent_init(name: str, key: jax.Array, n: int, gain: float | jax.Array) -> jax.Array:
    """`(n, n)` recurrent weights: `orthogonal` (scaled by `gain`) or `normal` (variance `gain²/n`)."""
    if name == "orthogonal":
        return orthogonal(key, n, gain)
    return normal(key, (n, n), gain)


def readout_init(name: str, key: jax.Array, shape: tuple[int, int]) -> jax.Array:
    """`(O, N)` readout weights: `glorot_uniform` (Keras `Dense` default), `normal` or `zeros`."""
    if name == "glorot_uniform":
        return glorot_uniform(key, shape)
    if name == "normal":
        return normal(key, shape)
    return jnp.zeros(shape)
