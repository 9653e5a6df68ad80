"""Results as objects: `Analysis.load` restores what `write` saved without computing it again; `Comparison`
(what `compare_ensembles` returns) and `MemoryStates` print briefly; and every result class is a `Result`, with a
`to_dict()` that JSON keeps and a table in a notebook (`_repr_html_`)."""

import dataclasses
import importlib
import inspect
import json
import shutil
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _analytic import H_STAR, W_DIAG  # tests/_analytic.py
from test_similarity import CUBE, EMPTY

import ctrnn_jax as cj
from ctrnn_jax._results import Result
from ctrnn_jax.analysis import (
    Analysis,
    Comparison,
    LesionEffects,
    Psychometric,
    TaskVariance,
    UnitClusters,
    classical_mds,
    write_comparison,
)
from ctrnn_jax.dynamics import MemoryCheck, MemoryStates, pairwise_graph_distances
from ctrnn_jax.io._metrics import read_losses, write_metrics
from ctrnn_jax.io._run_config import RunConfig

N = 3
TASK = cj.FlipFlopConfig(width=5, delay=5)
SMALL = cj.FixedPointConfig(n_candidates=32, adam_steps=50, restarts=0, complete=False, seed=3)


def network(W_input):
    """Bistable tanh units `diag(1.5, 2, 3)` read out as `h_i / h_i*` (`tests/_analytic.py`)."""
    model = cj.CTRNN(N, N, N, key=jax.random.key(0))

    def f32(a):
        return jnp.asarray(a, jnp.float32)

    return eqx.tree_at(
        lambda m: (m.W_rec, m.W_in, m.b, m.W_out, m.b_out),
        model,
        (f32(np.diag(W_DIAG)), f32(W_input), jnp.zeros(N), f32(np.diag(1 / H_STAR)), jnp.zeros(N)),
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A run folder of two 3-unit flip-flop networks (the cube; the same with unit 0 cut from its input) with
    losses, and its analysis as `analyze_run` makes it (losses, initial `W_rec`, seed 3), written to a folder
    of its own."""
    root = tmp_path_factory.mktemp("results")
    run = root / "run"
    run.mkdir()
    ensemble = cj.stack_members([network(2 * np.eye(N)), network(np.diag([0.0, 2.0, 2.0]))])
    cj.save_npz(ensemble, run / "ensemble.npz")
    config = RunConfig(ensemble=cj.EnsembleConfig(members=2, units=N), task=TASK)
    (run / "config.json").write_text(json.dumps({"config": config.to_dict()}))
    write_metrics(run / "metrics.csv", np.linspace([1.0, 2.0], [0.1, 0.2], 5))
    result = cj.analyze(
        ensemble, TASK, config=SMALL, losses=read_losses(run / "metrics.csv", 2), seed=3, source=str(run)
    )
    k_model, _ = jax.random.split(jax.random.key(config.train.seed))
    initial = np.asarray(cj.make_ensemble(config.ensemble, key=k_model).W_rec)
    result = dataclasses.replace(result, initial_W_rec=initial[result.best])
    result.write(root / "out", explorer=False)
    return result, root


@pytest.fixture
def no_recomputing(monkeypatch):
    """Loading must not search fixed points, evaluate, check memories or sweep."""

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed")

    from ctrnn_jax.analysis import _analysis, _analyze
    from ctrnn_jax.dynamics import _stage
    from ctrnn_jax.io import _eval

    for module, name in (
        (_analyze, "fixed_point_stage"),
        (_stage, "fixed_point_stage"),
        (_eval, "evaluate_run"),
        (_analyze, "memory_check"),
        (_analysis, "robustness_sweep"),
        (_analysis, "compare_realizations"),
    ):
        monkeypatch.setattr(module, name, refuse)


def test_load_restores_the_analysis_without_recomputing(written, no_recomputing):
    result, root = written
    back = Analysis.load(root / "out")
    assert json.dumps(back.rows()) == json.dumps(result.rows())  # (NaN cells compare as text)
    assert back.to_dict() == result.to_dict()
    assert back.markdown() == result.markdown()
    assert (back.best, back.seed, back.threshold, back.source) == (result.best, 3, result.threshold, result.source)
    assert back.config == SMALL and back.task == result.task
    for a, b in zip(back.fixed_points, result.fixed_points):
        for field in ("member", "points", "q", "eigvals", "n_unstable", "outputs", "exact", "n_marginal"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    np.testing.assert_array_equal(back.losses, result.losses)
    np.testing.assert_array_equal(back.initial_W_rec, result.initial_W_rec)
    for name, v in result.robustness.items():
        np.testing.assert_allclose(back.robustness[name], v)
    np.testing.assert_array_equal(back.memory_check.verdict, result.memory_check.verdict)
    assert back.memory[0].to_dict() == result.memory[0].to_dict()
    np.testing.assert_allclose(back.realizations["procrustes"], result.realizations["procrustes"])
    assert repr(back) == repr(result)


def test_load_without_an_analysis_or_the_network(written, tmp_path):
    _, root = written
    with pytest.raises(FileNotFoundError, match="no analysis.json; not an analysis folder"):
        Analysis.load(tmp_path)
    moved = tmp_path / "moved"
    shutil.copytree(root / "out", moved)
    data = json.loads((moved / "analysis.json").read_text())
    (moved / "analysis.json").write_text(json.dumps({**data, "source": str(tmp_path / "gone")}))
    with pytest.raises(ValueError, match="the network analysed is not found.*Pass `ensemble=`"):
        Analysis.load(moved)
    ensemble = cj.load_npz(root / "run" / "ensemble.npz")
    back = Analysis.load(moved, ensemble=ensemble, task=TASK)  # given: the same network
    assert back.best == data["best_member"] and back.losses is None  # (no run folder: no metrics.csv)
    with pytest.raises(ValueError, match="`ensemble` is not the network analysed"):
        Analysis.load(moved, ensemble=eqx.tree_at(lambda e: e.b_out, ensemble, ensemble.b_out + 1))


def handmade() -> dict:
    """The fields of a comparison of 4 networks from 2 runs, one without memory states (no search)."""
    graphs = [CUBE, CUBE.without_edge(3), EMPTY, CUBE.without_edge(0)]
    pts = np.random.default_rng(1).standard_normal((4, 3))
    geo = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    topo = pairwise_graph_distances(graphs)
    members = [
        {
            "run": run,
            "member": k,
            "cell": cell,
            "activation": "tanh",
            "units": 4,
            "success": k == 0,
            "memory_check": "attractors",
        }
        for run, cell in (("a", "ctrnn"), ("b", "gru"))
        for k in range(2)
    ]
    return {
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


def test_comparison_repr_is_short_and_names_what_was_compared():
    comparison = Comparison(**handmade())
    text = repr(comparison)
    assert len(text.splitlines()) < 15 and "4 networks from 2 run(s)" in text
    assert "a (2 ctrnn/tanh N=4)" in text and "b (2 gru/tanh N=4)" in text and "solved: 2 of 4" in text
    assert "<table>" in comparison._repr_html_() and "between / within" in comparison._repr_html_()


def test_comparison_to_dict_is_todays_comparison_json():
    """The keys and values `write_comparison` wrote for a comparison dict before the `Comparison` object."""
    fields = handmade()
    data = Comparison(**fields).to_dict()
    assert list(data) == [
        "members",
        "svcca",
        "procrustes",
        "dynamics",
        "topology",
        "topology_spectrum",
        "linearization",
        "cka",
        "mds_geometry",
        "mds_topology",
        "no_memory_states",
        "graphs",
        "within_between",
    ]
    assert data["members"] == fields["members"] and data["graphs"] == [g.to_dict() for g in fields["graphs"]]
    assert data["svcca"] == fields["svcca"].tolist() and data["mds_topology"][2] == [None, None]
    assert data["no_memory_states"] == {"count": 1, "of": 4, "members": [2]}
    groups = [m["run"] for m in fields["members"]]
    assert data["within_between"]["run"]["dynamics"] == cj.analysis.within_between(fields["dynamics"], groups)
    assert set(data["within_between"]) == {"run", "cell_activation"}
    assert set(data["within_between"]["run"]) == {
        "svcca",
        "procrustes",
        "dynamics",
        "topology",
        "topology_spectrum",
        "linearization",
        "1 - cka",
    }


def test_comparison_write_and_figures(tmp_path):
    comparison = Comparison(**handmade())
    figures = comparison.figures(n_graphs=2)
    assert set(figures) == {"mds_by_cell", "mds_by_run", "distances", "topology_graphs"}
    report = comparison.write(tmp_path / "cmp", n_graphs=2)
    assert report == tmp_path / "cmp" / "report.md" and "figures/mds_by_cell.png" in report.read_text()
    data = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert {k: v for k, v in data.items() if k not in ("owner", "networks", "files")} == comparison.to_dict()
    for name in figures:
        for suffix in (".png", ".pdf"):
            assert (tmp_path / "cmp" / "figures" / f"{name}{suffix}").is_file()
            assert f"figures/{name}{suffix}" in data["files"]
    # the function of old, on a dict of the fields: the same files
    write_comparison(handmade(), tmp_path / "again", n_graphs=2)
    assert (tmp_path / "again" / "report.md").read_text() == report.read_text()


def test_memory_states_repr_is_short(written):
    result, _ = written
    memory = result.memory[0]
    text = repr(memory)
    assert len(text.splitlines()) <= 4 and text.startswith("MemoryStates: 2 member(s)")
    assert "attractor" in text and "<table>" in memory._repr_html_()
    back = cj.dynamics.MemoryStates.from_dict(json.loads(json.dumps(memory.to_dict())))
    assert back.to_dict() == memory.to_dict() and repr(back) == text


# ------------------------------------------------------------------------------------------------
# The results family: every result object is a `Result` with `to_dict` (plain JSON) and `_repr_html_`
# ------------------------------------------------------------------------------------------------

# The public classes that are results, and those that are not (configs, models, tasks, trainers, meters,
# errors): a new public class fails `test_every_public_class_is_registered` until it is listed in one.
RESULTS = {
    "Analysis",
    "Comparison",
    "Continuation",
    "FixedPoints",
    "Linearization",
    "MemberGraph",
    "MemoryCheck",
    "MemoryStates",
    "PredictionError",
    "Selection",
    "Switching",
    "Topology",
    "TaskVariance",
    "UnitClusters",
    "LesionEffects",
    "Psychometric",
}
NOT_RESULTS = {
    "AbstractRNN",
    "DelayedNonMatchConfig",
    "GoConfig",
    "MultitaskConfig",
    "TaskSlot",
    "AbstractTask",
    "CTRNN",
    "ConstraintConfig",
    "Constraints",
    "ContextDMConfig",
    "DelayedMatchConfig",
    "DistributedError",
    "EnsembleConfig",
    "EnsembleTrainer",
    "FixedPointConfig",
    "FlipFlopConfig",
    "GRU",
    "Hyper",
    "LSTM",
    "NeurogymTask",
    "NoProgress",
    "ParametricWMConfig",
    "PerceptualDMConfig",
    "RunConfig",
    "TensorBoardProgress",
    "TextProgress",
    "TqdmProgress",
    "TrainConfig",
    "TrainState",
    "TrainStep",
    "UGRNN",
}
LAYERS = ("", ".models", ".tasks", ".training", ".dynamics", ".io", ".analysis")


def result_classes(cls: type = Result) -> set[type]:
    """Every subclass of `cls`, recursively."""
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | result_classes(sub)
    return out


def public_classes() -> dict[str, type]:
    """The classes of ctrnn_jax that `ctrnn_jax` and its layers export."""
    found = {}
    for layer in LAYERS:
        module = importlib.import_module(f"ctrnn_jax{layer}")
        for name in dir(module):
            obj = getattr(module, name)
            if not name.startswith("_") and inspect.isclass(obj) and obj.__module__.startswith("ctrnn_jax"):
                found[name] = obj
    return found


@pytest.fixture(scope="module")
def instances(written) -> dict[type, tuple[Result, Callable[[Result, dict], bool]]]:
    """A small instance of every result class and a check of the key numbers of its `to_dict()` read back
    from JSON: from the analysis of the two 3-unit flip-flop networks, or made by hand."""
    result, _ = written
    fp = result.fixed_points[0]
    lin = cj.linearize(result.ensemble, fp)
    error = cj.prediction_error(result.ensemble, lin, radii=(1e-2,), steps=(1,), n_directions=2)
    r = 2  # rows of the handmade results
    continuation = cj.Continuation(
        member=np.arange(r),
        start=np.zeros((r, N)),
        end=np.ones((r, N)),
        param=[np.linspace(0, 1, 3)] * r,
        states=[np.zeros((3, N))] * r,
        outputs=[np.zeros((3, N))] * r,
        eigvals=[np.full((3, N), 0.5 + 0j)] * r,
        n_unstable=[np.zeros(3, int)] * r,
        ended=np.asarray(["left the path", "out of steps"]),
        events=[
            {
                "member": 1,
                "branch": 1,
                "kind": "saddle-node",
                "param": 0.25,
                "input": np.ones(N),
                "state": np.zeros(N),
                "output": np.zeros(N),
                "stable_lost": True,
            }
        ],
        label="pulse",
    )
    switching = cj.Switching(
        member=np.asarray([0, 1]),
        point=np.asarray([0, 3]),
        memory=np.ones((r, N)),
        channel=np.asarray([0, 2]),
        sign=np.asarray([1, -1]),
        amplitude=np.ones(N),
        continuation=np.asarray([0.5, np.nan]),
        simulated=np.asarray([0.55, np.nan]),
        step=0.05,
        max_scale=1.5,
        hold=100,
    )
    selection = cj.Selection(
        inputs=np.eye(2, N),
        relevant=np.asarray([0, -1]),
        evidence=np.asarray([0, 1]),
        n_points=np.asarray([[3, 0]]),
        alignment=np.asarray([[0.95, np.nan]]),
        overlap=np.asarray([[[0.5, 0.1, 0.0], [np.nan] * N]]),
        ratio=np.asarray([[5.0, np.nan]]),
        band=0.05,
    )
    topology = cj.dynamics.Topology(
        n_members=1, graphs=[CUBE], branch_node=[np.zeros((0, 2), int)], saddle_point=[np.zeros(0, int)]
    )
    comparison = Comparison(**handmade())
    # the unit-level results of a multitask network (two members, three units, two tasks), by hand
    tasks = ("dm1", "dm2")
    variance = np.asarray([[[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]] * 2)
    task_variance = TaskVariance(
        variance=variance,
        normalized=np.asarray([[[1.0, 0.0], [0.0, 1.0], [np.nan, np.nan]]] * 2),
        active=np.asarray([[True, True, False]] * 2),
        labels=tasks,
        n_trials=np.asarray([8, 8]),
        epoch="response",
        min_variance=1e-3,
    )
    clusters = UnitClusters(
        labels=np.asarray([[0, 1, -1]] * 2),
        k=np.asarray([2, 2]),
        silhouette=np.asarray([1.0, 1.0]),
        k_range=(2,),
        silhouette_by_k=np.ones((2, 1)),
        profiles=np.asarray([[[1.0, 0.0], [0.0, 1.0]]] * 2),
        fraction=np.asarray([[0.5, 0.5]] * 2),
        match=np.asarray([[0, 1]] * 2),
        consistency=np.asarray([1.0, 1.0]),
        labels_tasks=tasks,
    )
    lesions = LesionEffects(
        labels=tasks,
        sets=("cluster 0", "cluster 1"),
        n_units=np.ones((2, 2), int),
        intact=np.full((2, 2), 0.95),
        lesioned=np.asarray([[[0.0, 0.95], [0.95, 0.0]]] * 2),
        change=np.asarray([[[-0.95, 0.0], [0.0, -0.95]]] * 2),
    )
    curve = Psychometric(
        coherence=np.asarray([-0.5, 0.5]),
        p_positive=np.asarray([[0.0, 1.0], [0.1, np.nan]]),
        n_trials=np.asarray([4, 4]),
        slope=np.asarray([8.0, 4.0]),
        bias=np.asarray([0.0, 0.1]),
        threshold=np.asarray([0.0, -0.025]),
        task="perceptual_dm",
        ridge=1e-3,
    )

    def eig(d):
        pairs = np.asarray(d["eigvals"]).reshape(len(fp), -1, 2)
        return pairs[..., 0] + 1j * pairs[..., 1]

    cases = [
        (
            fp,
            lambda d: (
                [c["points"] for c in d["counts"]] == [c["points"] for c in fp.counts()]
                and d["member"] == fp.member.tolist()
                and np.allclose(d["points"], fp.points)
                and np.allclose(eig(d), fp.eigvals)
                and d["n_unstable"] == fp.n_unstable.tolist()
                and "jacobians" not in d
            ),
        ),
        (lin, lambda d: d["member"] == lin.member.tolist() and len(d["slow_eigvals"]["real"]) == len(lin)),
        (error, lambda d: d["radii"] == [1e-2] and d["steps"] == [1] and len(d["per_member"]) == 2),
        (result.memory[0], lambda d: MemoryStates.from_dict(d).to_dict() == result.memory[0].to_dict()),
        (
            result.memory_check,
            lambda d: MemoryCheck.from_dict(d).verdict.tolist() == result.memory_check.verdict.tolist(),
        ),
        (CUBE, lambda d: d["n_nodes"] == CUBE.n_nodes and d["edges"] == CUBE.edges.tolist()),
        (topology, lambda d: d["n_members"] == 1 and d["graphs"] == [CUBE.to_dict()] and d["memory"] is None),
        (continuation, lambda d: d["member"] == [0, 1] and d["events"][0]["param"] == 0.25),
        (switching, lambda d: d["continuation"] == [0.5, None] and d["hold"] == 100),
        (selection, lambda d: d["n_points"] == [[3, 0]] and d["ratio"] == [[5.0, None]]),
        (result, lambda d: d["members"] == 2 and d["best_member"] == result.best),
        (comparison, lambda d: d["members"] == handmade()["members"]),
        (task_variance, lambda d: d["variance"][0][1] == [0.0, 2.0] and d["labels"] == list(tasks)),
        (clusters, lambda d: d["k"] == [2, 2] and d["labels"][0] == [0, 1, -1] and d["consistency"] == [1.0, 1.0]),
        (lesions, lambda d: d["change"][0][0] == [-0.95, 0.0] and d["sets"] == ["cluster 0", "cluster 1"]),
        (curve, lambda d: d["p_positive"][1] == [0.1, None] and d["slope"] == [8.0, 4.0]),
    ]
    return {type(obj): (obj, check) for obj, check in cases}


def test_every_result_class_is_tested(instances):
    assert result_classes() == set(instances)
    assert {cls.__name__ for cls in result_classes()} == RESULTS


def test_every_result_to_dict_is_json_and_keeps_its_numbers(instances):
    for cls, (obj, check) in instances.items():
        data = json.loads(json.dumps(obj.to_dict()))
        assert check(data), f"{cls.__name__}.to_dict() read back from JSON lost its numbers"


def test_every_result_shows_as_a_table(instances):
    for cls, (obj, _) in instances.items():
        assert "<table" in obj._repr_html_(), cls.__name__
        text = repr(obj)
        assert text and not text.startswith(f"{cls.__name__}("), f"{cls.__name__}: the dataclass repr, not a table"


def test_every_public_class_is_registered():
    found = public_classes()
    unregistered = set(found) - RESULTS - NOT_RESULTS
    assert not unregistered, f"new public classes: list each in RESULTS or NOT_RESULTS: {sorted(unregistered)}"
    assert RESULTS <= set(found), f"results no longer public: {sorted(RESULTS - set(found))}"
    for name in RESULTS:
        assert issubclass(found[name], Result), f"{name} is a result: subclass ctrnn_jax._results.Result"
    for name in NOT_RESULTS & set(found):
        assert not issubclass(found[name], Result), f"{name} is a Result: move it to RESULTS"


def test_compare_ensembles_returns_a_comparison():
    assert inspect.signature(cj.compare_ensembles).return_annotation in (Comparison, "Comparison")
