"""Margin below the success threshold against training wall time (issue #31): `ctrnn-jax train` of the
flip-flop ensemble (the main job's training, without the fixed-point stage and the analysis) with the
criterion `stop_mse = threshold · (1 − margin)`, one run per margin, interleaved over repetitions.

Prints a table (margin, criterion, wall time, last criterion step, restarts, solve count, worst and median
test MSE) and one JSON line; `--json PATH` saves it. The runs use `--stop-mse` (the criterion a margin
means), so the script measures any version of the library, before or after `--stop-margin`.

    python benchmarks/margin_sweep.py --margins 0 0.1 0.25 0.4 --json benchmarks/cpu_margin_sweep.json
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit

THRESHOLD = 0.02


def run(margin: float, members: int, steps: int | None, seed: int, folder: Path) -> dict:
    criterion = THRESHOLD * (1 - margin)
    cmd = [
        sys.executable,
        "-m",
        "ctrnn_jax._cli",
        "train",
        "--out",
        str(folder),
        "--progress",
        "none",
        "--members",
        str(members),
        "--seed",
        str(seed),
        "--stop-mse",
        repr(criterion),
    ]
    if steps is not None:
        cmd += ["--steps", str(steps)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    ev = json.loads((folder / "eval.json").read_text())
    mse = ev["mse"]
    return {
        "margin": margin,
        "stop_mse": criterion,
        "seed": seed,
        "members": members,
        "wall_s": round(wall, 1),
        "cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 1),
        "load_start": round(load, 2),
        "solved": ev["n_success"],
        "test_mse": [round(x, 5) for x in mse],
        "criterion_step": ev.get("criterion_step"),
        "restarts": ev.get("restarts"),
        "max_test_mse": round(max(mse), 5),
        "median_test_mse": round(sorted(mse)[len(mse) // 2], 5),
        "below_margin": sum(x < criterion for x in mse),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--margins", type=float, nargs="+", default=[0.0, 0.1, 0.25, 0.4])
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--steps", type=int, default=None, help="training steps at most (default: the task's 8000)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--json", default=None)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:  # interleaved: every margin once per seed
            for margin in args.margins:
                row = run(margin, args.members, args.steps, seed, Path(tmp) / f"m{margin}_s{seed}")
                rows.append(row)
                print(
                    f"margin {margin:<5g} stop_mse {row['stop_mse']:.4f} seed {seed}: {row['wall_s']:7.1f} s "
                    f"(cpu {row['cpu_s']} s, load {row['load_start']}), last criterion step "
                    f"{max(row['criterion_step'] or [-1])}, restarts {sum(row['restarts'] or [])}, "
                    f"solved {row['solved']}/{row['members']}, max test MSE {row['max_test_mse']}",
                    file=sys.stderr,
                    flush=True,
                )
                if args.json:  # after every run: a sweep cut short keeps what it measured
                    Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    print("| margin | criterion | wall s | last criterion step | restarts | solved | median test MSE | max test MSE |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['margin']:g} | {r['stop_mse']:.4f} | {r['wall_s']} | {max(r['criterion_step'] or [-1])} | "
            f"{sum(r['restarts'] or [])} | {r['solved']}/{r['members']} | {r['median_test_mse']} | "
            f"{r['max_test_mse']} |"
        )
    emit(rows, args)


if __name__ == "__main__":
    main()
