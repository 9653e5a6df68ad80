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

Two variants, both off by default (the paper's set-up above stays the default, bit for bit):

- **binary (cube) flip-flop**, `start_pulse=True` (with `first_pulse_can_be_zero=False`): pulse 1 of
  every bit starts at step 0 with sign ±1, so after its switch (`width + delay` steps) a target is
  never 0 and the memory states are the 2^n_bits corners (the cube: 8 nodes, 12 edges for 3 bits), as
  in Golub's FixedPointFinder example and Maheswaranathan et al. (2019). The steps before a bit's
  first switch carry no target (mask 0), so no "0" memory is trained; the test and validation sets
  mask what precedes their first switch the same way.
- **dense pulses**, `pulses="dense"`: time is cut into slots of `width` steps, and in every slot each
  bit gets a pulse with probability `pulse_prob` (sign ±1 with probability 1/2), independently: with
  `width=1` the Bernoulli-per-step pulses of Sussillo & Barak (2013) and Golub's `FlipFlopData`
  (`p_flip = 0.2`, the default `pulse_prob`, in his 2018 `FlipFlop` example). A slot without a pulse
  leaves the target as it is; the target switches `delay` steps after a pulse ends, as in the paper
  mode (`delay=0`: the step after the pulse; Golub's targets switch on the pulse step itself).
  `first_onset`, `gaps`, `gap_jitter` and `first_pulse_can_be_zero` are not used. Golub's set-up is
  `FlipFlopConfig(pulses="dense", width=1, delay=0, start_pulse=True, first_pulse_can_be_zero=False)`.

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

from .._checks import check_choice, check_float, check_int, check_key, config_from_dict
from ._task import AbstractTask, masked_mse_np

SUCCESS_MSE = 0.02  # the paper's criterion: a member solves the flip-flop when its test MSE is below this

# How pulses are timed (`FlipFlopConfig.pulses`).
PULSES = ("paper", "dense")


def _check_int_tuple(name: str, value: object) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        raise TypeError(f"`{name}` must be a tuple of integers, got {value!r}.")
    return tuple(check_int(f"{name}[{i}]", v, 0) for i, v in enumerate(value))


@dataclasses.dataclass(frozen=True)
class FlipFlopConfig(AbstractTask):
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
    - `start_pulse`: the binary (cube) variant: pulse 1 of every bit starts at step 0 (not at
      `first_onset`) with sign ±1, and the steps before each bit's first switch are masked out (mask 0:
      no "0" target is trained); requires `first_pulse_can_be_zero=False`.
    - `pulses`: `"paper"` (the three timed pulses above) or `"dense"` (in every slot of `width` steps
      a pulse with probability `pulse_prob`; with `width=1` Sussillo & Barak's and Golub's task).
    - `pulse_prob`: the probability of a pulse per bit and slot for `pulses="dense"`, in (0, 1].

    The earliest possible switch of pulse 1 must fall inside the series:
    `first_onset[0] + width + delay < length` (`width + delay < length` with `start_pulse` or dense
    pulses, whose first pulse can start at step 0).
    """

    name: ClassVar[str] = "flipflop"
    metric_name: ClassVar[str] = "mse"
    higher_is_better: ClassVar[bool] = False
    pulse_robustness: ClassVar[bool] = True

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
    start_pulse: bool = False
    pulses: str = "paper"
    pulse_prob: float = 0.2

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        for name, minimum in [("n_bits", 1), ("length", 1), ("width", 1), ("delay", 0), ("gap_jitter", 0)]:
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
            raise ValueError(f"`first_onset` must be a pair (low, high) with 0 <= low < high, got {first_onset}.")
        put("first_onset", first_onset)
        put("gaps", _check_int_tuple("gaps", self.gaps))
        for name in ("first_pulse_can_be_zero", "start_pulse"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"`{name}` must be a bool, got {getattr(self, name)!r}.")
        check_choice("pulses", self.pulses, PULSES)
        pulse_prob = check_float("pulse_prob", self.pulse_prob)
        if not 0 < pulse_prob <= 1:
            raise ValueError(f"`pulse_prob` must be a probability in (0, 1], got {pulse_prob}.")
        put("pulse_prob", pulse_prob)
        if self.start_pulse and self.first_pulse_can_be_zero:
            raise ValueError(
                "`start_pulse=True` gives every bit a ±1 pulse at step 0 (the binary flip-flop, no 0 "
                "target), but `first_pulse_can_be_zero=True` lets pulse 1 be 0; set "
                "`first_pulse_can_be_zero=False`."
            )
        if self.start_pulse or self.pulses == "dense":
            onset, what = 0, "`width + delay`"
        else:
            onset, what = first_onset[0], "`first_onset[0] + width + delay`"
        earliest_switch = onset + self.width + self.delay
        if earliest_switch >= self.length:
            raise ValueError(
                f"task delays shorter than the series are required: {what} "
                f"must be < `length`, got {onset} + {self.width} + {self.delay} = "
                f"{earliest_switch} >= {self.length}."
            )

    @property
    def n_pulses(self) -> int:
        """Number of pulses per bit and series, `len(gaps) + 1`."""
        return len(self.gaps) + 1

    # -- the task interface (AbstractTask) ----------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return self.n_bits

    @property
    def n_outputs(self) -> int:
        return self.n_bits

    def mask(self, targets: jax.Array) -> jax.Array:
        """The loss mask of series with these `targets` `(..., T, n_bits)`: all ones, or with
        `start_pulse` 0 before each bit's first switch (its first non-zero target), 1 from it on."""
        if not self.start_pulse:
            return jnp.ones_like(targets)
        return (jnp.cumsum(jnp.abs(targets), axis=-2) > 0).astype(targets.dtype)

    def sample(self, key: jax.Array, batch_size: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`sample_flipflop` plus its mask (`mask`: all ones for the paper's task): `(inputs, targets,
        mask)`, each `(B, T, n_bits)`."""
        inputs, targets = sample_flipflop(key, self, batch_size)
        return inputs, targets, self.mask(targets)

    def dataset(self, key: jax.Array, n_samples: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`flipflop_dataset` plus its mask (the trainer's data-set mode)."""
        inputs, targets = flipflop_dataset(key, self, n_samples)
        return inputs, targets, self.mask(targets)

    def test_set(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`flipflop_test_set(self)` (the 8-memory-state series for 3 bits) plus its mask (all ones;
        with `start_pulse`, 0 before the first switch)."""
        inputs, targets = flipflop_test_set(self)
        return inputs, targets, self.mask(targets)

    def validation_set(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """A held-out series of the test set's kind, not the test set: the 8-state test's mirror image
        (every pulse of the opposite sign, so the states are visited from the opposite corner) with its
        first pulse 10 steps earlier, `−flipflop_test_set(self, first_onset=20)`, plus an all-ones
        mask. Every state is held as long as in the test (70 steps), so a member's MSE on it tracks
        its test MSE. What the trainer's criterion (`TrainConfig.stop_mse`) evaluates. With
        `start_pulse`, the steps before the first switch are masked as in `test_set`."""
        inputs, targets = flipflop_test_set(self, first_onset=20)
        return -inputs, -targets, self.mask(targets)

    def score(self, outputs, targets, mask, *, threshold: float = SUCCESS_MSE) -> dict[str, np.ndarray]:
        """Per-member test MSE (`metric`, `mse`), the norm of the masked error (`norm`) and `success` (MSE below
        `threshold`, the paper's criterion); `outputs (K, B, T, O)`."""
        mse = masked_mse_np(outputs, targets, mask)
        diff = np.asarray(outputs, np.float64) - np.asarray(targets, np.float64)[None]
        norm = np.sqrt(np.sum(np.asarray(mask, np.float64) * diff**2, axis=(1, 2, 3)))
        return {"metric": mse, "mse": mse, "norm": norm, "success": np.isfinite(mse) & (mse < threshold)}

    def success_threshold(self) -> float:
        """The paper's criterion: test MSE below 0.02."""
        return SUCCESS_MSE

    def test_set_name(self) -> str:
        return "8-memory-state flip-flop test set (paper Fig. 6)"

    def train_defaults(self) -> dict[str, Any]:
        """The flip-flop trains to criterion: it stops once every member's MSE on the validation series is
        below 0.02 and restarts a member still on its initial plateau 500 steps after its start; Adam's beta2 =
        0.95 instead of Keras' 0.999 (every member meets the criterion by step 3100-3500 on seeds 0, 1, 2
        instead of 5900: benchmarks/RESULTS.md, #21)."""
        return {"stop_mse": SUCCESS_MSE, "restart_after": 500, "adam_b2": 0.95}

    @classmethod
    def for_sizes(cls, n_inputs: int, n_outputs: int) -> "FlipFlopConfig":
        """`n_bits = M` when `M = O` (else the defaults)."""
        return cls(n_bits=n_inputs) if n_inputs == n_outputs else cls()

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
    """The paper's pulses: onsets `(n_bits, n_pulses)` int32 and signs `(n_bits, n_pulses)` float32 in
    {-1, 0, +1}. With `start_pulse`, pulse 1 starts at step 0 (the draws stay the same)."""
    p = config.n_pulses
    # One draw for everything (compiles fast): columns are [onset 1, gap jitters, sign choices].
    jitter = (1, config.gap_jitter + 1) if config.gap_jitter > 0 else (0, 1)
    first_sign = (0, 3) if config.first_pulse_can_be_zero else (0, 2)
    bounds = np.array([config.first_onset, *[jitter] * (p - 1), first_sign, *[(0, 2)] * (p - 1)])
    low, high = (np.broadcast_to(b, (config.n_bits, 2 * p)).astype(np.int32) for b in bounds.T)
    draws = jax.random.randint(key, low.shape, low, high, dtype=jnp.int32)
    steps = config.width + jnp.asarray(config.gaps, jnp.int32).reshape(1, -1) + draws[:, 1:p]
    first = jnp.zeros_like(draws[:, :1]) if config.start_pulse else draws[:, :1]
    onsets = jnp.concatenate([first, first + jnp.cumsum(steps, axis=1)], axis=1)
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


def _dense_slots(key: jax.Array, config: FlipFlopConfig) -> jax.Array:
    """The dense pulses: signs `(n_bits, S)` float32 in {-1, 0, +1}, one per slot of `width` steps
    (`S = ceil(length / width)`): ±1 with probability `pulse_prob / 2` each, else 0 (no pulse); slot 0
    always ±1 with `start_pulse`."""
    n_slots = -(-config.length // config.width)
    k_pulse, k_sign = jax.random.split(key)
    pulse = jax.random.bernoulli(k_pulse, config.pulse_prob, (config.n_bits, n_slots))
    if config.start_pulse:
        pulse = pulse.at[:, 0].set(True)
    sign = jnp.where(jax.random.bernoulli(k_sign, 0.5, (config.n_bits, n_slots)), 1.0, -1.0)
    return jnp.where(pulse, sign, 0.0).astype(jnp.float32)


def _render_dense(slots, amplitude, width, delay, length):
    """Clean inputs and targets, both `(length, n_bits)`, from the `(n_bits, S)` slot signs: slot `k`'s
    pulse fills steps `[k·width, (k+1)·width)`; the target at step `t` is the sign of the latest pulse
    whose switch `(k+1)·width + delay` is `<= t` (slots without a pulse leave it as it is), else 0."""
    n_slots = slots.shape[1]
    inputs = amplitude * jnp.repeat(slots, width, axis=1)[:, :length]
    index = jnp.where(slots != 0, jnp.arange(n_slots, dtype=jnp.int32), -1)
    latest = jax.lax.cummax(index, axis=1)  # the latest pulse up to each slot (-1: none)
    held = jnp.where(latest >= 0, jnp.take_along_axis(slots, jnp.maximum(latest, 0), axis=1), 0.0)
    last = (jnp.arange(length, dtype=jnp.int32) - delay) // width - 1  # latest slot switched by step t
    targets = jnp.where(last >= 0, held[:, jnp.clip(last, 0, n_slots - 1)], 0.0)
    return inputs.T, targets.T


def _sample_one(key: jax.Array, config: FlipFlopConfig) -> tuple[jax.Array, jax.Array]:
    k_structure, k_noise = jax.random.split(key)
    if config.pulses == "dense":
        inputs, targets = _render_dense(
            _dense_slots(k_structure, config), config.amplitude, config.width, config.delay, config.length
        )
    else:
        onsets, signs = _pulse_structure(k_structure, config)
        inputs, targets = _render(onsets, signs, config.amplitude, config.width, config.delay, config.length)
    if config.noise_std > 0:
        noise = jax.random.normal(k_noise, inputs.shape, jnp.float32)
        inputs = inputs + config.noise_std * noise
    return inputs, targets


def _check_config(config: object) -> None:
    if not isinstance(config, FlipFlopConfig):
        raise TypeError(f"`config` must be a FlipFlopConfig, got {config!r}.")


def sample_flipflop(key: jax.Array, config: FlipFlopConfig, batch_size: int) -> tuple[jax.Array, jax.Array]:
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
    statistics (`pulses`, `pulse_prob`, `start_pulse`) are not used, but `width` and `delay` are (a
    dense-pulse task with `width=1` gets 1-step test pulses); inputs are scaled by
    `config.amplitude`, targets are ±1 (0 before the first switch; `FlipFlopConfig.test_set` masks
    those steps for the binary variant).

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
        jnp.asarray(onsets, jnp.int32),
        jnp.asarray(signs, jnp.float32),
        config.amplitude,
        config.width,
        config.delay,
        length,
    )
    return inputs[None], targets[None]
