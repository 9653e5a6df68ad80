"""A researcher's own task, defined outside the package (used by the tests as `custom_task:SineGen`): a sine-wave
generator whose frequency is set by a static input. Its headline metric is an error (the MSE): lower is better."""

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

import ctrnn_jax as cj


@dataclasses.dataclass(frozen=True)
class SineGen(cj.AbstractTask):
    """Output `sin(2π f t)` while the input holds `f` (cycles per step), for `length` steps."""

    name: ClassVar[str] = "sinegen"
    metric_name: ClassVar[str] = "mse"
    higher_is_better: ClassVar[bool] = False
    n_inputs: ClassVar[int] = 1
    n_outputs: ClassVar[int] = 1

    length: int = 40
    f_min: float = 0.02
    f_max: float = 0.08
    test_frequencies: tuple[float, ...] = (0.02, 0.04, 0.06, 0.08)

    def _trials(self, f):  # (B,) -> inputs (B, T, 1), targets (B, T, 1), mask (B, T, 1)
        t = jnp.arange(self.length, dtype=jnp.float32)
        inputs = jnp.broadcast_to(f[:, None, None], (f.shape[0], self.length, 1)).astype(jnp.float32)
        targets = jnp.sin(2 * jnp.pi * f[:, None] * t[None])[..., None].astype(jnp.float32)
        return inputs, targets, jnp.ones_like(targets)

    def sample(self, key, batch_size):
        return self._trials(jax.random.uniform(key, (batch_size,), minval=self.f_min, maxval=self.f_max))

    def test_set(self):
        return self._trials(jnp.asarray(self.test_frequencies, jnp.float32))

    def score(self, outputs, targets, mask):
        return cj.regression_score(outputs, targets, mask)

    def success_threshold(self):
        return 0.05

    def fixed_point_inputs(self):
        return np.asarray([[0.05]], np.float32)

    def trial_groups(self, targets, mask):
        b = np.shape(targets)[0]
        return np.arange(b), tuple(f"f = {f:g}" for f in self.test_frequencies[:b])

    def train_defaults(self):
        return {"learning_rate": 5e-3}
