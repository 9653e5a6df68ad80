from pathlib import Path

import jax
import numpy as np
import pytest

import ctrnn_jax as cj
from ctrnn_jax.analysis import _analysis as an

DATA = Path(__file__).parent / "data" / "flipflop_n64_k2.npz"


@pytest.fixture(scope="module")
def ensemble():
    return cj.load_npz(DATA)


def _orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def test_procrustes_of_rotated_scaled_translated_copy_is_zero():
    rng = np.random.default_rng(0)
    points = rng.standard_normal((8, 3))
    moved = 2.5 * points @ _orthogonal(rng, 3) + np.array([1.0, -2.0, 3.0])
    assert cj.procrustes_disparity(moved, points) < 1e-10
    assert cj.procrustes_disparity(rng.standard_normal((8, 3)), points) > 0.1


def test_pairwise_procrustes_different_sizes():
    rng = np.random.default_rng(1)
    cube = np.asarray([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], float)
    # the same cube embedded in 5-d and (rotated, scaled, shifted) in 7-d; a random set; a missing point
    same5 = np.pad(cube, ((0, 0), (0, 2))) @ _orthogonal(rng, 5)
    same7 = 3.0 * np.pad(cube, ((0, 0), (0, 4))) @ _orthogonal(rng, 7) + 1.0
    random = rng.standard_normal((8, 6))
    missing = same5.copy()
    missing[3] = np.nan
    d = an.pairwise_procrustes([same5, same7, random, missing])
    assert d.shape == (4, 4)
    assert np.allclose(d[:3, :3], d[:3, :3].T) and np.allclose(np.diag(d)[:3], 0)
    assert d[0, 1] < 1e-10
    assert d[0, 2] > 0.1 and d[1, 2] > 0.1
    assert np.all(np.isnan(d[3])) and np.all(np.isnan(d[:, 3]))


def test_cka_invariant_to_rotation_and_isotropic_scale():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((200, 10)) @ rng.standard_normal((10, 10))
    q = _orthogonal(rng, 10)
    assert abs(an.linear_cka(x, x @ q) - 1) < 1e-6
    assert abs(an.linear_cka(x, 3.7 * x @ q + 2.0) - 1) < 1e-6
    assert an.linear_cka(x, rng.standard_normal((200, 10))) < 0.3
    # different widths are allowed
    assert abs(an.linear_cka(x, np.pad(x @ q, ((0, 0), (0, 5)))) - 1) < 1e-6


def test_pairwise_cka_symmetric_unit_diagonal():
    rng = np.random.default_rng(3)
    states = rng.standard_normal((3, 50, 4))
    c = an.pairwise_cka(states)
    assert c.shape == (3, 3)
    assert np.allclose(c, c.T) and np.allclose(np.diag(c), 1)


def test_success_and_size_summaries():
    metrics = {
        "mse": np.array([0.01, 0.5, 0.015, 0.03]),
        "norm": np.ones(4),
        "success": np.array([True, False, True, False]),
    }
    s = an.success_summary(metrics)
    assert s["n_success"] == 2 and s["success_rate"] == 0.5 and s["n_members"] == 4
    assert s["median_mse"] == pytest.approx(0.0225) and s["max_mse"] == 0.5 and len(s["norm"]) == 4
    sweep = an.size_sweep_summary(
        [(16, metrics), (4, {"mse": np.array([1.0]), "success": np.array([False])}), (16, metrics)]
    )
    assert sweep["sizes"].tolist() == [4, 16]
    assert sweep["success_rate"].tolist() == [0.0, 0.5]
    assert sweep["n_members"].tolist() == [1, 8]


def test_robustness_sweep_degrades_with_noise_and_small_pulses(ensemble):
    r = an.robustness_sweep(
        ensemble, key=jax.random.key(0), noise_levels=(0.0, 2.0), amplitude_scales=(0.1, 1.0), n_trials=8
    )
    assert r["noise_mse"].shape == (2, 2) and r["amplitude_mse"].shape == (2, 2)
    assert r["noise_success_rate"].shape == (2,)
    assert np.all(r["noise_mse"][1] > r["noise_mse"][0])
    assert r["noise_success_rate"][1] < r["noise_success_rate"][0]
    assert np.all(r["amplitude_mse"][0] > r["amplitude_mse"][1])
    assert r["amplitude_success_rate"][0] < r["amplitude_success_rate"][1]


def test_compare_realizations_from_activity(ensemble):
    r = an.compare_realizations(ensemble)
    assert r["source"] == "activity"
    p, c = r["procrustes"], r["cka"]
    assert p.shape == c.shape == (2, 2)
    assert np.allclose(p, p.T) and np.allclose(np.diag(p), 0) and 0 <= p[0, 1] < 0.2
    assert np.allclose(c, c.T) and np.allclose(np.diag(c), 1) and 0 < c[0, 1] <= 1


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"noise_levels": (-0.1,)}, "noise_levels"),
        ({"noise_levels": ()}, "noise_levels"),
        ({"amplitude_scales": (0.0,)}, "amplitude_scales"),
        ({"n_trials": 0}, "n_trials"),
        ({"threshold": 0.0}, "threshold"),
        ({"config": "flipflop"}, "config"),
    ],
)
def test_robustness_sweep_bad_arguments(ensemble, kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        an.robustness_sweep(ensemble, key=jax.random.key(0), **kwargs)


def test_bad_arguments_name_the_argument(ensemble):
    with pytest.raises(ValueError, match="`x` and `y`"):
        an.linear_cka(np.zeros((5, 2)), np.zeros((6, 2)))
    with pytest.raises(ValueError, match="`x`"):
        an.linear_cka(np.zeros(5), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="`states`"):
        an.pairwise_cka(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="`point_sets`"):
        an.pairwise_procrustes([np.zeros((8, 3)), np.zeros((7, 3))])
    with pytest.raises(ValueError, match="`activity`"):
        an.pairwise_procrustes([np.ones((8, 3))], activity=[np.ones((10, 4))])
    with pytest.raises(ValueError, match="`metrics`"):
        an.success_summary({"mse": [0.1]})
    with pytest.raises(ValueError, match="`results"):
        an.size_sweep_summary([(0, {"mse": [0.1], "success": [True]})])
    with pytest.raises(ValueError, match="`inputs` and `targets`"):
        an.compare_realizations(ensemble, inputs=np.zeros((1, 10, 3)))
