"""The memory lifetimes of a run folder's members (issue #31): `memory_check` on its task, printed per member as
the sorted lifetimes in test-trial lengths (censored at the horizon), with the test MSE and the verdict.

    ctrnn-jax train --cell gru --members 4 --units 32 --delay 0 --steps 1000 --stop-mse none \\
        --restart-after none --out /tmp/gru31
    python benchmarks/memory_lifetimes.py /tmp/gru31
"""

import json
import sys

import numpy as np

import ctrnn_jax as cj
from ctrnn_jax.io._run_config import read_config


def main(run: str) -> None:
    ens = cj.load_npz(f"{run}/ensemble.npz")
    ev = json.load(open(f"{run}/eval.json"))
    task = read_config(run).task
    c = cj.memory_check(ens, task)
    print(c)
    held = c.held_for_a_trial()
    for k in range(c.n_members):
        life = np.sort(c.lifetime_trials[k])
        print(
            f"member {k}: test MSE {ev['mse'][k]:.4f}, {c.verdict[k]}, held >= 1 trial {held[k]}/{len(life)}, "
            f"lifetimes (trials, sorted) {np.round(life, 2).tolist()}, "
            f"censored at {c.horizon_steps / c.trial_steps:g}: "
            f"{int(c.holds[k].sum())}"
        )


if __name__ == "__main__":
    main(sys.argv[1])
