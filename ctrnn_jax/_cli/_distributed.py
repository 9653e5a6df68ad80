"""Devices and processes: `use_cpu_cores`, and the `--distributed` options (`jax.distributed`) with their
plumbing: joining the run, process 0 alone printing, and a failure ending the process at once."""

import os
import sys

from ._errors import usage_error

# The commands that can run on many processes.
COMMANDS = ("train", "flipflop", "fixed-points", "analyze", "evaluate")


def use_cpu_cores() -> None:
    """Show JAX one CPU device per core, so that the trainer can spread members over the cores.

    Done by the command line (an application), never on library import. Skipped when the user has
    configured the CPU device count, or when the JAX backend is already running.
    """
    if "JAX_NUM_CPU_DEVICES" in os.environ or "host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    try:
        import jax

        jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)
    except Exception:  # noqa: BLE001 - older JAX without the option, or backend already initialised
        pass


# The environment variables that choose JAX's devices: named in the message when its backend does not start.
JAX_SETTINGS = ("JAX_PLATFORMS", "JAX_NUM_CPU_DEVICES", "CUDA_VISIBLE_DEVICES", "XLA_FLAGS")


def check_devices(prog: str) -> None:
    """Start JAX's backend now, so that a misconfigured environment (`JAX_PLATFORMS=cuda` without a GPU,
    `JAX_NUM_CPU_DEVICES=0`) is one line and exit status 2 (usage_error), naming the settings to fix,
    instead of JAX's traceback (a bare AssertionError, a RuntimeError) at the first array. After
    `jax.distributed.initialize`, which needs the backend not started."""
    import jax

    try:
        jax.devices()
    except (RuntimeError, AssertionError) as e:  # the backend's own start; nothing of ours has run
        settings = [f"{name}={os.environ[name]}" for name in JAX_SETTINGS if name in os.environ]
        reason = str(e).strip().splitlines()[0] if str(e).strip() else "no platform of JAX_PLATFORMS could be started"
        count = os.environ.get("JAX_NUM_CPU_DEVICES", "1").strip()
        if not (count.isdigit() and int(count) >= 1):
            reason = f"JAX_NUM_CPU_DEVICES must be a whole number >= 1, got {count!r}"
        usage_error(
            prog,
            f"JAX could not start its devices ({', '.join(settings) or 'default settings'}): {reason}; "
            "fix or unset these environment variables (JAX_PLATFORMS=cpu runs on the CPU)",
        )


def add_options(p) -> None:
    g = p.add_argument_group("many processes (jax.distributed; see docs/distributed.md)")
    g.add_argument(
        "--distributed",
        action="store_true",
        help="join a distributed run, the cluster detected by JAX (SLURM, Open MPI, TPU pods, ...)",
    )
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="process 0's address (sets it by hand)")
    g.add_argument("--num-processes", type=int, default=None, metavar="P", help="number of processes")
    g.add_argument("--process-id", type=int, default=None, metavar="I", help="this process's index, 0..P-1")
    g.add_argument(
        "--dist-timeout",
        type=int,
        default=300,
        metavar="SECONDS",
        help="every process must have joined within this time, else all end with an error (default: 300)",
    )
    g.add_argument(
        "--heartbeat-timeout",
        type=int,
        default=100,
        metavar="SECONDS",
        help="a process silent this long is declared dead and the others end (default: 100)",
    )


def start(args) -> bool:
    """Join the distributed run asked for by `--distributed` or `--coordinator/--num-processes/--process-id`
    (with gloo collectives for CPUs); False when none was asked for. Only process 0 prints to stdout."""
    manual = (
        getattr(args, "coordinator", None),
        getattr(args, "num_processes", None),
        getattr(args, "process_id", None),
    )
    if not getattr(args, "distributed", False) and all(v is None for v in manual):
        return False
    from ..training._distributed import DistributedError, init_distributed, is_main_process

    try:
        init_distributed(*manual, timeout=args.dist_timeout, heartbeat_timeout=args.heartbeat_timeout)
    except (ValueError, TypeError, RuntimeError) as e:
        hint = (
            ""
            if any(v is not None for v in manual)
            else " (no cluster detected: give --coordinator HOST:PORT --num-processes P --process-id I)"
        )
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, DistributedError):  # every process knows: end now, skipping JAX's shutdown barrier
            sys.stderr.write(f"{args.prog}: error: {message}\n")
            sys.stderr.flush()
            os._exit(2)
        usage_error(args.prog, f"--distributed: {message}{hint}" if hint else message)
    if not is_main_process():  # one report, process 0's (also silences what libraries print)
        sys.stdout.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return True


def run(command, heartbeat_timeout: int = 100) -> int:
    """Run `command()` in a distributed run: an error (e.g. a collective failing because another process
    died) ends this process at once with one line, without waiting at JAX's shutdown barrier; so does
    another process's death noticed between collectives (`PeerWatch`, within half the heartbeat timeout)."""
    from ..training._distributed import PeerWatch

    watch = PeerWatch(stale=max(2.0, heartbeat_timeout / 2))
    try:
        return command()
    except Exception as e:  # noqa: BLE001 - any failure ends the process with one line
        import jax

        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        sys.stdout.flush()
        sys.stderr.write(
            f"ctrnn-jax: error: process {jax.process_index()}: the distributed run failed "
            f"({type(e).__name__}: {message}); files already written are intact\n"
        )
        sys.stderr.flush()
        os._exit(1)
    finally:
        watch.finished()  # an orderly end (also a one-line error of this process): its silence is no death
        watch.stop()
