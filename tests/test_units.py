"""Unit-level analyses (`ctrnn_jax.analysis._units`) on hand-built networks: a network whose units each carry one
task has task variance only on that task and clusters equal to the task assignment; lesioning the units of one
task removes that task's performance and no other's; k-means and the silhouette recover synthetic blobs; two
identical members are fully consistent; bad arguments are refused by name."""

import itertools
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ctrnn_jax as cj
from ctrnn_jax.analysis import (
    LesionEffects,
    Psychometric,
    TaskVariance,
    UnitClusters,
    cluster_units,
    lesion,
    lesion_effects,
    plot_cluster_distribution,
    plot_cluster_task_map,
    psychometric,
    task_variance,
)
from ctrnn_jax.analysis._units import assignment, kmeans, silhouette_score
from ctrnn_jax.tasks import MultitaskConfig, PerceptualDMConfig, TaskSlot

N_TASKS, N = 3, 12
DM = PerceptualDMConfig(test_repeats=8)  # 64 test trials per task
TASK = MultitaskConfig(tasks=tuple(TaskSlot(DM, label=f"dm{i}", channels=(i,)) for i in range(N_TASKS)))


def owner(perm):
    """The task of each unit: unit `j` carries task `perm[j] % N_TASKS`."""
    return np.asarray(perm) % N_TASKS


def network(perm):
    """A CTRNN of perfect integrators (linear units, `W_rec = I`, `alpha = 1`) whose unit `j` reads only the
    stimulus channel of its task (`owner`), with a gain that differs across units; the one output sums every
    unit. In task `i` only task `i`'s units move (the other stimulus channels are 0), and the output's sign is
    the sign of the summed evidence: the ideal observer."""
    model = cj.CTRNN(TASK.n_inputs, N, 1, key=jax.random.key(0), alpha=1.0, activation="linear")
    W_in = np.zeros((N, TASK.n_inputs), np.float32)
    for j, i in enumerate(owner(perm)):
        W_in[j, int(TASK.fixation) + TASK.tasks[i].columns[0]] = 0.05 * (1 + j // N_TASKS)
    return eqx.tree_at(
        lambda m: (m.W_rec, m.W_in, m.W_out, m.b_out),
        model,
        (jnp.eye(N), jnp.asarray(W_in), jnp.ones((1, N)), jnp.zeros(1)),
    )


def stack(*members):
    return jax.tree_util.tree_map(lambda *x: jnp.stack(x), *members)


PERMS = (np.arange(N), np.arange(N)[::-1])  # the second member: the same network, units in reverse order


@pytest.fixture(scope="module")
def ensemble():
    return stack(*(network(p) for p in PERMS))


@pytest.fixture(scope="module")
def tv(ensemble):
    return task_variance(ensemble, TASK)


@pytest.fixture(scope="module")
def clusters(tv):
    return cluster_units(tv)


def test_task_variance_is_nonzero_only_on_each_units_task(tv):
    assert isinstance(tv, TaskVariance)
    assert tv.variance.shape == (2, N, N_TASKS) and tv.labels == ("dm0", "dm1", "dm2")
    assert tv.n_trials.tolist() == [64, 64, 64]
    assert tv.active.all()
    for k, perm in enumerate(PERMS):
        own = np.eye(N_TASKS, dtype=bool)[owner(perm)]  # (N, n_tasks)
        assert np.all(tv.variance[k][own] > 1e-3)
        assert np.all(tv.variance[k][~own] == 0)
        np.testing.assert_array_equal(tv.normalized[k], own.astype(float))


def test_clusters_are_the_task_assignment(clusters):
    assert isinstance(clusters, UnitClusters)
    assert clusters.k.tolist() == [N_TASKS, N_TASKS]
    np.testing.assert_allclose(clusters.silhouette, 1.0)
    for k, perm in enumerate(PERMS):
        # clusters are numbered by the task of their profile's peak: cluster i is task i's units
        np.testing.assert_array_equal(clusters.labels[k], owner(perm))
        np.testing.assert_allclose(clusters.profiles[k], np.eye(N_TASKS))
        np.testing.assert_allclose(clusters.fraction[k], 1 / N_TASKS)
    assert clusters.k_distribution() == {N_TASKS: 2}
    np.testing.assert_allclose(clusters.cluster_sizes(), 1 / N_TASKS)


def test_identical_members_are_fully_consistent(clusters):
    np.testing.assert_allclose(clusters.consistency, 1.0)
    np.testing.assert_array_equal(clusters.match, np.tile(np.arange(N_TASKS), (2, 1)))


def test_lesion_of_a_tasks_units_removes_that_task_only(ensemble):
    sets = np.stack([np.stack([owner(p) == i for p in PERMS]) for i in range(N_TASKS)])  # (S, K, N)
    effects = lesion_effects(ensemble, TASK, sets)
    assert isinstance(effects, LesionEffects)
    assert effects.intact.shape == (2, N_TASKS) and np.all(effects.intact > 0.9)  # the ideal observer
    for i in range(N_TASKS):
        others = np.arange(N_TASKS) != i
        np.testing.assert_array_equal(effects.lesioned[:, i, i], 0.0)  # output 0: no choice, never right
        np.testing.assert_array_equal(effects.change[:, i, others], 0.0)
    assert effects.n_units.tolist() == [[4, 4, 4], [4, 4, 4]]


def test_lesion_effects_of_clusters_match_the_unit_sets(ensemble, clusters):
    effects = lesion_effects(ensemble, TASK, clusters)
    assert effects.sets == ("cluster 0", "cluster 1", "cluster 2")
    np.testing.assert_allclose(effects.change, -effects.intact[:, None, :] * np.eye(N_TASKS)[None])


def test_lesion_zeroes_outgoing_weights_only(ensemble):
    units = np.zeros((2, N), bool)
    units[0, 3] = units[1, 5] = True
    out = lesion(ensemble, units)
    assert np.all(np.asarray(out.W_rec)[0, :, 3] == 0) and np.all(np.asarray(out.W_out)[1, :, 5] == 0)
    np.testing.assert_array_equal(np.asarray(out.W_in), np.asarray(ensemble.W_in))
    assert float(jnp.abs(out.W_rec - ensemble.W_rec).sum()) == 2.0  # two diagonal ones removed
    shared = lesion(ensemble, np.arange(N) < 2)  # (N,): the same units in every member
    assert np.all(np.asarray(shared.W_out)[:, :, :2] == 0)


def test_sampled_trials_give_the_same_structure(ensemble):
    tv = task_variance(ensemble, TASK, key=jax.random.key(1), batch=96, epoch="trial")
    assert tv.n_trials.sum() == 96 and tv.epoch == "trial"
    own = np.eye(N_TASKS, dtype=bool)[owner(PERMS[0])]
    assert np.all(tv.variance[0][~own] == 0) and np.all(tv.variance[0][own] > 0)


def test_kmeans_and_silhouette_recover_blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]])
    truth = np.repeat(np.arange(4), 25)
    x = centres[truth] + 0.3 * rng.normal(size=(100, 2))
    labels, found, inertia = kmeans(x, 4, seed=1)
    # the same partition up to renaming
    assert len({(a, b) for a, b in zip(truth, labels)}) == 4
    assert inertia < 100 * 2 * 0.3**2 * 1.5
    assert silhouette_score(x, labels) > 0.8
    again = kmeans(x, 4, seed=1)
    np.testing.assert_array_equal(again[0], labels)  # deterministic given the seed
    scores = {k: silhouette_score(x, kmeans(x, k, seed=0)[0]) for k in range(2, 8)}
    assert max(scores, key=scores.__getitem__) == 4


def test_silhouette_matches_its_definition():
    x = np.array([[0.0], [1.0], [4.0], [5.0], [11.0]])
    labels = np.array([0, 0, 1, 1, 2])
    # point 0: a = 1, b = min(mean(4, 5), 11) = 4.5 -> 1 - 1/4.5; the singleton scores 0
    a = np.array([1, 1, 1, 1])
    b = np.array([4.5, 3.5, 3.5, 4.5])
    expected = np.append((b - a) / np.maximum(a, b), 0.0).mean()
    assert silhouette_score(x, labels) == pytest.approx(expected)


def test_assignment_is_optimal():
    rng = np.random.default_rng(3)
    for n, m in [(4, 4), (3, 5), (5, 3)]:
        cost = rng.normal(size=(n, m))
        rows, cols = assignment(cost)
        brute = min(
            sum(cost[i, j] for i, j in zip(r, c))
            for r in itertools.combinations(range(n), min(n, m))
            for c in itertools.permutations(range(m), min(n, m))
        )
        assert len(set(rows)) == len(rows) == min(n, m) and len(set(cols)) == len(cols)
        assert cost[rows, cols].sum() == pytest.approx(brute)


def test_psychometric_of_the_ideal_observer(ensemble):
    curve = psychometric(ensemble, TASK, component="dm1")
    assert isinstance(curve, Psychometric)
    np.testing.assert_allclose(curve.coherence, [-0.8, -0.4, -0.2, -0.1, 0.1, 0.2, 0.4, 0.8], rtol=1e-6)
    assert curve.n_trials.tolist() == [8] * 8
    assert np.all(np.diff(curve.p_positive, axis=1) >= 0)  # monotone
    assert np.all(curve.p_positive[:, 0] == 0) and np.all(curve.p_positive[:, -1] == 1)
    assert np.all(curve.slope > 5) and np.all(np.abs(curve.threshold) < 0.2)
    # a lone perceptual-DM network (the member's task-1 units on its one input) gives the same curve
    single = network(PERMS[0])
    alone = eqx.tree_at(lambda m: m.W_in, single, single.W_in[:, 1 + int(TASK.fixation) : 2 + int(TASK.fixation)])
    np.testing.assert_allclose(psychometric(alone, DM).p_positive[0], curve.p_positive[0])
    assert curve.predict(np.array([0.0, 0.8])).shape == (2, 2)


def test_results_print_and_serialise(tv, clusters, ensemble):
    effects = lesion_effects(ensemble, TASK, clusters)
    curve = psychometric(ensemble, TASK, component="dm0")
    for result, word in [(tv, "TaskVariance"), (clusters, "k=3: 2"), (effects, "LesionEffects"), (curve, "dm0")]:
        assert word in repr(result)
        assert "<table>" in result._repr_html_()
        json.dumps(result.to_dict(), allow_nan=False)


def test_figures(clusters, tmp_path):
    from matplotlib.figure import Figure

    fig = plot_cluster_task_map(clusters)
    assert isinstance(fig, Figure) and len([a for a in fig.axes if a.get_xlabel() == "task"]) == 2
    assert list(tmp_path.iterdir()) == []
    plot_cluster_distribution(clusters, tmp_path / "dist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist.pdf", "dist.png"]
    with pytest.raises(ValueError, match="`clusters`"):
        plot_cluster_task_map("no")
    with pytest.raises(ValueError, match="`max_members`"):
        plot_cluster_task_map(clusters, max_members=0)


def test_bad_arguments_are_refused_by_name(ensemble, tv):
    with pytest.raises(TypeError, match="`task`"):
        task_variance(ensemble, DM)
    with pytest.raises(TypeError, match="`ensemble`"):
        task_variance("net", TASK)
    with pytest.raises(ValueError, match="`epoch`"):
        task_variance(ensemble, TASK, epoch="stimulus")
    with pytest.raises(ValueError, match="`min_variance`"):
        task_variance(ensemble, TASK, min_variance=1.5)
    with pytest.raises(TypeError, match="`key`"):
        task_variance(ensemble, TASK, key=0)
    with pytest.raises(TypeError, match="`tv`"):
        cluster_units(np.zeros((2, N, 3)))
    with pytest.raises(ValueError, match="`k_range"):
        cluster_units(tv, k_range=[1, 2])
    with pytest.raises(TypeError, match="`k_range`"):
        cluster_units(tv, k_range="3")
    with pytest.raises(TypeError, match="`units`"):
        lesion(ensemble, np.zeros((2, N)))
    with pytest.raises(ValueError, match="`units`"):
        lesion(ensemble, np.zeros((2, N + 1), bool))
    with pytest.raises(ValueError, match="`units`"):
        lesion_effects(ensemble, TASK, np.zeros((3, N), bool))
    with pytest.raises(ValueError, match="`component`"):
        psychometric(ensemble, TASK, component="nope")
    with pytest.raises(TypeError, match="`task`"):
        psychometric(ensemble, cj.FlipFlopConfig())
    with pytest.raises(ValueError, match="`k`"):
        kmeans(np.zeros((3, 2)), 4)
    with pytest.raises(ValueError, match="`labels`"):
        silhouette_score(np.zeros((3, 2)), np.zeros(3, int))


def test_a_gated_cell_runs_end_to_end():
    """Any cell: a random GRU ensemble (no structure to find), its shapes and a lesion of every gate block."""
    config = cj.EnsembleConfig(members=2, units=8, inputs=TASK.n_inputs, outputs=1, cell="gru")
    gru = cj.make_ensemble(config, key=jax.random.key(0))
    tv = task_variance(gru, TASK, key=jax.random.key(2), batch=48)
    clusters = cluster_units(tv, k_range=range(2, 6))
    assert clusters.labels.shape == (2, 8) and np.all((clusters.k >= 1) & (clusters.k <= 5))
    assert np.all(clusters.labels[tv.active] >= 0) and np.all(clusters.labels[~tv.active] == -1)
    units = np.zeros((2, 8), bool)
    units[:, 0] = True
    out = lesion(gru, units)
    assert np.all(np.asarray(out.W_rec)[:, :, 0] == 0)  # (K, 3N, N): every gate block's column
    effects = lesion_effects(gru, TASK, clusters, key=jax.random.key(3), batch=48)
    assert effects.change.shape == (2, int(clusters.k.max()), N_TASKS)
