"""One ensemble over several processes (issue #11): `ctrnn-jax ... --coordinator --num-processes
--process-id` on JAX's distributed runtime, 2 processes x 2 CPU devices each (gloo collectives,
coordinator on 127.0.0.1).

One module fixture runs everything once, overlapping what can overlap:

1. a 2-process training of 8 members for 20 steps (`run/`), while two runs that must fail (an
   unreachable coordinator; processes given different `--num-processes`) run alongside, and this
   process trains the same configuration for 30 steps in one process (the reference);
2. the run folder is copied (`run20/`), then the 2-process run is resumed to 30 steps;
3. this plain process evaluates the run folder and finds its fixed points (`ctrnn-jax evaluate`,
   `ctrnn-jax fixed-points`; `analyze` takes too long for the suite's budget).

The 2-process results are bit-for-bit those of one process: each device runs the same per-member
program on its members, and members never interact.
"""

import contextlib
import dataclasses
import io
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import ctrnn_jax as cj
from ctrnn_jax.dynamics._fixed_point_set import _FP_ARRAYS, _SLOW_ARRAYS
from ctrnn_jax.io import read_losses

ROOT = Path(__file__).resolve().parents[1]
CLI = ["-c", "import sys; from ctrnn_jax._cli import main; sys.exit(main())"]
TASK_ARGS = [
    "--length",
    "30",
    "--first-onset",
    "1,5",
    "--gaps",
    "5",
    "--gap-jitter",
    "3",
    "--width",
    "3",
    "--delay",
    "2",
]
TRAIN_ARGS = [
    "--members",
    "8",
    "--units",
    "6",
    "--alpha",
    "0.5",
    "--batch",
    "4",
    "--steps-per-call",
    "10",
    "--checkpoint-every",
    "10",
    "--progress",
    "none",
    *TASK_ARGS,
]
FP_ARGS = ["--candidates", "32", "--restarts", "0"]
INIT_TIMEOUT = 10  # --dist-timeout of the runs that must fail: they must end within it (plus start-up)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args, tmp: Path, name: str, devices: int = 2):
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        JAX_NUM_CPU_DEVICES=str(devices),
        JAX_COMPILATION_CACHE_DIR=str(tmp / "jax_cache"),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    )
    env.pop("XLA_FLAGS", None)
    (tmp / name).mkdir()  # each process's working directory: it must stay empty but for process 0's --out
    proc = subprocess.Popen(
        [sys.executable, *CLI, *args],
        cwd=tmp / name,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    result = {"t0": time.perf_counter()}

    def wait():  # collects the output and the moment the process ended
        try:
            result["out"], result["err"] = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            result["out"], result["err"] = proc.communicate()
        result["seconds"] = time.perf_counter() - result["t0"]
        result["rc"] = proc.returncode

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread, result


def _finish(started) -> dict:
    thread, result = started
    thread.join()
    return result


def _distributed(args, tmp: Path, name: str, num_processes=(2, 2)) -> list:
    port = _free_port()
    return [
        _start(
            [
                *args,
                "--coordinator",
                f"127.0.0.1:{port}",
                "--num-processes",
                str(p),
                "--process-id",
                str(i),
                "--dist-timeout",
                str(INIT_TIMEOUT),
                "--heartbeat-timeout",
                "20",
            ],
            tmp,
            f"{name}{i}",
        )
        for i, p in enumerate(num_processes)
    ]


def _ok(result: dict) -> dict:
    assert result["rc"] == 0, result["err"][-3000:]
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distributed")
    run = tmp / "run"
    train = _distributed(["train", *TRAIN_ARGS, "--steps", "20", "--out", str(run)], tmp, "train")
    unreachable = _start(
        [
            "train",
            *TRAIN_ARGS,
            "--out",
            str(tmp / "never"),
            "--coordinator",
            f"127.0.0.1:{_free_port()}",
            "--num-processes",
            "2",
            "--process-id",
            "1",
            "--dist-timeout",
            str(INIT_TIMEOUT),
        ],
        tmp,
        "unreachable",
    )
    wrong = _distributed(["train", *TRAIN_ARGS, "--out", str(tmp / "wrong")], tmp, "wrong", num_processes=(2, 3))

    # the reference: the same configuration in this one process (with the CLI's flip-flop Adam), states at
    # steps 20 and 30
    task = cj.FlipFlopConfig(length=30, first_onset=(1, 5), gaps=(5,), gap_jitter=3, width=3, delay=2)
    trainer = cj.EnsembleTrainer(
        cj.EnsembleConfig(members=8, units=6, alpha=0.5),
        cj.TrainConfig(steps=30, batch_size=4, steps_per_call=10, adam_b2=task.train_defaults()["adam_b2"]),
        task,
    )
    state, losses, reference = trainer.init(), [], {}
    for _ in range(3):
        state, chunk = trainer.run_steps(state, 10)
        losses.append(np.asarray(chunk))
        reference[int(state.step)] = (jax.tree_util.tree_map(np.asarray, state.model), np.concatenate(losses))

    result = {
        "train": [_ok(_finish(p)) for p in train],
        "unreachable": _finish(unreachable),
        "wrong": [_finish(p) for p in wrong],
        "reference": reference,
        "run": run,
        "run20": tmp / "run20",
        "like": trainer.init(),
    }
    result["files20"] = sorted(p.name for p in run.iterdir())
    result["cwd_files"] = [sorted(p.name for p in (tmp / f"train{i}").iterdir()) for i in range(2)]
    shutil.copytree(run, result["run20"])
    resume = _distributed(["train", "--resume", str(run), "--steps", "30"], tmp, "resume")
    result["evaluate"] = _main(["evaluate", str(result["run20"])])  # a plain process: this one
    result["resume"] = [_ok(_finish(p)) for p in resume]
    result["fp_one"] = _main(["fixed-points", str(run), "--out", str(tmp / "fp_one.npz"), *FP_ARGS])
    result["fp_file"] = tmp / "fp_one.npz"
    return result


def _main(argv) -> str:
    """`ctrnn-jax ARGV` in this (plain, single) process; its standard output."""
    from ctrnn_jax._cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue()


def _model_arrays(model) -> dict:
    return {name: np.asarray(getattr(model, name)) for name in ("W_rec", "W_in", "b", "W_out", "b_out", "alpha")}


def _assert_same_model(path: Path, model):
    stored = np.load(path)
    for name, value in _model_arrays(model).items():
        np.testing.assert_array_equal(stored[name], value, err_msg=name)


def test_two_processes_train_what_one_process_trains(runs):
    # every member's parameters and loss history, bit for bit, after 20 steps in 2 chunks
    model, losses = runs["reference"][20]
    _assert_same_model(runs["run20"] / "ensemble.npz", model)
    np.testing.assert_array_equal(
        read_losses(runs["run20"] / "metrics.csv", 8), np.asarray([[float(f"{v:.6g}") for v in row] for row in losses])
    )
    config = json.loads((runs["run20"] / "config.json").read_text())
    assert config["environment"]["device"]["processes"] == 2 and config["environment"]["device"]["count"] == 4


def test_resumed_distributed_run_equals_uninterrupted_run(runs):
    model, losses = runs["reference"][30]
    _assert_same_model(runs["run"] / "ensemble.npz", model)
    np.testing.assert_array_equal(
        read_losses(runs["run"] / "metrics.csv", 8), np.asarray([[float(f"{v:.6g}") for v in row] for row in losses])
    )
    state, history = cj.load_checkpoint(runs["run"] / "checkpoint.eqx", runs["like"])
    assert int(state.step) == 30
    np.testing.assert_array_equal(history, losses)  # the checkpoint's float32 history, exactly
    for name in ("W_rec", "b_out"):
        np.testing.assert_array_equal(np.asarray(getattr(state.model, name)), getattr(model, name))
    assert "resuming" in runs["resume"][0]["err"]
    assert json.loads((runs["run"] / "config.json").read_text())["resumed"][0]["from_step"] == 20


def _stdout(result: dict) -> str:
    """A process's standard output without the lines gloo itself prints when it connects (its C++
    threads write them straight to the file descriptor, sometimes interleaved mid-line)."""
    return "".join(
        line
        for line in result["out"].splitlines(keepends=True)
        if "[Gloo]" not in line and "connected peer ranks" not in line
    )


def test_only_process_zero_writes_and_prints(runs):
    assert runs["files20"] == [
        "checkpoint.eqx",
        "config.json",
        "ensemble.npz",
        "eval.json",
        "metrics.csv",
        "summary.csv",
    ]
    assert runs["cwd_files"] == [[], []]  # nothing written anywhere else (the working directories)
    assert sorted(p.name for p in runs["run"].iterdir()) == runs["files20"]  # and no temporary files
    for name in ("train", "resume"):
        first, second = runs[name]
        assert "8 members solve the flipflop task" in _stdout(first) and _stdout(second) == ""


def test_a_plain_process_evaluates_and_analyses_the_run(runs):
    evaluation = runs["evaluate"]
    assert "of 8 members solve the flipflop task" in evaluation
    stored = json.loads((runs["run20"] / "eval.json").read_text())
    for k, mse in enumerate(stored["mse"]):  # the distributed run's own (sharded) evaluation agrees
        assert f"{k:>6}  {mse:>10.5f}" in evaluation
    assert "fixed points written to" in runs["fp_one"]


def _part(fixed_points, lo, hi):
    """What the process holding members `lo … hi−1` finds: their points, indexed from 0."""
    keep, keep_slow = (
        (fixed_points.member >= lo) & (fixed_points.member < hi),
        (fixed_points.slow_member >= lo) & (fixed_points.slow_member < hi),
    )
    arrays = {name: getattr(fixed_points, name)[keep] for name in _FP_ARRAYS}
    arrays.update({name: getattr(fixed_points, name)[keep_slow] for name in _SLOW_ARRAYS})
    arrays["member"] = arrays["member"] - lo
    arrays["slow_member"] = arrays["slow_member"] - lo
    return cj.FixedPoints(n_members=hi - lo, inputs=fixed_points.inputs[lo:hi], eigvecs=None, **arrays)


def test_fixed_points_gathered_from_processes_equal_one_search(runs):
    # the gather of the distributed fixed-point stage (`fixed_point_stage`, `gather_fixed_points`): the
    # parts that 2 or 3 processes find, through the bytes they exchange, merge into exactly the
    # one-process result (and so into the same cube analysis)
    from ctrnn_jax.dynamics._sharded import _from_bytes, _merge, _to_bytes

    whole = dataclasses.replace(cj.FixedPoints.from_npz(runs["fp_file"]), eigvecs=None)
    ensemble = cj.load_npz(runs["run"] / "ensemble.npz")
    per_member = cj.cube_analysis(whole, ensemble)
    for bounds in ((0, 4, 8), (0, 2, 6, 8)):
        parts = [_from_bytes(_to_bytes(_part(whole, lo, hi), lo)) for lo, hi in itertools.pairwise(bounds)]
        merged = _merge(parts)
        assert isinstance(merged, cj.FixedPoints) and merged.n_members == 8 and merged.eigvecs is None
        for name in (*_FP_ARRAYS, *_SLOW_ARRAYS, "inputs"):
            np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name), err_msg=name)
        assert json.dumps(cj.cube_analysis(merged, ensemble)) == json.dumps(per_member)


def test_unreachable_coordinator_ends_with_one_line(runs):
    r = runs["unreachable"]
    assert r["rc"] == 1 and r["seconds"] < INIT_TIMEOUT + 30
    lines = r["err"].strip().splitlines()
    assert len(lines) == 1 and "did not start within 10 s" in lines[0] and "unreachable" in lines[0], r["err"]


def test_wrong_num_processes_ends_every_process_with_one_line(runs):
    for r in runs["wrong"]:
        assert r["rc"] == 2 and r["seconds"] < INIT_TIMEOUT + 30
        errors = [line for line in r["err"].splitlines() if "error" in line]
        expected = (
            "ctrnn-jax train: error: --num-processes: process 1 was told 3 processes, but 2 joined the coordinator."
        )
        assert errors == [expected], r["err"]


_PEER_DIES = """
import os, sys, time
from ctrnn_jax._cli import build_parser
from ctrnn_jax._cli._distributed import run, start
args = build_parser().parse_args(sys.argv[1:])
start(args)
def command():  # no collective: only the peer watch can notice a dead peer
    if args.process_id == 1:
        time.sleep(1)
        os.kill(os.getpid(), 9)
    time.sleep(120)
    return 0
sys.exit(run(command, args.heartbeat_timeout))
"""


def test_a_dead_peer_ends_the_others_with_one_line_within_the_heartbeat_timeout(tmp_path):
    """Process 1 killed while process 0 is between collectives (writing files, in a barrier): process 0 ends
    with one line within half the heartbeat timeout (was: JAX's fatal abort, exit 134 and a C++ stack, after
    the whole heartbeat timeout)."""
    port, heartbeat = _free_port(), 16
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_NUM_CPU_DEVICES="1")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _PEER_DIES,
                "train",
                "--coordinator",
                f"127.0.0.1:{port}",
                "--num-processes",
                "2",
                "--process-id",
                str(i),
                "--heartbeat-timeout",
                str(heartbeat),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for i in range(2)
    ]
    _, err = procs[0].communicate(timeout=120)
    procs[1].communicate(timeout=30)
    assert procs[1].returncode == -9
    lines = err.strip().splitlines()
    assert procs[0].returncode == 1 and len(lines) == 1, (procs[0].returncode, err)
    assert lines[0].startswith("ctrnn-jax: error: process 1 of the distributed run has not responded for 8 s"), lines


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            {"coordinator": "nohost"},
            ValueError,
            "`coordinator` must be HOST:PORT with a port in 1..65535, got 'nohost'.",
        ),
        (
            {"coordinator": "h:70000"},
            ValueError,
            "`coordinator` must be HOST:PORT with a port in 1..65535, got 'h:70000'.",
        ),
        (
            {"num_processes": 2, "process_id": 2},
            ValueError,
            "`process_id` must be in 0..1 (`num_processes` = 2), got 2.",
        ),
        ({"num_processes": 0}, ValueError, "`num_processes` must be an integer >= 1, got 0."),
        ({"timeout": 0}, ValueError, "`timeout` must be an integer >= 1, got 0."),
        ({"cpu_collectives": "nccl"}, ValueError, "`cpu_collectives` must be gloo, mpi, none or None; got 'nccl'."),
    ],
)
def test_init_distributed_checks_its_arguments_before_starting(kwargs, error, message):
    with pytest.raises(error) as info:
        cj.init_distributed(**kwargs)
    assert str(info.value) == message
    assert jax.process_count() == 1  # nothing was started
