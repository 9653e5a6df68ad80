"""Where a training step's time goes on this machine: the trainer's step taken apart (issue #21).

At the benchmark sizes (N = 100, batch 128, T = 350, K = 8, alpha 1, members over the CPU devices)
it times, each jitted and vmapped over the members, median of `--repeats` warm calls:

- `ceiling`: a 2048² float32 matmul (TFLOP/s), the reference of every percentage;
- `trainer`: the whole `EnsembleTrainer` step (data generated on the device, custom VJP, the optax chain);
- `data`: the task's trials alone (`task.sample` per member);
- `forward`: the loss alone (the time loop forward, no gradient);
- `forward+backward`: the loss and its gradient (custom VJP), no update;
- `recurrence matmuls`: the time loop with only `h @ W_rec` (the matmuls the analytic count is made of);
- `recurrence elementwise`: the time loop with only the elementwise part (`(1-a) h + a tanh(h + u)`).

    python benchmarks/profile_step.py --cpu-devices 2 --json benchmarks/cpu_profile_step.json
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import ctrnn_jax as cj
from _common import emit  # benchmarks/_common.py
from ensemble_throughput import flops_per_network_step, matmul_ceiling


def median_time(f, *args, repeats=5):
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--units", type=int, default=100)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--length", type=int, default=350)
    p.add_argument("--steps-per-call", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--cpu-devices", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    if args.cpu_devices != 1:
        jax.config.update("jax_num_cpu_devices", args.cpu_devices)
    from ctrnn_jax.training._sharding import member_mesh, shard_members

    k, n, b, t, s = args.members, args.units, args.batch, args.length, args.steps_per_call
    ceiling = matmul_ceiling("default", 2048)
    task = cj.FlipFlopConfig(length=t)
    ens = cj.EnsembleConfig(members=k, units=n, alpha=1.0)
    train = cj.TrainConfig(steps=s, batch_size=b, steps_per_call=s, clip_norm=None, lr_decay=0.0)
    trainer = cj.EnsembleTrainer(ens, train, task)
    state = trainer.init()
    mesh = member_mesh(k)
    place = lambda x: shard_members(x, mesh, k)  # noqa: E731
    rows = {}

    chunk = trainer._chunk(s)
    holder = {"s": state}

    def trainer_call():
        holder["s"], losses, _ = chunk(
            holder["s"], trainer.hyper, trainer.data(), trainer.constraints, trainer.held_out()
        )  # _: the dead starts (none without restart_after)
        return losses

    rows["trainer"] = median_time(trainer_call, repeats=args.repeats) / s

    keys = place(jax.random.split(jax.random.key(1), k))
    sample = jax.jit(jax.vmap(lambda key: task.sample(key, b)))
    rows["data"] = median_time(sample, keys, repeats=args.repeats)
    x, y, mask = sample(keys)

    model = state.model
    loss = lambda m, x, y, mk: cj.masked_mse(m(x), y, mk)  # noqa: E731
    forward = jax.jit(jax.vmap(loss))
    rows["forward"] = median_time(forward, model, x, y, mask, repeats=args.repeats)
    grad = jax.jit(jax.vmap(jax.value_and_grad(loss)))
    rows["forward+backward"] = median_time(grad, model, x, y, mask, repeats=args.repeats)

    h0 = place(jnp.zeros((k, b, n)))
    u = place(jax.random.normal(jax.random.key(2), (k, t, b, n)))

    def matmuls(w, h, u):
        return lax.scan(lambda h, _: (h @ w, None), h, None, length=t)[0]

    def elementwise(h, u):
        return lax.scan(lambda h, ut: (0.5 * h + 0.5 * jnp.tanh(h + ut), None), h, u)[0]

    # the analytic count's 3 matmuls per time step and trial: one forward, two backward
    mm = jax.jit(jax.vmap(matmuls))
    rows["recurrence matmuls (1 of 3)"] = median_time(mm, model.W_rec, h0, u, repeats=args.repeats)
    ew = jax.jit(jax.vmap(elementwise))
    rows["recurrence elementwise (forward)"] = median_time(ew, h0, u, repeats=args.repeats)

    flops = flops_per_network_step(n, 3, 3, b, t) * k
    table = [
        "| part | ms per step (all K) | share of the trainer's step | TFLOP/s (analytic) | % of ceiling |",
        "|---|---|---|---|---|",
    ]
    for name, sec in rows.items():
        tf = flops / sec / 1e12 if name == "trainer" else None
        table.append(
            f"| {name} | {1e3 * sec:.1f} | {100 * sec / rows['trainer']:.0f}% | "
            f"{'–' if tf is None else f'{tf:.3f}'} | {'–' if tf is None else f'{100 * tf / ceiling:.0f}'} |"
        )
    print("\n".join(table))
    print(f"matmul ceiling {ceiling:.3f} TFLOP/s (2048² float32); analytic {flops / 1e9:.2f} GFLOP per step (all K)")
    emit(
        [
            {"ceiling_tflops": ceiling, "flops_per_step": flops},
            *({"part": name, "seconds_per_step": sec} for name, sec in rows.items()),
        ],
        args,
    )


if __name__ == "__main__":
    main()
