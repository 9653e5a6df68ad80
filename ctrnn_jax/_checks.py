"""Argument checks shared by the configs and tasks: clear errors that name the argument."""

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import cast

import jax
import jax.numpy as jnp


def check_float(name: str, value: object) -> float:
    """`value` as a finite float, else a TypeError/ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {value!r}.")
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value}.")
    return float(value)


def check_positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    """`value` as a finite float > 0 (>= 0 with `allow_zero`), else a TypeError/ValueError naming `name`
    and the accepted range (infinity and NaN are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {value!r}.")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        interval = "[0, inf)" if allow_zero else "(0, inf)"
        raise ValueError(f"`{name}` must be a finite number in {interval}, got {value!r}.")
    return float(value)


def check_key(key: object) -> None:
    """Raise unless `key` is a single typed PRNG key (a traced one passes too)."""
    if not (isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)):
        raise TypeError(f"`key` must be a typed key from `jax.random.key`, got {key!r}.")
    if key.shape != ():
        raise ValueError(f"`key` must be a single key of shape (), got shape {key.shape}.")


def config_from_dict(cls, d: Mapping):
    """`cls(**d)` for a config dataclass, rejecting what is not a dict of its fields."""
    if not isinstance(d, Mapping):
        raise TypeError(f"expected a dict of {cls.__name__} fields, got {type(d).__name__}.")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; allowed: {sorted(names)}.")
    return cls(**d)


def check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """`value` as an int >= `minimum` (and <= `maximum`, if given), else a TypeError/ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {value!r}.")
    # mypy gives the numbers ABCs no comparison operators (python/mypy#3186):
    if value < minimum or (maximum is not None and value > maximum):  # type: ignore[operator]
        accepted = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"`{name}` must be an integer {accepted}, got {value}.")
    return int(value)


SEED_MAX = 2**32 - 1


def check_seed(name: str, value: object) -> int:
    """`value` as a seed: an integer in [0, 2**32 - 1] (NumPy's range; JAX's keys take it whole)."""
    return check_int(name, value, 0, SEED_MAX)


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """`value` if it is one of `allowed`, else a ValueError naming `name` and the choices."""
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {', '.join(allowed)}; got {value!r}.")
    return cast(str, value)  # one of `allowed`
