"""The analysis uses the linearization with inputs (issue #33): `analyze`'s switching amplitudes (by continuation)
on decoupled bistable units whose answers are known, their table, `analysis.json` and an older folder without
them, the selection table of a context task, and `compare`'s switching distance."""

import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _analytic import H_STAR, W_DIAG, tanh_root  # tests/_analytic.py

import ctrnn_jax as cj
from ctrnn_jax.analysis import Analysis
from ctrnn_jax.analysis._compare import pairwise_switching
from ctrnn_jax.dynamics._selection import Selection
from ctrnn_jax.dynamics._switching import Switching, pulse_switching


def _u_star(w: float) -> float:
    """The saddle-node of `h ← tanh(w h + u)`: the input at which the memory `h < 0` disappears."""
    h = math.sqrt(1 - 1 / w)
    return w * h - math.atanh(h)


def _bistable(weights) -> cj.CTRNN:
    """Three decoupled units `h_i ← tanh(w_i h_i + u_i)` (one member, M = O = 3), readout `h_i / h_i*`: eight
    memories at the corners; a pulse on channel i against bit i removes a memory at `u*(w_i)`."""
    ens = cj.make_ensemble(cj.EnsembleConfig(members=1, units=3, alpha=1.0), key=jax.random.key(0))
    h = np.asarray([tanh_root(w) for w in weights])
    return eqx.tree_at(
        lambda e: (e.W_rec, e.W_in, e.b, e.W_out, e.b_out),
        ens,
        (
            jnp.asarray(np.diag(weights), jnp.float32)[None],
            jnp.eye(3)[None],
            jnp.zeros((1, 3)),
            jnp.asarray(np.diag(1 / h), jnp.float32)[None],
            jnp.zeros((1, 3)),
        ),
    )


@pytest.fixture(scope="module")
def bistable_analysis():
    ens = _bistable(W_DIAG)
    return ens, cj.analyze(ens, cj.FlipFlopConfig(), source="bistable")


def test_the_switching_table_is_the_bistable_units_saddle_nodes(bistable_analysis):
    """Per channel i, every one of the 8 memories is removed by the pulse against its bit at `u*(w_i)` (the other
    sign never removes it): the smallest and the median c* are both `u*(w_i)`, within 1e-4."""
    _, a = bistable_analysis
    assert isinstance(a.switching, Switching) and a.selection is None  # no `relevant_inputs`
    assert np.all(np.isnan(a.switching.simulated))  # continuation only
    assert len(a.switching) == 8 * 3 * 2  # every memory, channel and sign
    rows = a.switching_rows()
    assert [(r["member"], r["channel"]) for r in rows] == [(0, 0), (0, 1), (0, 2)]
    for r, w in zip(rows, W_DIAG):
        assert r["memories"] == 8 and r["lost"] == 8
        assert r["c* min"] == pytest.approx(_u_star(w), abs=1e-4)
        assert r["c* median"] == pytest.approx(_u_star(w), abs=1e-4)
    # the robustness sweep beside it: the member solves the task at every scale from its smallest one on
    ok = a.robustness["amplitude_success"][:, 0]
    scales = a.robustness["amplitude_scales"]
    assert rows[0]["robust from"] is None or ok[scales >= rows[0]["robust from"]].all()
    text = repr(a)
    assert "Switching amplitude c*" in text and f"{_u_star(W_DIAG[2]):.3f}" in text
    assert "Switching amplitude c*" in a._repr_html_()


def test_the_switching_table_is_written_and_read_back_and_an_older_folder_loads(bistable_analysis, tmp_path):
    """`analysis.json` holds the switching amplitudes and report.md their table with its legend; `load` reads
    them back; a folder written before (no `switching` in its `analysis.json`) loads with None."""
    ens, a = bistable_analysis
    out = tmp_path / "analysis"
    report = a.write(out, explorer=False).read_text()
    assert "## Switching amplitudes" in report and "*c\\**: the amplitude of a constant input" in report
    assert f"| 0 | 1 | 8 | 8 | {_u_star(2.0):.3f} | {_u_star(2.0):.3f} |" in report
    back = Analysis.load(out, ensemble=ens, task=cj.FlipFlopConfig())
    assert back.switching is not None
    np.testing.assert_allclose(back.switching.continuation, a.switching.continuation, equal_nan=True)
    assert back.switching_rows() == a.switching_rows()
    data = json.loads((out / "analysis.json").read_text())
    for key in ("switching", "switching_table", "selection", "selection_consistency"):
        data.pop(key, None)
    (out / "analysis.json").write_text(json.dumps(data))
    old = Analysis.load(out, ensemble=ens, task=cj.FlipFlopConfig())
    assert old.switching is None and old.switching_rows() == [] and "## Switching" not in old.markdown()
    assert "Switching amplitude" not in repr(old)


def test_pulse_switching_without_the_simulation_gives_the_same_continuation():
    """`simulate=False`: the same c* as with the sweep, `simulated` all NaN."""
    ens = _bistable((2.0, 2.0, 2.0))
    corners = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], float)
    fp = cj.fixed_point_stage(ens, cj.FlipFlopConfig())[0]
    both = pulse_switching(ens, cj.FlipFlopConfig(), fp, hold=200)
    fast = pulse_switching(ens, cj.FlipFlopConfig(), fp, simulate=False)
    assert len(both) == len(fast) == 8 * 3 * 2 and set(map(tuple, fast.memory.tolist())) == set(map(tuple, corners))
    np.testing.assert_allclose(fast.continuation, both.continuation, equal_nan=True)
    assert np.all(np.isnan(fast.simulated)) and not fast.switches.any()
    with pytest.raises(TypeError, match="simulate"):
        pulse_switching(ens, cj.FlipFlopConfig(), fp, simulate=1)


def test_the_switching_distance_is_zero_between_a_network_and_itself_and_positive_otherwise():
    """`compare_ensembles`' `switching` matrix: 0 on the same network given twice, and between two bistable
    networks with other self-weights the mean over channels of `|u*(w_a) − u*(w_b)|`."""
    a, b = _bistable(W_DIAG), _bistable((2.0, 2.0, 2.0))
    result = cj.compare_ensembles([a, a, b], task=cj.FlipFlopConfig())
    d = result.switching
    assert d is not None and d.shape == (3, 3)
    assert np.all(np.diag(d) == 0.0)
    assert d[0, 1] == pytest.approx(0.0, abs=1e-6) and d[1, 0] == d[0, 1]  # its fixed points found again
    expected = np.mean([abs(_u_star(w) - _u_star(2.0)) for w in W_DIAG])
    assert d[0, 2] == pytest.approx(expected, abs=1e-3) and d[0, 2] > 0
    assert "switching" in result.within_between()["run"]
    assert "switching" in result.to_dict() and "*switching*" in result.markdown()
    # no memory states: NaN, not 0
    assert np.isnan(pairwise_switching([[0.5, np.nan], [np.nan, np.nan]])[0, 1])


def test_the_selection_table_of_a_context_task_and_its_consistency():
    """A context task's `analyze` gets `selection_analysis` per member and context, its table in the repr and
    report, its consistency across members, and `analysis.json` reads it back (`Selection.from_dict`)."""
    task = cj.ContextDMConfig()
    ens = cj.make_ensemble(
        cj.EnsembleConfig(members=2, units=8, inputs=task.n_inputs, outputs=task.n_outputs),
        key=jax.random.key(1),
    )
    a = cj.analyze(ens, task, config=cj.FixedPointConfig(n_candidates=64), robustness=False)
    assert a.switching is None and isinstance(a.selection, Selection)
    rows = a.selection_rows()
    assert [(r["member"], r["context"], r["relevant channel"]) for r in rows] == [
        (0, 0, 0),
        (0, 1, 1),
        (1, 0, 0),
        (1, 1, 1),
    ]
    cons = a.selection.consistency()
    assert [c["input"] for c in cons] == [0, 1] and all(c["members"] <= 2 for c in cons)
    assert "Selection vectors per context" in repr(a) and "## Selection vectors" in a.markdown()
    back = Selection.from_dict(json.loads(json.dumps(a.to_dict()["selection"])))
    np.testing.assert_allclose(back.overlap, a.selection.overlap, equal_nan=True)
    np.testing.assert_array_equal(back.n_points, a.selection.n_points)


def test_the_analytic_constants_agree():
    """`tanh_root` and the saddle-node formula of this file describe the same units."""
    for w, h in zip(W_DIAG, H_STAR):
        assert math.tanh(w * h) == pytest.approx(h, abs=1e-9)
        assert _u_star(w) > 0
