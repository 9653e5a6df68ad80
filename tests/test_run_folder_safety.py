"""Issue #30: what a run, analysis or comparison folder can and cannot make the tool do.

- A crafted folder (a manifest naming absolute paths, `..`, a file behind a symlink out of the folder, a
  file of a kind we do not write) never makes a command delete, replace or write a file outside it; the
  commands that read a manifest refuse it in one line (exit 2) and remove nothing.
- Derived files (fixed points) are reused only when they match the weights, the inputs, the settings and
  the task, and hold finite points; else found again, and the log says why.
- Outputs never go into another network's run folder without --overwrite, and never replace a run's own
  files (its `eval.json`: the run's training record).
"""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _cli_args import FAST_FP, TINY  # tests/_cli_args.py

from ctrnn_jax import load_npz
from ctrnn_jax._cli import main
from ctrnn_jax.io._serialisation import fingerprint


def cli(argv) -> int:
    return main([str(a) for a in argv])


def fails(argv, capsys) -> str:
    """Run `ctrnn-jax argv`; assert exit status 2 and one line on stderr; return it."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def snapshot(folder: Path) -> dict:
    """`{path: (bytes, mtime_ns)}` of every file under `folder`: what must not change."""
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("safety")
    for name, seed in (("run", 0), ("other", 1)):
        assert cli(["train", *TINY, "--seed", str(seed), "--out", base / name]) == 0
    return base


@pytest.fixture
def outside(tmp_path):
    """A folder beside the crafted one, with files that no command may touch."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "sentinel.txt").write_text("keep me\n")
    (folder / "sentinel.png").write_bytes(b"\x89PNG\r\n\x1a\n not ours")
    return folder


# ---------------------------------------------------------------------------------------------------
# 1. Nothing outside the folder
# ---------------------------------------------------------------------------------------------------

CRAFTS = ("absolute", "dotdot", "symlink", "foreign")


def craft(folder: Path, manifest: str, how: str, outside: Path) -> None:
    """Give `folder` a `manifest` (analysis.json or comparison.json) of another network whose `files` name
    something that is not ours to remove."""
    folder.mkdir(exist_ok=True)
    if how == "absolute":
        files = [str(outside / "sentinel.txt")]
    elif how == "dotdot":
        files = [f"../{outside.name}/sentinel.txt"]
    elif how == "symlink":  # figures/ is a link to a folder outside
        shutil.rmtree(folder / "figures", ignore_errors=True)
        (folder / "figures").symlink_to(outside, target_is_directory=True)
        files = ["figures/sentinel.png"]
    else:  # a file of a kind we never write (the user's own, inside the folder)
        (folder / "notes.txt").write_text("my notes\n")
        files = ["notes.txt"]
    data = (
        {"source": str(folder), "best_member": 0, "network": "0" * 16, "files": files + ["report.md"]}
        if manifest == "analysis.json"
        else {"members": [], "svcca": [], "owner": "0" * 16, "networks": [], "files": files + ["report.md"]}
    )
    (folder / manifest).write_text(json.dumps(data))


def untouched(before: dict, outside: Path, folder: Path, how: str) -> None:
    assert snapshot(outside) == before
    if how == "foreign":
        assert (folder / "notes.txt").read_text() == "my notes\n"


def refused(line: str, folder: Path, manifest: str) -> None:
    assert manifest in line and str(folder) in line, line


@pytest.mark.parametrize("how", CRAFTS)
def test_train_resume_never_removes_what_a_crafted_manifest_names(how, runs, tmp_path, outside, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs / "run", run)
    craft(run, "analysis.json", how, outside)
    before = snapshot(outside)
    line = fails(["train", "--resume", run, "--steps", "6"], capsys)
    refused(line, run, "analysis.json")
    untouched(before, outside, run, how)


@pytest.mark.parametrize("how", CRAFTS)
def test_analyze_in_a_crafted_run_folder_touches_nothing_outside(how, runs, tmp_path, outside, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs / "run", run)
    craft(run, "analysis.json", how, outside)
    before = snapshot(outside)
    refused(fails(["analyze", run, *FAST_FP], capsys), run, "analysis.json")
    untouched(before, outside, run, how)


@pytest.mark.parametrize("how", CRAFTS)
def test_analyze_overwrite_of_a_crafted_analysis_folder_touches_nothing_outside(how, runs, tmp_path, outside, capsys):
    out = tmp_path / "report"
    craft(out, "analysis.json", how, outside)
    before = snapshot(outside)
    refused(fails(["analyze", runs / "run", "--out", out, "--overwrite", *FAST_FP], capsys), out, "analysis.json")
    untouched(before, outside, out, how)


@pytest.mark.parametrize("manifest", ["comparison.json", "analysis.json"])
@pytest.mark.parametrize("how", CRAFTS)
def test_compare_overwrite_of_a_crafted_folder_touches_nothing_outside(how, manifest, runs, tmp_path, outside, capsys):
    out = tmp_path / "cmp"
    craft(out, manifest, how, outside)
    before = snapshot(outside)
    line = fails(["compare", runs / "run", runs / "other", "--out", out, "--overwrite", *FAST_FP], capsys)
    refused(line, out, manifest)
    untouched(before, outside, out, how)


@pytest.mark.parametrize("how", CRAFTS)
def test_analysis_write_overwrite_of_a_crafted_folder_touches_nothing_outside(how, runs, tmp_path, outside):
    """`Analysis.write` checks its folder before it draws anything: a stand-in with only the ensemble is
    enough to reach the check (and, before #30, the removal)."""
    from ctrnn_jax.analysis import Analysis

    out = tmp_path / "report"
    craft(out, "analysis.json", how, outside)
    before = snapshot(outside)

    class StandIn:  # Analysis's writing, with only the ensemble: its folder is checked before anything else
        ensemble = load_npz(runs / "run" / "ensemble.npz")
        write, _write = Analysis.write, getattr(Analysis, "_write", None)

    with pytest.raises(ValueError, match="analysis.json"):
        StandIn().write(out, overwrite=True)
    untouched(before, outside, out, how)


@pytest.mark.parametrize("how", CRAFTS)
def test_evaluate_and_fixed_points_of_a_crafted_run_folder_touch_nothing_outside(how, runs, tmp_path, outside):
    run = tmp_path / "run"
    shutil.copytree(runs / "run", run)
    craft(run, "analysis.json", how, outside)
    before = snapshot(outside)
    assert cli(["evaluate", run, "--json", tmp_path / "eval_copy.json"]) == 0
    assert cli(["fixed-points", run, "--out", run / "fixed_points.npz", *FAST_FP]) == 0
    untouched(before, outside, run, how)


def test_a_manifest_entry_is_checked_one_by_one(tmp_path):
    from ctrnn_jax.io._outputs import listed_files

    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "analysis.json").write_text(
        json.dumps(
            {
                "files": [
                    "figures/x.png",
                    "report.md",
                    "fixed_points.npz",
                    "fixed_points_3.npz",
                    "fixed_points_config.json",
                ]
            }
        )
    )
    assert [p.name for p in listed_files(folder, "analysis.json")] == [
        "x.png",
        "report.md",
        "fixed_points.npz",
        "fixed_points_3.npz",
        "fixed_points_config.json",
    ]
    for entry in ["/etc/passwd", "../x/report.md", "figures/../../x.png", "ensemble.npz", "config.json", "a.txt", 3]:
        (folder / "analysis.json").write_text(json.dumps({"files": [entry]}))
        with pytest.raises(ValueError, match="nothing was removed"):
            listed_files(folder, "analysis.json")


def test_only_files_we_wrote_are_removed(tmp_path):
    """`remove_results` removes a listed figure only when it is a PNG/PDF, a fixed-points file only when it is
    one: a user's file put there under our name stays."""
    from ctrnn_jax.io._outputs import remove_results

    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.png").write_text("my text, not a PNG")
    (tmp_path / "fixed_points.npz").write_text("not an npz")
    (tmp_path / "report.md").write_text("# report")
    removed = remove_results([tmp_path / "figures" / "a.png", tmp_path / "fixed_points.npz", tmp_path / "report.md"])
    assert removed == [tmp_path / "report.md"]
    assert (tmp_path / "figures" / "a.png").is_file() and (tmp_path / "fixed_points.npz").is_file()


# ---------------------------------------------------------------------------------------------------
# 2. Reuse only what matches
# ---------------------------------------------------------------------------------------------------


def _fast_config():
    from ctrnn_jax import FixedPointConfig

    return FixedPointConfig(n_candidates=16, n_trials=2, adam_steps=10, newton_steps=2, completion_rounds=1, restarts=0)


def _stored(run, fp_config=None, inputs=None):
    from ctrnn_jax.analysis._report import _stored_fixed_points, load_analysis_inputs

    ensemble, task, _ = load_analysis_inputs(run)
    said = []
    found = _stored_fixed_points(run, ensemble, task, fingerprint(ensemble), inputs, fp_config, said.append)
    return found, " ".join(said)


@pytest.fixture(scope="module")
def searched(runs, tmp_path_factory):
    """A copy of the run with fixed points found at the task's input (zeros), and one with them found at
    input [1, 0, 0]."""
    base = tmp_path_factory.mktemp("searched")
    for name, extra in (("zeros", []), ("ones", ["--input", "1,0,0"])):
        shutil.copytree(runs / "run", base / name)
        assert cli(["fixed-points", base / name, "--out", base / name / "fixed_points.npz", *FAST_FP, *extra]) == 0
    return base


def test_fixed_points_that_match_are_reused(searched):
    found, said = _stored(searched / "zeros")
    assert found is not None, said
    found, said = _stored(searched / "zeros", fp_config=_fast_config())
    assert found is not None, said


def test_fixed_points_at_another_input_are_found_again(searched):
    """`fixed-points RUN --input 1,0,0 --out RUN/fixed_points.npz` then `analyze RUN`: not reused."""
    found, said = _stored(searched / "ones")
    assert found is None and "input" in said, said
    found, said = _stored(searched / "zeros", inputs=np.array([1.0, 0.0, 0.0]))
    assert found is None and "input" in said, said


def test_fixed_points_of_an_unfinished_set_are_not_reused_and_the_next_writer_removes_them(searched, tmp_path):
    """A writer of fixed_points.npz + its config + cube.json killed half-way (its marker left behind): the
    set is found again, never reused, and the folder's next writer removes the set, nothing else."""
    from ctrnn_jax.io._lock import folder_lock, writing

    run = tmp_path / "run"
    shutil.copytree(searched / "zeros", run)
    assert _stored(run)[0] is not None
    killed = writing(run, files=["fixed_points.npz", "fixed_points_config.json", "cube.json"])
    killed.__enter__()  # never left: as a process killed inside the block leaves it
    found, said = _stored(run)
    assert found is None and "incomplete" in said, said
    before = sorted(p.name for p in run.iterdir())
    with folder_lock(run):
        pass
    after = sorted(p.name for p in run.iterdir())
    assert set(before) - set(after) == {".ctrnn_jax.incomplete", "fixed_points.npz", "fixed_points_config.json"}
    assert (run / "ensemble.npz").is_file() and (run / "config.json").is_file()


def test_fixed_points_found_with_other_settings_are_found_again(searched):
    found, said = _stored(searched / "zeros", fp_config=dataclasses.replace(_fast_config(), n_candidates=32))
    assert found is None and "settings" in said, said


def _rewritten(searched, tmp_path, change):
    """A copy of the searched run whose fixed_points.npz is `change(fp)` (a dict of fields to replace)."""
    from ctrnn_jax import FixedPoints

    run = tmp_path / "run"
    shutil.copytree(searched / "zeros", run)
    fp = FixedPoints.from_npz(run / "fixed_points.npz")
    dataclasses.replace(fp, **change(fp)).to_npz(run / "fixed_points.npz")
    return run


def test_fixed_points_of_another_task_are_found_again(searched, tmp_path):
    run = _rewritten(
        searched,
        tmp_path,
        lambda fp: {"found_with": {**fp.found_with, "task": {**fp.found_with["task"], "config": {"n_bits": 7}}}},
    )
    found, said = _stored(run)
    assert found is None and "task" in said, said


def test_non_finite_fixed_points_are_found_again(searched, tmp_path):
    run = _rewritten(searched, tmp_path, lambda fp: {"points": np.full_like(fp.points, np.nan)})
    found, said = _stored(run)
    assert found is None and "finite" in said, said


def test_fixed_points_written_before_their_settings_are_found_again(searched, tmp_path):
    """An old file (fingerprint, no record of inputs, settings, task) still loads, and is found again."""
    from ctrnn_jax import FixedPoints

    run = _rewritten(searched, tmp_path, lambda fp: {"found_with": None})
    assert FixedPoints.from_npz(run / "fixed_points.npz").found_with is None
    found, said = _stored(run)
    assert found is None and "settings" in said, said


# ---------------------------------------------------------------------------------------------------
# 3. Outputs into another run only with --overwrite; a run's own record never
# ---------------------------------------------------------------------------------------------------


def test_evaluate_never_replaces_a_runs_own_eval_json(runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs / "run", run)
    before = (run / "eval.json").read_bytes()
    for extra in ([], ["--overwrite"]):
        line = fails(["evaluate", run, "--threshold", "2", "--json", run / "eval.json", *extra], capsys)
        assert "eval.json" in line and "record" in line, line
    assert (run / "eval.json").read_bytes() == before
    assert "frozen" in json.loads(before)


def test_fixed_points_go_into_another_run_folder_only_with_overwrite(runs, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(runs / "run", a)
    shutil.copytree(runs / "other", b)
    line = fails(["fixed-points", a, "--out", b / "fixed_points.npz", *FAST_FP], capsys)
    assert "another network" in line and "--overwrite" in line, line
    assert not (b / "fixed_points.npz").exists()
    line = fails(["evaluate", a, "--json", b / "a_eval.json"], capsys)
    assert "another network" in line, line
    assert cli(["fixed-points", a, "--out", b / "fixed_points.npz", "--overwrite", *FAST_FP]) == 0


def test_a_runs_own_files_are_never_an_output(runs, tmp_path, capsys):
    a = tmp_path / "a"
    shutil.copytree(runs / "run", a)
    before = (a / "metrics.csv").read_bytes()
    line = fails(["fixed-points", a, "--out", a / "metrics.csv", "--overwrite", *FAST_FP], capsys)
    assert "metrics.csv" in line, line
    assert (a / "metrics.csv").read_bytes() == before


def test_analysis_load_refuses_a_crafted_manifest(tmp_path, outside):
    from ctrnn_jax.analysis import Analysis

    out = tmp_path / "report"
    craft(out, "analysis.json", "absolute", outside)
    data = json.loads((out / "analysis.json").read_text())
    (out / "analysis.json").write_text(json.dumps({**data, "fixed_points": []}))
    with pytest.raises(ValueError, match="absolute path"):
        Analysis.load(out)
