"""Evaluation of an ensemble on a test set (paper section 5.1)."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ..models._base import AbstractRNN
from ..tasks._task import masked_mse_np
from ._distributed import to_host
from ._ensemble import ensemble_size


def ensemble_outputs(ensemble: AbstractRNN, inputs: ArrayLike) -> jax.Array:
    """Noise-free outputs of every member on shared trials.

    **Arguments:**

    - `ensemble`: a stacked ensemble of `K` members.
    - `inputs`: `(B, T, M)` trials, the same for every member.

    **Returns:** `(K, B, T, O)` outputs.
    """
    return _outputs(ensemble, jnp.asarray(inputs))


@jax.jit
def _outputs(ensemble, inputs):
    return jax.vmap(lambda m: jax.vmap(m)(inputs))(ensemble)


def ensemble_states(ensemble: AbstractRNN, inputs: ArrayLike) -> jax.Array:
    """Noise-free hidden states `(K, B, T, N)` of every member on shared trials `(B, T, M)`."""
    return _states(ensemble, jnp.asarray(inputs))


@jax.jit
def _states(ensemble, inputs):
    return jax.vmap(lambda m: jax.vmap(m.states)(inputs))(ensemble)


def evaluate(
    ensemble: AbstractRNN,
    inputs: ArrayLike,
    targets: ArrayLike,
    *,
    threshold: float = 0.02,
    mask: ArrayLike | None = None,
) -> dict:
    """Per-member test metrics.

    **Arguments:**

    - `ensemble`: a stacked ensemble of `K` members.
    - `inputs`: `(B, T, M)` test trials; `targets`: `(B, T, O)`.
    - `threshold`: a member succeeds when its test MSE is below this.
    - `mask`: `None` (every entry counts) or `(B, T, O)` weights, e.g. the task's `test_set()` mask (the
      binary flip-flop masks the steps before a bit's first switch).

    **Returns:** a dict of NumPy arrays, each `(K,)`: `mse` (mean squared error over trials, time and
    outputs, over the entries the mask keeps), `norm` (Euclidean/Frobenius norm of output minus target over
    the same entries), `success` (bool).
    """
    ensemble_size(ensemble)
    inputs = np.asarray(inputs)
    targets = np.asarray(targets)
    if inputs.ndim != 3 or targets.ndim != 3 or inputs.shape[:2] != targets.shape[:2]:
        raise ValueError(
            f"`inputs` and `targets` must be (B, T, M) and (B, T, O) with the same B and T; "
            f"got {inputs.shape} and {targets.shape}."
        )
    if inputs.shape[2] != ensemble.W_in.shape[-1] or targets.shape[2] != ensemble.W_out.shape[-2]:
        raise ValueError(
            f"the ensemble takes {ensemble.W_in.shape[-1]} inputs and gives {ensemble.W_out.shape[-2]} "
            f"outputs; got `inputs` {inputs.shape} and `targets` {targets.shape}."
        )
    if not threshold > 0:
        raise ValueError(f"`threshold` must be > 0, got {threshold!r}.")
    if mask is not None:
        mask = np.asarray(mask, np.float64)
        if mask.shape != targets.shape or not np.all(np.isfinite(mask)) or np.any(mask < 0) or not mask.sum() > 0:
            raise ValueError(
                f"`mask` must be finite, >= 0, not all 0, and shaped like `targets` {targets.shape}; "
                f"got shape {mask.shape}."
            )
    outputs = to_host(ensemble_outputs(ensemble, inputs))  # members split over processes: gathered
    diff = outputs.astype(np.float64) - targets[None].astype(np.float64)
    if mask is None:
        mse = np.mean(diff**2, axis=(1, 2, 3))
        norm = np.sqrt(np.sum(diff**2, axis=(1, 2, 3)))
    else:
        mse = masked_mse_np(outputs, targets, mask)
        norm = np.sqrt(np.sum(mask * diff**2, axis=(1, 2, 3)))
    success = np.isfinite(mse) & (mse < threshold)
    return {"mse": mse, "norm": norm, "success": success}
