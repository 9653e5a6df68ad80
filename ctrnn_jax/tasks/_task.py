"""The task protocol: what the trainer, the evaluation and the CLI need from a task.

A task is a frozen, JSON-serialisable dataclass with these members (see the README section
"Writing a task" for a complete example):

- `name`: a class attribute, the registry name (`"flipflop"`, `"perceptual_dm"`, ...).
- `n_inputs`, `n_outputs`, `length`: `M`, `O` and `T` of its trials (properties or fields).
- `sample(key, batch_size)`: pure JAX, jit-able with the task static; returns one batch
  `(inputs (B, T, M), targets (B, T, O), mask (B, T, O))`, float32. `mask` weights the squared
  error of every output and step (0 = not scored, e.g. outside a decision's response window).
- `test_set()`: the deterministic test trials `(inputs, targets, mask)`, same shapes with its own B.
- `score(outputs, targets, mask)`: `outputs (K, B, T, O)` → dict of `(K,)` NumPy arrays with at
  least `metric` (the task's headline number), `success` (bool) and `mse` (masked MSE).
- `fixed_point_inputs()`: `(P, M)` NumPy array, the constant inputs at which fixed points matter
  (e.g. zero input, or each context cue with zero evidence).
- `to_dict()` / `from_dict(d)`: the fields as JSON (without `name`; the run records it separately).

Optional members, with defaults for a task that lacks them (`task_hold_steps`, `task_readout_tolerance`):

- `hold_steps()`: the longest time in steps the network must hold a state unaided (the flip-flop: its
  longest hold in the test series); default the test series' length `T`.
- `readout_tolerance()`: how far the readout may drift before the answer is wrong; default `√0.02`,
  the root of the flip-flop's MSE success criterion.
Both set the slow-point threshold of the fixed-point stage (`ctrnn_jax.dynamics.slow_threshold`).
"""

import math
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np


@runtime_checkable
class Task(Protocol):
    """Structural type of a task (see the module docstring)."""

    name: str

    @property
    def n_inputs(self) -> int: ...

    @property
    def n_outputs(self) -> int: ...

    @property
    def length(self) -> int: ...

    def sample(self, key: jax.Array, batch_size: int) -> tuple[jax.Array, jax.Array, jax.Array]: ...

    def test_set(self) -> tuple[jax.Array, jax.Array, jax.Array]: ...

    def score(self, outputs, targets, mask) -> dict[str, np.ndarray]: ...

    def fixed_point_inputs(self) -> np.ndarray: ...

    def to_dict(self) -> dict[str, Any]: ...


def check_task(task: object) -> None:
    """Raise a TypeError naming what is missing unless `task` follows the protocol."""
    needed = ("name", "n_inputs", "n_outputs", "length", "sample", "test_set", "score",
              "fixed_point_inputs", "to_dict")
    missing = [n for n in needed if not hasattr(task, n)]
    if missing:
        raise TypeError(f"`task` must follow the task protocol (ctrnn_jax.tasks._task); "
                        f"{type(task).__name__} lacks {', '.join(missing)}.")


READOUT_TOLERANCE = math.sqrt(0.02)  # the RMS error of the flip-flop's success criterion (MSE < 0.02)


def task_hold_steps(task) -> int:
    """The longest hold of `task` in steps: its `hold_steps()` if it has one, else its test series' length."""
    check_task(task)
    hook = getattr(task, "hold_steps", None)
    steps = hook() if callable(hook) else task.test_set()[0].shape[1]
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"the {task.name} task's `hold_steps()` must be an integer >= 1, got {steps!r}.")
    return int(steps)


def task_readout_tolerance(task) -> float:
    """The readout tolerance of `task`: its `readout_tolerance()` if it has one, else `READOUT_TOLERANCE`
    (`√0.02`)."""
    check_task(task)
    hook = getattr(task, "readout_tolerance", None)
    tol = hook() if callable(hook) else READOUT_TOLERANCE
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating)) or not 0 < tol < math.inf:
        raise ValueError(f"the {task.name} task's `readout_tolerance()` must be a finite number > 0, got {tol!r}.")
    return float(tol)


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
    return {"metric": accuracy, "accuracy": accuracy, "success": accuracy >= threshold,
            "mse": masked_mse_np(outputs, targets, mask)}
