"""Members spread over several (fake CPU) devices: the state stays sharded, results do not change."""

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from ctrnn_jax import EnsembleConfig, EnsembleTrainer, FlipFlopConfig, TrainConfig, evaluate, flipflop_test_set
from ctrnn_jax.training._sharding import member_mesh

TASK = FlipFlopConfig(length=40, first_onset=(1, 5), gaps=(5, 5), gap_jitter=3, width=3, delay=2)
ENS = EnsembleConfig(members=4, units=6, alpha=0.5, gain=(1.0, 0.9, 1.1, 1.2))
TRAIN = TrainConfig(steps=3, batch_size=4, steps_per_call=3, learning_rate=(1e-2, 3e-3, 1e-3, 1e-2))

pytestmark = pytest.mark.skipif(jax.device_count() < 2, reason="needs 2 devices (conftest sets 2 CPU devices)")


def _is_split(x):
    return isinstance(x.sharding, NamedSharding) and x.sharding.spec == PartitionSpec("members")


def test_member_mesh_uses_the_largest_divisor():
    devices = jax.devices()[:2]
    assert member_mesh(4, devices).devices.size == 2
    assert member_mesh(3, devices) is None  # 3 members cannot be split over 2 devices
    assert member_mesh(4, devices[:1]) is None


def test_state_stays_sharded_and_matches_one_device():
    sharded = EnsembleTrainer(ENS, TRAIN, TASK)
    single = EnsembleTrainer(ENS, TRAIN, TASK, devices=jax.devices()[:1])
    s2, s1 = sharded.init(), single.init()
    assert _is_split(s2.model.W_rec) and _is_split(s2.opt_state[1].mu.W_rec)
    assert sharded.hyper.learning_rate.sharding.spec == PartitionSpec("members")
    s2, l2 = sharded.run_steps(s2, 3)
    s1, l1 = single.run_steps(s1, 3)
    # the layout survives the compiled steps...
    assert _is_split(s2.model.W_rec) and _is_split(s2.frozen) and _is_split(s2.opt_state[1].nu.W_out)
    assert len(s2.model.W_rec.sharding.device_set) == 2
    # ...and the numbers are those of one device (the first step's losses exactly; later steps up to
    # the rounding of a differently compiled program)
    np.testing.assert_array_equal(np.asarray(l2[0]), np.asarray(l1[0]))
    np.testing.assert_allclose(np.asarray(l2), np.asarray(l1), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(s2.model.W_rec), np.asarray(s1.model.W_rec), atol=1e-4)
    # evaluation works on a sharded ensemble
    metrics = evaluate(s2.model, *flipflop_test_set(TASK))
    assert metrics["mse"].shape == (4,) and np.all(np.isfinite(metrics["mse"]))
