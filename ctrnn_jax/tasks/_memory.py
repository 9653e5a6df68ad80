"""Working-memory tasks: delayed match-to-sample (Freedman & Assad 2006) and parametric working
memory (Romo et al. 1999).

They share the conventions of the decision tasks (`ctrnn_jax.tasks._decision`): one output, target 0
(scored) until the response window and `±1` in it, the first `grace` response steps unscored, one
step for 20 ms, a fixed trial length. Here `jitter` lengthens the delay by `U{0..jitter}` steps
(so the network cannot time the second stimulus) and shortens the response window by as much.
Gaussian input noise (`noise_std` per step) is added to the stimulus channels during the two
stimulus epochs only. The test sets are noise-free and cover every condition at every jitter.
"""

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ._decision import (
    _check_levels,
    _draw,
    _render_batch,
    _response,
    _SignTask,
    _validate,
    _window,
)


def _noise_free_test_set(task, conditions, n_conditions: int):
    """Every condition (a pytree of `(C,)` arrays) at every shift `0..jitter`, noise-free;
    shift-major order (trial `j·C + i` is condition `i` with shift `j`)."""
    reps = task.jitter + 1
    conditions = jax.tree_util.tree_map(lambda c: jnp.asarray(np.tile(c, reps)), conditions)
    shifts = jnp.asarray(np.repeat(np.arange(reps), n_conditions), jnp.int32)
    keys = jax.random.split(jax.random.key(0), reps * n_conditions)  # unused: no noise
    return _render_batch(dataclasses.replace(task, noise_std=0.0), conditions, shifts, keys)


@dataclasses.dataclass(frozen=True)
class _TwoStimulusTask(_SignTask):
    """The epochs, fields and checks the two memory tasks share: fixation, stimulus 1, delay
    (+ jitter), stimulus 2, response (documented in `DelayedMatchConfig`)."""

    fixation: int = 5
    stimulus1: int = 10
    delay: int = 20
    stimulus2: int = 10
    response: int = 20
    jitter: int = 5
    grace: int = 5
    noise_std: float = 0.1
    success_accuracy: float = 0.9

    def __post_init__(self):
        _validate(
            self, {"fixation": 0, "stimulus1": 1, "delay": 0, "stimulus2": 1, "response": 1, "jitter": 0, "grace": 0}
        )

    @property
    def length(self) -> int:
        """`T = fixation + stimulus1 + delay + jitter + stimulus2 + response`."""
        return self.fixation + self.stimulus1 + self.delay + self.jitter + self.stimulus2 + self.response


@dataclasses.dataclass(frozen=True)
class DelayedMatchConfig(_TwoStimulusTask):
    """Delayed match-to-sample with two items (Freedman & Assad 2006, Nature 443:85): a sample
    item, a delay, a test item; report whether the test matches the sample. Two inputs (one
    channel per item, one-hot while an item is shown), one output;
    `T = fixation + stimulus1 + delay + jitter + stimulus2 + response`.

    Epochs: fixation (`fixation` steps, input 0), sample (`stimulus1` steps, the sample item's
    channel at 1), delay (`delay + u` steps, `u ~ U{0..jitter}`, input 0), test (`stimulus2` steps,
    the test item's channel at 1), response (to the end, target `+1` if the items match, else
    `-1`; the first `grace` steps unscored). Noise `noise_std·N(0, 1)` is added to both channels
    during the sample and test epochs. Sample and test items are drawn independently and
    uniformly, so half of the trials match. Defaults: T = 70 steps (1.4 s at 20 ms a step), epochs
    5 / 10 / 20 (+0..5) / 10 / 20 (-5..0).

    **Fields:**

    - `fixation`, `stimulus1` (sample), `delay`, `stimulus2` (test), `response`: epoch durations in
      steps (>= 0, >= 1, >= 0, >= 1, >= 1). (`sample` is the protocol's method, hence the names.)
    - `jitter`: extra delay steps `U{0..jitter}`, taken from the response window, >= 0.
    - `grace`: unscored steps at the start of the response window, `0 <= grace < response`.
    - `noise_std`: std of the per-step Gaussian input noise in the stimulus epochs, >= 0.
    - `success_accuracy`: test-set accuracy at which a network counts as trained, in (0, 1].

    The test set (`test_set`) is noise-free: all 4 (sample, test) pairs at every delay jitter
    `0..jitter`, `4·(jitter + 1)` trials (24 with the defaults).
    """

    name: ClassVar[str] = "dms"

    @property
    def n_inputs(self) -> int:
        """`M = 2`: one channel per item."""
        return 2

    def _trial(self, condition, shift, key):
        sample_item, test_item = condition
        t = jnp.arange(self.length)
        sample_on = self.fixation
        test_on = sample_on + self.stimulus1 + self.delay + shift
        in_sample = _window(t, sample_on, sample_on + self.stimulus1)[:, None]
        in_test = _window(t, test_on, test_on + self.stimulus2)[:, None]
        inputs = (
            in_sample * jax.nn.one_hot(sample_item, 2, dtype=jnp.float32)[None, :]
            + in_test * jax.nn.one_hot(test_item, 2, dtype=jnp.float32)[None, :]
        )
        if self.noise_std > 0:
            noise = self.noise_std * jax.random.normal(key, (self.length, 2), jnp.float32)
            inputs = inputs + (in_sample + in_test) * noise
        answer = jnp.where(sample_item == test_item, 1.0, -1.0)
        targets, mask = _response(t, test_on + self.stimulus2, answer, self.grace)
        return inputs, targets, mask

    def _sample_one(self, key):
        (sample_item, test_item, shift), k_noise = _draw(key, (2, 2, self.jitter + 1))
        return self._trial((sample_item, test_item), shift, k_noise)

    def test_set(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The noise-free test trials: trial `4j + 2s + e` has sample item `s`, test item `e` and
        delay jitter `j`, `j <= jitter`.

        **Returns:** float32 `(inputs (B, T, 2), targets (B, T, 1), mask (B, T, 1))`,
        `B = 4·(jitter + 1)`.
        """
        items = np.array([(s, e) for s in range(2) for e in range(2)], np.int32)
        return _noise_free_test_set(self, (items[:, 0], items[:, 1]), len(items))

    def fixed_point_inputs(self) -> np.ndarray:
        """`(1, 2)`: zero input (fixation, delay and response)."""
        return np.zeros((1, 2), np.float32)


@dataclasses.dataclass(frozen=True)
class ParametricWMConfig(_TwoStimulusTask):
    """Parametric working memory: vibrotactile frequency discrimination (Romo, Brody, Hernández &
    Lemus 1999, Nature 399:470; Jarne's tutorial lists the task citing Roitman & Shadlen 2002): a
    first frequency `f1`, a delay, a second frequency `f2`; report whether `f1 > f2`. One input, one
    output; `T = fixation + stimulus1 + delay + jitter + stimulus2 + response`.

    A frequency `f` enters as the scalar `f / max(frequencies)`, in (0, 1]. Epochs: fixation
    (`fixation` steps, input 0), stimulus 1 (`stimulus1` steps, input `f1` scaled), delay
    (`delay + u` steps, `u ~ U{0..jitter}`, input 0), stimulus 2 (`stimulus2` steps, `f2` scaled),
    response (to the end, target `+1` if `f1 > f2`, else `-1`; the first `grace` steps unscored).
    Noise `noise_std·N(0, 1)` is added during both stimulus epochs. `(f1, f2)` is drawn uniformly
    from the ordered pairs of distinct grid frequencies. Defaults: Romo's base frequencies
    10..34 Hz in 4 Hz steps, T = 70 steps (1.4 s at 20 ms a step), epochs 5 / 10 / 20 (+0..5) / 10
    / 20 (-5..0).

    **Fields:**

    - `frequencies`: the frequency grid (Hz), at least 2, distinct and > 0.
    - `fixation`, `stimulus1`, `delay`, `stimulus2`, `response`: epoch durations in steps
      (>= 0, >= 1, >= 0, >= 1, >= 1).
    - `jitter`: extra delay steps `U{0..jitter}`, taken from the response window, >= 0.
    - `grace`: unscored steps at the start of the response window, `0 <= grace < response`.
    - `noise_std`: std of the per-step Gaussian input noise in the stimulus epochs, >= 0.
    - `success_accuracy`: test-set accuracy at which a network counts as trained, in (0, 1].

    The test set (`test_set`) is noise-free: every ordered pair `f1 != f2` of the grid at every
    delay jitter `0..jitter`, `n(n - 1)·(jitter + 1)` trials for `n` frequencies (252 with the
    defaults).
    """

    name: ClassVar[str] = "parametric_wm"

    frequencies: tuple[float, ...] = (10.0, 14.0, 18.0, 22.0, 26.0, 30.0, 34.0)

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "frequencies", _check_levels("frequencies", self.frequencies, 2))

    @property
    def n_inputs(self) -> int:
        """`M = 1`: the scaled frequency."""
        return 1

    def _pairs(self) -> np.ndarray:
        """`(n(n-1), 2)` float32: the scaled `(f1, f2)` pairs, `f1 != f2`, f1-major."""
        f = np.asarray(self.frequencies, np.float64) / max(self.frequencies)
        pairs = [(a, b) for i, a in enumerate(f) for j, b in enumerate(f) if i != j]
        return np.asarray(pairs, np.float32)

    def _trial(self, condition, shift, key):
        f1, f2 = condition
        t = jnp.arange(self.length)
        on1 = self.fixation
        on2 = on1 + self.stimulus1 + self.delay + shift
        in1 = _window(t, on1, on1 + self.stimulus1)
        in2 = _window(t, on2, on2 + self.stimulus2)
        inputs = in1 * f1 + in2 * f2
        if self.noise_std > 0:
            noise = self.noise_std * jax.random.normal(key, (self.length,), jnp.float32)
            inputs = inputs + (in1 + in2) * noise
        targets, mask = _response(t, on2 + self.stimulus2, jnp.sign(f1 - f2), self.grace)
        return inputs[:, None], targets, mask

    def _sample_one(self, key):
        pairs = jnp.asarray(self._pairs())
        (i, shift), k_noise = _draw(key, (pairs.shape[0], self.jitter + 1))
        return self._trial((pairs[i, 0], pairs[i, 1]), shift, k_noise)

    def test_set(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The noise-free test trials: trial `j·P + p` is pair `p` (f1-major over the grid, `f2`
        over the other frequencies) at delay jitter `j`, `j <= jitter`.

        **Returns:** float32 `(inputs (B, T, 1), targets (B, T, 1), mask (B, T, 1))`,
        `B = n(n - 1)·(jitter + 1)`.
        """
        pairs = self._pairs()
        return _noise_free_test_set(self, (pairs[:, 0], pairs[:, 1]), len(pairs))

    def fixed_point_inputs(self) -> np.ndarray:
        """`(1, 1)`: zero input (fixation, delay and response)."""
        return np.zeros((1, 1), np.float32)
