"""Run folders and outputs a user can trust (issue #22): one test per class of fault.

Every command below is run as a user would (the `ctrnn-jax` entry point, in process, or as a subprocess
where a signal is sent). Each test asserts the one-line message and the exit status, and that every file on
disk is unchanged (md5 before and after) or valid (every PNG/PDF/npz/JSON parses, no temporary file left).
"""

import dataclasses
import hashlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from _cli_args import FAST_FP, TINY  # tests/_cli_args.py

from ctrnn_jax import load_npz
from ctrnn_jax._cli import main
from ctrnn_jax._files import atomic_write, clean_temporaries
from ctrnn_jax.io._outputs import recorded_network
from ctrnn_jax.io._serialisation import fingerprint

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------
# Helpers: what is on disk, and how a command ended
# ---------------------------------------------------------------------------------------------------


def md5s(*folders) -> dict:
    """`{path: md5}` of every file under the folders (and of single files)."""
    out = {}
    for root in map(Path, folders):
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for p in paths:
            out[str(p)] = hashlib.md5(p.read_bytes()).hexdigest()
    return out


def assert_valid(*folders) -> None:
    """Every file ours parses: PNG, PDF, npz, JSON, CSV; no temporary file is left."""
    import matplotlib.image

    for root in map(Path, folders):
        for p in (p for p in root.rglob("*") if p.is_file()):
            assert not p.name.endswith(".tmp"), f"temporary file left: {p}"
            assert p.stat().st_size > 0, f"empty file: {p}"
            if p.suffix == ".png":
                assert matplotlib.image.imread(p).size > 0
            elif p.suffix == ".pdf":
                data = p.read_bytes()
                assert data.startswith(b"%PDF") and b"%%EOF" in data[-64:], p
            elif p.suffix == ".npz":
                with np.load(p, allow_pickle=False) as z:
                    assert z.files, p
            elif p.suffix == ".json":
                json.loads(p.read_text())


def cli(argv) -> int:
    """`ctrnn-jax argv` in process (paths allowed in `argv`)."""
    return main([str(a) for a in argv])


def fails(argv, capsys, *, code: int = 2) -> str:
    """Run `ctrnn-jax argv`; assert it exits with `code` and one line on stderr; return that line."""
    capsys.readouterr()  # what earlier commands printed
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    assert e.value.code == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two trained runs of different networks (seeds 0 and 1) and one analysed copy of the first."""
    base = tmp_path_factory.mktemp("reliability")
    for name, seed in (("run", 0), ("other", 1)):
        assert cli(["train", *TINY, "--seed", str(seed), "--out", str(base / name)]) == 0
    analysed = base / "analysed"
    shutil.copytree(base / "run", analysed)
    assert cli(["analyze", str(analysed), *FAST_FP]) == 0
    return base


@pytest.fixture
def copy(runs, tmp_path):
    """`copy(name)`: a fresh copy of one of the module's runs, to change."""

    def make(name):
        shutil.copytree(runs / name, tmp_path / name)
        return tmp_path / name

    return make


# ---------------------------------------------------------------------------------------------------
# Results that are silently wrong or lost
# ---------------------------------------------------------------------------------------------------


def test_derived_files_record_the_network_they_belong_to(runs):
    network = fingerprint(load_npz(runs / "analysed" / "ensemble.npz"))
    assert recorded_network(runs / "analysed" / "fixed_points.npz") == network
    assert json.loads((runs / "analysed" / "analysis.json").read_text())["network"] == network
    assert json.loads((runs / "analysed" / "eval.json").read_text())["network"] == network
    listed = json.loads((runs / "analysed" / "analysis.json").read_text())["files"]
    assert "report.md" in listed and all((runs / "analysed" / f).is_file() for f in listed)
    assert_valid(runs / "analysed")


def test_resume_removes_the_results_it_makes_stale(copy, capsys):
    run = copy("analysed")
    derived = ["fixed_points.npz", "fixed_points_config.json", "analysis.json", "report.md", "figures"]
    assert all((run / name).exists() for name in derived)
    assert cli(["train", "--resume", str(run), "--steps", "6"]) == 0
    assert "removed the results of the earlier weights" in capsys.readouterr().err
    assert not any((run / name).exists() for name in derived)
    assert_valid(run)


def test_analyze_finds_stale_fixed_points_again(copy, runs, capsys):
    """A fixed_points.npz of other weights (put back by hand, or from an old version) is not reused."""
    run = copy("run")
    assert cli(["train", "--resume", str(run), "--steps", "6"]) == 0
    shutil.copy(runs / "analysed" / "fixed_points.npz", run / "fixed_points.npz")  # the weights before resuming
    capsys.readouterr()
    assert cli(["analyze", str(run), *FAST_FP]) == 0
    assert "found for other weights" in capsys.readouterr().err
    assert recorded_network(run / "fixed_points.npz") == fingerprint(load_npz(run / "ensemble.npz"))


def test_the_library_refuses_fixed_points_of_other_weights(runs):
    from ctrnn_jax import FixedPoints, analyze

    fp = FixedPoints.from_npz(runs / "analysed" / "fixed_points.npz")
    with pytest.raises(ValueError, match="another network"):
        analyze(load_npz(runs / "other" / "ensemble.npz"), fixed_points=fp)


def test_another_networks_results_never_go_into_a_run_folder(runs, capsys):
    before = md5s(runs / "analysed")
    line = fails(["analyze", runs / "other" / "ensemble.npz", "--out", runs / "analysed", *FAST_FP], capsys)
    assert "run folder of another network" in line
    line = fails(["compare", runs / "run", runs / "other", "--out", runs / "analysed"], capsys)
    assert "is a run folder" in line
    assert md5s(runs / "analysed") == before


def test_an_analysis_folder_is_replaced_only_with_overwrite(runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert cli(["analyze", runs / "run", "--out", out, *FAST_FP]) == 0
    first = json.loads((out / "analysis.json").read_text())
    before = md5s(out)
    line = fails(["analyze", runs / "other", "--out", out, *FAST_FP], capsys)
    assert "analysis of another network" in line and "--overwrite" in line
    assert md5s(out) == before
    # the same network again: written again, no flag needed
    assert cli(["analyze", runs / "run", "--out", out, *FAST_FP]) == 0
    # --overwrite: the other network's analysis, and nothing of the first left (the listed files removed)
    (out / "figures" / "extra_old.png").write_bytes((out / "figures" / "connectivity.png").read_bytes())
    data = json.loads((out / "analysis.json").read_text())
    (out / "analysis.json").write_text(json.dumps({**data, "files": [*data["files"], "figures/extra_old.png"]}))
    assert cli(["analyze", runs / "other", "--out", out, "--overwrite", *FAST_FP]) == 0
    second = json.loads((out / "analysis.json").read_text())
    assert second["network"] != first["network"]
    assert not (out / "figures" / "extra_old.png").exists()
    assert recorded_network(out / "fixed_points.npz") == second["network"]
    assert_valid(out)


def test_the_network_is_never_overwritten_by_an_output(copy, capsys):
    run = copy("run")
    before = md5s(run)
    for argv in (
        ["fixed-points", run, "--out", run / "ensemble.npz"],
        ["fixed-points", run / "ensemble.npz", "--out", run / "ensemble.npz"],
        ["fixed-points", run, "--out", run / "checkpoint.eqx", "--overwrite"],
        ["evaluate", run, "--json", run / "ensemble.npz", "--overwrite"],
        ["evaluate", run / "ensemble.npz", "--json", run / "ensemble.npz"],
    ):
        assert "is an input of this command" in fails(argv, capsys)
    assert "the run's own metrics.csv" in fails(["evaluate", run, "--json", run / "metrics.csv"], capsys)  # (#30)
    other = run.parent / "x.npz"
    shutil.copy(run / "ensemble.npz", other)
    assert "holds an ensemble" in fails(["fixed-points", run, "--out", other, *FAST_FP], capsys)
    assert md5s(run) == before


def test_user_files_in_a_folder_that_is_not_a_run_are_not_overwritten(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("metrics.csv", "eval.json", "ensemble.npz"):
        (folder / name).write_text(f"my own {name}\n")
        before = md5s(folder)
        line = fails(["train", *TINY, "--out", folder], capsys)
        assert name in line and "--overwrite" in line
        assert md5s(folder) == before
    assert cli(["train", *TINY, "--out", folder, "--overwrite"]) == 0
    assert load_npz(folder / "ensemble.npz").W_rec.shape == (2, 5, 5)
    assert_valid(folder)


def test_a_run_is_replaced_only_with_overwrite(copy, capsys):
    run = copy("analysed")
    before = md5s(run)
    assert "already holds a run" in fails(["train", *TINY, "--out", run], capsys)
    assert md5s(run) == before
    assert cli(["train", *TINY, "--seed", "3", "--out", run, "--overwrite"]) == 0
    assert not (run / "analysis.json").exists() and not (run / "fixed_points.npz").exists()  # nothing stale
    assert json.loads((run / "config.json").read_text())["config"]["train"]["seed"] == 3


def test_resume_below_the_steps_done_changes_nothing(copy, capsys):
    run = copy("run")
    before = md5s(run)
    line = fails(["train", "--resume", run, "--steps", "2"], capsys)
    assert "below the 4 steps" in line and "--steps >= 4" in line
    assert md5s(run) == before
    assert cli(["train", "--resume", run]) == 0  # not stuck: a plain resume still works


@pytest.mark.parametrize(
    "option, value",
    [
        ("--gain", "inf"),
        ("--lr", "inf"),
        ("--rec-noise-std", "inf"),
        ("--clip-norm", "inf"),
        ("--threshold", "inf"),
        ("--gain", "nan"),
        ("--lr", "1e-2,inf"),
        ("--input-noise-std", "inf"),
        ("--alpha", "nan"),
        ("--weight-l2", "inf"),
        ("--lr-decay", "inf"),
    ],
)
def test_infinity_and_nan_are_refused_before_any_work(option, value, tmp_path, capsys):
    line = fails(["train", *TINY, option, value, "--out", tmp_path / "r"], capsys)
    assert "finite" in line or "must be" in line
    assert not (tmp_path / "r").exists()


def _float_fields(config):
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, float):
            yield field.name, math.inf
        elif isinstance(value, tuple) and value and all(isinstance(v, float) for v in value):
            yield field.name, (math.inf,) * len(value)


def test_every_float_setting_of_every_config_refuses_infinity_and_nan():
    """The general rule behind the cases above: no config accepts a non-finite number anywhere."""
    from ctrnn_jax import EnsembleConfig, FixedPointConfig, TrainConfig
    from ctrnn_jax.io import RunConfig
    from ctrnn_jax.tasks._tasks import TASKS

    configs = [EnsembleConfig(), TrainConfig(), FixedPointConfig(), RunConfig()]
    configs += [cls() for name, cls in TASKS.items() if name != "neurogym"]
    checked = 0
    for config in configs:
        for name, bad in _float_fields(config):
            for value in (bad, (np.nan,) * len(bad) if isinstance(bad, tuple) else np.nan):
                with pytest.raises((ValueError, TypeError)):
                    dataclasses.replace(config, **{name: value})
                checked += 1
    assert checked >= 30


def test_save_figure_writes_a_whole_png_and_pdf(tmp_path):
    """save_figure goes through atomic_write: see the kill -9 test below for the writer itself."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ctrnn_jax.analysis import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    paths = save_figure(fig, tmp_path / "f")
    assert [p.name for p in paths] == ["f.png", "f.pdf"]
    assert_valid(tmp_path)


def test_a_comparison_refuses_the_same_network_twice(runs, copy, tmp_path, capsys):
    line = fails(["compare", runs / "run", runs / "run", "--out", tmp_path / "c"], capsys)
    assert "given twice" in line
    same = copy("run")  # another folder, the same weights
    assert "the same network" in fails(["compare", runs / "run", same, "--out", tmp_path / "c"], capsys)
    assert not (tmp_path / "c").exists()


# ---------------------------------------------------------------------------------------------------
# Crashes, dead ends and late errors
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("not a folder\n")
    return path


@pytest.mark.parametrize("command", ["train", "fixed-points", "evaluate", "import-keras", "analyze", "compare"])
def test_an_output_that_is_a_directory_or_under_a_file_is_one_line(command, runs, tmp_path, a_file, capsys):
    keras = tmp_path / "model.h5"
    keras.write_bytes(b"x")
    argv = {
        "train": ["train", *TINY, "--out"],
        "fixed-points": ["fixed-points", runs / "run", "--out"],
        "evaluate": ["evaluate", runs / "run", "--json"],
        "import-keras": ["import-keras", keras, "--out"],
        "analyze": ["analyze", runs / "run", "--out"],
        "compare": ["compare", runs / "run", runs / "other", "--out"],
    }
    before = md5s(runs)
    under = a_file / "x.npz"
    line = fails([*argv[command], under], capsys)
    assert "a_file" in line and ("is a file" in line or "not a folder" in line)
    if command in ("fixed-points", "evaluate", "import-keras"):  # a file is meant: a directory is refused
        line = fails([*argv[command], tmp_path], capsys)
        assert "is a directory" in line
    else:  # a folder is meant: a file is refused
        line = fails([*argv[command], a_file], capsys)
        assert "is a file" in line or "not a folder" in line
    assert md5s(runs) == before


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--input", "1,2"], "--input"),
        (["--input", "1,inf,0"], "finite"),
        (["--fp-learning-rate", "inf"], "--fp-learning-rate"),  # refused when parsed: not finite
        (["--task", "no_such_task"], "no_such_task"),
        (["--n-candidates", "1"], "n_candidates"),
    ],
)
def test_flipflop_checks_every_stage_before_training(argv, message, tmp_path, capsys):
    line = fails(["flipflop", *TINY, *argv, "--out", tmp_path / "r"], capsys)
    assert message in line
    assert not (tmp_path / "r").exists()  # refused before training: no run folder


def test_a_run_too_big_for_memory_is_refused_with_an_estimate(tmp_path, capsys):
    line = fails(["train", *TINY, "--units", "100000", "--out", tmp_path / "r"], capsys)
    assert "N = 100000" in line and "GB" in line and "would need" in line
    assert not (tmp_path / "r").exists()


def test_training_memory_counts_what_a_step_holds():
    from ctrnn_jax import EnsembleConfig, FlipFlopConfig, TrainConfig
    from ctrnn_jax.training._memory import training_memory

    task = FlipFlopConfig()
    small = training_memory(EnsembleConfig(units=64), TrainConfig(), task)
    # 8 members, 4 copies of the weights (params, grads, two Adam moments) and 4 (B, T, N) arrays
    params = 64 * (64 + 3 + 1) + 3 * 65
    expected = 4 * 8 * (4 * params + 4 * 32 * task.length * 64 + 32 * task.length * 9)
    assert small == expected
    assert training_memory(EnsembleConfig(units=128), TrainConfig(), task) > 1.9 * small


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seed", "99999999999999999999"], "`seed` must be an integer in [0, 4294967295]"),
        (["--seed", "-1"], "`seed`"),
        (["--fixed", "W_rec,W_in,b,W_out,b_out"], "leaves no weight to train"),
    ],
)
def test_bad_values_are_one_line(argv, message, tmp_path, capsys):
    assert message in fails(["train", *TINY, *argv, "--out", tmp_path / "r"], capsys)
    assert not (tmp_path / "r").exists()


def _cli(*argv, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from ctrnn_jax._cli import main; sys.exit(main())", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,
    )


def _wait_for(predicate, timeout=120.0):
    t0 = time.time()
    while not predicate():
        if time.time() - t0 > timeout:
            raise TimeoutError
        time.sleep(0.05)


LONG = [
    "--members",
    "2",
    "--units",
    "5",
    "--steps",
    "1000000",
    "--steps-per-call",
    "5",
    "--batch",
    "4",
    "--length",
    "24",
    "--first-onset",
    "1,3",
    "--gaps",
    "5,5",
    "--gap-jitter",
    "3",
    "--width",
    "3",
    "--delay",
    "2",
    "--progress",
    "none",
]


def test_ctrl_c_keeps_a_checkpoint_and_is_one_line(tmp_path):
    out = tmp_path / "r"
    proc = _cli("train", *LONG, "--checkpoint-every", "10", "--out", out)
    _wait_for(lambda: (out / "checkpoint.eqx").is_file() or proc.poll() is not None)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and f"--resume {out}" in lines[0]
    assert_valid(out)
    from ctrnn_jax.io._run_config import read_config
    from ctrnn_jax.io._serialisation import load_checkpoint  # the checkpoint is whole: it loads
    from ctrnn_jax.training import EnsembleTrainer

    config = read_config(out)
    trainer = EnsembleTrainer(config.ensemble, config.train, config.task)
    state, losses = load_checkpoint(out / "checkpoint.eqx", trainer.init())
    assert losses.shape == (int(state.step), 2) and int(state.step) >= 10


def test_ctrl_c_during_compilation_stops_at_the_first_chunk(tmp_path):
    """Ctrl-C is taken between chunks (a KeyboardInterrupt inside JAX can be swallowed): before the first
    checkpoint, the first chunk is saved, and the run resumes from it."""
    out = tmp_path / "r"
    proc = _cli("train", *LONG, "--checkpoint-every", "1000000", "--out", out)
    _wait_for(lambda: (out / "config.json").is_file() or proc.poll() is not None)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert proc.returncode == 130 and len(lines) == 1 and "holds step 5;" in lines[0]
    assert cli(["train", "--resume", out, "--steps", "10"]) == 0
    assert_valid(out)


def test_a_folder_with_a_config_and_no_checkpoint_can_be_restarted(runs, tmp_path, capsys):
    """What kill -9 before the first checkpoint leaves: both a new run and --resume start it again."""
    for how, said in ((["train", *TINY, "--out"], "starting again"), (["train", "--resume"], "no checkpoint yet")):
        out = tmp_path / f"r{len(how)}"
        out.mkdir()
        shutil.copy(runs / "run" / "config.json", out / "config.json")
        assert cli([*map(str, how), str(out)]) == 0
        assert said in capsys.readouterr().err
        assert load_npz(out / "ensemble.npz").W_rec.shape == (2, 5, 5)
        assert_valid(out)


_WRITER = textwrap.dedent("""
    import sys, numpy as np
    what, path = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    if what == "figure":  # a figure that takes a while to save
        import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
        from ctrnn_jax.analysis import save_figure
        fig, ax = plt.subplots(figsize=(20, 20))
        ax.scatter(*rng.normal(size=(2, 300000)), s=1)
        while True:
            save_figure(fig, path)
    elif what == "checkpoint":  # 64 MB
        from ctrnn_jax.io import save_checkpoint
        state = {"w": rng.normal(size=(4000, 4000)).astype(np.float32)}
        while True:
            save_checkpoint(path, state, np.zeros((10, 2), np.float32))
    else:  # fixed points, tiled to about 40 MB
        import dataclasses
        from ctrnn_jax import FixedPoints
        fp = FixedPoints.from_npz(sys.argv[3])
        reps = -(-200000 // max(len(fp), 1))
        tiled = {f.name: np.concatenate([getattr(fp, f.name)] * reps)
                 for f in dataclasses.fields(fp) if f.name in ("member", "points", "q", "jacobians", "eigvals",
                                                              "is_stable", "is_stable_ct", "n_unstable", "outputs",
                                                              "exact", "n_marginal")}
        fp = dataclasses.replace(fp, eigvecs=None, left_eigvecs=None, input_jacobians=None, **tiled)
        while True:
            fp.to_npz(path)
""")


@pytest.mark.parametrize("what", ["figure", "checkpoint", "fixed points"])
def test_kill_9_while_writing_leaves_no_partial_file_and_the_temporary_is_cleaned(what, runs, tmp_path):
    target = {
        "figure": tmp_path / "fig",
        "checkpoint": tmp_path / "checkpoint.eqx",
        "fixed points": tmp_path / "fixed_points.npz",
    }[what]
    args = [str(target)] + ([str(runs / "analysed" / "fixed_points.npz")] if what == "fixed points" else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    finished = {"figure": [tmp_path / "fig.png", tmp_path / "fig.pdf"]}.get(what, [target])
    for _ in range(5):  # killed between two writes (no temporary file at that instant): try again
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, what.split()[0], *args], env=env, stderr=subprocess.PIPE
        )
        try:  # one complete file first, then kill it in the middle of a later write
            _wait_for(lambda: all(p.is_file() for p in finished) or proc.poll() is not None)
            _wait_for(lambda: any(tmp_path.glob(".*.tmp")) or proc.poll() is not None)
            proc.kill()
        finally:
            if proc.poll() is None:
                proc.kill()
            _, err = proc.communicate(timeout=30)  # waits, and closes its stderr pipe
        assert proc.returncode == -signal.SIGKILL, err
        left = list(tmp_path.glob(".*.tmp"))
        if left:
            break
    assert left  # killed mid-write: its temporary file is there; the real files are whole
    for p in finished:
        assert p.stat().st_size > 0
    assert_valid_except_tmp(tmp_path)
    assert {str(p) for p in clean_temporaries(tmp_path)} == {str(p) for p in left}  # its writer is dead
    assert_valid(tmp_path)


def assert_valid_except_tmp(folder):
    scratch = folder.parent / (folder.name + "_valid")
    shutil.copytree(folder, scratch, ignore=shutil.ignore_patterns("*.tmp"))
    assert_valid(scratch)
    if (scratch / "fixed_points.npz").is_file():
        from ctrnn_jax import FixedPoints

        assert len(FixedPoints.from_npz(scratch / "fixed_points.npz")) >= 200000
    if (scratch / "checkpoint.eqx").is_file():
        from ctrnn_jax.io import load_checkpoint

        state, _ = load_checkpoint(scratch / "checkpoint.eqx", {"w": np.zeros((4000, 4000), np.float32)})
        assert state["w"].shape == (4000, 4000)


def test_a_new_start_in_a_folder_removes_dead_writers_temporaries(copy, capsys):
    run = copy("run")
    host = socket.gethostname().replace(".", "_").replace("-", "_")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()  # a process that has ended
    stale = [run / f".checkpoint.eqx.{host}-{dead}.abcd1234.tmp", run / f".ensemble.npz.{host}-{dead}.efgh5678.tmp"]
    live = run / f".report.md.{host}-{os.getpid()}.ijkl9012.tmp"  # a live writer's: kept
    for p in (*stale, live):
        p.write_bytes(b"partial")
    assert cli(["train", "--resume", str(run), "--steps", "6"]) == 0
    assert not any(p.exists() for p in stale) and live.exists()
    live.unlink()


def test_atomic_write_refuses_a_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        with atomic_write(tmp_path):
            pass


# ---------------------------------------------------------------------------------------------------
# Messages that name the file or the option, and what is accepted
# ---------------------------------------------------------------------------------------------------


def test_a_text_file_named_npz_is_named_as_not_an_npz(tmp_path, capsys):
    path = tmp_path / "ensemble.npz"
    path.write_text("hello\n")
    line = fails(["evaluate", path], capsys)
    assert str(path) in line and "not an .npz file" in line and "pickle" not in line


def test_an_empty_network_says_what_is_needed(tmp_path, capsys):
    path = tmp_path / "n0.npz"
    np.savez(
        path,
        W_rec=np.zeros((2, 0, 0), np.float32),
        W_in=np.zeros((2, 0, 3), np.float32),
        b=np.zeros((2, 0), np.float32),
        W_out=np.zeros((2, 3, 0), np.float32),
        b_out=np.zeros((2, 3), np.float32),
        alpha=np.ones(2, np.float32),
        activation=np.asarray("tanh"),
    )
    line = fails(["evaluate", path], capsys)
    assert "N = 0 units" in line and "N >= 1" in line


def test_a_corrupt_metrics_table_is_named_before_any_work(copy, capsys, monkeypatch):
    run = copy("run")
    (run / "metrics.csv").write_text("step,member,loss\n1,0,0.5\n2,zero,0.4\n")
    import ctrnn_jax.analysis._analyze as analyze_module

    monkeypatch.setattr(analyze_module, "fixed_point_stage", lambda *a, **k: pytest.fail("searched first"))
    line = fails(["analyze", run, *FAST_FP], capsys)
    assert str(run / "metrics.csv") in line and "line 3" in line
    assert not (run / "report.md").exists()


def test_import_keras_names_a_directory(tmp_path, capsys):
    line = fails(["import-keras", tmp_path, "--out", tmp_path / "e.npz"], capsys)
    assert "is a directory" in line and "model files" in line


def test_a_coordinator_port_in_use_is_named(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = fails(
            [
                "train",
                *TINY,
                "--coordinator",
                f"127.0.0.1:{port}",
                "--num-processes",
                "1",
                "--process-id",
                "0",
                "--out",
                tmp_path / "r",
            ],
            capsys,
        )
    assert f"port {port}" in line and "coordinator" in line


def test_resume_names_only_the_options_given(tmp_path, capsys):
    dms = tmp_path / "dms"
    assert (
        cli(
            [
                "train",
                "--task",
                "dms",
                "--members",
                "2",
                "--units",
                "5",
                "--steps",
                "2",
                "--batch",
                "4",
                "--progress",
                "none",
                "--out",
                str(dms),
            ]
        )
        == 0
    )
    line = fails(["train", "--resume", dms, "--batch", "8"], capsys)
    assert line.endswith("(got --batch)")
    line = fails(["train", "--resume", dms, "--task", "dms", "--preset", "paper"], capsys)
    assert line.endswith("(got --task, --preset)")
    assert cli(["train", "--resume", str(dms), "--steps", "3"]) == 0


def test_a_neurogym_option_of_the_wrong_type_is_named(tmp_path, capsys):
    pytest.importorskip("neurogym")
    line = fails(
        [
            "train",
            "--task",
            "neurogym:PerceptualDecisionMaking-v0",
            "--task-opt",
            "dt=abc",
            *TINY[:4],
            "--out",
            tmp_path / "r",
        ],
        capsys,
    )
    assert "`dt` must be a number > 0" in line and "default is 100" in line
