"""Reproduce the paper end to end with its published code's settings, for many realizations.

Steps (each writes into `--out`):

1. `paper/`: train `--members` realizations with `--preset paper` (N = 400, a = 1, no recurrent
   bias, Adam lr 1e-4 with decay 1e-4, batch 128, 30050 series, 4700 steps, no clipping; see
   shared/paper/PARAMETERS.md), find their fixed points, make every figure and report.md
   (`ctrnn-jax flipflop --preset paper`).
2. Compare the members' test MSE with the shipped network's 0.0133. The paper measured that on 500
   fresh training-like series, so we report both that and the 8-state test set.
3. `sizes/N/`: the minimum-network-size study (paper 5.1). For each N in `--sizes`, train
   `--size-members` members with the same settings (different N cannot share a vmap), then report the
   success rate per N (`size_sweep.json`, `size_sweep.png`).

The robustness study (input noise and pulse amplitude) is part of each report.

Cost: the paper preset is GPU-sized. 16 members × 4700 steps at N = 400, batch 128, T = 340 is
about 16 × 4700 × 12 GFLOP ≈ 0.9 PFLOP. That is minutes on an H200 and many hours on a 2-core CPU,
which cannot run it within a session. Smoke-test the pipeline on a CPU with tiny settings:

    python experiments/flipflop_paper.py --out runs/paper_smoke --members 2 --steps 20 --units 16 \\
        --sizes 4 8 --size-members 2 --size-steps 20 --dataset-size 512
"""

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

import ctrnn_jax as cj
from ctrnn_jax._cli import main as cli
from ctrnn_jax.io._run import load_run_ensemble

SHIPPED_MSE = 0.0133


def fresh_series_mse(ensemble, task, n=500, seed=123) -> np.ndarray:
    """Per-member MSE on `n` fresh training-like series (how the paper measured 0.0133)."""
    x, y = cj.sample_flipflop(jax.random.key(seed), task, n)
    return cj.evaluate(ensemble, x, y)["mse"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/paper"))
    p.add_argument("--members", type=int, default=20, help="realizations (default 20)")
    p.add_argument("--steps", type=int, default=None, help="override the preset's 4700 steps")
    p.add_argument("--units", type=int, default=None, help="override the preset's N = 400")
    p.add_argument("--dataset-size", type=int, default=None, help="override the preset's 30050 series")
    p.add_argument("--sizes", type=int, nargs="*", default=[4, 8, 16, 32, 64, 100])
    p.add_argument("--size-members", type=int, default=8)
    p.add_argument("--size-steps", type=int, default=None)
    a = p.parse_args()
    common = ["--preset", "paper", "--progress", "text"]
    if a.dataset_size:
        common += ["--dataset-size", str(a.dataset_size)]
    t0 = time.perf_counter()
    run = a.out / "paper"
    args = ["flipflop", "--out", str(run), "--members", str(a.members), *common]
    if a.steps:
        args += ["--steps", str(a.steps)]
    if a.units:
        args += ["--units", str(a.units)]
    cli(args)
    ensemble, config = load_run_ensemble(run)
    test = json.loads((run / "eval.json").read_text())
    fresh = fresh_series_mse(ensemble, config.task)
    summary = {"members": a.members, "seconds": time.perf_counter() - t0, "device": jax.devices()[0].platform,
               "shipped_network_mse": SHIPPED_MSE, "test_set_mse": test["mse"], "fresh_series_mse": fresh.tolist(),
               "fresh_series_mse_median": float(np.median(fresh)),
               "members_at_or_below_shipped": int(np.sum(fresh <= SHIPPED_MSE))}
    print(f"fresh-series MSE median {summary['fresh_series_mse_median']:.4f} (shipped network: {SHIPPED_MSE}); "
          f"{summary['members_at_or_below_shipped']} of {a.members} members at or below it")

    results = []
    for n in a.sizes:
        size_run = a.out / "sizes" / str(n)
        args = ["train", "--out", str(size_run), "--members", str(a.size_members), "--units", str(n), *common]
        if a.size_steps:
            args += ["--steps", str(a.size_steps)]
        cli(args)
        results.append((n, {k: np.asarray(v) for k, v in json.loads((size_run / "eval.json").read_text()).items()
                            if k in ("mse", "norm", "success")}))
    sizes = cj.size_sweep_summary(results)
    summary["size_sweep"] = {k: np.asarray(v).tolist() for k, v in sizes.items()}
    summary["seconds"] = time.perf_counter() - t0
    _plot_sizes(sizes, a.out / "size_sweep")
    (a.out / "paper_summary.json").write_text(json.dumps(summary, indent=2))
    print(f"done in {summary['seconds']:.0f} s; summary in {a.out / 'paper_summary.json'}")


def _plot_sizes(sizes: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(sizes["sizes"], sizes["success_rate"], "o-")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("units N")
    ax.set_ylabel("success rate (test MSE < threshold)")
    ax.set_ylim(-0.05, 1.05)
    cj.save_figure(fig, path)  # size_sweep.png and .pdf, each written atomically


if __name__ == "__main__":
    main()
