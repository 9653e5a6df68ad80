"""One writer per folder, signals and kill -9 (issue #30): real subprocesses, real signals."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _cli_args import TASK  # tests/_cli_args.py

from ctrnn_jax._cli import main

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--members", "2", "--units", "5", "--steps-per-call", "5", "--batch", "4", "--progress", "none", *TASK]
FAST_FP = ["--n-candidates", "16", "--n-trials", "2", "--adam-steps", "20", "--completion-rounds", "1"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}


def cli(*argv) -> int:
    return main([str(a) for a in argv])


def start(*argv, prelude: str = "") -> subprocess.Popen:
    """`ctrnn-jax ARGV` in a new process; `prelude`: Python run before it (to kill it at a chosen point)."""
    code = f"import sys\n{prelude}\nfrom ctrnn_jax._cli import main\nsys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, argv)],
        env=ENV,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for(predicate, proc, timeout=120.0):
    t0 = time.time()
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout
        time.sleep(0.005)


def metric_rows(out: Path) -> np.ndarray:
    rows = (out / "metrics.csv").read_text().splitlines()[1:]  # none yet while the first chunk runs
    return np.loadtxt(rows, delimiter=",", ndmin=2) if rows else np.empty((0, 3))  # (loadtxt warns on no data)


def test_two_writers_on_one_folder_one_proceeds_the_other_is_one_line(tmp_path):
    out = tmp_path / "run"
    first = start("train", *SMALL, "--steps", "1000000", "--checkpoint-every", "20", "--out", out)
    try:
        wait_for(lambda: (out / "checkpoint.eqx").is_file(), first)
        second = start("train", *SMALL, "--seed", "1", "--steps", "40", "--overwrite", "--out", out)
        third = start("fixed-points", out, *FAST_FP, "--out", out / "fixed_points.npz")
        for proc in (second, third):
            _, err = proc.communicate(timeout=120)
            lines = err.strip().splitlines()
            assert proc.returncode == 2 and len(lines) == 1, err
            assert f"pid {first.pid}" in lines[0] and socket.gethostname() in lines[0], lines[0]
        assert first.poll() is None  # the holder goes on
    finally:
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    assert first.returncode == 130, err
    rows = metric_rows(out)  # nothing mixed: every (step, member) once, steps 1..N
    pairs = {(int(s), int(m)) for s, m, _ in rows}
    assert len(pairs) == len(rows) and {s for s, _ in pairs} == set(range(1, int(rows[:, 0].max()) + 1))
    assert json.loads((out / "config.json").read_text())["config"]["train"]["seed"] == 0


def test_a_lock_of_a_killed_process_does_not_block(tmp_path):
    out = tmp_path / "run"
    proc = start("train", *SMALL, "--steps", "1000000", "--checkpoint-every", "10", "--out", out)
    try:
        wait_for(lambda: (out / "checkpoint.eqx").is_file(), proc)
        lock = out / ".ctrnn_jax.lock"
        assert lock.is_file() and json.loads(lock.read_text())["pid"] == proc.pid  # the holder, named
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()  # waits, and closes its pipes
    from ctrnn_jax.io._run_config import read_config
    from ctrnn_jax.io._serialisation import load_checkpoint
    from ctrnn_jax.training import EnsembleTrainer

    config = read_config(out)
    state, _ = load_checkpoint(
        out / "checkpoint.eqx", EnsembleTrainer(config.ensemble, config.train, config.task).init()
    )
    assert cli("train", "--resume", out, "--steps", int(state.step) + 5) == 0
    assert not (out / ".ctrnn_jax.lock").exists()


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_checkpoint_the_last_chunk_and_resume_bit_for_bit(sig, status, tmp_path):
    steps = ["--steps", "300", "--checkpoint-every", "1000"]
    out = tmp_path / "killed"
    proc = start("train", *SMALL, *steps, "--out", out)
    wait_for(lambda: (out / "metrics.csv").is_file() and len(metric_rows(out)) >= 2 * 20, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert proc.returncode == status and len(lines) == 1, err
    done = int(metric_rows(out)[:, 0].max())  # the last completed chunk: checkpointed
    assert done < 300 and f"holds step {done};" in lines[0] and f"--resume {out}" in lines[0]
    assert cli("train", "--resume", out) == 0
    whole = tmp_path / "whole"
    assert cli("train", *SMALL, *steps, "--out", whole) == 0
    with np.load(out / "ensemble.npz") as a, np.load(whole / "ensemble.npz") as b:
        assert a.files == b.files
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name])


def _records(folder: Path) -> dict:
    """The network fingerprint each derived file of `folder` records."""
    from ctrnn_jax.io._outputs import recorded_network

    found = {p.name: recorded_network(p) for p in sorted(folder.glob("fixed_points*.npz"))}
    for name in ("eval.json", "analysis.json", "cube.json"):
        if (folder / name).is_file():
            found[name] = json.loads((folder / name).read_text()).get("network")
    return found


def test_kill_9_after_resume_replaced_the_ensemble_leaves_nothing_of_the_old_weights(tmp_path):
    from ctrnn_jax.io._serialisation import fingerprint, load_npz

    out = tmp_path / "run"
    assert cli("train", *SMALL, "--steps", "10", "--out", out) == 0
    assert cli("fixed-points", out, *FAST_FP, "--out", out / "fixed_points.npz") == 0
    old = fingerprint(load_npz(out / "ensemble.npz"))
    assert set(_records(out).values()) == {old}
    kill = (
        "import os, signal, ctrnn_jax.io._run as r\n_save = r.save_npz\n"
        "def save(*a, **k):\n    _save(*a, **k); os.kill(os.getpid(), signal.SIGKILL)\nr.save_npz = save"
    )
    proc = start("train", "--resume", out, "--steps", "20", prelude=kill)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    new = fingerprint(load_npz(out / "ensemble.npz"))
    assert new != old and old not in _records(out).values(), _records(out)
    assert cli("train", "--resume", out, "--steps", "20") == 0  # the next command completes the folder
    assert _records(out) == {"eval.json": new}


def test_kill_9_during_an_overwrite_analysis_leaves_no_old_manifest_over_new_figures(tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for seed, run in enumerate(runs):
        assert cli("train", *SMALL, "--steps", "10", "--seed", seed, "--out", run) == 0
    out = tmp_path / "analysis"
    assert cli("analyze", runs[0], *FAST_FP, "--out", out) == 0
    old = json.loads((out / "analysis.json").read_text())["network"]
    kill = (
        "import os, signal, itertools, ctrnn_jax.analysis._figure as f\n_save, _n = f.save_figure, "
        "itertools.count()\ndef save(*a, **k):\n    paths = _save(*a, **k)\n    if next(_n) == 2: "
        "os.kill(os.getpid(), signal.SIGKILL)\n    return paths\nf.save_figure = save"
    )
    proc = start("analyze", runs[1], *FAST_FP, "--out", out, "--overwrite", prelude=kill)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "analysis.json").is_file() or json.loads((out / "analysis.json").read_text())["network"] != old
    from ctrnn_jax.analysis import Analysis

    with pytest.raises(ValueError, match="incomplete"):  # a reader is told, not given a mixed analysis
        Analysis.load(out)
    from ctrnn_jax.io._lock import folder_lock

    with folder_lock(out):  # the folder's next writer (any command) removes the unfinished set
        pass
    assert not (out / "analysis.json").exists() and not (out / "figures").exists()
    assert sorted(p.name for p in out.iterdir()) == []


def test_ctrl_c_during_a_fixed_point_search_exits_cleanly(tmp_path):
    """Ctrl-C in the middle of the search (not before it): exit 130, one line, no crash (was SIGSEGV in 2 of 4
    tries), no half-written output and no lock left behind. Two tries, at two moments of the search."""
    npz = ROOT / "tests" / "data" / "flipflop_n64_k2.npz"
    for delay in (0.2, 1.5):
        out = tmp_path / f"fp_{delay}.npz"
        proc = start("fixed-points", npz, "--task", "flipflop", "--candidates", "8192", "--out", out)
        said = proc.stderr.readline()  # "fixed points at input ...: the search starts"
        assert said.startswith("fixed points at input"), said + proc.communicate()[1]
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        lines = err.strip().splitlines()
        assert proc.returncode == 130 and lines == ["ctrnn-jax fixed-points: interrupted"], (proc.returncode, err)
        assert not out.exists() and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
