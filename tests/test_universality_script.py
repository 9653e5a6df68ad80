"""`experiments/universality.py` refuses input that would mix tasks, before any training or compile."""

import importlib.util
import json
from pathlib import Path

import jax
import pytest

from ctrnn_jax.io._run_config import RunConfig
from ctrnn_jax.io._serialisation import save_npz
from ctrnn_jax.tasks._flipflop import FlipFlopConfig
from ctrnn_jax.training._ensemble import EnsembleConfig, make_ensemble

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "universality.py"


@pytest.fixture(scope="module")
def universality():
    jax.devices()  # the backend runs, so the script's `use_cpu_cores` leaves conftest's 2 devices alone
    spec = importlib.util.spec_from_file_location("universality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_folder(path: Path, task: FlipFlopConfig) -> None:
    """A run folder as `train_run` leaves it, as far as the script reads it (config and ensemble)."""
    ensemble_config = EnsembleConfig(members=2, units=4)
    path.mkdir(parents=True)
    config = RunConfig(ensemble=ensemble_config, task=task)
    (path / "config.json").write_text(json.dumps({"config": config.to_dict()}))
    save_npz(make_ensemble(ensemble_config, key=jax.random.key(0)), path / "ensemble.npz")


def test_study_task_is_the_flipflop_without_delay(universality, tmp_path):
    """An existing population trained on the paper's task (3-level, delay 20) is not mixed into the study's
    (the binary cube task, delay 0)."""
    _run_folder(tmp_path / "leaky_tanh", FlipFlopConfig())  # the paper's task, delay 20
    with pytest.raises(SystemExit, match="another task.*--task paper --delay 20"):
        universality.main(["--out", str(tmp_path), "--populations", "leaky_tanh"])


def test_bad_delay_is_a_value_error(universality, tmp_path):
    with pytest.raises(ValueError, match="delay"):
        universality.main(["--out", str(tmp_path), "--delay", "-1"])
    assert not any(tmp_path.iterdir())  # nothing trained or written
