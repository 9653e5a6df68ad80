"""The main job (`ctrnn-jax flipflop --out DIR --progress none`: train to criterion, fixed points, analysis) of
two versions of the library, interleaved (A, B, A, B, ...): wall and CPU time, solve count, every member's test
MSE, criterion step and restarts. Each version is a source tree put first on PYTHONPATH (e.g. a `git worktree`
of a commit), or the Python interpreter of a virtual environment the version is installed in (a fresh install:
`python3 -m venv V && V/bin/pip install TREE`). Every run starts with an empty compilation cache of its own
(`CTRNN_JAX_CACHE_DIR`), as the first run of a fresh install does. The JSON is rewritten after every run, so a
cut-short comparison keeps what it measured.

    git worktree add /tmp/base31 45a2d3c; git worktree add /tmp/new31 HEAD
    python benchmarks/main_job_compare.py --a new=/tmp/new31 --b old=/tmp/base31 --repeats 3 \\
        --json benchmarks/cpu_main_job_31.json
    python benchmarks/main_job_compare.py --a new=/tmp/venv-new/bin/python --b old=/tmp/venv-old/bin/python ...
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(label: str, tree: str, folder: Path) -> dict:
    """One main job of the version `tree` (a source tree, or a venv's Python interpreter) into `folder`."""
    installed = Path(tree).is_file()
    if installed:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    else:
        env = {**os.environ, "PYTHONPATH": tree}
    env["CTRNN_JAX_CACHE_DIR"] = str(folder.with_name(folder.name + "_xla"))
    python = tree if installed else sys.executable
    cmd = [python, "-m", "ctrnn_jax._cli", "flipflop", "--out", str(folder), "--progress", "none"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    # run from the run's own parent folder: `python -m` puts the working directory first on sys.path, so a run
    # started inside a checkout would import the checkout's package instead of the version under test
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=folder.parent)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    row = {
        "label": label,
        "tree": tree,
        "rc": done.returncode,
        "wall_s": round(wall, 1),
        "cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 1),
        "load_start": round(load, 2),
        "load_end": round(os.getloadavg()[0], 2),
    }
    row["imported"] = _imported(python, env, folder.parent)
    if done.returncode != 0:
        row["stderr"] = done.stderr[-2000:]
        return row
    ev = json.loads((folder / "eval.json").read_text())
    config = json.loads((folder / "config.json").read_text())["config"]["train"]
    row.update(
        {
            "solved": ev["n_success"],
            "members": ev["n_members"],
            "test_mse": [round(m, 5) for m in ev["mse"]],
            "criterion_step": ev.get("criterion_step"),
            "restarts": ev.get("restarts"),
            "stop_mse": config.get("stop_mse"),
            "stop_margin": config.get("stop_margin", 0.0),
            "training_wall_s": (ev.get("training") or {}).get("wall_s"),
        }
    )
    return row


def _imported(python: str, env: dict, cwd: Path) -> str:
    """Where the version under test imports `ctrnn_jax` from (the check that it is the one meant)."""
    return subprocess.run(
        [python, "-c", "import ctrnn_jax; print(ctrnn_jax.__file__)"], env=env, cwd=cwd, capture_output=True, text=True
    ).stdout.strip()


def summary(rows: list, label: str) -> dict:
    mine = [r for r in rows if r["label"] == label and r["rc"] == 0]
    if not mine:
        return {"label": label, "runs": 0}
    wall, cpu = [r["wall_s"] for r in mine], [r["cpu_s"] for r in mine]
    mse = [m for r in mine for m in r["test_mse"]]
    return {
        "label": label,
        "runs": len(mine),
        "wall_median": statistics.median(wall),
        "wall_range": [min(wall), max(wall)],
        "cpu_median": statistics.median(cpu),
        "cpu_range": [min(cpu), max(cpu)],
        "solved": [r["solved"] for r in mine],
        "test_mse_range": [min(mse), max(mse)],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", required=True, help="LABEL=SOURCE_TREE or LABEL=VENV/bin/python")
    p.add_argument("--b", required=True, help="LABEL=SOURCE_TREE or LABEL=VENV/bin/python")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    versions = [tuple(v.split("=", 1)) for v in (args.a, args.b)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for label, tree in versions:
                rows.append(run(label, tree, Path(tmp) / f"{label}{i}"))
                r = rows[-1]
                print(
                    f"{label} #{i}: rc {r['rc']}, {r['wall_s']} s wall, {r['cpu_s']} s cpu, load {r['load_start']}"
                    f"-{r['load_end']}, solved {r.get('solved')}, test MSE {r.get('test_mse')}",
                    file=sys.stderr,
                    flush=True,
                )
                result = {
                    "command": "ctrnn-jax flipflop --out DIR --progress none",
                    "date": time.strftime("%Y-%m-%d"),
                    "runs": rows,
                    "summary": [summary(rows, label) for label, _ in versions],
                }
                if args.json:
                    Path(args.json).write_text(json.dumps(result, indent=1))
    print("| version | runs | wall s median [range] | cpu s median [range] | solved | test MSE range |")
    print("|---|---|---|---|---|---|")
    for s in result["summary"]:
        if s["runs"]:
            print(
                f"| {s['label']} | {s['runs']} | {s['wall_median']} [{s['wall_range'][0]}–{s['wall_range'][1]}] | "
                f"{s['cpu_median']} [{s['cpu_range'][0]}–{s['cpu_range'][1]}] | {s['solved']} | "
                f"{s['test_mse_range'][0]:.4f}–{s['test_mse_range'][1]:.4f} |"
            )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
