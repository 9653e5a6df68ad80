"""Similarity measures between networks: undefined topology distances (no memory states) and how the
comparison excludes them; the Procrustes shape metric; the DSA-style dynamics distance on toy systems whose
condition averages coincide."""

import json
import math

import numpy as np
import pytest

from ctrnn_jax import dsa_distance, procrustes_distance
from ctrnn_jax.analysis import (
    classical_mds,
    hankel_dmd,
    pairwise_dsa,
    pairwise_procrustes_distance,
    within_between,
    write_comparison,
)
from ctrnn_jax.dynamics import (
    MemberGraph,
    graph_spectrum_distance,
    linearization_distance,
    pairwise_graph_distances,
    topology_distance,
)

# ---------------------------------------------------------------------------------------------------
# topology distances without memory states


def graph(labels, edges):
    labels = np.asarray(labels, np.int64).reshape(-1, 3)
    v, e = len(labels), len(edges)
    return MemberGraph(
        labels=labels,
        outputs=labels.astype(float),
        points=np.zeros((v, 4)),
        edges=np.asarray(edges, np.int64).reshape(-1, 2),
        saddles=np.zeros((e, 4)),
        node_rates=np.full((v, 1), -1.0),
        edge_rates=np.full((e, 1), 0.5),
        higher=[],
        n_unmatched=0,
    )


CORNERS = [(a, b, c) for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)]
CUBE = graph(
    CORNERS,
    [(i, j) for i in range(8) for j in range(i + 1, 8) if sum(x != y for x, y in zip(CORNERS[i], CORNERS[j])) == 1],
)
EMPTY = graph([], [])


@pytest.mark.parametrize("distance", [topology_distance, graph_spectrum_distance, linearization_distance])
def test_graph_distances_are_nan_with_an_empty_graph_on_either_side(distance):
    assert math.isnan(distance(EMPTY, EMPTY))  # today's artefact was 0
    assert math.isnan(distance(CUBE, EMPTY)) and math.isnan(distance(EMPTY, CUBE))  # was 1
    assert distance(CUBE, CUBE) == pytest.approx(0.0, abs=1e-12)
    edgeless = graph(CORNERS[:2], [])  # nodes but no edge: still defined
    assert math.isfinite(topology_distance(edgeless, CUBE)) and math.isfinite(graph_spectrum_distance(edgeless, CUBE))


def test_pairwise_graph_distances_nan_row_and_column_of_an_empty_graph():
    cut = CUBE.without_edge(0)
    for metric in ("labelled", "spectrum", "linearization"):
        d = pairwise_graph_distances([CUBE, EMPTY, cut], metric)
        assert np.isnan(d[1]).all() and np.isnan(d[:, 1]).all()
        assert np.isfinite(d[np.ix_([0, 2], [0, 2])]).all() and d[0, 0] == d[2, 2] == 0.0
    assert pairwise_graph_distances([CUBE, EMPTY, cut])[0, 2] == pytest.approx(1 / 12)


def test_mds_and_within_between_exclude_undefined_members():
    pts = np.random.default_rng(0).standard_normal((6, 2))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    d[2, :] = d[:, 2] = np.nan  # member 2: no memory states
    emb = classical_mds(d)
    assert np.isnan(emb[2]).all() and np.isfinite(np.delete(emb, 2, axis=0)).all()
    keep = [0, 1, 3, 4, 5]  # the rest embedded exactly (not with the NaN replaced by the largest distance)
    np.testing.assert_allclose(
        np.linalg.norm(emb[keep][:, None] - emb[keep][None], axis=2), d[np.ix_(keep, keep)], atol=1e-9
    )
    d[0, 4] = d[4, 0] = np.nan  # one undefined pair: the member with the most NaN goes (0 and 4 tie: 0)
    assert np.isnan(classical_mds(d)[[0, 2]]).all() and np.isfinite(classical_mds(d)[[1, 3, 4, 5]]).all()
    assert np.isnan(classical_mds(np.full((3, 3), np.nan))).all()

    groups = [0, 0, 0, 1, 1, 1]
    wb = within_between(d, groups)
    within = [d[i, j] for i in range(6) for j in range(6) if i != j and groups[i] == groups[j] and np.isfinite(d[i, j])]
    between = [d[i, j] for i in range(6) for j in range(6) if groups[i] != groups[j] and np.isfinite(d[i, j])]
    assert wb["within"] == pytest.approx(np.mean(within)) and wb["between"] == pytest.approx(np.mean(between))
    assert (wb["n_pairs"], wb["excluded_pairs"], wb["excluded_members"]) == (15, 5 + 1, 1)


def test_report_counts_networks_without_memory_states(tmp_path):
    """`write_comparison` on a hand-made result with one empty graph: the report and comparison.json say
    "1 of 4", the topology MDS leaves that network out, and the figures draw."""
    graphs = [CUBE, CUBE.without_edge(3), EMPTY, CUBE.without_edge(0)]
    rng = np.random.default_rng(1)
    pts = rng.standard_normal((4, 3))
    geo = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    topo = pairwise_graph_distances(graphs)
    members = [
        {"run": run, "member": k, "cell": cell, "activation": "tanh", "units": 4, "success": None}
        for run, cell in (("a", "ctrnn"), ("b", "gru"))
        for k in range(2)
    ]
    result = {
        "members": members,
        "svcca": geo,
        "cka": 1 - geo / 10,
        "procrustes": geo / 3,
        "dynamics": geo / 2,
        "topology": topo,
        "topology_spectrum": pairwise_graph_distances(graphs, "spectrum"),
        "linearization": pairwise_graph_distances(graphs, "linearization"),
        "mds_geometry": classical_mds(geo),
        "mds_topology": classical_mds(topo),
        "graphs": graphs,
    }
    report = write_comparison(result, tmp_path / "cmp", n_graphs=3).read_text()
    assert "1 of 4 networks have no memory states" in report and "networks 2." in report
    assert "| run | topology |" in report and "| cell_activation | dynamics |" in report and "| procrustes |" in report
    data = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert data["no_memory_states"] == {"count": 1, "of": 4, "members": [2]}
    assert data["mds_topology"][2] == [None, None] and None not in data["mds_topology"][0]
    assert data["within_between"]["run"]["topology"]["excluded_members"] == 1
    assert data["within_between"]["run"]["topology"]["excluded_pairs"] == 3
    assert np.asarray(data["dynamics"], float) == pytest.approx(geo / 2)
    for fig in ("mds_by_cell", "distances", "topology_graphs"):
        assert (tmp_path / "cmp" / "figures" / f"{fig}.png").is_file()


# ---------------------------------------------------------------------------------------------------
# the Procrustes shape metric


def activity(seed, t=60, n=5, rank=3):
    rng = np.random.default_rng(seed)
    return np.tanh(rng.standard_normal((t, rank)).cumsum(axis=0) / 5) @ rng.standard_normal((rank, n))


def test_procrustes_zero_under_rotation_padding_scale_and_shift():
    x = activity(0)
    rng = np.random.default_rng(1)
    q = np.linalg.qr(rng.standard_normal((8, 8)))[0]
    y = 2.5 * np.pad(x, ((0, 0), (0, 3))) @ q + 4.0  # zero-padded to 8 units, rotated, scaled, shifted
    assert procrustes_distance(x, y) == pytest.approx(0.0, abs=2e-7)
    assert procrustes_distance(x, x[:, ::-1]) == pytest.approx(0.0, abs=2e-7)  # a permutation
    # an anisotropic rescaling is a different shape (no whitening: Williams et al.'s alpha = 1)
    assert procrustes_distance(x, x * np.array([1, 1, 1, 1, 5.0])) > 0.05
    assert math.isnan(procrustes_distance(x, np.ones((60, 3))))


def test_procrustes_is_a_metric_in_its_range():
    rng = np.random.default_rng(2)
    for trial in range(30):
        xs = [rng.standard_normal((20, n)) @ rng.standard_normal((n, n)) for n in rng.integers(2, 7, size=3)]
        d = pairwise_procrustes_distance(xs)
        np.testing.assert_allclose(d, d.T)
        np.testing.assert_allclose(np.diag(d), 0.0, atol=2e-7)
        assert ((d >= 0) & (d <= np.pi / 2 + 1e-12)).all()
        assert d[0, 2] <= d[0, 1] + d[1, 2] + 1e-9 and d[0, 1] <= d[0, 2] + d[2, 1] + 1e-9
        assert d[0, 1] == pytest.approx(procrustes_distance(xs[0], xs[1]), abs=1e-9)
        assert d[0, 1] == pytest.approx(procrustes_distance(xs[1], xs[0]), abs=1e-9)
    # orthogonal activity: the largest angle
    x, y = np.array([[1.0, -1.0, 0.0, 0.0]]).T, np.array([[0.0, 0.0, 1.0, -1.0]]).T  # centred, Xᵀ Y = 0
    assert procrustes_distance(x, y) == pytest.approx(np.pi / 2)
    with pytest.raises(ValueError, match="same number of rows"):
        procrustes_distance(np.ones((5, 2)), np.ones((4, 2)))


# ---------------------------------------------------------------------------------------------------
# the dynamics distance


def toy_system(kind, seed, trials=32, t=60, sigma=0.1):
    """`(trials, t, 3)` noisy trials of a 1-D memory variable `z` beside a shared 2-D signal `m_t`.

    The three systems differ only in the map of `z`: a bistable switch `z' = tanh(3 z) + ε` (attractors at
    ±0.995, the origin unstable), a line attractor `z' = z + ε` (every `z` a fixed point) and a point attractor
    `z' = z / 2 + ε`, with `ε ~ N(0, σ²)` and `z_0 ~ N(0, 0.1²)`. Every map is odd, and the trials come in
    antithetic pairs (the second half of the trials has `−z_0` and `−ε`), so each pair is mirrored in `z` and
    the trial average of `z` is exactly 0 at every step. Every trial also carries the same deterministic
    `m_t` (a damped rotation), the condition average. Hence the three systems have **the same
    condition-averaged trajectory** `(m_t, 0)`, to round-off, while the dynamics around it differ: trials
    split to ±1 and stay (bistable), diffuse (line), or relax to 0 (point).
    """
    rng = np.random.default_rng(seed)
    z0 = rng.normal(0, 0.1, trials // 2)
    eps = rng.normal(0, sigma, (trials // 2, t))
    z0, eps = np.concatenate([z0, -z0]), np.concatenate([eps, -eps])
    step = {"bistable": lambda z: np.tanh(3 * z), "line": lambda z: z, "point": lambda z: 0.5 * z}[kind]
    z = np.zeros((trials, t))
    z[:, 0] = z0
    for i in range(1, t):
        z[:, i] = step(z[:, i - 1]) + eps[:, i]
    tt = np.arange(t)
    m = np.exp(-tt / 15)[:, None] * np.stack([np.cos(tt / 5), np.sin(tt / 5)], axis=1)
    return np.concatenate([np.broadcast_to(m, (trials, t, 2)), z[..., None]], axis=2)


KINDS = ("bistable", "line", "point")
DSA = {"n_delays": 5, "rank": 10}


def test_dsa_separates_systems_with_the_same_condition_average():
    systems = [toy_system(kind, seed) for kind in KINDS for seed in (0, 1)]  # two noise seeds each
    kind = np.repeat(np.arange(3), 2)
    averages = [x.mean(axis=0) for x in systems]
    for avg in averages[1:]:
        np.testing.assert_allclose(avg, averages[0], atol=1e-12)
    # geometry of the averages cannot tell them apart
    proc = pairwise_procrustes_distance(averages)
    assert np.nanmax(proc) < 1e-6
    d = pairwise_dsa(systems, **DSA)
    np.testing.assert_allclose(d, d.T)
    np.testing.assert_allclose(np.diag(d), 0.0)
    same = kind[:, None] == kind[None, :]
    off = ~np.eye(6, dtype=bool)
    within, between = d[same & off], d[~same]
    assert within.max() < 0.5 * between.min(), d  # every across-seed pair closer than any cross-system pair
    assert d[0, 2] == pytest.approx(dsa_distance(systems[0], systems[2], **DSA), abs=1e-6)


def test_dsa_is_zero_for_a_rotated_rescaled_copy():
    x = toy_system("bistable", 3)
    rng = np.random.default_rng(4)
    q = np.linalg.qr(rng.standard_normal((5, 5)))[0][:3]  # (3, 5): an isometric embedding in 5 units
    y = 3.0 * x @ q
    assert dsa_distance(x, y, **DSA) == pytest.approx(0.0, abs=2e-3)
    assert dsa_distance(x, x[..., ::-1], **DSA) == pytest.approx(0.0, abs=2e-3)  # units permuted
    # the fitted operators: the same eigenvalues (the dynamics), whatever the embedding
    ea, eb = (np.sort_complex(np.linalg.eigvals(hankel_dmd(v, **DSA))) for v in (x, y))
    np.testing.assert_allclose(ea, eb, atol=1e-6)


def test_hankel_dmd_recovers_a_linear_system_and_checks_input():
    rng = np.random.default_rng(5)
    a = np.array([[0.9, -0.2], [0.2, 0.9]])
    x = np.zeros((4, 40, 2))
    x[:, 0] = rng.standard_normal((4, 2))
    for i in range(1, 40):
        x[:, i] = x[:, i - 1] @ a.T
    op = hankel_dmd(x, n_delays=1, rank=5)
    assert op.shape == (2, 2)  # the rank is capped by the data's
    np.testing.assert_allclose(np.sort_complex(np.linalg.eigvals(op)), np.sort_complex(np.linalg.eigvals(a)), atol=1e-8)
    with pytest.raises(ValueError, match="`n_delays`"):
        hankel_dmd(x, n_delays=0)
    with pytest.raises(ValueError, match="T >= 41 needed"):
        hankel_dmd(x, n_delays=40)
    with pytest.raises(ValueError, match="`lr`"):
        dsa_distance(x, x, lr=0.0)
    with pytest.raises(ValueError, match="non-empty list"):
        pairwise_dsa(x)
    assert math.isnan(dsa_distance(x, np.zeros((40, 2)), n_delays=1))
