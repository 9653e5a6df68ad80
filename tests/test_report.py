"""`ctrnn-jax analyze` on a trained ensemble: every figure, analysis.json and report.md."""

import json
import shutil
from pathlib import Path

from _cli_args import TASK  # tests/_cli_args.py

from ctrnn_jax._cli import main

DATA = Path(__file__).parent / "data" / "flipflop_n64_k2.npz"


def test_analyze_writes_every_figure_and_the_report(tmp_path, capsys):
    npz = tmp_path / "ensemble.npz"
    shutil.copy(DATA, npz)
    assert main(["analyze", str(npz), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    report = (out / "report.md").read_text()
    assert "2 of 2" in report and "## Per member" in report
    figures = {
        "task_samples",
        "connectivity",
        "eigenvalues",
        "spectra_members",
        "test_set",
        "state_space",
        "realizations",
        "fixed_point_spectra",
        "ensemble_overview",
        "robustness",
        "realization_similarity",
    }
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


FAST_FP = ["--n-candidates", "32", "--n-trials", "2", "--adam-steps", "50", "--completion-rounds", "1"]


def test_report_reads_back_how_training_ended_and_explains_every_column(tmp_path):
    """A small run trained to criterion, analysed in place: report.md's training summary is eval.json's training
    record (steps, criterion and margin, criterion step and restarts per member, wall time), every column of
    the per-member table has a legend line, and the run folder is named relative to itself."""
    import re

    import numpy as np

    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--members",
                "3",
                "--units",
                "6",
                "--steps",
                "60",
                "--steps-per-call",
                "5",
                "--batch",
                "8",
                "--progress",
                "none",
                *TASK,
                "--stop-mse",
                "0.6",
                "--stop-margin",
                "0.5",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    ev = json.loads((run / "eval.json").read_text())
    t = ev["training"]
    assert t["criterion"] == 0.3 and t["stop_margin"] == 0.5 and t["stop_mse"] == 0.6 and t["max_steps"] == 60
    assert t["steps"] == 60 or all(s >= 0 for s in ev["criterion_step"])  # every step, or all met the criterion
    assert t["wall_s"] > 0 and t["threshold"] == 0.02
    # summary.csv: a held column, the members that met the criterion by each row's step
    rows = (run / "summary.csv").read_text().splitlines()
    assert rows[0] == "step,median_loss,min_loss,max_loss,frozen,held,steps_per_s"
    for row in rows[1:]:
        step, held = int(row.split(",")[0]), int(row.split(",")[5])
        assert held == sum(0 <= s <= step for s in ev["criterion_step"])
    assert main(["analyze", str(run), *FAST_FP]) == 0
    report = (run / "report.md").read_text()
    assert report.startswith("# Analysis of `.`") and str(tmp_path) not in report  # no absolute path
    line = next(x for x in report.splitlines() if x.startswith("Training: "))
    assert line.startswith(f"Training: {t['steps']} steps of at most 60; ")
    assert "held-out MSE < 0.3 (the threshold 0.6 less a margin of 50 %)" in line
    met = [s for s in ev["criterion_step"] if s >= 0]
    assert f"{len(met)} of 3 members met it" in line
    assert f"{sum(ev['restarts'])} restart(s)" in line and re.search(r"wall time \d+ s of training", line)
    table = report[report.index("| member | criterion step | restarts |") :].splitlines()[2:5]
    for k, row in enumerate(table):
        step = ev["criterion_step"][k]
        assert row == f"| {k} | {step if step >= 0 else '–'} | {ev['restarts'][k]} |"
    # the legend: one line per column of the per-member table, in its order
    per_member = report[report.index("## Per member") :]
    header = [h.strip() for h in per_member.splitlines()[2].strip("|").split("|")]
    legend = per_member[per_member.index("### Columns") :].split("\n\n")[1].splitlines()
    assert [re.match(r"- \*\*(.+?)\*\*: ", x).group(1) for x in legend] == header
    for name in (
        "slow",
        "memory states by mechanism",
        "memory check",
        "memory states held >= 1 trial",
        "memory states at fixed points",
        "margin",
    ):
        assert name in header, name
    assert "marginal m=k" in report and "`long-lived`" in report
    # the margin of each member below the threshold, and what robustness is measured against
    margins = [f"{100 * (1 - m / 0.02):.0f} %" for m in ev["mse"]]
    body = per_member.splitlines()[4:7]
    assert all(f"| {m} |" in row for m, row in zip(margins, body))
    assert (
        "The members were trained to held-out MSE < 0.3 (a margin of 50 % below the success threshold 0.02)" in report
    )
    assert "figures/memory_lifetimes.png" in report and (run / "figures" / "memory_lifetimes.png").is_file()
    # analysis.json keeps the record, and Analysis.load reads it back
    import ctrnn_jax as cj

    loaded = cj.Analysis.load(run)
    assert loaded.training["criterion_step"] == ev["criterion_step"] and loaded.training["steps"] == t["steps"]
    assert loaded.markdown().count("## Training") == 1
    assert np.array_equal(loaded.memory_check.lifetime, cj.Analysis.load(run).memory_check.lifetime)
