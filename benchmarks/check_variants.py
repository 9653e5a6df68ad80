"""Do the backprop variants agree on this device? Loss and gradients of every `backprop` variant
against plain autodiff, at each matmul precision, for a small ensemble (a device check that needs no
pytest; the test suite checks the same on the CPU, `tests/test_scan.py`).

    python benchmarks/check_variants.py --json variants.json

Prints, per precision and variant, the largest relative difference of the loss and of each gradient
(`max |g - g_ref| / max |g_ref|`, per weight array, the worst over members).
"""

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import ctrnn_jax as cj
from _common import emit  # benchmarks/_common.py
from ctrnn_jax.training._train import trainable_filter


def grads(ensemble, x, y, backprop, precision):
    def member(m, x, y):
        params, static = eqx.partition(m, trainable_filter(m))

        def loss(p):
            out = eqx.combine(p, static)(x, backprop=backprop, precision=precision)
            return jnp.mean((out - y) ** 2)

        return jax.value_and_grad(loss)(params)

    return eqx.filter_jit(eqx.filter_vmap(member))(ensemble, x, y)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--units", type=int, default=100)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=200)
    p.add_argument("--alpha", type=float, default=0.25)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    ens = cj.make_ensemble(
        cj.EnsembleConfig(members=args.members, units=args.units, alpha=args.alpha), key=jax.random.key(0)
    )
    task = cj.FlipFlopConfig(length=args.length)
    x, y, _ = task.sample(jax.random.key(1), args.batch)
    xs = jnp.broadcast_to(x, (args.members,) + x.shape)
    ys = jnp.broadcast_to(y, (args.members,) + y.shape)
    rows = []
    for precision in ("highest", "default"):
        ref_loss, ref = grads(ens, xs, ys, "autodiff", "highest")  # reference: autodiff at full precision
        for backprop in ("autodiff", "checkpoint", "custom"):
            loss, g = grads(ens, xs, ys, backprop, precision)
            row = {
                "precision": precision,
                "backprop": backprop,
                "loss_rel": float(np.max(np.abs(np.asarray(loss - ref_loss)) / np.abs(np.asarray(ref_loss)))),
            }
            for name in ("W_rec", "W_in", "b", "W_out", "b_out"):
                a, r = np.asarray(getattr(g, name)), np.asarray(getattr(ref, name))
                axes = tuple(range(1, r.ndim))
                row[f"d{name}_rel"] = float(np.max(np.max(np.abs(a - r), axis=axes) / np.max(np.abs(r), axis=axes)))
            rows.append(row)
            print(" ".join(f"{k}={v:.2e}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    emit(rows, args)


if __name__ == "__main__":
    main()
