"""Time one ensemble training step (forward scan, BPTT, Adam) per ensemble size K.

Benchmark sizes (issue #2/#5): N = 100 units, 3 inputs/outputs, batch 128, length 350, float32.
Prints a table and writes JSON. Also times a Python loop over K single-member trainers
(the "K trainings one after another" baseline) unless --no-loop.

    python benchmarks/train_step.py --members 1 8 --json benchmarks/cpu_train_step.json
"""

import argparse
import time

import jax
import numpy as np

import ctrnn_jax as cj
from _common import emit  # benchmarks/_common.py (the script's folder is on sys.path)


def time_trainer(members: int, args) -> dict:
    ens = cj.EnsembleConfig(members=members, units=args.units, alpha=args.alpha)
    train = cj.TrainConfig(
        steps=args.steps, batch_size=args.batch, steps_per_call=args.steps, unroll=args.unroll, shared_batch=False
    )
    task = cj.FlipFlopConfig(length=args.length)
    trainer = cj.EnsembleTrainer(ens, train, task)
    state = trainer.init()
    t0 = time.perf_counter()
    state, losses = trainer.run_steps(state, args.steps)  # compile + first chunk
    jax.block_until_ready(losses)
    first = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        state, losses = trainer.run_steps(state, args.steps)
        jax.block_until_ready(losses)
        times.append((time.perf_counter() - t0) / args.steps)
    per_step = float(np.median(times))
    return {
        "members": members,
        "ms_per_step": 1e3 * per_step,
        "ms_per_network_step": 1e3 * per_step / members,
        "compile_plus_first_chunk_s": first,
        "traces": trainer.trace_count,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, nargs="+", default=[1, 8])
    p.add_argument("--units", type=int, default=100)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--length", type=int, default=350)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--unroll", type=int, default=1)
    p.add_argument("--steps", type=int, default=5, help="steps per compiled call (timed per call)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-loop", action="store_true", help="skip the loop-over-members baseline")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument(
        "--cpu-devices", type=int, default=1, help="CPU devices JAX shows (members are split over them; default 1)"
    )
    args = p.parse_args()
    if args.cpu_devices != 1:
        jax.config.update("jax_num_cpu_devices", args.cpu_devices)
    dev = jax.devices()[0]
    rows = [time_trainer(k, args) for k in args.members]
    if not args.no_loop:
        single = next((r for r in rows if r["members"] == 1), None) or time_trainer(1, args)
        for r in rows:
            r["ms_per_step_loop_of_singles"] = single["ms_per_step"] * r["members"]
    print(
        f"device: {dev.platform} ({dev.device_kind}) x{jax.device_count()}; N={args.units}, batch={args.batch}, "
        f"T={args.length}, unroll={args.unroll}"
    )
    print(f"{'K':>6} {'ms/step':>10} {'ms/net/step':>12} {'K x (K=1) ms':>21} {'compile+1st s':>14}")
    for r in rows:
        loop = r.get("ms_per_step_loop_of_singles", float("nan"))
        print(
            f"{r['members']:>6} {r['ms_per_step']:>10.1f} {r['ms_per_network_step']:>12.2f} {loop:>21.1f} "
            f"{r['compile_plus_first_chunk_s']:>14.1f}"
        )
    emit(rows, args)


if __name__ == "__main__":
    main()
