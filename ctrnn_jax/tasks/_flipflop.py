"""The 3-bit flip-flop task (Jarne's tutorial, as its published code runs it).

Each of `n_bits` independent channels receives short pulses, `+amplitude` ("set") or `-amplitude`
("reset"), plus Gaussian noise; the network must output, per channel, the sign of the latest pulse
and hold it. The output switches `delay` steps after the pulse *ends*, and is 0 before the first
effective pulse (a zero-amplitude pulse 1 leaves it 0 until pulse 2 switches). Targets are ±1
whatever the input `amplitude`. Defaults follow `shared/paper/PARAMETERS.md` (1 step = 1 ms):

- series of 340 steps (the text says 350; the code uses 320 + the 20 ms delay);
- pulses 20 steps wide; three per bit and series: pulse 1 starts at U{10..99} with amplitude
  +1, -1 or 0 (no pulse) with probability 1/3 each; pulse 2 starts 50 + U{1..50} steps after pulse 1
  ends, pulse 3 starts 80 + U{1..50} steps after pulse 2 ends, both ±1 with probability 1/2 (pulses
  past the end of the series are cut or absent);
- target switches 20 steps after a pulse ends; input noise std 0.1, targets clean;
- the paper trained on 30050 series (`flipflop_dataset`); `sample_flipflop` draws fresh batches.

Unlike the original code, targets are not zeroed at the last step, the 8-state test set pairs each
target with its own input channel, and everything is reproducible from a `jax.random.key`.
Every series is a pure function of its own key (see `sample_flipflop`), so a batch, a chunked data
set and a `vmap` over keys hold the same series (targets bit for bit; inputs up to float rounding
of the noise between compiled programs), and the pulse structure never depends on `noise_std`.
"""

import dataclasses
import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_float, check_int, check_key, config_from_dict


def _check_int_tuple(name: str, value: object) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        raise TypeError(f"`{name}` must be a tuple of integers, got {value!r}.")
    return tuple(check_int(f"{name}[{i}]", v, 0) for i, v in enumerate(value))


@dataclasses.dataclass(frozen=True)
class FlipFlopConfig:
    """Set-up of the flip-flop task; defaults are the paper's code. JSON-serialisable.

    **Fields:**

    - `n_bits`: number of independent channels (inputs = outputs), >= 1.
    - `length`: series length `T` in steps, >= 1.
    - `width`: pulse width in steps, >= 1.
    - `delay`: the target switches `delay` steps after a pulse ends, >= 0.
    - `noise_std`: std of the additive Gaussian input noise, >= 0 (targets stay clean).
    - `amplitude`: pulse amplitude, > 0 (`+amplitude` sets, `-amplitude` resets). Targets are ±1.
    - `first_onset`: `(low, high)`; pulse 1 starts at U{low..high-1}, `0 <= low < high`.
    - `gaps`: base gap (steps) after pulse `i` ends before pulse `i+1` starts; `len(gaps) + 1` pulses.
    - `gap_jitter`: every gap is lengthened by U{1..gap_jitter} steps (0: no jitter), >= 0.
    - `first_pulse_can_be_zero`: pulse 1 is +1, -1 or 0 with probability 1/3 each if `True`,
      else ±1 with probability 1/2. Later pulses are always ±1 with probability 1/2.

    The earliest possible switch of pulse 1 must fall inside the series:
    `first_onset[0] + width + delay < length`.
    """

    name: ClassVar[str] = "flipflop"

    n_bits: int = 3
    length: int = 340
    width: int = 20
    delay: int = 20
    noise_std: float = 0.1
    amplitude: float = 1.0
    first_onset: tuple[int, int] = (10, 100)
    gaps: tuple[int, ...] = (50, 80)
    gap_jitter: int = 50
    first_pulse_can_be_zero: bool = True

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        for name, minimum in [("n_bits", 1), ("length", 1), ("width", 1), ("delay", 0),
                              ("gap_jitter", 0)]:
            put(name, check_int(name, getattr(self, name), minimum))
        noise_std = check_float("noise_std", self.noise_std)
        if noise_std < 0:
            raise ValueError(f"`noise_std` must be >= 0, got {noise_std}.")
        amplitude = check_float("amplitude", self.amplitude)
        if amplitude <= 0:
            raise ValueError(f"`amplitude` must be > 0, got {amplitude}.")
        put("noise_std", noise_std)
        put("amplitude", amplitude)
        first_onset = _check_int_tuple("first_onset", self.first_onset)
        if len(first_onset) != 2 or first_onset[0] >= first_onset[1]:
            raise ValueError(
                f"`first_onset` must be a pair (low, high) with 0 <= low < high, got {first_onset}."
            )
        put("first_onset", first_onset)
        put("gaps", _check_int_tuple("gaps", self.gaps))
        if not isinstance(self.first_pulse_can_be_zero, bool):
            raise TypeError(
                f"`first_pulse_can_be_zero` must be a bool, got {self.first_pulse_can_be_zero!r}."
            )
        earliest_switch = first_onset[0] + self.width + self.delay
        if earliest_switch >= self.length:
            raise ValueError(
                "task delays shorter than the series are required: `first_onset[0] + width + delay` "
                f"must be < `length`, got {first_onset[0]} + {self.width} + {self.delay} = "
                f"{earliest_switch} >= {self.length}."
            )

    @property
    def n_pulses(self) -> int:
        """Number of pulses per bit and series, `len(gaps) + 1`."""
        return len(self.gaps) + 1

    # -- the task protocol (ctrnn_jax.tasks._task) ----------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return self.n_bits

    @property
    def n_outputs(self) -> int:
        return self.n_bits

    def sample(self, key: jax.Array, batch_size: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`sample_flipflop` plus an all-ones mask: `(inputs, targets, mask)`, each `(B, T, n_bits)`."""
        inputs, targets = sample_flipflop(key, self, batch_size)
        return inputs, targets, jnp.ones_like(targets)

    def dataset(self, key: jax.Array, n_samples: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`flipflop_dataset` plus an all-ones mask (the trainer's data-set mode)."""
        inputs, targets = flipflop_dataset(key, self, n_samples)
        return inputs, targets, jnp.ones_like(targets)

    def test_set(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`flipflop_test_set(self)` (the 8-memory-state series for 3 bits) plus an all-ones mask."""
        inputs, targets = flipflop_test_set(self)
        return inputs, targets, jnp.ones_like(targets)

    def validation_set(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """A held-out series of the test set's kind, not the test set: `flipflop_test_set(self,
        period=60, first_onset=20)` (every state visited twice, held 60 steps instead of 70, so more
        switches per step than the test), plus an all-ones mask. What the trainer's criterion
        (`TrainConfig.stop_mse`) evaluates."""
        inputs, targets = flipflop_test_set(self, period=max(60, self.width), first_onset=20)
        return inputs, targets, jnp.ones_like(targets)

    def score(self, outputs, targets, mask, *, threshold: float = 0.02) -> dict[str, np.ndarray]:
        """Per-member test MSE (`metric`, `mse`) and `success` (MSE below `threshold`, the paper's
        criterion); `outputs (K, B, T, O)`."""
        from ._task import masked_mse_np
        mse = masked_mse_np(outputs, targets, mask)
        return {"metric": mse, "mse": mse, "success": np.isfinite(mse) & (mse < threshold)}

    def fixed_point_inputs(self) -> np.ndarray:
        """Zero input: the memory states are the fixed points without input, `(1, n_bits)`."""
        return np.zeros((1, self.n_bits), np.float32)

    def memory_readouts(self) -> np.ndarray:
        """The readouts of the memory states, `(2^n_bits, n_bits)`: the corners of {−1, +1}^n_bits (in
        `itertools.product` order). The task hook of the memory-state (cube) analysis: a task that
        defines it gets, for every member, which memory states have a stable fixed point."""
        import itertools
        return np.asarray(list(itertools.product((-1.0, 1.0), repeat=self.n_bits)), np.float32)

    def hold_steps(self) -> int:
        """The longest time a memory state is held in the 8-state test series (`flipflop_test_set`): the
        longest run of one nonzero target on a channel (280 steps with the defaults: channel C holds 4
        pulse periods). The task hook of the slow-point threshold (`ctrnn_jax.tasks._task.task_hold_steps`)."""
        targets = np.asarray(flipflop_test_set(self)[1][0])  # (T, n_bits)
        change = np.diff(targets, axis=0) != 0
        longest = 0
        for c in range(targets.shape[1]):  # a handful of channels
            bounds = np.concatenate([[0], np.flatnonzero(change[:, c]) + 1, [len(targets)]])
            held = (np.diff(bounds))[targets[bounds[:-1], c] != 0]
            longest = max(longest, int(held.max(initial=0)))
        return max(longest, 1)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["first_onset"] = list(self.first_onset)
        d["gaps"] = list(self.gaps)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FlipFlopConfig":
        """Inverse of `to_dict`; unknown keys raise `ValueError`."""
        return config_from_dict(cls, d)


def _pulse_structure(key: jax.Array, config: FlipFlopConfig) -> tuple[jax.Array, jax.Array]:
    """Onsets `(n_bits, n_pulses)` int32 and signs `(n_bits, n_pulses)` float32 in {-1, 0, +1}."""
    p = config.n_pulses
    # One draw for everything (compiles fast): columns are [onset 1, gap jitters, sign choices].
    jitter = (1, config.gap_jitter + 1) if config.gap_jitter > 0 else (0, 1)
    first_sign = (0, 3) if config.first_pulse_can_be_zero else (0, 2)
    bounds = np.array([config.first_onset, *[jitter] * (p - 1), first_sign, *[(0, 2)] * (p - 1)])
    low, high = (np.broadcast_to(b, (config.n_bits, 2 * p)).astype(np.int32) for b in bounds.T)
    draws = jax.random.randint(key, low.shape, low, high, dtype=jnp.int32)
    steps = config.width + jnp.asarray(config.gaps, jnp.int32).reshape(1, -1) + draws[:, 1:p]
    onsets = jnp.concatenate([draws[:, :1], draws[:, :1] + jnp.cumsum(steps, axis=1)], axis=1)
    signs = jnp.asarray([1.0, -1.0, 0.0], jnp.float32)[draws[:, p:]]  # choice 2 only for pulse 1
    return onsets, signs


def _render(onsets, signs, amplitude, width, delay, length):
    """Clean inputs and targets, both `(length, n_bits)`, from `(n_bits, P)` onsets and signs."""
    t = jnp.arange(length, dtype=jnp.int32).reshape(1, 1, -1)
    onsets = onsets[..., None]
    active = ((t >= onsets) & (t < onsets + width)).astype(jnp.float32)
    inputs = amplitude * jnp.sum(signs[..., None] * active, axis=1)
    # Switch times increase with the pulse index, so the latest switched sign telescopes.
    switched = (t >= onsets + (width + delay)).astype(jnp.float32)
    steps = signs - jnp.pad(signs[:, :-1], ((0, 0), (1, 0)))
    targets = jnp.sum(steps[..., None] * switched, axis=1)
    return inputs.T, targets.T


def _sample_one(key: jax.Array, config: FlipFlopConfig) -> tuple[jax.Array, jax.Array]:
    k_structure, k_noise = jax.random.split(key)
    onsets, signs = _pulse_structure(k_structure, config)
    inputs, targets = _render(
        onsets, signs, config.amplitude, config.width, config.delay, config.length
    )
    if config.noise_std > 0:
        noise = jax.random.normal(k_noise, inputs.shape, jnp.float32)
        inputs = inputs + config.noise_std * noise
    return inputs, targets


def _check_config(config: object) -> None:
    if not isinstance(config, FlipFlopConfig):
        raise TypeError(f"`config` must be a FlipFlopConfig, got {config!r}.")


def sample_flipflop(
    key: jax.Array, config: FlipFlopConfig, batch_size: int
) -> tuple[jax.Array, jax.Array]:
    """Draw a fresh batch of flip-flop series. Pure in `key`; `jit` with `config` and
    `batch_size` static (`jax.jit(sample_flipflop, static_argnums=(1, 2))`), or `vmap` over keys.

    Series `b` is a function of `jax.random.split(key, batch_size)[b]` only, and its pulses do not
    depend on `config.noise_std`.

    **Arguments:**

    - `key`: a typed key from `jax.random.key`, shape `()`.
    - `config`: a `FlipFlopConfig`.
    - `batch_size`: number of series `B`, a positive int.

    **Returns:**

    A tuple `(inputs, targets)`:

    - `inputs`: float32 array of shape `(B, T, n_bits)`, pulses plus noise.
    - `targets`: float32 array of shape `(B, T, n_bits)`, values in {-1, 0, +1}.
    """
    _check_config(config)
    batch_size = check_int("batch_size", batch_size, 1)
    check_key(key)
    return _sample_batch(key, config, batch_size)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _sample_batch(key, config, batch_size):
    keys = jax.random.split(key, batch_size)
    return jax.vmap(_sample_one, in_axes=(0, None))(keys, config)


def flipflop_dataset(
    key: jax.Array, config: FlipFlopConfig, n_samples: int, *, chunk_size: int = 4096
) -> tuple[jax.Array, jax.Array]:
    """A fixed data set, for training in epochs (the paper used 30050 series).

    Generated `chunk_size` series at a time to bound memory. Whatever `chunk_size` is, these are the
    series of `sample_flipflop(key, config, n_samples)` (equal up to float rounding of the noise).

    **Arguments:**

    - `key`: a typed key from `jax.random.key`, shape `()`.
    - `config`: a `FlipFlopConfig`.
    - `n_samples`: number of series `S`, a positive int.
    - `chunk_size`: series generated per vectorised chunk, a positive int.

    **Returns:**

    A tuple `(inputs, targets)` of float32 arrays of shape `(S, T, n_bits)`, as in `sample_flipflop`.
    """
    _check_config(config)
    n_samples = check_int("n_samples", n_samples, 1)
    chunk_size = check_int("chunk_size", chunk_size, 1)
    check_key(key)
    chunk_size = min(chunk_size, n_samples)
    n_chunks = -(-n_samples // chunk_size)
    keys = jax.random.split(key, n_samples)
    # Pad with repeated keys to whole chunks; the extra series are dropped.
    keys = jnp.concatenate([keys, keys[: n_chunks * chunk_size - n_samples]])
    inputs, targets = _dataset(keys.reshape(n_chunks, chunk_size), config)
    shape = (n_chunks * chunk_size, config.length, config.n_bits)
    return inputs.reshape(shape)[:n_samples], targets.reshape(shape)[:n_samples]


@functools.partial(jax.jit, static_argnums=1)
def _dataset(keys, config):
    sample_chunk = jax.vmap(_sample_one, in_axes=(0, None))
    return jax.lax.map(lambda k: sample_chunk(k, config), keys)


def flipflop_test_set(
    config: FlipFlopConfig = FlipFlopConfig(),
    *,
    period: int = 70,
    first_onset: int = 30,
    n_pulses: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """The deterministic, noise-free "8-memory-state" test series (paper Fig. 6).

    Every channel gets pulses of `config.width` steps at onsets `first_onset + period * k`,
    `k = 0..n_pulses-1`, with signs: channel 0 (A) `+ + - -` repeating, channel 1 (B) `+ - + -`,
    channel 2 (C) `+ + + + - - - -`. Each channel's target is its own flip-flop state, switching
    `config.delay` steps after its pulse ends (at `70 + 70k` with the defaults). Every state is
    held `period` steps, so 8 consecutive pulses make the outputs visit all 8 sign combinations;
    with the default 16 pulses they visit them twice. Other numbers of bits: channel `i >= 3`
    flips every `2**i` pulses, and the default `n_pulses` is `max(16, 2**(n_bits + 1))`, so the
    outputs visit all `2**n_bits` states twice. `config.length`, `noise_std` and the pulse
    statistics are not used; inputs are scaled by `config.amplitude`, targets are ±1 (0 before the
    first switch).

    **Arguments:**

    - `config`: a `FlipFlopConfig`.
    - `period`: steps between onsets, an int >= `config.width`.
    - `first_onset`: onset of the first pulse, an int >= 0.
    - `n_pulses`: pulses per channel, an int >= 1.

    **Returns:**

    A tuple `(inputs, targets)` of float32 arrays of shape `(1, T, n_bits)`, with
    `T = first_onset + n_pulses * period + width + delay` (1190 with the defaults).
    """
    _check_config(config)
    period = check_int("period", period, 1)
    if period < config.width:
        raise ValueError(f"`period` must be >= `width` ({config.width}), got {period}.")
    first_onset = check_int("first_onset", first_onset, 0)
    n = config.n_bits
    n_pulses = max(16, 2 ** (n + 1)) if n_pulses is None else check_int("n_pulses", n_pulses, 1)
    k = np.arange(n_pulses)
    # channel 0 (A) flips every 2 pulses, 1 (B) every pulse, 2 (C) every 4, channel i >= 3 every 2**i
    periods = [2, 1, 4, *[2**i for i in range(3, n)]][:n]
    signs = 1.0 - 2.0 * np.stack([(k // p) % 2 for p in periods])  # (n_bits, n_pulses)
    onsets = np.broadcast_to(first_onset + period * k, (n, n_pulses))
    length = first_onset + n_pulses * period + config.width + config.delay
    inputs, targets = _render(
        jnp.asarray(onsets, jnp.int32), jnp.asarray(signs, jnp.float32),
        config.amplitude, config.width, config.delay, length,
    )
    return inputs[None], targets[None]
