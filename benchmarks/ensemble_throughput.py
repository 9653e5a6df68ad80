"""Ensemble training throughput: every backprop variant against the plain baseline, in one run.

Benchmark sizes (issue #5): N = 100 units, 3 inputs / 3 outputs, batch 128 per member, T = 350,
MSE, Adam, float32. For each ensemble size K and variant it reports the median time of a training
step, the time per network, sample-steps per second, the achieved TFLOP/s from the analytic FLOP
count (not XLA's), that as a fraction of the device's matmul ceiling measured in the same run, the
compiled memory (XLA's own buffer assignment: arguments + outputs + temporaries), the device's peak
memory where it reports one, and the compile time.

Variants (all on the same pre-generated batch, so that only the step differs):

- `plain`: the baseline the issue measured: `jit(vmap(value_and_grad + adam))` over a per-trial
  `lax.scan` Euler step (`W_in x` inside the loop, trials `vmap`ped), written here independently
  of the library.
- `autodiff`, `checkpoint`, `custom`: `CTRNN` with `W_in x` and the readout hoisted out of the loop,
  the batch as one matrix, and the given `backprop` (see `ctrnn_jax/_scan.py`).
- `trainer`: the whole `EnsembleTrainer` step (`backprop="custom"`), data generated on the device.

`--loop` also times K single-member steps one after another (what K separate trainings cost; JAX's
asynchronous dispatch lets consecutive calls overlap on a multi-core CPU). Members are split over
all devices JAX shows (`--cpu-devices N` makes N CPU devices, as the `ctrnn-jax` command does).
`--memory-only` compiles without running (the compiled memory of sizes too slow for a CPU).

    python benchmarks/ensemble_throughput.py --members 1 8 --loop                       # CPU
    python benchmarks/ensemble_throughput.py --members 1024 --memory-only               # CPU: fits?
    python benchmarks/ensemble_throughput.py --members 1 16 64 256 1024 --precision default highest  # GPU
"""

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

import ctrnn_jax as cj
from _common import emit  # benchmarks/_common.py (the script's folder is on sys.path)
from ctrnn_jax.training._sharding import member_mesh, shard_members
from ctrnn_jax.training._train import trainable_filter

VARIANTS = ("plain", "autodiff", "checkpoint", "custom", "trainer")


def flops_per_network_step(n, m, o, batch, length) -> float:
    """Analytic matmul FLOPs of one training step of one network: the forward pass does `W_rec h`,
    `W_in x` and the readout per step and trial (2 FLOPs per multiply-add); the backward pass does
    two matmuls of each size (the state/input cotangent and the weight gradient)."""
    forward = 2 * batch * length * (n * n + n * m + o * n)
    return 3.0 * forward


def matmul_ceiling(precision: str, size: int, repeats: int = 5) -> float:
    """Measured float32 matmul TFLOP/s at `precision` on the default device."""
    prec = lax.Precision.HIGHEST if precision == "highest" else None
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    f = jax.jit(lambda x: jnp.matmul(x, x, precision=prec))
    jax.block_until_ready(f(a))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(a))
        times.append(time.perf_counter() - t0)
    return 2 * size**3 / float(np.median(times)) / 1e12


# -- the plain baseline, independent of the library -------------------------------------------------
def _plain_params(key, k, n, m, o):
    kr, ki, ko = jax.random.split(key, 3)
    return {
        "W_rec": jax.random.normal(kr, (k, n, n)) / np.sqrt(n),
        "W_in": jax.random.normal(ki, (k, n, m)) * 0.5,
        "b": jnp.zeros((k, n)),
        "W_out": jax.random.normal(ko, (k, o, n)) / np.sqrt(n),
        "b_out": jnp.zeros((k, o)),
    }


def _plain_loss(p, x, y, alpha, prec):
    def trial(xt):
        def body(h, x_t):
            h = (1 - alpha) * h + alpha * jnp.tanh(
                jnp.matmul(p["W_rec"], h, precision=prec) + jnp.matmul(p["W_in"], x_t, precision=prec) + p["b"]
            )
            return h, h

        _, hs = lax.scan(body, jnp.zeros(p["b"].shape), xt)
        return jnp.matmul(hs, p["W_out"].T, precision=prec) + p["b_out"][None]

    return jnp.mean((jax.vmap(trial)(x) - y) ** 2)


# -- the library's variants -----------------------------------------------------------------------
def _model_loss(backprop, prec_name, unroll):
    def loss(model, x, y):
        return jnp.mean((model(x, backprop=backprop, precision=prec_name, unroll=unroll) - y) ** 2)

    return loss


def build_step(variant, precision, alpha, steps_per_call, unroll=1):
    """A jitted `(params, opt_state, x, y) -> (params, opt_state, losses)` doing `steps_per_call`
    Adam steps of every member (vmapped) on the batch `x, y` (each `(K, B, T, ·)`)."""
    adam = optax.adam(1e-3)
    prec = lax.Precision.HIGHEST if precision == "highest" else None
    if variant == "plain":
        loss = lambda p, x, y: _plain_loss(p, x, y, alpha, prec)  # noqa: E731
    else:
        loss = _model_loss(variant, precision, unroll)

    def member_step(p, s, x, y):
        params, static = eqx.partition(p, _trainable(p))
        value, grads = jax.value_and_grad(lambda q: loss(eqx.combine(q, static), x, y))(params)
        updates, s = adam.update(grads, s, params)
        return eqx.combine(optax.apply_updates(params, updates), static), s, value

    def many(p, s, x, y):
        def one(carry, _):
            p, s = carry
            p, s, value = eqx.filter_vmap(member_step)(p, s, x, y)
            return (p, s), value

        (p, s), values = lax.scan(one, (p, s), None, length=steps_per_call)
        return p, s, values

    return jax.jit(many), adam


def _trainable(p):
    """What Adam trains: every array of the baseline; the model's arrays except `alpha`."""
    return jax.tree_util.tree_map(lambda _: True, p) if isinstance(p, dict) else trainable_filter(p)


def make_params(variant, k, args):
    key = jax.random.key(args.seed)
    if variant == "plain":
        return _plain_params(key, k, args.units, 3, 3)
    return cj.make_ensemble(cj.EnsembleConfig(members=k, units=args.units, alpha=args.alpha), key=key)


def compiled_memory(compiled) -> int | None:
    try:
        m = compiled.memory_analysis()
        return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes)
    except Exception:  # noqa: BLE001 - not every backend reports it
        return None


def device_peak() -> int | None:
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def time_calls(call, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def run_variant(variant, k, precision, args, data):
    row = {"variant": variant, "members": k, "precision": precision, "unroll": args.unroll}
    s = args.steps_per_call
    try:
        if variant == "trainer":
            ens = cj.EnsembleConfig(members=k, units=args.units, alpha=args.alpha)
            train = cj.TrainConfig(
                steps=s,
                batch_size=args.batch,
                steps_per_call=s,
                backprop="custom",
                precision=precision,
                clip_norm=None,
                lr_decay=0.0,
                unroll=args.unroll,
            )
            trainer = cj.EnsembleTrainer(ens, train, cj.FlipFlopConfig(length=args.length))  # all devices
            state = trainer.init()
            chunk = trainer._chunk(s)
            t0 = time.perf_counter()
            compiled = chunk.lower(
                state, trainer.hyper, trainer.data(), trainer.constraints, trainer.held_out()
            ).compile()
            row["compile_s"] = time.perf_counter() - t0
            row["compiled_bytes"] = compiled_memory(compiled)
            if args.memory_only:
                return row
            holder = {"state": state}

            def call():
                holder["state"], losses, _ = compiled(
                    holder["state"], trainer.hyper, trainer.data(), trainer.constraints, trainer.held_out()
                )  # _: dead starts
                return losses
        else:
            x, y = (a[:k] for a in data)
            step, adam = build_step(variant, precision, args.alpha, s, args.unroll)
            params = make_params(variant, k, args)
            opt = eqx.filter_vmap(lambda p: adam.init(eqx.filter(p, _trainable(p))))(params)
            # members split over the devices (as the trainer does): jit follows the inputs' layout
            params, opt, x, y = shard_members((params, opt, x, y), member_mesh(k), k)
            t0 = time.perf_counter()
            compiled = step.lower(params, opt, x, y).compile()
            row["compile_s"] = time.perf_counter() - t0
            row["compiled_bytes"] = compiled_memory(compiled)
            if args.memory_only:
                return row
            holder = {"p": params, "s": opt}

            def call():
                holder["p"], holder["s"], losses = compiled(holder["p"], holder["s"], x, y)
                return losses

        jax.block_until_ready(call())  # first (warm-up) call
        per_step = time_calls(call, args.repeats) / s
    except Exception as e:  # out of memory is a result here (anything else is raised again)
        if "RESOURCE_EXHAUSTED" in str(e) or "Out of memory" in str(e) or "out of memory" in str(e):
            row["error"] = "out of memory"
            return row
        raise
    flops = flops_per_network_step(args.units, 3, 3, args.batch, args.length) * k
    row.update(
        ms_per_step=1e3 * per_step,
        ms_per_network=1e3 * per_step / k,
        sample_steps_per_s=k * args.batch * args.length / per_step,
        tflops=flops / per_step / 1e12,
        device_peak_bytes=device_peak(),
    )
    return row


def run_loop(k, precision, args, data):
    """K single-member custom-VJP steps one after another (one compiled step, called K times)."""
    s = args.steps_per_call
    step, adam = build_step("custom", precision, args.alpha, s, args.unroll)
    x, y = (a[:1] for a in data)
    params = make_params("custom", 1, args)
    opt = eqx.filter_vmap(lambda p: adam.init(eqx.filter(p, _trainable(p))))(params)
    compiled = step.lower(params, opt, x, y).compile()
    members = [(params, opt)] * k

    def call():
        out = [compiled(p, o, x, y) for p, o in members]
        return [o[2] for o in out]

    jax.block_until_ready(call())
    per_step = time_calls(call, args.repeats) / s
    return {
        "variant": "loop(custom)",
        "members": k,
        "precision": precision,
        "ms_per_step": 1e3 * per_step,
        "ms_per_network": 1e3 * per_step / k,
    }


def fmt_table(rows, ceilings):
    head = (
        "| variant | precision | K | ms/step | ms/network | Msample-steps/s | TFLOP/s | % of ceiling "
        "| compiled MB | peak MB | compile s |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:

        def g(key, f="{:.3g}", scale=1.0):
            v = r.get(key)
            return "–" if v is None else f.format(v * scale)

        pct = (100 * r["tflops"] / ceilings[r["precision"]]) if "tflops" in r else None
        name = r["variant"] + (f" (unroll {r['unroll']})" if r.get("unroll", 1) > 1 else "")
        lines.append(
            f"| {name} | {r['precision']} | {r['members']} | "
            f"{r.get('error') or g('ms_per_step')} | {g('ms_per_network')} | "
            f"{g('sample_steps_per_s', scale=1e-6)} | {g('tflops')} | "
            f"{'–' if pct is None else f'{pct:.1f}'} | {g('compiled_bytes', '{:.0f}', 1e-6)} | "
            f"{g('device_peak_bytes', '{:.0f}', 1e-6)} | {g('compile_s', '{:.2f}')} |"
        )
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, nargs="+", default=[1, 8])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--precision", nargs="+", default=["default"], choices=["default", "highest"])
    p.add_argument("--units", type=int, default=100)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--length", type=int, default=350)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--steps-per-call", type=int, default=2, help="training steps per compiled call")
    p.add_argument("--unroll", type=int, default=1, help="lax.scan unroll of the time loop (library variants)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls (median)")
    p.add_argument("--loop", action="store_true", help="also time K single-member steps in a loop")
    p.add_argument("--memory-only", action="store_true", help="compile only: compiled memory and compile time")
    p.add_argument("--ceiling-size", type=int, default=None, help="matmul size for the ceiling (default by device)")
    p.add_argument(
        "--cpu-devices", type=int, default=1, help="CPU devices JAX shows; members are split over them (default 1)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    if args.cpu_devices != 1:
        jax.config.update("jax_num_cpu_devices", args.cpu_devices)

    platform = jax.devices()[0].platform
    size = args.ceiling_size or (8192 if platform == "gpu" else 2048)
    ceilings = {prec: matmul_ceiling(prec, size) for prec in args.precision}
    kmax = max(args.members)
    kx = jax.random.split(jax.random.key(args.seed + 1), 1)[0]
    task = cj.FlipFlopConfig(length=args.length)
    x1, y1 = cj.sample_flipflop(kx, task, args.batch)  # the same batch for every member
    data = (jnp.broadcast_to(x1, (kmax,) + x1.shape), jnp.broadcast_to(y1, (kmax,) + y1.shape))
    rows = []
    for prec in args.precision:
        for k in args.members:
            for variant in args.variants:
                rows.append(run_variant(variant, k, prec, args, data))
                print({key: (round(v, 4) if isinstance(v, float) else v) for key, v in rows[-1].items()}, flush=True)
            if args.loop and not args.memory_only and k > 1:
                rows.append(run_loop(k, prec, args, data))
                print(rows[-1], flush=True)
    print(fmt_table(rows, ceilings))
    print(
        "matmul ceiling TFLOP/s:",
        {k: round(v, 2) for k, v in ceilings.items()},
        f"({size}² float32); analytic GFLOP per network-step:",
        round(flops_per_network_step(args.units, 3, 3, args.batch, args.length) / 1e9, 3),
    )
    emit([{"ceiling_tflops": ceilings, "ceiling_size": size}] + rows, args)


if __name__ == "__main__":
    main()
