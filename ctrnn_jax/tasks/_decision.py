"""Decision tasks: perceptual (Britten et al. 1992) and context-dependent (Mante et al. 2013).

Both are `AbstractTask`s (`ctrnn_jax.tasks._task`) and share its conventions with the memory tasks
(`ctrnn_jax.tasks._memory`): one output; the target is 0 (scored) while the network must stay quiet, and
`+1` or `-1` in the response window, which runs from the response onset to the end of the trial;
the first `grace` steps of the response window are not scored (mask 0). A trial is scored by the
sign of the mean output over the scored response window (`decision_score`). One step stands for
20 ms. The trial length is fixed; `jitter` draws an extra `U{0..jitter}` steps of a pre-response
epoch (named by each task) per trial and takes them off the response window, which therefore lasts
between `response` and `response + jitter` steps. Gaussian input noise (`noise_std` per step) is
added to the evidence channels during the stimulus epoch only; cues and the other epochs are clean.
"""

import dataclasses
import functools
from typing import Any, ClassVar, cast

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_float, check_int, check_key, config_from_dict
from ._task import AbstractTask, decision_score, sign_groups


def _check_levels(name: str, value: object, min_len: int) -> tuple[float, ...]:
    """A tuple of at least `min_len` distinct reals > 0 (a list is accepted and converted)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        raise TypeError(f"`{name}` must be a tuple of real numbers, got {value!r}.")
    levels = tuple(check_float(f"{name}[{i}]", v) for i, v in enumerate(value))
    if len(levels) < min_len:
        raise ValueError(f"`{name}` must hold at least {min_len} value(s), got {levels}.")
    if any(v <= 0 for v in levels):
        raise ValueError(f"`{name}` must hold values > 0, got {levels}.")
    if len(set(levels)) != len(levels):
        raise ValueError(f"`{name}` must hold distinct values, got {levels}.")
    return levels


def _validate(task, ints: dict[str, int]) -> None:
    """Check the integer fields (`name: minimum`) and the fields every task here has."""
    for name, minimum in ints.items():
        object.__setattr__(task, name, check_int(name, getattr(task, name), minimum))
    noise_std = check_float("noise_std", task.noise_std)
    if noise_std < 0:
        raise ValueError(f"`noise_std` must be >= 0, got {noise_std}.")
    object.__setattr__(task, "noise_std", noise_std)
    accuracy = check_float("success_accuracy", task.success_accuracy)
    if not 0 < accuracy <= 1:
        raise ValueError(f"`success_accuracy` must be in (0, 1], got {accuracy}.")
    object.__setattr__(task, "success_accuracy", accuracy)
    if task.grace >= task.response:
        raise ValueError(
            f"`grace` must be < `response` (some of the response window must be scored), "
            f"got grace={task.grace}, response={task.response}."
        )


def _window(t: jax.Array, start, stop) -> jax.Array:
    """`(T,)` float32: 1 where `start <= t < stop`."""
    return ((t >= start) & (t < stop)).astype(jnp.float32)


def _response(t: jax.Array, onset, answer, grace: int) -> tuple[jax.Array, jax.Array]:
    """`(T, 1)` target (`answer` from `onset` on, else 0) and mask (0 in the grace steps, else 1)."""
    target = jnp.where(t >= onset, answer, 0.0).astype(jnp.float32)
    mask = 1.0 - _window(t, onset, onset + grace)
    return target[:, None], mask[:, None]


def _draw(key: jax.Array, counts: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """`(len(counts),)` int32 choices, choice `i` uniform in `0..counts[i]-1`, and a noise key.

    (One `randint` for all choices: every random call adds to the compile time.)"""
    k_choices, k_noise = jax.random.split(key)
    maxval = np.asarray(counts, np.int32)
    return jax.random.randint(k_choices, maxval.shape, 0, maxval), k_noise


@functools.partial(jax.jit, static_argnums=(0, 2))
def _sample_batch(task, key, batch_size):
    keys = jax.random.split(key, batch_size)
    return jax.vmap(task._sample_one)(keys)


@functools.partial(jax.jit, static_argnums=0)
def _render_batch(task, conditions, shifts, keys):
    return jax.vmap(task._trial)(conditions, shifts, keys)


class _SignTask(AbstractTask):
    """What the tasks here share: sampling, scoring and (de)serialisation.

    A subclass (a frozen dataclass) defines `_trial(condition, shift, key)`, one trial
    `(inputs (T, M), targets (T, 1), mask (T, 1))` from its condition (a pytree of scalars), its
    jitter shift and its noise key, and `_sample_one(key)`, one random trial.
    """

    name: ClassVar[str]
    metric_name: ClassVar[str] = "accuracy"
    success_accuracy: float  # a field of every subclass
    higher_is_better: ClassVar[bool] = True

    @property
    def n_outputs(self) -> int:
        """`O = 1`: the decision output."""
        return 1

    def sample(self, key: jax.Array, batch_size: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Draw a fresh batch of trials. Pure in `key` (trial `b` is a function of
        `jax.random.split(key, batch_size)[b]` only); works inside `jit` and `vmap`.

        **Arguments:**

        - `key`: a typed key from `jax.random.key`, shape `()`.
        - `batch_size`: number of trials `B`, a positive int.

        **Returns:**

        A tuple `(inputs, targets, mask)` of float32 arrays of shapes `(B, T, M)`, `(B, T, 1)`,
        `(B, T, 1)`.
        """
        batch_size = check_int("batch_size", batch_size, 1)
        check_key(key)
        return _sample_batch(self, key, batch_size)

    def score(self, outputs, targets, mask) -> dict[str, np.ndarray]:
        """`decision_score` with threshold `success_accuracy`: `outputs (K, B, T, 1)` → dict of
        `(K,)` arrays `metric` (= `accuracy`), `success`, `mse`."""
        return decision_score(outputs, targets, mask, threshold=self.success_accuracy)

    def success_threshold(self) -> float:
        """`success_accuracy`."""
        return self.success_accuracy

    def trial_groups(self, targets, mask) -> tuple[np.ndarray, tuple[str, ...]]:
        """The trials by their answer (the sign of the target in the response window)."""
        return sign_groups(targets, mask)

    def train_defaults(self) -> dict[str, Any]:
        """Learning rate 3e-3: measured on 8 members x 2000 steps, N = 64, at the flip-flop's lr 1e-2 3 of 8 (dms)
        and 2 of 8 (context_dm) members stayed at chance; at 3e-3 all 8 solved both
        (experiments/task_gallery.py)."""
        return {"learning_rate": 3e-3}

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict (tuples become lists)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(cast(Any, self))
        }  # every subclass is a dataclass

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        """Inverse of `to_dict`; unknown keys raise `ValueError`."""
        return config_from_dict(cls, d)


@dataclasses.dataclass(frozen=True)
class _EvidenceTask(_SignTask):
    """The fields, checks and trial length the two evidence-integration tasks share (documented
    in `PerceptualDMConfig`)."""

    coherences: tuple[float, ...] = (0.1, 0.2, 0.4, 0.8)
    fixation: int = 10
    stimulus: int = 40
    delay: int = 0
    response: int = 20
    jitter: int = 5
    grace: int = 5
    noise_std: float = 0.5
    success_accuracy: float = 0.9
    test_repeats: int = 32
    test_seed: int = 0

    def __post_init__(self):
        _validate(
            self,
            {
                "fixation": 1,
                "stimulus": 1,
                "delay": 0,
                "response": 1,
                "jitter": 0,
                "grace": 0,
                "test_repeats": 1,
                "test_seed": 0,
            },
        )
        object.__setattr__(self, "coherences", _check_levels("coherences", self.coherences, 1))

    @property
    def length(self) -> int:
        """`T = fixation + jitter + stimulus + delay + response`."""
        return self.fixation + self.jitter + self.stimulus + self.delay + self.response


@dataclasses.dataclass(frozen=True)
class PerceptualDMConfig(_EvidenceTask):
    """Perceptual decision making: report the sign of a noisy evidence stream, as monkeys report
    the net direction of random-dot motion (Britten, Shadlen, Newsome & Movshon 1992, J. Neurosci.
    12:4745). One input, one output; `T = fixation + jitter + stimulus + delay + response`.

    Epochs: fixation (`fixation + u` steps, `u ~ U{0..jitter}`, input 0), stimulus (`stimulus`
    steps, input `c + noise_std·N(0, 1)` each step), delay (`delay` steps, input 0), response (to
    the end, target `sign(c)`; the first `grace` steps unscored). Targets are 0 before the response.
    The signed coherence `c` is drawn uniformly from `±coherences`; there are no zero-coherence
    trials. Defaults: T = 75 steps (1.5 s at 20 ms a step), epochs 10 (+0..5) / 40 / 0 / 20 (-5..0).

    With the defaults an ideal observer (the sign of the summed stimulus input) is right with
    probability `Φ(c·√stimulus / noise_std)`: 0.90, 0.99, 1, 1 for the four coherences, about 0.97
    on average, so `success_accuracy = 0.9` is reachable and still needs integration of the
    evidence at the weakest coherence.

    **Fields:**

    - `coherences`: the coherence levels, distinct and > 0, default `(0.1, 0.2, 0.4, 0.8)`.
    - `fixation`, `stimulus`, `delay`, `response`: epoch durations in steps
      (>= 1, >= 1, >= 0, >= 1).
    - `jitter`: extra fixation steps `U{0..jitter}`, taken from the response window, >= 0.
    - `grace`: unscored steps at the start of the response window, `0 <= grace < response`.
    - `noise_std`: std of the per-step Gaussian evidence noise, >= 0.
    - `success_accuracy`: test-set accuracy at which a network counts as trained, in (0, 1].
    - `test_repeats`: trials per signed coherence in the test set, >= 1.
    - `test_seed`: seed of the test set's noise, >= 0.

    The test set (`test_set`) has `2·len(coherences)·test_repeats` trials (256 with the defaults):
    every signed coherence `test_repeats` times, with training noise drawn from `test_seed`, and
    the jitter cycling through `0..jitter` over the repeats.
    """

    name: ClassVar[str] = "perceptual_dm"

    @property
    def n_inputs(self) -> int:
        """`M = 1`: the evidence stream."""
        return 1

    def _trial(self, coherence, shift, key):
        t = jnp.arange(self.length)
        onset = self.fixation + shift
        evidence = jnp.full((self.length,), coherence, jnp.float32)
        if self.noise_std > 0:
            noise = jax.random.normal(key, (self.length,), jnp.float32)
            evidence = evidence + self.noise_std * noise
        inputs = _window(t, onset, onset + self.stimulus) * evidence
        targets, mask = _response(t, onset + self.stimulus + self.delay, jnp.sign(coherence), self.grace)
        return inputs[:, None], targets, mask

    def _sample_one(self, key):
        levels = np.asarray(self.coherences, np.float32)
        signed = jnp.asarray(np.concatenate([levels, -levels]))
        (i, shift), k_noise = _draw(key, (signed.shape[0], self.jitter + 1))
        return self._trial(signed[i], shift, k_noise)

    def test_set(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The deterministic test trials (see the class docstring): trial
        `r·2L + i` has signed coherence `(*coherences, *-coherences)[i]` and jitter
        `r mod (jitter + 1)`, `r < test_repeats`.

        **Returns:** float32 `(inputs (B, T, 1), targets (B, T, 1), mask (B, T, 1))`,
        `B = 2·len(coherences)·test_repeats`.
        """
        levels = np.asarray(self.coherences, np.float32)
        signed = np.concatenate([levels, -levels])
        coherences = np.tile(signed, self.test_repeats)
        shifts = np.repeat(np.arange(self.test_repeats) % (self.jitter + 1), signed.size)
        keys = jax.random.split(jax.random.key(self.test_seed), coherences.size)
        return _render_batch(self, jnp.asarray(coherences), jnp.asarray(shifts, jnp.int32), keys)

    def fixed_point_inputs(self) -> np.ndarray:
        """`(1, 1)`: zero input (fixation, delay and response)."""
        return np.zeros((1, 1), np.float32)

    def relevant_inputs(self) -> np.ndarray:
        """`(1,)`: the evidence stream (channel 0)."""
        return np.array([0])


@dataclasses.dataclass(frozen=True)
class ContextDMConfig(_EvidenceTask):
    """Context-dependent decision making (Mante, Sussillo, Shenoy & Newsome 2013, Nature 503:78):
    two noisy evidence streams (motion and colour) are always shown; a context cue says which one to
    report. Four inputs (`motion`, `colour`, `cue motion`, `cue colour`), one output;
    `T = fixation + jitter + stimulus + delay + response`.

    The one-hot context cue is on for the whole trial (the fixation epoch is the cue epoch).
    Epochs as in `PerceptualDMConfig`: fixation (`fixation + u` steps, `u ~ U{0..jitter}`, evidence
    0), stimulus (each stream `c_k + noise_std·N(0, 1)` per step, noise independent across streams),
    delay (evidence 0), response (to the end, target `sign` of the coherence of the cued stream; the
    first `grace` steps unscored). Context and both signed coherences are drawn independently and
    uniformly (coherences from `±coherences`), so half of the trials are incongruent (the streams
    disagree). Defaults: T = 75 steps, epochs 10 (+0..5) / 40 / 0 / 20 (-5..0); an ideal observer
    of the cued stream is right about 97% of the time (see `PerceptualDMConfig`).

    **Fields:** as in `PerceptualDMConfig` (`coherences` apply to both streams), with
    `test_repeats` repeats of every (context, motion coherence, colour coherence) condition.

    The test set has `2·(2L)²·test_repeats` trials, `L = len(coherences)` (512 with the defaults):
    both contexts × every signed motion coherence × every signed colour coherence (congruent and
    incongruent), `test_repeats` times, with noise from `test_seed` and the jitter cycling through
    `0..jitter` over the repeats.
    """

    name: ClassVar[str] = "context_dm"

    test_repeats: int = 4

    @property
    def n_inputs(self) -> int:
        """`M = 4`: motion evidence, colour evidence, motion cue, colour cue."""
        return 4

    def _trial(self, condition, shift, key):
        context, motion, colour = condition
        t = jnp.arange(self.length)
        onset = self.fixation + shift
        evidence = jnp.stack([motion, colour]).astype(jnp.float32)[None, :]
        if self.noise_std > 0:
            noise = jax.random.normal(key, (self.length, 2), jnp.float32)
            evidence = evidence + self.noise_std * noise
        streams = _window(t, onset, onset + self.stimulus)[:, None] * evidence
        cue = jax.nn.one_hot(context, 2, dtype=jnp.float32)[None, :]
        cues = jnp.broadcast_to(cue, (self.length, 2))
        answer = jnp.sign(jnp.where(context == 0, motion, colour))
        targets, mask = _response(t, onset + self.stimulus + self.delay, answer, self.grace)
        return jnp.concatenate([streams, cues], axis=1), targets, mask

    def _sample_one(self, key):
        levels = np.asarray(self.coherences, np.float32)
        signed = jnp.asarray(np.concatenate([levels, -levels]))
        n = signed.shape[0]
        (context, i, j, shift), k_noise = _draw(key, (2, n, n, self.jitter + 1))
        return self._trial((context, signed[i], signed[j]), shift, k_noise)

    def test_set(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The deterministic test trials (see the class docstring), ordered repeat-major, then
        context, motion coherence, colour coherence (each over `(*coherences, *-coherences)`).

        **Returns:** float32 `(inputs (B, T, 4), targets (B, T, 1), mask (B, T, 1))`,
        `B = 2·(2·len(coherences))²·test_repeats`.
        """
        levels = np.asarray(self.coherences, np.float32)
        signed = np.concatenate([levels, -levels])
        context, motion, colour = (
            np.tile(g.ravel(), self.test_repeats) for g in np.meshgrid(np.arange(2), signed, signed, indexing="ij")
        )
        per_repeat = 2 * signed.size**2
        shifts = np.repeat(np.arange(self.test_repeats) % (self.jitter + 1), per_repeat)
        keys = jax.random.split(jax.random.key(self.test_seed), shifts.size)
        condition = (
            jnp.asarray(context, jnp.int32),
            jnp.asarray(motion, jnp.float32),
            jnp.asarray(colour, jnp.float32),
        )
        return _render_batch(self, condition, jnp.asarray(shifts, jnp.int32), keys)

    def fixed_point_inputs(self) -> np.ndarray:
        """`(2, 4)`: each context cue on, with zero evidence."""
        return np.array([[0, 0, 1, 0], [0, 0, 0, 1]], np.float32)

    def relevant_inputs(self) -> np.ndarray:
        """`(2,)`: motion (channel 0) in the motion context, colour (channel 1) in the colour context."""
        return np.array([0, 1])
