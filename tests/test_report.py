"""`ctrnn-jax analyze` on a trained ensemble: every figure, analysis.json and report.md."""

import json
import shutil
from pathlib import Path

from ctrnn_jax._cli import main

DATA = Path(__file__).parent / "data" / "flipflop_n64_k2.npz"


def test_analyze_writes_every_figure_and_the_report(tmp_path, capsys):
    npz = tmp_path / "ensemble.npz"
    shutil.copy(DATA, npz)
    assert main(["analyze", str(npz), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    report = (out / "report.md").read_text()
    assert "2 of 2" in report and "## Per member" in report
    figures = {"task_samples", "connectivity", "eigenvalues", "spectra_members", "test_set", "state_space",
               "realizations", "fixed_point_spectra", "ensemble_overview", "robustness", "realization_similarity"}
    for name in figures:
        for suffix in (".png", ".pdf"):
            assert (out / "figures" / f"{name}{suffix}").stat().st_size > 1000, name
        assert f"figures/{name}.png" in report, name
    results = json.loads((out / "analysis.json").read_text())
    assert results["n_success"] == 2
    # both members hold the cube: similar geometry, similar activity
    assert results["procrustes"][0][1] < 0.2 and results["cka"][0][1] > 0.5
    # robustness: heavy input noise breaks the memory, clean input does not
    assert results["robustness"]["noise_success_rate"][0] == 1.0
    assert results["robustness"]["noise_success_rate"][-1] < 1.0
    assert "report:" in capsys.readouterr().out


def test_analyze_bad_path_exits_2(tmp_path, capsys):
    try:
        main(["analyze", str(tmp_path / "missing.npz")])
    except SystemExit as e:
        assert e.code == 2
    else:
        raise AssertionError("expected exit code 2")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.npz" in err[0]
