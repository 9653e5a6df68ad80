"""Weak scaling over processes (issue #11): the same work per process, 1, 2, 4, ... processes.

Each process gets `--cpu-devices` CPU devices and `--members-per-process` members (K grows with the
number of processes P); the processes join one run with `cj.init_distributed` (coordinator on
127.0.0.1, gloo collectives) and train one ensemble, members split over the global mesh. For each P
it reports, from process 0:

- members per second (`K × steps / time` over the timed chunks, each chunk followed by the loss
  gather the trainer does between chunks), and the efficiency against 1 process (`1.0` is perfect
  weak scaling: P times the members in the same time);
- the per-chunk loss gather alone (`to_host` of the chunk's `(steps, K)` losses), median over
  repeated gathers of a finished chunk, and the start-up (`init_distributed`) time.

    python benchmarks/distributed_scaling.py --processes 1 2 4 --json benchmarks/cpu_distributed_scaling.json

On a machine with fewer cores than `P × --cpu-devices`, the processes share cores: the numbers
then measure oversubscription, not the method.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np


def worker(args) -> None:
    import jax

    jax.config.update("jax_num_cpu_devices", args.cpu_devices)
    import ctrnn_jax as cj
    from ctrnn_jax.training import to_host

    t0 = time.perf_counter()
    if args.num_processes > 1:
        cj.init_distributed(f"127.0.0.1:{args.port}", args.num_processes, args.process_id, timeout=120)
    start_up = time.perf_counter() - t0
    k = args.members_per_process * args.num_processes
    ens = cj.EnsembleConfig(members=k, units=args.units, alpha=0.25)
    train = cj.TrainConfig(steps=args.steps * (args.chunks + 1), batch_size=args.batch, steps_per_call=args.steps)
    trainer = cj.EnsembleTrainer(ens, train, cj.FlipFlopConfig(length=args.length))
    state = trainer.init()
    state, losses = trainer.run_steps(state, args.steps)  # compile
    to_host(losses)
    times = []
    for _ in range(args.chunks):  # what `train` does per chunk: the compiled steps, then the loss gather
        t = time.perf_counter()
        state, losses = trainer.run_steps(state, args.steps)
        to_host(losses)
        times.append(time.perf_counter() - t)
    gathers = []
    for _ in range(args.gathers):
        t = time.perf_counter()
        to_host(losses)
        gathers.append(time.perf_counter() - t)
    if cj.is_main_process():
        per_chunk = float(np.median(times))
        print(
            "ROW "
            + json.dumps(
                {
                    "processes": args.num_processes,
                    "devices": jax.device_count(),
                    "members": k,
                    "chunk_s": per_chunk,
                    "members_per_s": k * args.steps / per_chunk,
                    "loss_gather_ms": 1e3 * float(np.median(gathers)),
                    "start_up_s": start_up,
                }
            ),
            flush=True,
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(p: int, args) -> dict:
    port = _free_port()
    env = dict(os.environ, JAX_NUM_CPU_DEVICES=str(args.cpu_devices))
    env.pop("XLA_FLAGS", None)
    common = [sys.executable, __file__, "--worker", "--num-processes", str(p), "--port", str(port)]
    for name in ("cpu_devices", "members_per_process", "units", "batch", "length", "steps", "chunks", "gathers"):
        common += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    procs = [
        subprocess.Popen([*common, "--process-id", str(i)], env=env, stdout=subprocess.PIPE, text=True)
        for i in range(p)
    ]
    outs = [proc.communicate(timeout=1800)[0] for proc in procs]
    if any(proc.returncode for proc in procs):
        raise SystemExit(f"{p} processes: a worker failed (exit codes {[proc.returncode for proc in procs]})")
    return json.loads(next(line for line in outs[0].splitlines() if line.startswith("ROW "))[4:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--cpu-devices", type=int, default=1, help="CPU devices per process (default: 1)")
    parser.add_argument("--members-per-process", type=int, default=8)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=340)
    parser.add_argument("--steps", type=int, default=10, help="steps per compiled chunk")
    parser.add_argument("--chunks", type=int, default=3, help="timed chunks")
    parser.add_argument("--gathers", type=int, default=20, help="timed loss gathers")
    parser.add_argument("--json", default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--num-processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    rows = [launch(p, args) for p in args.processes]
    base = rows[0]["members_per_s"] / rows[0]["processes"]
    print(
        f"{'P':>3} {'devices':>7} {'K':>5} {'chunk s':>8} {'members/s':>10} {'efficiency':>10} "
        f"{'gather ms':>9} {'start s':>7}"
    )
    for r in rows:
        r["efficiency"] = r["members_per_s"] / (base * r["processes"])
        print(
            f"{r['processes']:>3} {r['devices']:>7} {r['members']:>5} {r['chunk_s']:>8.3f} "
            f"{r['members_per_s']:>10.1f} "
            f"{r['efficiency']:>10.2f} {r['loss_gather_ms']:>9.2f} {r['start_up_s']:>7.2f}"
        )
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import jax  # noqa: F401 - for the device record of `emit`

    from _common import emit

    emit(rows, args)


if __name__ == "__main__":
    main()
