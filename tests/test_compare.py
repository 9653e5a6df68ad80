"""Comparing networks: SVCCA, classical MDS, `compare_ensembles` and `ctrnn-jax compare` on two tiny run
folders (one CTRNN, one GRU)."""

import json
import shutil

import equinox as eqx
import jax
import numpy as np
import pytest

from ctrnn_jax import (
    EnsembleConfig,
    FlipFlopConfig,
    ensemble_states,
    flipflop_test_set,
    load_npz,
    make_ensemble,
    save_npz,
    svcca_distance,
)
from ctrnn_jax._cli import main
from ctrnn_jax._files import write_json
from ctrnn_jax.analysis import classical_mds, pairwise_svcca, within_between
from ctrnn_jax.io._eval import evaluate_run
from ctrnn_jax.io._run_config import RunConfig


def activity(seed, t=400, n=12, rank=4):
    """`(T, n)` activity of rank `rank` (a random low-dimensional signal, linearly embedded)."""
    rng = np.random.default_rng(seed)
    return np.tanh(rng.standard_normal((t, rank)).cumsum(axis=0) / 10) @ rng.standard_normal((rank, n))


def test_svcca_invariant_to_rotation_and_scaling():
    x = activity(0)
    rng = np.random.default_rng(1)
    q = np.linalg.qr(rng.standard_normal((20, 20)))[0][:, :12].T  # (12, 20): an isometric embedding
    y = (x @ q) * rng.uniform(0.5, 2.0, 20) + 3.0  # rotated into 20 units, each rescaled, shifted
    assert svcca_distance(x, y) == pytest.approx(0.0, abs=1e-6)
    assert svcca_distance(x, y, k=4) == pytest.approx(0.0, abs=1e-6)


def test_svcca_of_independent_noise_is_large_and_symmetric():
    x = activity(0)
    noise = np.random.default_rng(2).standard_normal((400, 12))
    d = svcca_distance(x, noise, k=4)
    assert d > 0.8
    assert svcca_distance(noise, x, k=4) == pytest.approx(d, abs=1e-12)
    other = activity(3)  # an unrelated low-dimensional signal
    assert svcca_distance(x, other) == pytest.approx(svcca_distance(other, x), abs=1e-12)
    mat = pairwise_svcca([x, noise, other[:, :7]], k=4)  # different sizes compare
    np.testing.assert_allclose(mat, mat.T)
    np.testing.assert_allclose(np.diag(mat), 0.0, atol=1e-9)
    assert mat[0, 1] == pytest.approx(d, abs=1e-12)
    with pytest.raises(ValueError, match="same number of rows"):
        svcca_distance(x, noise[:10])
    with pytest.raises(ValueError, match=r"`variance` must be in \(0, 1\]"):
        svcca_distance(x, noise, variance=0.0)


def test_classical_mds_reproduces_euclidean_distances():
    pts = np.random.default_rng(4).standard_normal((7, 2))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    emb = classical_mds(d)
    np.testing.assert_allclose(np.linalg.norm(emb[:, None] - emb[None], axis=2), d, atol=1e-9)
    assert within_between(d, [0, 0, 0, 1, 1, 1, 1])["within"] == pytest.approx(
        np.mean([d[i, j] for i in range(7) for j in range(7) if i != j and (i < 3) == (j < 3)])
    )


# ---------------------------------------------------------------------------------------------------
# `ctrnn-jax compare` on two tiny run folders

TASK = FlipFlopConfig(length=30, first_onset=(1, 5), gaps=(5, 5), gap_jitter=3, width=3, delay=2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two run folders as `ctrnn-jax train` writes them (config.json, ensemble.npz, eval.json), of fresh
    networks: a CTRNN and a GRU (training them is tested elsewhere; here it would only cost time)."""
    root = tmp_path_factory.mktemp("compare")
    for i, cell in enumerate(("ctrnn", "gru")):
        config = RunConfig(ensemble=EnsembleConfig(members=2, units=6, cell=cell), task=TASK)
        ensemble = make_ensemble(config.ensemble, key=jax.random.key(i))
        (root / cell).mkdir()
        save_npz(ensemble, root / cell / "ensemble.npz")
        write_json(root / cell / "config.json", {"config": config.to_dict()})
        write_json(root / cell / "eval.json", evaluate_run(ensemble, config))
    out = root / "cmp"
    assert (
        main(
            [
                "compare",
                str(root / "ctrnn"),
                str(root / "gru"),
                "--out",
                str(out),
                "--candidates",
                "16",
                "--restarts",
                "1",
            ]
        )
        == 0
    )
    return root, out


def test_compare_writes_every_file(runs):
    root, out = runs
    data = json.loads((out / "comparison.json").read_text())
    assert [(m["run"], m["member"], m["cell"]) for m in data["members"]] == [
        ("ctrnn", 0, "ctrnn"),
        ("ctrnn", 1, "ctrnn"),
        ("gru", 0, "gru"),
        ("gru", 1, "gru"),
    ]
    for name in ("svcca", "cka", "topology", "topology_spectrum"):
        mat = np.asarray(data[name], float)
        assert mat.shape == (4, 4) and np.allclose(mat, mat.T)
    assert np.allclose(np.diag(np.asarray(data["svcca"], float)), 0) and np.allclose(np.diag(data["topology"]), 0)
    assert np.asarray(data["mds_geometry"]).shape == (4, 2) and len(data["graphs"]) == 4
    # the geometry matrix is SVCCA of the members' test-set activity
    inputs = np.asarray(flipflop_test_set(TASK)[0])
    acts = [
        s.reshape(-1, s.shape[-1])
        for run in ("ctrnn", "gru")
        for s in np.asarray(ensemble_states(load_npz(root / run / "ensemble.npz"), inputs), np.float64)
    ]
    np.testing.assert_allclose(data["svcca"], pairwise_svcca(acts), atol=1e-9)
    for fig in ("mds_by_cell", "mds_by_run", "distances", "topology_graphs"):
        assert (out / "figures" / f"{fig}.png").is_file() and (out / "figures" / f"{fig}.pdf").is_file()
    report = (out / "report.md").read_text()
    assert "figures/mds_by_cell.png" in report and "| cell_activation | svcca |" in report and "1 - cka" in report


def test_compare_bad_input(runs, tmp_path, capsys):
    root, _ = runs
    (tmp_path / "empty").mkdir()

    def fails(args, message):
        with pytest.raises(SystemExit) as e:
            main(["compare", *map(str, args), "--out", str(tmp_path / "out")])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err

    fails([root / "ctrnn", tmp_path / "empty"], "no ensemble.npz; is it a run folder?")
    other = tmp_path / "other"
    shutil.copytree(root / "ctrnn", other)
    config = json.loads((other / "config.json").read_text())
    config["config"].update(task_name="perceptual_dm", task={})
    (other / "config.json").write_text(json.dumps(config))
    from ctrnn_jax import load_npz, save_npz  # another network (the same one twice is refused first)

    ensemble = load_npz(other / "ensemble.npz")
    save_npz(eqx.tree_at(lambda e: e.b_out, ensemble, ensemble.b_out + 0.1), other / "ensemble.npz")
    fails([root / "ctrnn", other], "different tasks (flipflop, perceptual_dm); pass --allow-mixed")
    eval_ = json.loads((other / "eval.json").read_text())
    assert not any(eval_["success"])  # fresh networks solve nothing
    fails([root / "ctrnn", "--solved-only"], "no members to compare (no member solves its task")


def test_topology_graph_panels_draw_nodes_edges_and_empty_graphs():
    """One panel per graph: its nodes at their readouts, one line per edge, and a note when a network has
    no stable fixed point (a GRU holding its bits with saturated gates)."""
    from ctrnn_jax.analysis import _plot_compare
    from ctrnn_jax.dynamics._topology import MemberGraph

    def graph(labels, edges):
        labels = np.asarray(labels, np.int64).reshape(-1, 3)
        v, e = len(labels), len(edges)
        return MemberGraph(
            labels=labels,
            outputs=labels.astype(float),
            points=np.zeros((v, 4)),
            edges=np.asarray(edges, np.int64).reshape(-1, 2),
            saddles=np.zeros((e, 4)),
            node_rates=np.zeros((v, 1)),
            edge_rates=np.zeros((e, 1)),
            higher=[],
            n_unmatched=0,
        )

    corners = [(a, b, c) for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)]
    cube = graph(
        corners,
        [(i, j) for i in range(8) for j in range(i + 1, 8) if sum(x != y for x, y in zip(corners[i], corners[j])) == 1],
    )
    fig = _plot_compare.plot_topology_graphs([cube, graph([], [])], ["cube", "gru"])  # the Figure, no file
    left, right = fig.axes
    assert len(left.lines) == 12 and left.collections[0].get_offsets().shape == (8, 2)
    assert left.get_title() == "cube: 8 nodes, 12 edges" and not left.texts[8:]  # 8 node labels, no note
    assert right.get_title() == "gru: 0 nodes, 0 edges"
    assert [t.get_text() for t in right.texts] == ["no stable fixed point"]
