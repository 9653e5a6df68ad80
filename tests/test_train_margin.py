"""The margin below the success threshold a member is trained to (issue #31): `TrainConfig.stop_margin`, the
command line's default for a task that trains to criterion, and the live summary's held members."""

import numpy as np
import pytest

from ctrnn_jax._cli import build_parser
from ctrnn_jax._cli._train import config_from_args
from ctrnn_jax.io._metrics import LiveMetrics
from ctrnn_jax.io._run_config import RunConfig
from ctrnn_jax.training._train import DEFAULT_STOP_MARGIN, TrainConfig


def test_the_criterion_is_the_threshold_less_the_margin():
    assert TrainConfig(stop_mse=0.02, stop_margin=0.25).criterion == pytest.approx(0.015)
    assert TrainConfig(stop_mse=0.02).criterion == 0.02 and TrainConfig().criterion is None
    # a config written before the margin keeps its meaning: to the threshold's edge
    old = TrainConfig(stop_mse=0.02).to_dict()
    del old["stop_margin"]
    assert TrainConfig.from_dict(old).criterion == 0.02
    for bad in (-0.1, 1.0, True, "0.2"):
        with pytest.raises(ValueError, match="stop_margin"):
            TrainConfig(stop_mse=0.02, stop_margin=bad)


@pytest.mark.parametrize(
    "argv, margin, criterion",
    [
        ([], DEFAULT_STOP_MARGIN, 0.02 * (1 - DEFAULT_STOP_MARGIN)),  # the flip-flop's own criterion: with the margin
        (["--stop-margin", "0.1"], 0.1, 0.018),
        (["--stop-mse", "0.03"], 0.0, 0.03),  # a criterion of one's own is the criterion asked for
        (["--stop-mse", "0.03", "--stop-margin", "0.5"], 0.5, 0.015),
        (["--preset", "paper"], 0.0, None),  # no criterion at all
    ],
)
def test_command_line_margin(argv, margin, criterion):
    args = build_parser().parse_args(["train", *argv])
    config, _ = config_from_args(args)
    assert config.train.stop_margin == pytest.approx(margin)
    assert (config.train.criterion is None) if criterion is None else config.train.criterion == pytest.approx(criterion)
    assert RunConfig.from_dict(config.to_dict()) == config  # config.json round trip


def test_summary_counts_held_members_at_their_last_loss(tmp_path):
    live = LiveMetrics(tmp_path, np.zeros((0, 3), np.float32))
    losses = np.array([[1.0, 2.0, 3.0], [0.5, 1.5, 0.01], [0.4, 1.4, np.nan], [0.3, 1.3, np.nan]])
    live.chunk(losses[:2], 0, held=np.array([False, False, False]))
    live.chunk(losses, 0, held=np.array([False, False, True]))  # member 2 held at 0.01 since step 2
    rows = (tmp_path / "summary.csv").read_text().splitlines()
    assert rows[0] == "step,median_loss,min_loss,max_loss,frozen,held,steps_per_s"
    step, median, low, high, frozen, held = rows[2].split(",")[:6]
    assert (int(step), int(held), int(frozen)) == (4, 1, 0)
    assert float(median) == pytest.approx(0.3) and float(low) == pytest.approx(0.01)  # not the median of 2
    assert float(high) == pytest.approx(1.3)
