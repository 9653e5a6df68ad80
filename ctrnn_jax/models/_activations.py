"""Activation functions, selected by name so that a run folder or an `ensemble.npz`
can record them as a string."""

from collections.abc import Callable

import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "softplus": jax.nn.softplus,
    "sigmoid": jax.nn.sigmoid,
    "linear": lambda u: u,
}


# The range of each activation's values: where a hidden state can lie (`np.inf` where unbounded).
ACTIVATION_RANGES: dict[str, tuple[float, float]] = {
    "tanh": (-1.0, 1.0),
    "relu": (0.0, float("inf")),
    "softplus": (0.0, float("inf")),
    "sigmoid": (0.0, 1.0),
    "linear": (-float("inf"), float("inf")),
}


def activation_range(name: str) -> tuple[float, float]:
    """`(low, high)`, the range of the activation called `name` (infinite where unbounded)."""
    return ACTIVATION_RANGES[check_activation(name)]


def check_activation(name: object) -> str:
    """Return `name` if it names a known activation, else raise a clear error."""
    if not isinstance(name, str):
        raise TypeError(f"`activation` must be a string, got {type(name).__name__}.")
    if name not in ACTIVATIONS:
        allowed = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"`activation` must be one of {allowed}; got {name!r}.")
    return name


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """The function for the activation called `name`."""
    return ACTIVATIONS[check_activation(name)]
