"""Check the files `benchmarks/gpu_check.sh` writes: every JSON file parses and holds the fields its
stage promises, so that a script error shows on the CPU (`gpu_check.sh --dry-run`), not on the GPU.

    python benchmarks/check_gpu_out.py OUT_DIR

Prints one line per file; exits 1 when any file is missing, does not parse, or lacks a field.
"""

import json
import sys
from pathlib import Path

COMMON = ("device", "jax", "args", "rows", "date")
# file: (fields every row has, fields of the first row when it is the ceiling row)
EXPECTED = {
    "variants.json": (
        {"precision", "backprop", "loss_rel", "dW_rec_rel", "dW_in_rel", "db_rel", "dW_out_rel", "db_out_rel"},
        None,
    ),
    "throughput_default.json": (
        {"variant", "members", "precision", "ms_per_step", "ms_per_network", "tflops", "compile_s", "compiled_bytes"},
        {"ceiling_tflops", "ceiling_size"},
    ),
    "throughput_unroll8.json": (
        {"variant", "members", "unroll", "ms_per_step", "tflops"},
        {"ceiling_tflops", "ceiling_size"},
    ),
    "throughput_highest.json": (
        {"variant", "members", "precision", "ms_per_step", "tflops"},
        {"ceiling_tflops", "ceiling_size"},
    ),
    "fixed_points.json": ({"members", "candidates", "units", "find_s", "total_s", "points", "index_counts"}, None),
}


def check(out: Path) -> list[str]:
    problems = []
    for name, (row_fields, first_fields) in EXPECTED.items():
        path = out / name
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            problems.append(f"{name}: {e}")
            continue
        missing = [f for f in COMMON if f not in data]
        rows = data.get("rows") or []
        if first_fields is not None:
            if not rows or not first_fields <= set(rows[0]):
                missing.append(f"rows[0] {sorted(first_fields)}")
            rows = rows[1:]
        if not rows:
            missing.append("rows")
        for i, row in enumerate(rows):
            lacking = sorted(row_fields - set(row))
            if lacking and "error" not in row:  # an out-of-memory row says so instead of timing
                missing.append(f"row {i}: {lacking}")
        if missing:
            problems.append(f"{name}: missing {'; '.join(missing)}")
        else:
            print(f"{name}: {len(rows)} rows, every field present")
    return problems


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    problems = check(Path(sys.argv[1]))
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
