"""Evaluation of an ensemble on a test set (paper section 5.1)."""

import jax
import jax.numpy as jnp
import numpy as np

from ..models._model import CTRNN
from ._distributed import to_host
from ._ensemble import ensemble_size


def ensemble_outputs(ensemble: CTRNN, inputs: jax.Array) -> jax.Array:
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


def ensemble_states(ensemble: CTRNN, inputs: jax.Array) -> jax.Array:
    """Noise-free hidden states `(K, B, T, N)` of every member on shared trials `(B, T, M)`."""
    return _states(ensemble, jnp.asarray(inputs))


@jax.jit
def _states(ensemble, inputs):
    return jax.vmap(lambda m: jax.vmap(m.states)(inputs))(ensemble)


def evaluate(ensemble: CTRNN, inputs: jax.Array, targets: jax.Array, *, threshold: float = 0.02) -> dict:
    """Per-member test metrics.

    **Arguments:**

    - `ensemble`: a stacked ensemble of `K` members.
    - `inputs`: `(B, T, M)` test trials; `targets`: `(B, T, O)`.
    - `threshold`: a member succeeds when its test MSE is below this.

    **Returns:** a dict of NumPy arrays, each `(K,)`: `mse` (mean squared error over trials, time and
    outputs), `norm` (Euclidean/Frobenius norm of output minus target), `success` (bool).
    """
    ensemble_size(ensemble)
    inputs = np.asarray(inputs)
    targets = np.asarray(targets)
    if inputs.ndim != 3 or targets.ndim != 3 or inputs.shape[:2] != targets.shape[:2]:
        raise ValueError(f"`inputs` and `targets` must be (B, T, M) and (B, T, O) with the same B and T; "
                         f"got {inputs.shape} and {targets.shape}.")
    if inputs.shape[2] != ensemble.W_in.shape[-1] or targets.shape[2] != ensemble.W_out.shape[-2]:
        raise ValueError(f"the ensemble takes {ensemble.W_in.shape[-1]} inputs and gives {ensemble.W_out.shape[-2]} "
                         f"outputs; got `inputs` {inputs.shape} and `targets` {targets.shape}.")
    if not threshold > 0:
        raise ValueError(f"`threshold` must be > 0, got {threshold!r}.")
    outputs = to_host(ensemble_outputs(ensemble, inputs))  # members split over processes: gathered
    diff = outputs.astype(np.float64) - targets[None].astype(np.float64)
    mse = np.mean(diff**2, axis=(1, 2, 3))
    norm = np.sqrt(np.sum(diff**2, axis=(1, 2, 3)))
    success = np.isfinite(mse) & (mse < threshold)
    return {"mse": mse, "norm": norm, "success": success}
