"""Tasks added for a family close to Yang et al. 2019 (Nature Neuroscience 22:297): Go, Anti and their delayed
versions (`GoConfig`), and delayed non-match-to-sample (`DelayedNonMatchConfig`).

They share the conventions of the decision and memory tasks (`ctrnn_jax.tasks._decision`, `_memory`): one output,
target 0 (scored) until the response and `±1` from the response onset to the end of the trial, the first `grace`
response steps unscored, one step for 20 ms, a fixed trial length, noise-free test sets covering every condition at
every jitter. `ctrnn_jax.tasks.MultitaskConfig.yang19()` composes them with the decision and memory tasks.
"""

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ._decision import _draw, _response, _SignTask, _validate, _window
from ._memory import DelayedMatchConfig, _noise_free_test_set


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {value!r}.")
    return bool(value)


@dataclasses.dataclass(frozen=True)
class GoConfig(_SignTask):
    """Go, Anti, Delay Go and Delay Anti (Yang et al. 2019's Go family, with two directions): a stimulus points
    left (`-1`) or right (`+1`); when the fixation cue goes off, report its direction (Go) or the opposite one
    (Anti). Inputs: the fixation cue (with `fixation_input`, channel 0), then the stimulus channel; one output;
    `T = fixation + jitter + stimulus + delay + response`.

    Epochs: fixation (`fixation + u` steps, `u ~ U{0..jitter}`, stimulus 0), stimulus (`stimulus` steps, the
    direction `d = ±1` plus `noise_std·N(0, 1)` each step), delay (`delay` steps: with `memory=False` the stimulus
    stays on, to the end of the trial, as in Yang's Go and Anti; with `memory=True` it is off and the direction
    must be held, as in Delay Go and Delay Anti), response (to the end; target `d`, or `-d` with `anti`; the first
    `grace` steps unscored). The fixation cue is 1 until the response onset and 0 from it (its offset is the go
    signal). Directions are drawn uniformly. Defaults: T = 75 steps (1.5 s at 20 ms a step), epochs
    10 (+0..5) / 20 / 20 / 20 (-5..0).

    **Fields:**

    - `anti`: report the opposite direction (Anti, Delay Anti), default False.
    - `memory`: the stimulus goes off after `stimulus` steps (Delay Go, Delay Anti), default False.
    - `fixation_input`: give the fixation cue as input channel 0, default True (`MultitaskConfig` adds its own
      shared fixation cue, so its preset turns it off).
    - `fixation`, `stimulus`, `delay`, `response`: epoch durations in steps (>= 1, >= 1, >= 0, >= 1).
    - `jitter`: extra fixation steps `U{0..jitter}`, taken from the response window, >= 0.
    - `grace`: unscored steps at the start of the response window, `0 <= grace < response`.
    - `noise_std`: std of the per-step Gaussian noise on the stimulus while it is on, >= 0.
    - `success_accuracy`: test-set accuracy at which a network counts as trained, in (0, 1].

    The test set (`test_set`) is noise-free: both directions at every jitter `0..jitter`, `2·(jitter + 1)` trials
    (12 with the defaults); trial `2j + i` has direction `(+1, -1)[i]` and jitter `j`.
    """

    name: ClassVar[str] = "go"

    anti: bool = False
    memory: bool = False
    fixation_input: bool = True
    fixation: int = 10
    stimulus: int = 20
    delay: int = 20
    response: int = 20
    jitter: int = 5
    grace: int = 5
    noise_std: float = 0.1
    success_accuracy: float = 0.9

    def __post_init__(self):
        for flag in ("anti", "memory", "fixation_input"):
            object.__setattr__(self, flag, _check_bool(flag, getattr(self, flag)))
        _validate(self, {"fixation": 1, "stimulus": 1, "delay": 0, "response": 1, "jitter": 0, "grace": 0})

    @property
    def label(self) -> str:
        """Yang's name of the variant: `go`, `anti`, `delay_go` or `delay_anti`."""
        return ("delay_" if self.memory else "") + ("anti" if self.anti else "go")

    @property
    def length(self) -> int:
        """`T = fixation + jitter + stimulus + delay + response`."""
        return self.fixation + self.jitter + self.stimulus + self.delay + self.response

    @property
    def n_inputs(self) -> int:
        """`M = 2` (fixation cue, stimulus) with `fixation_input`, else 1 (the stimulus)."""
        return 2 if self.fixation_input else 1

    def _trial(self, direction, shift, key):
        t = jnp.arange(self.length)
        on = self.fixation + shift
        go = on + self.stimulus + self.delay
        shown = _window(t, on, on + self.stimulus if self.memory else self.length)
        stimulus = shown * direction
        if self.noise_std > 0:
            stimulus = stimulus + shown * (self.noise_std * jax.random.normal(key, (self.length,), jnp.float32))
        answer = -direction if self.anti else direction
        targets, mask = _response(t, go, answer, self.grace)
        channels = [(t < go).astype(jnp.float32), stimulus] if self.fixation_input else [stimulus]
        return jnp.stack(channels, axis=1), targets, mask

    def _sample_one(self, key):
        (i, shift), k_noise = _draw(key, (2, self.jitter + 1))
        return self._trial(jnp.where(i == 0, 1.0, -1.0).astype(jnp.float32), shift, k_noise)

    def test_set(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The noise-free test trials (see the class docstring).

        **Returns:** float32 `(inputs (B, T, M), targets (B, T, 1), mask (B, T, 1))`, `B = 2·(jitter + 1)`.
        """
        return _noise_free_test_set(self, np.array([1.0, -1.0], np.float32), 2)

    def fixed_point_inputs(self) -> np.ndarray:
        """`(1, M)`: the fixation cue on (if an input) and no stimulus: the delay of Delay Go and Delay Anti."""
        return np.eye(1, self.n_inputs, dtype=np.float32) if self.fixation_input else np.zeros((1, 1), np.float32)

    def relevant_inputs(self) -> np.ndarray:
        """`(1,)`: the stimulus channel."""
        return np.array([self.n_inputs - 1])


@dataclasses.dataclass(frozen=True)
class DelayedNonMatchConfig(DelayedMatchConfig):
    """Delayed non-match-to-sample (Yang et al. 2019's DNMS, with two items): `DelayedMatchConfig`'s trials with
    the answer reversed, `+1` when the test item differs from the sample and `-1` when it matches. Inputs, epochs,
    fields, defaults and test set as in `DelayedMatchConfig`."""

    name: ClassVar[str] = "dnms"

    def _trial(self, condition, shift, key):
        inputs, targets, mask = super()._trial(condition, shift, key)
        return inputs, 0.0 - targets, mask  # 0 stays +0
