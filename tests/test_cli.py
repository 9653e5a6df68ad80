import csv
import dataclasses
import json
import shutil

import numpy as np
import pytest

from ctrnn_jax import EnsembleConfig, FlipFlopConfig, load_npz
from ctrnn_jax._cli import main

TINY = [
    "--members",
    "2",
    "--units",
    "5",
    "--alpha",
    "1,0.5",
    "--steps",
    "4",
    "--steps-per-call",
    "2",
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
    "--checkpoint-every",
    "2",
    "--progress",
    "none",
]
FILES = ("config.json", "metrics.csv", "eval.json", "checkpoint.eqx", "ensemble.npz")


def snapshot(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder made by `ctrnn-jax train` (tests copy it before changing it)."""
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


def test_train_writes_the_run_folder(run_dir):
    assert all((run_dir / name).is_file() for name in FILES)
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert config["ensemble"]["members"] == 2 and config["ensemble"]["alpha"] == [1.0, 0.5]
    assert config["train"]["steps"] == 4 and config["task"]["length"] == 24
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["step"]), int(r["member"])) for r in rows] == [(s, k) for s in range(1, 5) for k in range(2)]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    result = json.loads((run_dir / "eval.json").read_text())
    assert result["n_members"] == 2 and len(result["mse"]) == 2
    ensemble = load_npz(run_dir / "ensemble.npz")
    assert ensemble.W_rec.shape == (2, 5, 5)
    np.testing.assert_allclose(ensemble.alpha, [1.0, 0.5])


def test_evaluate_prints_a_table(run_dir, capsys):
    assert main(["evaluate", str(run_dir)]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].split() == ["member", "test", "MSE", "norm", "success"]
    assert [line.split()[0] for line in lines[1:3]] == ["0", "1"]
    assert "of 2 members solve the flipflop task" in lines[-1]
    mse = json.loads((run_dir / "eval.json").read_text())["mse"]
    assert float(lines[1].split()[1]) == pytest.approx(mse[0], abs=1e-5)


def test_evaluate_reads_an_npz_file(run_dir, capsys, tmp_path):
    assert main(["evaluate", str(run_dir / "ensemble.npz"), "--json", str(tmp_path / "m.json")]) == 0
    assert "members solve the flipflop task" in capsys.readouterr().out
    assert json.loads((tmp_path / "m.json").read_text())["n_members"] == 2


@pytest.mark.parametrize(
    "option, value, names",
    [
        ("--alpha", "2", "alpha"),
        ("--members", "0", "members"),
        ("--activation", "foo", "activation"),
        ("--lr", "abc", "argument --lr: invalid value 'abc'"),
        ("--cell", "gru", "`alpha` applies to `cell`='ctrnn' only"),  # TINY's --alpha 1,0.5
        ("--lr", "1e-2,1e-3,1e-4", "learning_rate"),
        ("--batch", "x", "--batch"),
        ("--first-onset", "5,2", "first_onset"),
    ],
)
def test_bad_arguments_exit_with_one_line(option, value, names, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", *TINY, option, value, "--out", str(tmp_path / "run")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert names in err and "error" in err
    assert not (tmp_path / "run").exists()


def test_help_lists_every_option(capsys):
    from ctrnn_jax._cli._train import GROUPS

    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for spec in GROUPS.values():
        for field in dataclasses.fields(spec.cls):
            assert spec.flag(field.name) in out, field.name
    for flag in ("--members", "--batch", "--lr", "--rec-noise-std", "--input-noise-std", "--n-bits", "--length"):
        assert flag in out
    for flag in ("--out", "--resume", "--progress", "--preset", "--threshold", "--checkpoint-every", "--task"):
        assert flag in out


@pytest.mark.parametrize(
    "command", ["train", "flipflop", "evaluate", "fixed-points", "analyze", "compare", "import-keras"]
)
def test_help_lists_every_choice(command, capsys):
    from ctrnn_jax._cli import build_parser

    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    with_choices = [a for a in build_parser().commands[command]._actions if a.choices]
    assert with_choices
    for action in with_choices:
        for choice in action.choices:
            assert choice in out, (action.dest, choice)
    if command == "train":
        for choice in (
            "gru",
            "lstm",
            "ugrnn",
            "softplus",
            "highest",
            "checkpoint",
            "glorot_uniform",
            "context_dm",
            "neurogym:ENV_ID",
        ):
            assert choice in out


def test_every_config_field_has_an_option_with_its_docstring_help():
    from ctrnn_jax._cli import build_parser, field_help
    from ctrnn_jax._cli._fixed_points import FIXED_POINTS
    from ctrnn_jax._cli._train import GROUPS

    commands = build_parser().commands
    for command, specs in (
        ("train", GROUPS.values()),
        ("flipflop", [*GROUPS.values(), FIXED_POINTS]),
        ("fixed-points", [FIXED_POINTS]),
    ):
        actions = {a.dest: a for a in commands[command]._actions}
        for spec in specs:
            docs = field_help(spec.cls)
            assert list(docs) == [f.name for f in dataclasses.fields(spec.cls)]
            for name, text in docs.items():
                action = actions[f"{spec.dest}.{name}"]
                assert spec.flag(name) in action.option_strings
                assert len(text) > 10 and action.help.startswith(text.replace("`", "").rstrip(".")), (command, name)
                assert "(default: " in action.help


def test_docstring_field_parser():
    from ctrnn_jax._cli import parse_fields

    doc = """Summary line.

    **Fields:**

    - `alpha`: the first field, with `code`; it goes on
      over two lines.
    - `beta`: the second (>= 0).

    - `gamma_2`: after a blank line.

    A closing paragraph that is no field.
    """
    assert parse_fields(doc) == {
        "alpha": "the first field, with `code`; it goes on over two lines.",
        "beta": "the second (>= 0).",
        "gamma_2": "after a blank line.",
    }
    assert parse_fields("No fields here.") == {} and parse_fields(None) == {}
    with pytest.raises(ValueError, match="`beta` is listed twice"):
        parse_fields("x\n\n**Fields:**\n\n- `beta`: one.\n- `beta`: two.\n")


def test_an_undocumented_field_fails_loudly():
    import argparse

    from ctrnn_jax._cli import ConfigOptions, field_help

    @dataclasses.dataclass(frozen=True)
    class Partly:
        """A config.

        **Fields:**

        - `a`: documented.
        - `c`: no such field.
        """

        a: int = 1
        b: float = 2.0

    with pytest.raises(TypeError, match=r"Partly.*no bullet for b; bullets for no field: c"):
        field_help(Partly)
    with pytest.raises(TypeError, match="no bullet for b"):
        ConfigOptions(Partly, "partly").add_to(argparse.ArgumentParser(), "partly options")


def test_an_expected_error_is_one_line_and_exit_2(monkeypatch, capsys):
    from ctrnn_jax._cli import _evaluate

    errors = (
        ValueError("bad value\n  second line"),
        FileNotFoundError("x.npz: no such file"),
        FileExistsError("x: already holds a run"),
        PermissionError("x: denied"),
        ImportError("reading Keras files needs h5py: pip install 'ctrnn-ensembles[keras]'"),
    )
    for error in errors:

        def fail(args, error=error):
            raise error

        monkeypatch.setattr(_evaluate, "run", fail)
        with pytest.raises(SystemExit) as exc:
            main(["evaluate", "x.npz"])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        expected = "bad value second line" if isinstance(error, ValueError) else str(error)
        assert err == f"ctrnn-jax evaluate: error: {expected}\n"


@pytest.mark.parametrize(
    "error",
    [TypeError("a bug"), KeyError("a bug"), AttributeError("a bug"), ImportError("No module named 'something'")],
)
def test_any_other_error_is_a_bug_and_propagates(error, monkeypatch):
    from ctrnn_jax._cli import _evaluate

    def fail(args):
        raise error

    monkeypatch.setattr(_evaluate, "run", fail)
    with pytest.raises(type(error), match="a bug|something"):
        main(["evaluate", "x.npz"])


def test_a_bad_choice_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fixed-points", "x.npz", "--dtype", "float16"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --dtype: invalid choice: 'float16'" in err


def test_library_messages_are_translated_to_options(monkeypatch, capsys, tmp_path):
    from ctrnn_jax.analysis import _compare

    def mixed(*args, **kwargs):
        raise ValueError("the runs are of different tasks (a, b); pass `allow_mixed=True` to compare them.")

    monkeypatch.setattr(_compare, "compare_runs", mixed)
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(tmp_path), "--out", str(tmp_path / "cmp")])
    assert exc.value.code == 2
    assert "pass --allow-mixed to compare them" in capsys.readouterr().err


class _Stop(Exception):
    """Raised by a stand-in for the library: the command got as far as calling it."""


@pytest.fixture
def tiny_npz(tmp_path):
    import jax

    from ctrnn_jax import make_ensemble, save_npz

    path = tmp_path / "tiny.npz"
    save_npz(make_ensemble(EnsembleConfig(members=1, units=4), key=jax.random.key(0)), path)
    return path


def test_fixed_points_builds_one_config_from_its_options(tiny_npz, monkeypatch, tmp_path):
    from ctrnn_jax import FixedPointConfig
    from ctrnn_jax.io import _fixed_point_files

    received = []

    def write_fixed_points(ensemble, out_npz, **kwargs):
        received.append(kwargs)
        raise _Stop

    monkeypatch.setattr(_fixed_point_files, "write_fixed_points", write_fixed_points)
    with pytest.raises(_Stop):
        main(
            [
                "fixed-points",
                str(tiny_npz),
                "--out",
                str(tmp_path / "fp.npz"),
                "--candidates",
                "64",
                "--restarts",
                "1",
                "--no-complete",
            ]
        )
    [kwargs] = received
    assert kwargs["config"] == FixedPointConfig(n_candidates=64, restarts=1, complete=False)
    assert kwargs["task"] == FlipFlopConfig() and kwargs["inputs"] is None and kwargs["cube_json"] is None


def test_fixed_point_options_and_their_aliases():
    from ctrnn_jax import FixedPointConfig
    from ctrnn_jax._cli import build_parser
    from ctrnn_jax._cli._fixed_points import FIXED_POINTS

    parser = build_parser()
    args = parser.parse_args(
        [
            "fixed-points",
            "x.npz",
            "--n-candidates",
            "8",
            "--tol",
            "1e-9",
            "--noise",
            "0.1",
            "--fp-seed",
            "3",
            "--dtype",
            "float64",
            "--eigvecs",
            "--outlier-scale",
            "none",
            "--input",
            "0,1",
        ]
    )
    assert FIXED_POINTS.build(args) == FixedPointConfig(
        n_candidates=8, tol_q=1e-9, noise_std=0.1, seed=3, dtype="float64", eigvecs=True, outlier_scale=None
    )
    assert args.input == [0.0, 1.0]
    args = parser.parse_args(["flipflop", "--seed", "5", "--fp-seed", "2", "--tol-q", "1e-8", "--noise-std", "0.2"])
    assert FIXED_POINTS.build(args) == FixedPointConfig(seed=2, tol_q=1e-8, noise_std=0.2)
    assert vars(args)["train.seed"] == 5
    assert FIXED_POINTS.build(parser.parse_args(["fixed-points", "x.npz"])) == FixedPointConfig()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--restarts", "-1"], "`restarts` must be an integer >= 0"),
        (["--no-fixed-points", "--candidates", "64"], "--n-candidates: fixed-point options, but the"),
        (["--no-fixed-points", "--input", "0,0,0"], "--input: fixed-point options"),
    ],
)
def test_flipflop_refuses_bad_or_unused_fixed_point_options_before_training(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["flipflop", *TINY, *argv, "--out", str(tmp_path / "run")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "run").exists()


def test_second_train_to_the_same_folder_fails_and_changes_nothing(run_dir, capsys):
    before = snapshot(run_dir)
    with pytest.raises(SystemExit) as exc:
        main(["train", *TINY, "--steps", "6", "--out", str(run_dir)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and len(err.strip().splitlines()) == 1
    assert snapshot(run_dir) == before


def test_resume_continues_the_run(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    assert main(["train", "--resume", str(run), "--steps", "6", "--progress", "none"]) == 0
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 * 2
    assert (run / "metrics.csv").read_text().startswith((run_dir / "metrics.csv").read_text())
    assert json.loads((run / "config.json").read_text())["config"]["train"]["steps"] == 6


def test_resume_rejects_other_options(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    before = snapshot(run)
    with pytest.raises(SystemExit) as exc:
        main(["train", "--resume", str(run), "--units", "8", "--progress", "none"])
    assert exc.value.code == 2
    assert "--units" in capsys.readouterr().err
    assert snapshot(run) == before


def test_paper_preset_sets_the_published_code_and_options_override_it():
    from ctrnn_jax._cli import build_parser, config_from_args

    args = build_parser().parse_args(["flipflop", "--preset", "paper", "--members", "3"])
    config, _ = config_from_args(args)
    assert config.ensemble.units == 400 and config.ensemble.alpha == 1.0 and config.ensemble.members == 3
    t = config.train
    assert (t.steps, t.batch_size, t.learning_rate, t.lr_decay, t.clip_norm, t.train_bias, t.dataset_size) == (
        4700,
        128,
        1e-4,
        1e-4,
        None,
        False,
        30050,
    )
    assert (t.adam_b2, t.stop_mse, t.restart_after) == (0.999, None, None)  # Keras' Adam, no criterion
    assert config.task.length == 340


def test_the_flipflop_trains_to_criterion_with_a_short_second_moment_and_options_override_it():
    from ctrnn_jax._cli import build_parser, config_from_args

    def train(*argv):
        return config_from_args(build_parser().parse_args(list(argv)))[0].train

    t = train("flipflop")
    assert (t.stop_mse, t.restart_after, t.adam_b2) == (0.02, 500, 0.95)
    assert train("train", "--task", "flipflop").adam_b2 == 0.95
    assert train("flipflop", "--adam-b2", "0.999").adam_b2 == 0.999
    assert train("train", "--task", "dms").adam_b2 == 0.999  # other tasks keep the library's (Keras) default
