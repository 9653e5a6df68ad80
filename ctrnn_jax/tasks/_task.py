"""The task interface: what the trainer, the evaluation, the fixed-point stage, the analysis and the CLI
need from a task, with a documented default for every optional hook.

Every task subclasses `AbstractTask` (usually as a frozen dataclass; see `docs/tasks.md`, "Writing a
task"). The library never asks which task it has: what is special about a task lives in the task.

**Required** (a subclass that lacks one is refused by `check_task` with a message naming it):

- class attributes `name` (the registry name, e.g. `"flipflop"`), `metric_name` (what `score`'s `metric`
  is, e.g. `"mse"`, `"accuracy"`) and `higher_is_better` (the direction of `metric`: True for an accuracy,
  False for an error; the library never guesses it from a name);
- `n_inputs`, `n_outputs`, `length`: `M`, `O` and `T` of its trials (fields, class attributes or
  properties);
- `sample(key, batch_size)`: pure JAX, jit-able with the task static; one batch `(inputs (B, T, M),
  targets (B, T, O), mask (B, T, O))`, float32. `mask` weights the squared error of every output and step;
- `test_set()`: the deterministic test trials `(inputs, targets, mask)`, same shapes with its own `B`;
- `score(outputs, targets, mask)`: `outputs (K, B, T, O)` → dict of `(K,)` NumPy arrays with at least
  `metric` and `mse` (the masked MSE); any other `(K,)` entry is kept in `eval.json` (`regression_score` and
  `decision_score` are ready-made scorers);
- `success_threshold()`: the value of `metric` a member must reach to count as solving the task (`metric <
  threshold` when lower is better, `metric >= threshold` when higher is better; `passes`);
- `fixed_point_inputs()`: `(P, M)` NumPy array, the constant inputs at which fixed points matter.

**Optional hooks, with their defaults here:** `to_dict`/`from_dict` (a dataclass's fields as JSON),
`dataset` (`sample`), `validation_set` (None: no held-out set for `TrainConfig.stop_mse`), `hold_steps` (the
test series' length), `readout_tolerance` (`√0.02`), `memory_readouts` (None: no memory states),
`trial_groups` (one group of all trials), `test_set_name`, `train_defaults` (no overrides of
`TrainConfig`), `for_sizes` (the defaults, if they fit), the class attribute `pulse_robustness` (False: no
robustness sweep).
"""

import abc
import dataclasses
import math
import typing
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import config_from_dict

READOUT_TOLERANCE = math.sqrt(0.02)  # the RMS error of the flip-flop's success criterion (MSE < 0.02)


class AbstractTask(abc.ABC):
    """The base class of every task (see the module docstring for what a subclass provides).

    **Class variables** (required): `name`, `metric_name`, `higher_is_better`.
    """

    name: ClassVar[str]
    metric_name: ClassVar[str]
    higher_is_better: ClassVar[bool]
    pulse_robustness: ClassVar[bool] = False
    """Whether the analysis runs `robustness_sweep` (input noise and pulse-amplitude levels) on the task: its trials
    are the flip-flop's pulses (`FlipFlopConfig`: True). Default False."""

    # ------------------------------------------------------------------------------------------ required

    @abc.abstractmethod
    def sample(self, key: jax.Array, batch_size: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        """One batch of fresh trials `(inputs (B, T, M), targets (B, T, O), mask (B, T, O))`, float32; pure in
        `key`, jit-able with the task static."""

    @abc.abstractmethod
    def test_set(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The deterministic test trials `(inputs (B, T, M), targets (B, T, O), mask (B, T, O))`."""

    @abc.abstractmethod
    def score(self, outputs, targets, mask) -> dict[str, np.ndarray]:
        """Per-member scores of `outputs (K, B, T, O)` against `targets`, `mask` `(B, T, O)`: a dict of `(K,)`
        arrays with at least `metric` (the task's headline number, `metric_name`) and `mse` (masked)."""

    @abc.abstractmethod
    def success_threshold(self) -> float:
        """The value of `metric` that counts as solving the task (see `passes`)."""

    @abc.abstractmethod
    def fixed_point_inputs(self) -> np.ndarray:
        """`(P, M)`: the constant inputs at which the fixed points matter (e.g. zero input)."""

    # ------------------------------------------------------------------------------------------ defaults

    def passes(self, metric, threshold: float | None = None) -> np.ndarray:
        """`(K,)` bool: whether each member's `metric` reaches `threshold` (default `success_threshold()`) in the
        task's direction: `metric >= threshold` when higher is better, `metric < threshold` otherwise; a
        non-finite metric never passes."""
        metric = np.asarray(metric, np.float64)
        threshold = self.success_threshold() if threshold is None else threshold
        good = metric >= threshold if self.higher_is_better else metric < threshold
        return np.isfinite(metric) & good

    def ranking_score(self, metric) -> np.ndarray:
        """`(K,)` float64, higher is better whatever the metric's direction (non-finite last): what the library
        sorts members by (the best member is its argmax)."""
        return ranked(metric, self.higher_is_better)

    def to_dict(self) -> dict[str, Any]:
        """The task's fields as JSON (a dataclass's fields; tuples become lists). Override for other classes."""
        if not dataclasses.is_dataclass(self):
            raise TypeError(f"{type(self).__name__} is not a dataclass: define its `to_dict` and `from_dict`.")
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        """Inverse of `to_dict` for a dataclass: `cls(**d)`, lists back to tuples for fields typed `tuple[...]`;
        unknown keys raise `ValueError`."""
        if isinstance(d, dict) and dataclasses.is_dataclass(cls):
            hints = typing.get_type_hints(cls)
            d = {
                k: tuple(v) if isinstance(v, list) and typing.get_origin(hints.get(k)) is tuple else v
                for k, v in d.items()
            }
        return config_from_dict(cls, d)

    def dataset(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`n` trials made once for the trainer's data-set mode (`TrainConfig.dataset_size`); default
        `sample(key, n)`."""
        return self.sample(key, n)

    def validation_set(self) -> tuple[jax.Array, jax.Array, jax.Array] | None:
        """Held-out trials for the trainer's criterion (`TrainConfig.stop_mse`), or None (default): the
        criterion then uses the test set."""
        return None

    def hold_steps(self) -> int:
        """The longest time in steps the network must hold a state unaided (sets the slow-point threshold);
        default the test series' length `T`."""
        return int(self.test_set()[0].shape[1])

    def readout_tolerance(self) -> float:
        """How far the readout may drift before the answer is wrong; default `√0.02`, the root of the
        flip-flop's MSE success criterion."""
        return READOUT_TOLERANCE

    def memory_readouts(self) -> np.ndarray | None:
        """`(S, O)` readouts of the task's memory states (the flip-flop: the cube's corners), or None (default):
        a task with memory states gets the memory-state (cube) analysis, the memory check and the robustness
        sweep."""
        return None

    def relevant_inputs(self) -> np.ndarray | None:
        """`(P,)` int or None (default): for each constant input of `fixed_point_inputs`, the input channel whose
        evidence the network must integrate there (a context task: the cued stream), for the selection-vector
        analysis (`ctrnn_jax.selection_analysis`): its overlap is reported as relevant, the other evidence
        channels' as irrelevant. None: every channel is reported alike."""
        return None

    def trial_groups(self, targets, mask) -> tuple[np.ndarray, tuple[str, ...]]:
        """How the test trials are grouped in figures: `(labels (B,) int, names)`, trial `b` in group
        `names[labels[b]]`. Default: one group of every trial."""
        return np.zeros(np.shape(targets)[0], int), ("test trials",)

    def test_set_name(self) -> str:
        """What the test set is, for reports; default `"NAME test set (B trials)"`."""
        return f"{self.name} test set ({self.test_set()[0].shape[0]} trials)"

    def train_defaults(self) -> dict[str, Any]:
        """`TrainConfig` fields whose defaults this task changes (e.g. `{"learning_rate": 3e-3}`); the command
        line shows and uses them unless given explicitly. Default: none."""
        return {}

    @classmethod
    def for_sizes(cls, n_inputs: int, n_outputs: int):
        """The task with its defaults for a network of `n_inputs` and `n_outputs` (the flip-flop takes
        `n_bits = M`); default `cls()` (a task that needs arguments raises `TypeError`)."""
        return cls()


def ranked(metric, higher_is_better: bool) -> np.ndarray:
    """`(K,)` float64 scores of `metric` where higher is better whatever its direction, non-finite last (the best
    member is the argmax)."""
    v = np.asarray(metric, np.float64)
    v = v if higher_is_better else -v
    return np.where(np.isfinite(v), v, -np.inf)


def check_task_class(cls: type) -> None:
    """Raise a TypeError unless the class `cls` has the class attributes every task declares: `name`, `metric_name`
    (non-empty strings) and `higher_is_better` (a bool)."""
    for attr, kind in (("name", str), ("metric_name", str), ("higher_is_better", bool)):
        value = getattr(cls, attr, None)
        if not isinstance(value, kind) or (kind is str and not value):
            raise TypeError(
                f"task class {cls.__name__} needs a class attribute `{attr}` ({kind.__name__}); got {value!r}."
            )


def check_task(task: object) -> None:
    """Raise a TypeError naming what is missing unless `task` is an `AbstractTask` with what it requires."""
    if not isinstance(task, AbstractTask):
        raise TypeError(
            f"`task` must be a subclass instance of ctrnn_jax.AbstractTask (see docs/tasks.md, "
            f"'Writing a task'); got {type(task).__name__}."
        )
    cls = type(task)
    check_task_class(cls)
    missing = [n for n in ("n_inputs", "n_outputs", "length") if not hasattr(task, n)]
    if missing:
        raise TypeError(f"task class {cls.__name__} lacks {', '.join(missing)} (the sizes M, O and T of its trials).")


def task_hold_steps(task) -> int:
    """The longest hold of `task` in steps (its `hold_steps()`), checked."""
    check_task(task)
    steps = task.hold_steps()
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"the {task.name} task's `hold_steps()` must be an integer >= 1, got {steps!r}.")
    return int(steps)


def task_readout_tolerance(task) -> float:
    """The readout tolerance of `task` (its `readout_tolerance()`), checked."""
    check_task(task)
    tol = task.readout_tolerance()
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating)) or not 0 < tol < math.inf:
        raise ValueError(f"the {task.name} task's `readout_tolerance()` must be a finite number > 0, got {tol!r}.")
    return float(tol)


def has_memory_states(task) -> bool:
    """Whether `task` (or None) has memory states (`memory_readouts()` is not None)."""
    return task is not None and task.memory_readouts() is not None


def sign_groups(targets, mask) -> tuple[np.ndarray, tuple[str, ...]]:
    """`trial_groups` of a task whose answer is the sign of the masked target: labels 0, 1, ... over the
    answers present, named `answer −1`, `answer +1` (and `no answer` for 0)."""
    answers = np.sign(np.sum(np.asarray(targets) * (np.asarray(mask) > 0), axis=(1, 2)))
    values = sorted(set(answers.tolist()))
    names = tuple("no answer" if a == 0 else f"answer {'+' if a > 0 else '−'}1" for a in values)
    return np.searchsorted(np.asarray(values), answers).astype(int), names


def masked_mse(outputs: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
    """`Σ mask·(outputs - targets)² / Σ mask` over all axes (0 when the mask is empty).

    With an all-ones mask this is the plain mean squared error."""
    w = jnp.broadcast_to(mask, outputs.shape)
    return jnp.sum(w * (outputs - targets) ** 2) / jnp.maximum(jnp.sum(w), 1.0)


def masked_mse_np(outputs, targets, mask) -> np.ndarray:
    """Per-member masked MSE in float64: `outputs (K, B, T, O)` → `(K,)`."""
    outputs = np.asarray(outputs, np.float64)
    w = np.broadcast_to(np.asarray(mask, np.float64)[None], outputs.shape)
    d = outputs - np.asarray(targets, np.float64)[None]
    return np.sum(w * d**2, axis=(1, 2, 3)) / np.maximum(np.sum(w, axis=(1, 2, 3)), 1.0)


def decision_score(outputs, targets, mask, *, threshold: float = 0.9) -> dict[str, np.ndarray]:
    """Score a task whose answer is the sign of the output in a response window.

    The response window of a trial is where `mask > 0` and `targets != 0`; the choice is the sign
    of the mean output there, the correct answer the sign of the mean target. Trials without a
    response window are ignored.

    **Arguments:**

    - `outputs`: `(K, B, T, O)`; `targets`, `mask`: `(B, T, O)`.
    - `threshold`: a member succeeds when its accuracy is at least this.

    **Returns:** dict of `(K,)` arrays: `accuracy` (= `metric`), `success`, `mse` (masked).
    """
    outputs = np.asarray(outputs, np.float64)
    targets = np.asarray(targets, np.float64)
    window = (np.asarray(mask) > 0) & (targets != 0)  # (B, T, O)
    count = window.sum(axis=(1, 2))  # (B,)
    valid = count > 0
    choice = np.sign(np.sum(outputs * window[None], axis=(2, 3)))  # (K, B)
    answer = np.sign(np.sum(targets * window, axis=(1, 2)))  # (B,)
    correct = (choice == answer[None]) & valid[None]
    accuracy = correct.sum(axis=1) / max(int(valid.sum()), 1)
    return {
        "metric": accuracy,
        "accuracy": accuracy,
        "success": accuracy >= threshold,
        "mse": masked_mse_np(outputs, targets, mask),
    }


def regression_score(outputs, targets, mask, *, threshold: float | None = None) -> dict[str, np.ndarray]:
    """Score a task whose headline number is an error: the per-member masked MSE (lower is better).

    **Arguments:**

    - `outputs`: `(K, B, T, O)`; `targets`, `mask`: `(B, T, O)`.
    - `threshold`: if given, `success` is `mse < threshold` (finite).

    **Returns:** dict of `(K,)` float64 arrays `metric` (= `mse`) and `mse`, and `success` with a threshold. A task
    using it declares `metric_name = "mse"` and `higher_is_better = False`.
    """
    mse = masked_mse_np(outputs, targets, mask)
    out = {"metric": mse, "mse": mse}
    if threshold is not None:
        out["success"] = np.isfinite(mse) & (mse < threshold)
    return out
