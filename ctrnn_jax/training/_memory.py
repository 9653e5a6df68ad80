"""Will a training run fit in memory? An estimate made before anything is allocated or compiled.

`training_memory` counts the arrays a training step holds at once, per member:

- parameters, their gradient and Adam's two moments: `4 · P` floats, `P = G·N·(N + M + 1) + O·(N + 1)`
  (`G` gate blocks: 1 CTRNN, 2 UGRNN, 3 GRU, 4 LSTM);
- the backward pass: the saved states `(B, T, G·N)` and, while it runs, about three more arrays of that
  size (pre-activations, their gradient, the state gradient);
- a batch of trials: inputs, targets and mask, `(B, T, M + 2·O)`;
- in data-set mode, the data set `(D, T, M + 2·O)` (once, not per member).

All float32. The estimate is a lower bound of the peak (XLA's temporaries come on top), so `check_memory`
refuses only what cannot fit: more than the available memory (host RAM on the CPU, the device's limit on
an accelerator).
"""

import os

import jax

_GATE_BLOCKS = {"ctrnn": 1, "ugrnn": 2, "gru": 3, "lstm": 4}


def training_memory(ensemble_config, train_config, task) -> int:
    """Bytes a training step of this run needs at least (see the module docstring)."""
    k, n = ensemble_config.members, ensemble_config.units
    m, o = task.n_inputs, task.n_outputs
    g = _GATE_BLOCKS.get(getattr(ensemble_config, "cell", "ctrnn"), 4)
    b, t = train_config.batch_size, task.length
    params = g * n * (n + m + 1) + o * (n + 1)
    per_member = 4 * params + 4 * b * t * g * n + b * t * (m + 2 * o)
    data = (train_config.dataset_size or 0) * t * (m + 2 * o)
    return 4 * (k * per_member + data)


def available_memory() -> tuple[int | None, str]:
    """`(bytes, where)`: what the default JAX device can hold (its `bytes_limit`), or the host's available
    RAM (`MemAvailable`) on the CPU; `(None, ...)` when it cannot be told."""
    device = jax.devices()[0]
    if device.platform != "cpu":
        try:
            stats = device.memory_stats() or {}
        except Exception:  # noqa: BLE001 - a backend without memory statistics
            stats = {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"]), f"{device.device_kind} memory"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "available RAM"
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "available RAM"
    except (ValueError, OSError, AttributeError):
        return None, "memory"


def _gb(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def check_memory(ensemble_config, train_config, task, *, devices: int = 1) -> int:
    """Raise `ValueError` before any allocation when the run cannot fit (`training_memory` above the
    available memory of `devices` devices together); returns the estimate in bytes."""
    need = training_memory(ensemble_config, train_config, task)
    have, where = available_memory()
    if have is not None and need > have * max(devices, 1):
        c, t = ensemble_config, train_config
        raise ValueError(
            f"K = {c.members} members of N = {c.units} units with batch {t.batch_size} and T = "
            f"{task.length} steps would need about {_gb(need)} for training (weights, Adam, the "
            f"backward pass), more than the {_gb(have * max(devices, 1))} of {where}; use fewer "
            "--units, --members or a smaller --batch."
        )
    return need


__all__ = ["available_memory", "check_memory", "training_memory"]
