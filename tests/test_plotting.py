import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from matplotlib.figure import Figure

import ctrnn_jax
import ctrnn_jax.analysis as plotting
from ctrnn_jax.dynamics._topology import MemberGraph

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T, N = 40, 6


def check_written(fig, stem):
    """`fig` is a Figure, and `<stem>.png` and `<stem>.pdf` were written (and nothing else of that stem)."""
    assert isinstance(fig, Figure)
    assert sorted(p.name for p in stem.parent.glob(f"{stem.name}*")) == [f"{stem.name}.pdf", f"{stem.name}.png"]
    png, pdf = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")
    assert png.stat().st_size > 0 and pdf.stat().st_size > 0
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert pdf.read_bytes()[:5] == b"%PDF-"


@pytest.fixture(scope="module")
def fixed_points():
    """W_rec = diag(1.5, 2, 0, 0), a = 1, no input or bias: 9 fixed points (4 stable, 4 index-1 saddles,
    1 index-2 saddle at the origin), with eigenvectors."""
    model = ctrnn_jax.CTRNN(3, 4, 3, key=jax.random.key(0), alpha=1.0)
    model = eqx.tree_at(
        lambda m: (m.W_rec, m.W_in, m.b),
        model,
        (jnp.diag(jnp.asarray([1.5, 2.0, 0.0, 0.0])), jnp.zeros((4, 3)), jnp.zeros(4)),
    )
    grid = np.stack(np.meshgrid(*[np.linspace(-1.0, 1.0, 5)] * 2, indexing="ij"), axis=-1).reshape(-1, 2)
    h0 = np.concatenate([grid, np.zeros((25, 2))], axis=1)[None].astype(np.float32)
    fp = ctrnn_jax.find_fixed_points(model, jnp.zeros(3), jnp.asarray(h0), ctrnn_jax.FixedPointConfig(eigvecs=True))
    assert len(fp) == 9
    return fp


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def flipflop_targets():
    """(T, 3) targets with a few steps at 0 and several sign patterns."""
    t = np.arange(T)
    targets = np.stack([np.sign(np.sin(t / 3.0)), np.sign(np.cos(t / 5.0)), np.sign(np.sin(t / 7.0 + 0.5))], 1)
    targets[:3] = 0.0
    return targets


def test_task_samples(tmp_path, rng):
    fig = plotting.plot_task_samples(rng.normal(size=(4, T, 3)), rng.normal(size=(4, T, 3)), tmp_path / "task")
    check_written(fig, tmp_path / "task")
    with pytest.raises(ValueError, match="`inputs`"):
        plotting.plot_task_samples(rng.normal(size=(T, 3)), rng.normal(size=(4, T, 3)), tmp_path / "bad")
    with pytest.raises(ValueError, match="`targets`"):
        plotting.plot_task_samples(rng.normal(size=(4, T, 3)), rng.normal(size=(4, T + 1, 3)), tmp_path / "bad")


def test_connectivity_and_no_mutation(tmp_path, rng):
    W = rng.normal(size=(N, N)).astype(np.float32)
    before = W.copy()
    fig = plotting.plot_connectivity(W, tmp_path / "conn.png")  # a .png suffix is accepted
    check_written(fig, tmp_path / "conn")
    np.testing.assert_array_equal(W, before)
    plotting.plot_connectivity(jnp.asarray(W), tmp_path / "conn_jax")  # jax arrays work too
    with pytest.raises(ValueError, match="`W_rec`"):
        plotting.plot_connectivity(rng.normal(size=(N, N + 1)), tmp_path / "bad")


def test_eigenvalues(tmp_path, rng):
    W, W0 = rng.normal(size=(N, N)), rng.normal(size=(N, N))
    check_written(plotting.plot_eigenvalues(W, tmp_path / "eig"), tmp_path / "eig")
    check_written(plotting.plot_eigenvalues(W, tmp_path / "eig2", W_rec_initial=W0), tmp_path / "eig2")
    with pytest.raises(ValueError, match="`W_rec`"):
        plotting.plot_eigenvalues(rng.normal(size=(N,)), tmp_path / "bad")
    with pytest.raises(ValueError, match="`W_rec_initial`"):
        plotting.plot_eigenvalues(W, tmp_path / "bad", W_rec_initial=rng.normal(size=(N + 1, N + 1)))


def test_spectra_grid(tmp_path, rng):
    fig = plotting.plot_spectra_grid(rng.normal(size=(5, N, N)), tmp_path / "grid", max_members=4)
    check_written(fig, tmp_path / "grid")
    with pytest.raises(ValueError, match="`W_recs`"):
        plotting.plot_spectra_grid(rng.normal(size=(N, N)), tmp_path / "bad")


def test_test_set(tmp_path, rng):
    x, y = rng.normal(size=(T, 3)), rng.normal(size=(T, 3))
    check_written(plotting.plot_test_set(x, y, flipflop_targets(), tmp_path / "test"), tmp_path / "test")
    with pytest.raises(ValueError, match="`outputs`"):
        plotting.plot_test_set(x, y[:-1], flipflop_targets(), tmp_path / "bad")


def test_state_space(tmp_path, rng, fixed_points):
    states = rng.normal(size=(T, 4))
    W_out = rng.normal(size=(3, 4))
    fig = plotting.plot_state_space(
        states, flipflop_targets(), tmp_path / "ss", fixed_points=fixed_points.select(0), W_out=W_out
    )
    check_written(fig, tmp_path / "ss")
    with pytest.raises(ValueError, match="`states`"):
        plotting.plot_state_space(states[:-1], flipflop_targets(), tmp_path / "bad")
    with pytest.raises(ValueError, match="`fixed_points`"):
        plotting.plot_state_space(
            rng.normal(size=(T, 5)), flipflop_targets(), tmp_path / "bad", fixed_points=fixed_points
        )


def test_state_space_without_eigvecs(tmp_path, rng, fixed_points):
    import dataclasses

    fp = dataclasses.replace(fixed_points, eigvecs=None)
    fig = plotting.plot_state_space(rng.normal(size=(T, 4)), flipflop_targets(), tmp_path / "ss", fixed_points=fp)
    check_written(fig, tmp_path / "ss")


def test_realizations(tmp_path, rng, fixed_points):
    states = [rng.normal(size=(T, 4)), rng.normal(size=(T, 4)), rng.normal(size=(T, 4))]
    fig = plotting.plot_realizations(
        states,
        flipflop_targets(),
        tmp_path / "real",
        fixed_points_list=[fixed_points, None, fixed_points],
        max_members=2,
    )
    check_written(fig, tmp_path / "real")
    with pytest.raises(ValueError, match=r"`states_list\[1\]`"):
        plotting.plot_realizations([states[0], states[1][:-2]], flipflop_targets(), tmp_path / "bad")
    with pytest.raises(ValueError, match="`fixed_points_list`"):
        plotting.plot_realizations(states, flipflop_targets(), tmp_path / "bad", fixed_points_list=[fixed_points])


def test_training_curves(tmp_path, rng):
    losses = np.exp(-np.linspace(0, 3, 20))[:, None] * rng.uniform(0.5, 1.5, (20, 3))
    losses[15:, 1] = np.nan  # a member that stopped logging
    check_written(plotting.plot_training_curves(losses, tmp_path / "loss"), tmp_path / "loss")
    with pytest.raises(ValueError, match="`losses`"):
        plotting.plot_training_curves(losses[:, 0], tmp_path / "bad")
    with pytest.raises(ValueError, match="`steps`"):
        plotting.plot_training_curves(losses, tmp_path / "bad", steps=np.arange(5))


def test_fixed_point_spectra(tmp_path, fixed_points):
    fig = plotting.plot_fixed_point_spectra(fixed_points.select(0), tmp_path / "fps")
    check_written(fig, tmp_path / "fps")
    with pytest.raises(ValueError, match="`fixed_points`"):
        plotting.plot_fixed_point_spectra(np.zeros((3, 4)), tmp_path / "bad")


def test_ensemble_overview(tmp_path, rng):
    mse = np.asarray([0.01, 0.015, 0.9, 0.012])
    fig = plotting.plot_ensemble_overview(
        mse,
        np.asarray([8, 9, 1, 8]),
        np.asarray([0.01, 0.002, np.nan, 0.05]),
        np.asarray([3, 4, 10, 3]),
        tmp_path / "overview",
    )
    check_written(fig, tmp_path / "overview")
    with pytest.raises(ValueError, match="`n_stable`"):
        plotting.plot_ensemble_overview(mse, np.zeros(3), mse, mse, tmp_path / "bad")
    with pytest.raises(ValueError, match="`test_mse`"):
        plotting.plot_ensemble_overview(mse[:, None], mse, mse, mse, tmp_path / "bad")


def test_pca_projection(rng):
    # Anisotropic Gaussian cloud along a known rotated axis set: variances 25, 4, 1, 0.01, 0.01.
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    x = (rng.normal(size=(2000, 5)) * np.asarray([5.0, 2.0, 1.0, 0.1, 0.1])) @ q.T + 3.0
    mean, comps = plotting.pca_projection(x, d=3)
    assert mean.shape == (5,) and comps.shape == (3, 5)
    np.testing.assert_allclose(comps @ comps.T, np.eye(3), atol=1e-10)
    np.testing.assert_allclose(mean, x.mean(axis=0))
    var = np.var((x - mean) @ comps.T, axis=0)
    assert var[0] > var[1] > var[2]
    assert abs(comps[0] @ q[:, 0]) > 0.99  # the known principal axis, up to sign
    with pytest.raises(ValueError, match="`d`"):
        plotting.pca_projection(x, d=6)
    with pytest.raises(ValueError, match="`states`"):
        plotting.pca_projection(x[0])


def test_robustness_and_similarity_figures(tmp_path):
    rng = np.random.default_rng(0)
    sweep = {
        "noise_levels": np.array([0.0, 0.5, 1.0]),
        "noise_mse": rng.uniform(0.01, 1, (3, 4)),
        "noise_success_rate": np.array([1.0, 0.5, 0.0]),
        "amplitude_scales": np.array([0.5, 1.0]),
        "amplitude_mse": rng.uniform(0.01, 1, (2, 4)),
        "amplitude_success_rate": np.array([0.0, 1.0]),
    }
    check_written(plotting.plot_robustness(sweep, tmp_path / "robust"), tmp_path / "robust")
    m = rng.uniform(size=(4, 4))
    check_written(plotting.plot_similarity_matrices(m, m, tmp_path / "sim"), tmp_path / "sim")
    with pytest.raises(ValueError, match="noise_mse"):
        plotting.plot_robustness({**sweep, "noise_mse": np.zeros((2, 4))}, tmp_path / "bad")
    with pytest.raises(ValueError, match="procrustes"):
        plotting.plot_similarity_matrices(np.zeros((3, 4)), m, tmp_path / "bad")


# --- figures as objects: every plot function returns its Figure; files only with a path ---------------------


def sweep_dict(rng):
    return {
        "noise_levels": np.array([0.0, 0.5, 1.0]),
        "noise_mse": rng.uniform(0.01, 1, (3, 4)),
        "noise_success_rate": np.array([1.0, 0.5, 0.0]),
        "amplitude_scales": np.array([0.5, 1.0]),
        "amplitude_mse": rng.uniform(0.01, 1, (2, 4)),
        "amplitude_success_rate": np.array([0.0, 1.0]),
    }


def square_graph():
    """A MemberGraph of 4 stable points on a square joined by 4 saddles (2 readouts)."""
    labels = np.asarray([[-1, -1], [-1, 1], [1, -1], [1, 1]])
    return MemberGraph(
        labels=labels,
        outputs=labels.astype(float),
        points=np.zeros((4, 3)),
        edges=np.asarray([[0, 1], [0, 2], [1, 3], [2, 3]]),
        saddles=np.zeros((4, 3)),
        node_rates=np.zeros((4, 1)),
        edge_rates=np.zeros((4, 1)),
        higher=[],
        n_unmatched=0,
    )


# name -> (rng, fixed_points) -> (positional args without the path, keyword args): small valid inputs
PLOTS = {
    "plot_connectivity": lambda rng, fp: ((rng.normal(size=(N, N)),), {}),
    "plot_eigenvalues": lambda rng, fp: ((rng.normal(size=(N, N)),), {"W_rec_initial": rng.normal(size=(N, N))}),
    "plot_spectra_grid": lambda rng, fp: ((rng.normal(size=(3, N, N)),), {}),
    "plot_fixed_point_spectra": lambda rng, fp: ((fp.select(0),), {}),
    "plot_training_curves": lambda rng, fp: ((rng.uniform(0.1, 1.0, (10, 3)),), {}),
    "plot_robustness": lambda rng, fp: ((sweep_dict(rng),), {}),
    "plot_similarity_matrices": lambda rng, fp: ((rng.uniform(size=(3, 3)), rng.uniform(size=(3, 3))), {}),
    "plot_task_samples": lambda rng, fp: ((rng.normal(size=(2, T, 3)), rng.normal(size=(2, T, 3))), {}),
    "plot_test_set": lambda rng, fp: ((rng.normal(size=(T, 3)), rng.normal(size=(T, 3)), flipflop_targets()), {}),
    "plot_state_space": lambda rng, fp: ((rng.normal(size=(T, 4)), flipflop_targets()), {"fixed_points": fp.select(0)}),
    "plot_realizations": lambda rng, fp: (([rng.normal(size=(T, 4)), rng.normal(size=(T, 4))], flipflop_targets()), {}),
    "plot_ensemble_overview": lambda rng, fp: (
        (np.asarray([0.01, 0.5]), np.asarray([8, 2]), np.asarray([0.01, 0.3]), np.asarray([3, 1])),
        {},
    ),
    "plot_task_trials": lambda rng, fp: (
        (rng.normal(size=(2, T, 2)), rng.normal(size=(2, T, 1)), rng.normal(size=(2, T, 1)), np.ones((2, T, 1))),
        {},
    ),
    "plot_task_state_space": lambda rng, fp: (
        (rng.normal(size=(3, T, 4)), np.asarray([1, -1, 1])),
        {"fixed_points": fp.select(0)},
    ),
    "plot_probe_state_space": lambda rng, fp: ((rng.normal(size=(3, T, 4)),), {"fixed_points": fp.select(0)}),
    "plot_mds_pair": lambda rng, fp: ((rng.normal(size=(4, 2)), rng.normal(size=(4, 2)), ["a", "a", "b", "b"]), {}),
    "plot_distance_matrices": lambda rng, fp: (
        (rng.uniform(size=(4, 4)), rng.uniform(size=(4, 4)), ["a", "a", "b", "b"]),
        {},
    ),
    "plot_topology_graphs": lambda rng, fp: (([square_graph(), square_graph()], ["one", "two"]), {}),
    "plot_bifurcation_diagram": lambda rng, fp: ((a_continuation(rng),), {}),
    "plot_memory_lifetimes": lambda rng, fp: ((a_memory_check(rng),), {}),
    "plot_cluster_task_map": lambda rng, fp: ((some_unit_clusters(rng),), {}),
    "plot_cluster_distribution": lambda rng, fp: ((some_unit_clusters(rng),), {}),
}


def some_unit_clusters(rng):
    """Hand-made `UnitClusters` of 2 members (k = 2 and 3) over 3 tasks."""
    from ctrnn_jax.analysis import UnitClusters

    profiles = np.full((2, 3, 3), np.nan)
    profiles[0, :2] = rng.uniform(size=(2, 3))
    profiles[1] = rng.uniform(size=(3, 3))
    return UnitClusters(
        labels=np.array([[0, 0, 1, -1], [0, 1, 2, 2]]),
        k=np.array([2, 3]),
        silhouette=np.array([0.5, 0.6]),
        k_range=(2, 3),
        silhouette_by_k=np.array([[0.5, np.nan], [0.4, 0.6]]),
        profiles=profiles,
        fraction=np.array([[2 / 3, 1 / 3, np.nan], [0.25, 0.25, 0.5]]),
        match=np.array([[0, 1, -1], [0, 1, -1]]),
        consistency=np.array([1.0, 0.7]),
        labels_tasks=("a", "b", "c"),
    )


def a_continuation(rng):
    """A hand-made `Continuation`: two branches of one member, a fold on the first."""
    from ctrnn_jax.dynamics import Continuation

    p = [np.linspace(0.0, 0.6, 7), np.linspace(0.0, 1.0, 5)]
    return Continuation(
        member=np.zeros(2, int),
        start=np.zeros((2, 3)),
        end=np.ones((2, 3)),
        param=p,
        states=[rng.normal(size=(x.size, 4)) for x in p],
        outputs=[rng.normal(size=(x.size, 3)) for x in p],
        eigvals=[np.full((x.size, 4), 0.5 + 0j) for x in p],
        n_unstable=[np.zeros(7, int), np.ones(5, int)],
        ended=np.array(["left the path"] * 2),
        events=[
            {
                "member": 0,
                "branch": 0,
                "kind": "saddle-node",
                "param": 0.6,
                "input": np.zeros(3),
                "state": np.zeros(4),
                "output": np.zeros(3),
                "stable_lost": True,
            }
        ],
    )


def a_memory_check(rng):
    """A hand-made `MemoryCheck` of 2 members and 3 memory states, with lifetimes."""
    from ctrnn_jax.dynamics import MemoryCheck

    k, n = 2, 3
    return MemoryCheck(
        labels=np.ones((n, 3)),
        states=rng.normal(size=(k, n, 4)),
        start_error=np.zeros((k, n)),
        drift=np.zeros((k, n)),
        holds=np.array([[True, False, False], [True, True, False]]),
        ratio=np.zeros((k, n)),
        growth=np.zeros((k, n)),
        response=np.zeros((k, n)),
        verdict=np.array(["short-lived", "short-lived"]),
        epsilon=np.zeros((k, n)),
        inputs=np.zeros(3),
        tolerance=0.14,
        horizon_steps=3400,
        n_perturbations=4,
        lifetime=np.array([[3400, 50, 800], [3400, 3400, 20]]),
        trial_steps=340,
    )


# the one-panel functions, which take `ax=` (plot_state_space: a 3-D one)
ONE_PANEL = [
    "plot_connectivity",
    "plot_eigenvalues",
    "plot_training_curves",
    "plot_task_state_space",
    "plot_probe_state_space",
    "plot_state_space",
]


def test_every_public_plot_function_is_covered():
    assert sorted(PLOTS) == sorted(n for n in dir(plotting) if n.startswith("plot_"))


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_plot_returns_a_figure_and_writes_nothing_without_path(name, tmp_path, monkeypatch, rng, fixed_points):
    monkeypatch.chdir(tmp_path)
    args, kwargs = PLOTS[name](rng, fixed_points)
    fig = getattr(plotting, name)(*args, **kwargs)
    assert isinstance(fig, Figure)
    assert fig.axes
    assert list(tmp_path.iterdir()) == []


def test_save_figure_writes_png_and_pdf_only(tmp_path, rng):
    fig = plotting.plot_connectivity(rng.normal(size=(N, N)))
    paths = plotting.save_figure(fig, tmp_path / "sub" / "conn.png")  # folder created; .png suffix dropped
    assert paths == [tmp_path / "sub" / "conn.png", tmp_path / "sub" / "conn.pdf"]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["conn.pdf", "conn.png"]  # no temp file left
    assert paths[0].read_bytes()[:8] == PNG_MAGIC
    assert paths[1].read_bytes()[:5] == b"%PDF-"


def test_save_figure_is_exported_at_the_top_level():
    assert ctrnn_jax.save_figure is plotting.save_figure


def test_save_figure_failed_overwrite_keeps_the_old_figure(tmp_path, rng, monkeypatch):
    old = plotting.save_figure(plotting.plot_connectivity(rng.normal(size=(N, N))), tmp_path / "conn")
    before = [p.read_bytes() for p in old]

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        plotting.save_figure(plotting.plot_eigenvalues(rng.normal(size=(N, N))), tmp_path / "conn")
    assert [p.read_bytes() for p in old] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conn.pdf", "conn.png"]  # temp file removed


def test_plot_with_path_overwrites_an_existing_figure(tmp_path, rng):
    first = plotting.save_figure(plotting.plot_connectivity(rng.normal(size=(N, N))), tmp_path / "fig")
    before = first[0].read_bytes()
    plotting.plot_eigenvalues(rng.normal(size=(N, N)), tmp_path / "fig")
    assert first[0].read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.pdf", "fig.png"]


@pytest.mark.parametrize("name", ONE_PANEL)
def test_plot_draws_into_the_given_axes_only(name, rng, fixed_points):
    args, kwargs = PLOTS[name](rng, fixed_points)
    fig = Figure()
    target = fig.add_subplot(1, 2, 1, projection="3d" if name == "plot_state_space" else None)
    other = fig.add_subplot(1, 2, 2)
    assert getattr(plotting, name)(*args, **kwargs, ax=target) is fig
    assert target.has_data()
    assert not other.has_data() and not other.get_title() and other.get_legend() is None


def test_plot_into_a_subfigure_returns_the_top_level_figure(rng):
    fig = Figure()
    ax = fig.subfigures(1, 2)[0].subplots()
    assert plotting.plot_eigenvalues(rng.normal(size=(N, N)), ax=ax) is fig


def test_state_space_rejects_a_2d_axes(rng):
    ax = Figure().subplots()
    with pytest.raises(ValueError, match="3D axes"):
        plotting.plot_state_space(rng.normal(size=(T, 4)), flipflop_targets(), ax=ax)
    assert not ax.has_data()


def test_plot_rejects_an_ax_that_is_not_an_axes(rng):
    with pytest.raises(ValueError, match="`ax`"):
        plotting.plot_connectivity(rng.normal(size=(N, N)), ax=Figure())


def test_bad_fixed_points_raise_before_drawing_into_ax(rng, fixed_points):
    ax = Figure().subplots()
    with pytest.raises(ValueError, match="`fixed_points`"):
        plotting.plot_task_state_space(
            rng.normal(size=(3, T, 5)), np.asarray([1, -1, 1]), fixed_points=fixed_points, ax=ax
        )
    assert not ax.has_data()
