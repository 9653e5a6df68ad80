"""Measure how fast an ensemble learns the flip-flop: test MSE on the 8-memory-state test set every
`--every` steps, for one setting of units / alpha / learning rate / decay / batch.

This is how the defaults of `ctrnn-jax flipflop` were chosen (see experiments/README.md):

    python experiments/sweep_defaults.py --units 64 --alpha 0.25 --lr 1e-2 --decay 1e-3 --steps 6000

With `--stop-mse` / `--restart-after` it trains as the main job does (train to criterion on the task's
validation series, dead-start restarts; issue #21) and records each member's validation MSE, the step
at which it met the criterion and its restarts, next to the test MSE:

    python experiments/sweep_defaults.py --decay 1e-3 --steps 8000 --every 100 --stop-mse 0.02 --restart-after 500
"""

import argparse
import json
import time

import jax
import numpy as np

import ctrnn_jax as cj


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--units", type=int, default=64)
    p.add_argument("--alpha", type=float, default=0.25)
    p.add_argument("--gain", type=float, default=1.0, help="initial gain of the recurrent weights")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--decay", type=float, default=0.0)
    p.add_argument("--clip", type=lambda v: None if v == "none" else float(v), default=1.0,
                   help="per-member gradient clip norm, or none")
    p.add_argument("--b2", type=float, default=0.999, help="Adam's beta2")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threshold", type=float, default=0.02)
    p.add_argument("--stop-mse", type=float, default=None, help="train to criterion (TrainConfig.stop_mse)")
    p.add_argument("--restart-after", type=int, default=None, help="restart dead starts (TrainConfig.restart_after)")
    p.add_argument("--json", default=None, help="write the learning curve here")
    p.add_argument("--save", default=None, help="write the trained ensemble.npz here")
    a = p.parse_args()
    trainer = cj.EnsembleTrainer(
        cj.EnsembleConfig(members=a.members, units=a.units, alpha=a.alpha, gain=a.gain),
        cj.TrainConfig(steps=a.steps, batch_size=a.batch, learning_rate=a.lr, lr_decay=a.decay, clip_norm=a.clip, adam_b2=a.b2,
                       steps_per_call=a.every, seed=a.seed, stop_mse=a.stop_mse, restart_after=a.restart_after))
    x, y = cj.flipflop_test_set()
    curve = []
    t0 = time.perf_counter()

    def record(state, losses):
        e = cj.evaluate(state.model, x, y, threshold=a.threshold)
        row = {"step": int(state.step), "seconds": time.perf_counter() - t0,
               "train_loss": np.mean(losses[-a.every:], axis=0).tolist(), "test_mse": e["mse"].tolist(),
               "n_success": int(e["success"].sum()), "restarts": np.asarray(state.restarts).tolist(),
               "criterion_step": np.asarray(state.criterion_step).tolist()}
        if a.stop_mse is not None:
            row["validation_mse"] = np.asarray(trainer.held_out_mse(state.model, trainer.held_out())).tolist()
        curve.append(row)
        print(f"step {row['step']:>6}  {row['seconds']:>6.0f} s  test MSE median {np.median(e['mse']):.4f} "
              f"min {e['mse'].min():.4f}  success {row['n_success']}/{a.members}", flush=True)

    state, _ = trainer.train(trainer.init(), progress=cj.NoProgress(), on_chunk=record)
    if a.save:
        cj.save_npz(state.model, a.save)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "device": jax.devices()[0].platform, "curve": curve}, f, indent=2)


if __name__ == "__main__":
    main()
