"""What every benchmark script does with its rows: print them as JSON and optionally save them."""

import json
import platform
import time

import jax


def emit(rows: list, args) -> dict:
    """Print the result (device, versions, arguments, rows, date) as one JSON line; write it to
    `args.json` when given. Returns the result."""
    dev = jax.devices()[0]
    result = {
        "device": {"platform": dev.platform, "kind": dev.device_kind, "count": jax.device_count()},
        "python": platform.python_version(),
        "jax": jax.__version__,
        "args": vars(args),
        "rows": rows,
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result
