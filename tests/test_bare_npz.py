"""Every command on a bare `ensemble.npz` (no run folder) of any shape: a 4-bit file and a 1-input file.

The networks are built by hand so that their fixed points are known exactly: with `a = 1`, `b = 0`,
tanh and a diagonal `W_rec = w·I`, every unit is its own bistable switch at zero input, with fixed
points `h_i ∈ {0, ±h*}` (`h* = tanh(w h*)`); a point with `z` zero coordinates is a saddle of index
`z` (the Jacobian is `diag(w (1 − h_i²))`: `w > 1` at 0, `< 1` at `±h*`).
"""

import itertools
import json

import numpy as np
import pytest

import ctrnn_jax as cj
from ctrnn_jax._cli import main
from ctrnn_jax.io._serialisation import from_arrays


def _h_star(w: float) -> float:
    h = 1.0
    for _ in range(200):
        h = np.tanh(w * h)
    return float(h)


def _diagonal_network(ws, n_bits: int, extra_units: int = 0):
    """K members (one per `w`) with `n_bits` inputs/outputs; unit i < n_bits is bit i's switch, the
    `extra_units` more decay (`W_rec = 0.5`, no input, not read out)."""
    n = n_bits + extra_units
    arrays = {name: [] for name in ("W_rec", "W_in", "b", "W_out", "b_out", "alpha")}
    for w in ws:
        arrays["W_rec"].append(np.diag([w] * n_bits + [0.5] * extra_units))
        arrays["W_in"].append(np.eye(n, n_bits) * 2.0)
        arrays["b"].append(np.zeros(n))
        arrays["W_out"].append(np.eye(n_bits, n) / _h_star(w))
        arrays["b_out"].append(np.zeros(n_bits))
        arrays["alpha"].append(1.0)
    return from_arrays({k: np.asarray(v, np.float32) for k, v in arrays.items()}, "tanh")


def _reference_outputs(ensemble, inputs):
    """A plain NumPy loop of the Keras SimpleRNN + Dense equations: `(K, B, T, O)`."""
    outs = []
    for k in range(ensemble.W_rec.shape[0]):
        W_rec, W_in, W_out, b_out = (
            np.asarray(getattr(ensemble, n)[k], np.float64) for n in ("W_rec", "W_in", "W_out", "b_out")
        )
        h = np.zeros((inputs.shape[0], W_rec.shape[0]))
        zs = []
        for t in range(inputs.shape[1]):
            h = np.tanh(h @ W_rec.T + inputs[:, t] @ W_in.T)
            zs.append(h @ W_out.T + b_out)
        outs.append(np.stack(zs, 1))
    return np.stack(outs)


WS = (2.0, 3.0)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bare")
    cj.save_npz(_diagonal_network(WS, 4), folder / "four_bit.npz")
    cj.save_npz(_diagonal_network(WS, 1, extra_units=1), folder / "one_input.npz")
    return folder


def _one_line_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return err


def test_fixed_points_of_a_bare_4_bit_file_at_the_given_input(files, tmp_path, capsys):
    out = tmp_path / "fp.npz"
    assert (
        main(
            [
                "fixed-points",
                str(files / "four_bit.npz"),
                "--input",
                "0,0,0,0",
                "--out",
                str(out),
                "--candidates",
                "256",
                "--restarts",
                "1",
            ]
        )
        == 0
    )  # as analyze searches: compiled once
    assert "member 0:" in capsys.readouterr().out
    fps = cj.FixedPoints.from_npz(out)
    for k, w in enumerate(WS):
        sel = fps.member == k
        points, index = fps.points[sel], fps.n_unstable[sel]
        h = _h_star(w)
        # every point found is one of the 81 exact fixed points, with the saddle index it must have
        levels = np.abs(np.abs(points[..., None]) - np.asarray([0.0, h])).argmin(-1)  # 0: at 0, 1: at ±h*
        np.testing.assert_allclose(np.abs(points), np.where(levels == 1, h, 0.0), atol=1e-4)
        np.testing.assert_array_equal(index, np.sum(levels == 0, axis=1))
        # and all 16 stable corners (the memory states) are found
        corners = {tuple(c) for c in np.sign(points[index == 0]).astype(int).tolist()}
        assert corners == set(itertools.product((-1, 1), repeat=4))


def test_evaluate_needs_a_task_and_says_which_fit(files, capsys):
    err = _one_line_error(capsys, ["evaluate", str(files / "four_bit.npz")])
    assert err.endswith(
        "four_bit.npz: no run folder, so no task to evaluate on (M = 4 inputs, O = 4 outputs is not "
        "the 3-bit flip-flop): give --task NAME (tasks of that size: flipflop (n_bits = 4))\n"
    )
    err = _one_line_error(capsys, ["evaluate", str(files / "one_input.npz")])
    assert "(tasks of that size: flipflop (n_bits = 1), perceptual_dm, parametric_wm)" in err
    err = _one_line_error(capsys, ["evaluate", str(files / "one_input.npz"), "--task", "context_dm"])
    assert err.endswith(
        "error: the context_dm task has 4 input(s) and 1 output(s); the ensemble has M = 1 inputs and O = 1 outputs.\n"
    )


@pytest.mark.parametrize("name, n_bits", [("four_bit.npz", 4), ("one_input.npz", 1)])
def test_evaluate_a_bare_file_as_an_n_bit_flipflop(files, tmp_path, name, n_bits):
    """`--task flipflop` takes n_bits = M = O; the MSE is the independent NumPy loop's on that test set."""
    assert main(["evaluate", str(files / name), "--task", "flipflop", "--json", str(tmp_path / "m.json")]) == 0
    result = json.loads((tmp_path / "m.json").read_text())
    inputs, targets = cj.flipflop_test_set(cj.FlipFlopConfig(n_bits=n_bits))
    assert inputs.shape[-1] == n_bits
    reference = _reference_outputs(cj.load_npz(files / name), np.asarray(inputs, np.float64))
    mse = np.mean((reference - np.asarray(targets)[None]) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(result["mse"], mse, rtol=1e-4)


def test_fixed_points_and_analyze_of_a_bare_1_input_file(files, tmp_path, capsys):
    """At input u the switch unit has the fixed points h = tanh(w h + 2u) (three for small u)."""
    u = 0.1
    assert (
        main(
            [
                "fixed-points",
                str(files / "one_input.npz"),
                "--input",
                str(u),
                "--out",
                str(tmp_path / "fp.npz"),
                "--candidates",
                "256",
                "--restarts",
                "1",
            ]
        )
        == 0
    )  # analyze's search below: compiled once
    fps = cj.FixedPoints.from_npz(tmp_path / "fp.npz")
    grid = np.linspace(-1.0, 1.0, 2_000_001)
    for k, w in enumerate(WS):
        f = np.tanh(w * grid + 2 * u) - grid
        roots = grid[np.flatnonzero(np.diff(np.sign(f)))]
        assert len(roots) == 3
        sel = fps.member == k
        order = np.argsort(fps.points[sel, 0])
        np.testing.assert_allclose(fps.points[sel][order, 0], roots, atol=1e-5)
        np.testing.assert_allclose(fps.points[sel][:, 1], 0.0, atol=1e-6)  # the decaying unit
        np.testing.assert_array_equal(fps.n_unstable[sel][order], [0, 1, 0])
    capsys.readouterr()
    assert main(["analyze", str(files / "one_input.npz"), "--input", str(u), "--out", str(tmp_path / "report")]) == 0
    analysis = json.loads((tmp_path / "report" / "analysis.json").read_text())
    assert analysis["task"] is None and analysis["fixed_points"][0]["input"] == pytest.approx([u])
    for row in analysis["fixed_points"][0]["per_member"]:
        assert (row["points"], row["stable"], row["saddles"]) == (3, 2, {"1": 1})
    report = (tmp_path / "report" / "report.md").read_text()
    assert "(no task)" in report
    for figure in ("eigenvalues", "state_space_0", "fixed_point_spectra_0"):
        assert (tmp_path / "report" / "figures" / f"{figure}.png").stat().st_size > 0
        assert f"figures/{figure}.png" in report


def test_analyze_a_bare_4_bit_file_as_a_flipflop(files, tmp_path, capsys):
    assert main(["analyze", str(files / "four_bit.npz"), "--task", "flipflop", "--out", str(tmp_path / "r")]) == 0
    analysis = json.loads((tmp_path / "r" / "analysis.json").read_text())
    assert analysis["task"] == "flipflop"
    inputs, targets = cj.flipflop_test_set(cj.FlipFlopConfig(n_bits=4))
    reference = _reference_outputs(cj.load_npz(files / "four_bit.npz"), np.asarray(inputs, np.float64))
    np.testing.assert_allclose(
        analysis["eval"]["mse"], np.mean((reference - np.asarray(targets)[None]) ** 2, axis=(1, 2, 3)), rtol=1e-4
    )
    # fixed points at the flip-flop's zero input: every member has its 16 stable corners
    assert [row["stable"] for row in analysis["fixed_points"][0]["per_member"]] == [16, 16]
    assert "members solve the task (mse < 0.02" in (tmp_path / "r" / "report.md").read_text()


def test_task_options_are_for_bare_files_only(files, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": cj.io.RunConfig().to_dict()}))
    cj.save_npz(_diagonal_network(WS, 3), run / "ensemble.npz")
    err = _one_line_error(capsys, ["evaluate", str(run), "--task", "perceptual_dm"])
    assert "--task/--task-opt are for a bare ensemble.npz; " in err and "is a run folder of the flipflop task" in err
    err = _one_line_error(capsys, ["evaluate", str(files / "four_bit.npz"), "--task-opt", "length=50"])
    assert err.endswith("error: --task-opt needs --task NAME\n")
