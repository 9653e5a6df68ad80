import csv
import dataclasses
import json
import shutil

import numpy as np
import pytest

from ctrnn_jax import EnsembleConfig, FlipFlopConfig, TrainConfig, load_npz
from ctrnn_jax._cli import main

TINY = ["--members", "2", "--units", "5", "--alpha", "1,0.5", "--steps", "4", "--steps-per-call", "2",
        "--batch", "4", "--length", "24", "--first-onset", "1,3", "--gaps", "5,5", "--gap-jitter", "3",
        "--width", "3", "--delay", "2", "--checkpoint-every", "2", "--progress", "none"]
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
        ("--lr", "abc", "--lr"),
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
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    renamed = {"members": "--members", "batch_size": "--batch", "learning_rate": "--lr", "length": "--length",
               "n_bits": "--n-bits"}
    for cls, noise_flag in ((EnsembleConfig, None), (TrainConfig, "--rec-noise-std"),
                            (FlipFlopConfig, "--input-noise-std")):
        for field in dataclasses.fields(cls):
            flag = renamed.get(field.name, "--" + field.name.replace("_", "-"))
            flag = noise_flag if field.name == "noise_std" else flag
            assert flag in out, flag
    for flag in ("--out", "--resume", "--progress", "--preset", "--threshold", "--checkpoint-every"):
        assert flag in out


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
    assert (t.steps, t.batch_size, t.learning_rate, t.lr_decay, t.clip_norm, t.train_bias, t.dataset_size) == \
        (4700, 128, 1e-4, 1e-4, None, False, 30050)
    assert config.task.length == 340
