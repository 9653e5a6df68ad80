"""User errors are one line, and limits are checked before work (issue #30, the classes "Tracebacks for
user errors" and "Limits checked late or never").

Every case runs the `ctrnn-jax` entry point as a user would: in process where the error comes before any
work, as a subprocess where the environment (a file size limit, `JAX_PLATFORMS`) is the point. Each
asserts exit status 2 and exactly one line on stderr (no traceback).
"""

import argparse
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from _cli_args import TINY  # tests/_cli_args.py
from test_reliability import fails  # ctrnn-jax in process: exit status and the one line on stderr

from ctrnn_jax._cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
NPZ = ROOT / "tests" / "data" / "flipflop_n64_k2.npz"


def run_cli(argv, *, env=None, preexec_fn=None, timeout=120):
    """`ctrnn-jax argv` as a subprocess; `(exit status, stderr lines)`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from ctrnn_jax._cli import main; sys.exit(main())", *map(str, argv)],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=preexec_fn,
        timeout=timeout,
    )
    return proc.returncode, proc.stderr.strip().splitlines()


# ---------------------------------------------------------------------------------------------------
# NaN and infinity: every float option of every command, refused at parsing
# ---------------------------------------------------------------------------------------------------


def _parses_floats(action) -> bool:
    """An option whose value is (or holds) a float: its `type` turns "0.5" into a float."""
    if not callable(action.type) or not action.option_strings:
        return False
    try:
        value = action.type("0.5")
    except (argparse.ArgumentTypeError, ValueError, TypeError):
        return False
    values = value if isinstance(value, (tuple, list)) else (value,)
    return any(isinstance(v, float) for v in values)


def _float_options():
    """`(command, option)` for every option of every command whose value is a float, from the parser."""
    parser = build_parser()
    for command, sub in parser.commands.items():
        for action in sub._actions:
            if _parses_floats(action):
                yield command, action.option_strings[0]


FLOAT_OPTIONS = sorted(set(_float_options()))


def test_the_walk_finds_the_float_options():
    found = set(FLOAT_OPTIONS)
    for case in [
        ("fixed-points", "--tol-q"),
        ("fixed-points", "--noise-std"),
        ("fixed-points", "--slow-tol"),
        ("fixed-points", "--marginal-tol"),
        ("fixed-points", "--dedup-tol"),
        ("fixed-points", "--state-space-fraction"),
        ("flipflop", "--fp-learning-rate"),
        ("evaluate", "--threshold"),
        ("train", "--threshold"),
        ("train", "--lr"),
        ("compare", "--tol-q"),
    ]:
        assert case in found, case
    assert len(found) > 40


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e999"])
@pytest.mark.parametrize("command, option", FLOAT_OPTIONS)
def test_every_float_option_refuses_nan_and_infinity(command, option, value, capsys):
    argv = [command, f"{option}={value}"] if value.startswith("-") else [command, option, value]
    line = fails(argv, capsys)
    assert option in line and "finite" in line


def test_a_list_of_floats_refuses_one_nan(capsys):
    line = fails(["train", "--lr", "1e-2,nan"], capsys)
    assert "--lr" in line and "finite" in line


def _task_float_fields():
    import dataclasses

    from ctrnn_jax.tasks._tasks import TASKS

    for name, cls in TASKS.items():
        if name == "neurogym":
            continue
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kind = hints[f.name]
            if (
                kind is float
                or float in typing.get_args(kind)
                or (typing.get_origin(kind) is tuple and float in typing.get_args(kind))
            ):
                yield name, f.name


@pytest.mark.parametrize("task, field", sorted(_task_float_fields()))
def test_every_float_task_option_refuses_nan(task, field, tmp_path, capsys):
    line = fails(["train", "--task", task, "--task-opt", f"{field}=nan", "--out", tmp_path / "r"], capsys)
    assert field in line and "finite" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-Infinity", "1e999", "[1.0, NaN]", "{'stimulus': 1e999}"])
def test_a_neurogym_option_refuses_nan_and_infinity(text):
    from ctrnn_jax.tasks._neurogym import neurogym_task

    with pytest.raises(ValueError, match="finite"):
        neurogym_task("neurogym:GoNogo-v0", [f"timing={text}"])
    with pytest.raises(ValueError, match="finite"):
        neurogym_task("neurogym:GoNogo-v0", [f"success_accuracy={text}"])


def test_the_library_refuses_nan_with_a_value_error():
    """NaN is a real number: a ValueError naming the range (the command line's one line), not a TypeError."""
    from ctrnn_jax import FixedPointConfig

    with pytest.raises(ValueError, match="tol_q"):
        FixedPointConfig(tol_q=math.nan)


@pytest.mark.parametrize(
    "content",
    ["{", "[]", '{"mse": [0.1, 0.2]}', '{"success": "yes"}', '{"success": [true, {"a": 1}]}', '{"success": null}'],
)
def test_compare_names_a_corrupt_eval_json(content, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(NPZ, run / "ensemble.npz")
    (run / "eval.json").write_text(content)
    line = fails(["compare", run, NPZ, "--out", tmp_path / "c"], capsys)
    assert "eval.json" in line
    assert not (tmp_path / "c").exists()


# ---------------------------------------------------------------------------------------------------
# A full disk: one line naming the folder and the space needed; the previous files intact
# ---------------------------------------------------------------------------------------------------


def _file_size_limit(limit: int):
    """A `preexec_fn`: files of this process may not grow beyond `limit` bytes (`ulimit -f`). SIGXFSZ is
    left at its default (it kills the process): the command line itself ignores it, so that the write
    fails with EFBIG, which it reports like a full disk (ENOSPC)."""

    def set_limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return set_limit


def _no_space_line(err) -> str:
    assert not any("Traceback" in line for line in err), err
    errors = [line for line in err if "error:" in line]
    assert len(errors) == 1 and errors[0] == err[-1], err
    return errors[0]


# a `preexec_fn` makes subprocess fork (not spawn), and JAX warns at every fork of a process that uses it; the
# child only sets its file size limit and execs, so no JAX code runs in it
@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")
def test_a_full_disk_during_training_is_one_line_and_keeps_the_checkpoint(tmp_path):
    import hashlib

    run = tmp_path / "run"
    shutil.copytree(ROOT / "tests" / "data" / "run_before_21", run)
    checkpoint = hashlib.md5((run / "checkpoint.eqx").read_bytes()).hexdigest()
    # config.json and metrics.csv fit; the new checkpoint (about 6 kB) does not
    code, err = run_cli(
        ["train", "--resume", run, "--steps", "8", "--progress", "none"], preexec_fn=_file_size_limit(3000)
    )
    line = _no_space_line(err)
    assert code == 2, err
    assert str(run) in line and "checkpoint.eqx" in line and "ulimit -f" in line and "kB" in line
    assert "intact" in line
    assert hashlib.md5((run / "checkpoint.eqx").read_bytes()).hexdigest() == checkpoint
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")  # (as above)
def test_a_full_disk_for_an_output_file_is_one_line(tmp_path):
    out = tmp_path / "eval.json"
    code, err = run_cli(["evaluate", NPZ, "--json", out], preexec_fn=_file_size_limit(100))
    line = _no_space_line(err)
    assert code == 2, err
    assert str(tmp_path) in line and "eval.json" in line
    assert not list(tmp_path.iterdir())  # nothing half written


def test_no_space_from_a_write_outside_atomic_write_is_one_line(capsys):
    """A full disk met anywhere (an append, a folder): ENOSPC is one line, any other OSError a traceback."""
    import errno

    from ctrnn_jax._cli._errors import run_command

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/runs/x/metrics.csv")

    args = build_parser().parse_args(["evaluate", str(NPZ)])
    args.func = full
    with pytest.raises(SystemExit) as e:
        run_command(args)
    assert e.value.code == 2
    line = capsys.readouterr().err.strip()
    assert "No space left on device" in line and "/data/runs/x/metrics.csv" in line and "\n" not in line

    def broken(args):
        raise OSError(errno.EIO, "Input/output error")

    args.func = broken
    with pytest.raises(OSError):
        run_command(args)


# ---------------------------------------------------------------------------------------------------
# Environment misconfiguration: one line, exit 2
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env, names",
    [
        pytest.param(
            {"JAX_PLATFORMS": "cuda"},
            ["JAX_PLATFORMS=cuda"],
            marks=pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU may be here"),
        ),
        ({"JAX_PLATFORMS": "no_such_platform"}, ["JAX_PLATFORMS=no_such_platform"]),
        ({"JAX_NUM_CPU_DEVICES": "0"}, ["JAX_NUM_CPU_DEVICES=0"]),
    ],
)
def test_a_misconfigured_jax_is_one_line(env, names):
    code, err = run_cli(["evaluate", NPZ], env=env)
    assert code == 2 and len(err) == 1, err
    assert all(name in err[0] for name in names), err


# ---------------------------------------------------------------------------------------------------
# Limits before work: candidates, trials and --unroll bounded by an estimate, with it in the message
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["fixed-points", NPZ, "--candidates", "1000000000"],
        ["fixed-points", NPZ, "--n-trials", "1000000000"],
        ["fixed-points", NPZ, "--task", "flipflop", "--n-trials", "1000000000"],
    ],
)
def test_a_fixed_point_search_too_big_for_memory_is_refused_before_work(argv, tmp_path, capsys):
    import time

    t0 = time.perf_counter()
    line = fails([*argv, "--out", tmp_path / "fp.npz"], capsys)
    assert time.perf_counter() - t0 < 20  # no candidate was made: was 59 s and a 44.7 GiB allocation
    assert "would need" in line and "GB" in line and "1000000000" in line
    assert not (tmp_path / "fp.npz").exists()


def test_the_main_jobs_fixed_point_stage_too_big_for_memory_is_refused_before_training(tmp_path, capsys):
    line = fails(["flipflop", *TINY, "--candidates", "1000000000", "--out", tmp_path / "r"], capsys)
    assert "would need" in line and "1000000000" in line
    assert not (tmp_path / "r").exists()  # nothing trained: was refused only after training


def test_a_comparison_too_big_for_memory_is_refused_before_work(tmp_path, capsys):
    import equinox as eqx

    from ctrnn_jax import load_npz, save_npz

    ensemble = load_npz(NPZ)
    other = tmp_path / "other.npz"
    save_npz(eqx.tree_at(lambda e: e.W_rec, ensemble, ensemble.W_rec * 0.5), other)  # another network
    line = fails(["compare", NPZ, other, "--candidates", "1000000000", "--out", tmp_path / "c"], capsys)
    assert "would need" in line and "1000000000" in line
    assert not (tmp_path / "c").exists()


def test_unroll_is_bounded(tmp_path, capsys):
    line = fails(["train", *TINY, "--unroll", "1000000000", "--out", tmp_path / "r"], capsys)
    assert "unroll" in line and "128" in line
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------------------
# A Keras file whose JSON config is corrupt: the error names the config
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        "{not json",
        "[]",
        '{"class_name": "Sequential", "config": {"layers": [1]}}',
        '{"class_name": "Sequential", "config": {"layers": [{"config": 3}]}}',
    ],
)
@pytest.mark.parametrize("kind", ["h5", "keras"])
def test_a_keras_file_with_a_corrupt_config_names_it(kind, config, tmp_path, capsys):
    import io
    import zipfile

    h5py = pytest.importorskip("h5py")
    path = tmp_path / f"model.{kind}"
    if kind == "h5":  # Keras 2 / legacy: the architecture in the `model_config` attribute
        with h5py.File(path, "w") as f:
            f.attrs["model_config"] = config
            f.create_group("model_weights")
    else:  # Keras 3: config.json beside model.weights.h5 in a zip
        weights = io.BytesIO()
        with h5py.File(weights, "w") as f:
            f.create_group("layers")
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("config.json", config)
            z.writestr("model.weights.h5", weights.getvalue())
    line = fails(["import-keras", path, "--out", tmp_path / "e.npz"], capsys)
    assert str(path) in line and ("model_config" if kind == "h5" else "config.json") in line


# ---------------------------------------------------------------------------------------------------
# --threshold where it means nothing: no task (a bare npz analysed without one), and train --resume
# ---------------------------------------------------------------------------------------------------


def test_threshold_without_a_task_is_refused(tmp_path, capsys):
    line = fails(["evaluate", ROOT / "tests" / "data" / "flipflop4_n64_k2.npz", "--threshold", "0.1"], capsys)
    assert "no task" in line and "--task" in line


def test_threshold_on_resume_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(ROOT / "tests" / "data" / "run_before_21", run)
    line = fails(["train", "--resume", run, "--threshold", "0.1"], capsys)
    assert "--threshold" in line and "config.json" in line
